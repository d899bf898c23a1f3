/* Internal helpers shared by the Swift targets; not part of the ABI (not exported: the version
 * script keeps only hy_* symbols). */
#ifndef HUNYUAN_INTERNAL_H
#define HUNYUAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Copies `message` (UTF-8, truncated at a character boundary to fit) into this thread's error slot. */
void hyi_set_error(const char *message);

/* Run-time CPU features (cpuid), so AVX-512 / VNNI paths are taken only where they exist. */
bool hyi_cpu_has_avx2_fma(void);
bool hyi_cpu_has_avx512f(void);
bool hyi_cpu_has_avx512_vnni(void);
bool hyi_cpu_has_avx_vnni(void);

#endif
