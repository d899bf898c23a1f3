/* Shared helpers of the C ABI tests: load libhunyuan.so with dlopen and check results. */
#ifndef ABI_TEST_H
#define ABI_TEST_H

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hunyuan.h"

static int g_failures = 0;
static int g_checks = 0;
static void *g_lib = NULL;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        g_checks++;                                                        \
        if (!(cond)) {                                                     \
            g_failures++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
        }                                                                  \
    } while (0)

/* Resolves a symbol or exits: a missing export is a failed test. */
static void *sym(const char *name) {
    void *p = dlsym(g_lib, name);
    if (p == NULL) {
        fprintf(stderr, "FAIL: symbol %s not exported: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

/* Declares a local function pointer p_<name> of the header's type, resolved from the library.
 * (ISO C has no cast from void * to a function pointer; copying the bits is the portable idiom.) */
#define LOAD(name)                                   \
    __typeof__(&name) p_##name;                      \
    do {                                             \
        void *raw_ = sym(#name);                     \
        memcpy(&p_##name, &raw_, sizeof raw_);       \
    } while (0)

/* Checks that a call failed with `expected` and left a non-empty message. */
#define EXPECT_STATUS(call, expected)                                                        \
    do {                                                                                     \
        hy_status st_ = (call);                                                              \
        CHECK(st_ == (expected), "%s returned %d (%s), expected %d; message: %s", #call,     \
              (int)st_, p_hy_status_name(st_), (int)(expected), p_hy_last_error());          \
        if ((expected) != HY_OK)                                                             \
            CHECK(p_hy_last_error()[0] != '\0', "%s: empty error message", #call);           \
    } while (0)

static void open_library(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "build/libhunyuan.so.0";
    g_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (g_lib == NULL) {
        fprintf(stderr, "FAIL: dlopen(%s): %s\n", path, dlerror());
        exit(1);
    }
}

/* max |a[i] - b[i]| over n floats in double; INFINITY for a NULL side or a NaN. */
static inline double max_abs_diff(const float *a, const float *b, size_t n) {
    if (a == NULL || b == NULL) return INFINITY;
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_checks - g_failures, g_failures);
    return g_failures == 0 ? 0 : 1;
}

#endif
