/* What every example needs to load libhunyuan at run time: dlopen with a clear message, and
 * RESOLVE(lib, "hy_name", fn) to look a function up (ISO C needs the memcpy to turn a void * into a
 * function pointer). RESOLVE returns 1 from the calling function when the symbol is missing. */
#ifndef HY_EXAMPLE_LOAD_H
#define HY_EXAMPLE_LOAD_H

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define RESOLVE(lib, name, var)                            \
    do {                                                   \
        void *sym_ = dlsym(lib, name);                     \
        if (sym_ == NULL) {                                \
            fprintf(stderr, "missing symbol %s\n", name);  \
            return 1;                                      \
        }                                                  \
        memcpy(&(var), &sym_, sizeof sym_);                \
    } while (0)

/* dlopen(path) or NULL after printing dlerror(). */
static inline void *hy_example_open(const char *path) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) fprintf(stderr, "dlopen: %s\n", dlerror());
    return lib;
}

#endif
