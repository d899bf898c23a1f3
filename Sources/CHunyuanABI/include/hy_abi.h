/* The ABI's runtime half: the thread-local error slot behind hy_last_error(). Imported by
 * HunyuanCAPI only. */
#ifndef HY_ABI_H
#define HY_ABI_H

#include "hunyuan.h"

/* Copies `message` (UTF-8, truncated at a character boundary to fit) into this thread's error slot. */
void hyi_set_error(const char *message);

#endif
