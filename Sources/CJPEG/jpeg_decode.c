/* JPEG decoding through libjpeg(-turbo) with its errors turned into a status (libjpeg's default error
 * handler calls exit(); ours longjmps back here). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

#include "hy_jpeg.h"

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} hyi_jpeg_error;

static void hyi_jpeg_error_exit(j_common_ptr info) {
    hyi_jpeg_error *e = (hyi_jpeg_error *)info->err;
    (*info->err->format_message)(info, e->message);
    longjmp(e->jump, 1);
}

/* Warnings (level < 0: corrupt data, premature end of file) are kept, not printed: any warning fails
 * the decode, since libjpeg would pad a damaged view with grey. Trace messages are dropped. */
static void hyi_jpeg_warning(j_common_ptr info, int level) {
    if (level >= 0) return;
    hyi_jpeg_error *e = (hyi_jpeg_error *)info->err;
    if (e->base.num_warnings++ == 0) (*info->err->format_message)(info, e->message);
}

int hyi_jpeg_decode(const uint8_t *data, size_t size, size_t max_side, uint8_t **pixels, int32_t *width,
                    int32_t *height, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    hyi_jpeg_error err;
    uint8_t *volatile out = NULL;
    *pixels = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = hyi_jpeg_error_exit;
    err.base.emit_message = hyi_jpeg_warning;
    err.message[0] = 0;
    if (setjmp(err.jump)) {
        snprintf(message, message_size, "%s", err.message[0] ? err.message : "corrupt JPEG data");
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.image_width == 0 || cinfo.image_height == 0 || cinfo.image_width > max_side ||
        cinfo.image_height > max_side) {
        snprintf(message, message_size, "image size %ux%u is outside 1...%zu", cinfo.image_width,
                 cinfo.image_height, max_side);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB;  /* grey, YCbCr and CMYK/YCCK all become RGB */
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * 3;
    out = malloc(stride * cinfo.output_height);
    if (!out) {
        snprintf(message, message_size, "out of memory for a %ux%u image", cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (err.base.num_warnings > 0) {
        snprintf(message, message_size, "%s", err.message);
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return -1;
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int32_t)cinfo.output_width;
    *height = (int32_t)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    *pixels = out;
    return 0;
}
