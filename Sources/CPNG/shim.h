#ifndef SFUMATO_CPNG_SHIM_H
#define SFUMATO_CPNG_SHIM_H
#include <png.h>
#endif
