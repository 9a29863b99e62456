#ifndef SFUMATO_COPENBLAS_SHIM_H
#define SFUMATO_COPENBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>

/* Exported by OpenBLAS's dynamic-arch builds but not declared in cblas.h:
   they re-run kernel selection after OPENBLAS_CORETYPE changes. */
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);
#endif
