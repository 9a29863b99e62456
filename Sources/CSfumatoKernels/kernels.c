#include "sfumato_kernels.h"

int sfumato_kernels_supported(void) {
#if defined(__x86_64__) || defined(__i386__)
    /* __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0). */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return SFUMATO_KERNELS_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SFUMATO_KERNELS_AVX2;
#endif
    return SFUMATO_KERNELS_GENERIC;
}
