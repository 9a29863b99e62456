#ifndef SFUMATO_KERNELS_H
#define SFUMATO_KERNELS_H

/* Code paths of the C kernels, slowest first. Every kernel takes one of these as its first
   argument, so a test can run each path the CPU supports. */
#define SFUMATO_KERNELS_GENERIC 0 /* plain C */
#define SFUMATO_KERNELS_AVX2 1    /* AVX2 + FMA */
#define SFUMATO_KERNELS_AVX512 2  /* AVX-512F */

/* The fastest code path this CPU and operating system can run. */
int sfumato_kernels_supported(void);

#endif
