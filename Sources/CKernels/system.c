/* Run-time CPU checks and the path of the loaded library image. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "hy_kernels.h"

bool hyi_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

bool hyi_cpu_has_avx512f(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#else
    return false;
#endif
}

bool hyi_cpu_has_avx512_vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

bool hyi_cpu_has_avx_vnni(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
    __builtin_cpu_init();
    return __builtin_cpu_supports("avxvnni");
#elif (defined(__x86_64__) || defined(__i386__)) && defined(__clang__) && __clang_major__ >= 12
    __builtin_cpu_init();
    return __builtin_cpu_supports("avxvnni");
#else
    return false;
#endif
}

bool hyi_cpu_has_avx512_bf16(void) {
#if defined(__x86_64__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 10))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

const char *hyi_image_path(void) {
    Dl_info info;
    if (dladdr((const void *)&hyi_image_path, &info) != 0 && info.dli_fname != NULL) return info.dli_fname;
    return NULL;
}
