/* JPEG decoding for HunyuanImage through libjpeg(-turbo). Internal: not part of the ABI (the version
 * script exports only hy_* symbols, so the function keeps the internal hyi_ prefix). */
#ifndef HY_JPEG_H
#define HY_JPEG_H

#include <stddef.h>
#include <stdint.h>

/* JPEG bytes -> 8-bit RGB rows (*pixels: width * height * 3 bytes, malloc'ed; free() it). Returns 0, or
 * -1 with a message for corrupt, truncated or oversized (side > max_side) data. Thread-safe. */
int hyi_jpeg_decode(const uint8_t *data, size_t size, size_t max_side, uint8_t **pixels, int32_t *width,
                    int32_t *height, char *message, size_t message_size);

#endif
