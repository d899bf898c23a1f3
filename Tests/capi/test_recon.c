/* C ABI test of the reconstruction section on the svrm-tiny fixture (official-code reference):
 * load, info, preprocess from uint8 views, encode, query sdf/rgb at the reference points, the SDF grid,
 * and the error paths (NULLs, wrong view count, query before encode, corrupt path, cancel).
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_recon LIBRARY [SHARED_DIR] */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_test.h"

/* Reads tensor `name` of a safetensors file as float32 through the checkpoint API (malloc'd). */
static float *read_tensor(const char *file, const char *name, size_t *count) {
    LOAD(hy_checkpoint_open);
    LOAD(hy_checkpoint_find);
    LOAD(hy_checkpoint_tensor_info);
    LOAD(hy_checkpoint_read_f32);
    LOAD(hy_checkpoint_free);
    hy_checkpoint *ck = NULL;
    size_t idx = 0;
    hy_tensor_info info;
    if (p_hy_checkpoint_open(file, NULL, &ck) != HY_OK) return NULL;
    float *out = NULL;
    if (p_hy_checkpoint_find(ck, name, &idx) == HY_OK && p_hy_checkpoint_tensor_info(ck, idx, &info) == HY_OK) {
        size_t n = 1;
        for (uint32_t d = 0; d < info.n_dims; d++) n *= (size_t)info.shape[d];
        out = malloc(n * sizeof(float));
        if (out != NULL && p_hy_checkpoint_read_f32(ck, idx, out, n) != HY_OK) { free(out); out = NULL; }
        *count = n;
    }
    p_hy_checkpoint_free(ck);
    return out;
}


static int g_progress_calls = 0;
/* Abort callback: true (cancel) from the n-th poll on, n = *(int *)user; counts polls. */
static int g_abort_polls = 0;
static bool abort_after(void *user) {
    return __atomic_add_fetch(&g_abort_polls, 1, __ATOMIC_RELAXED) >= *(int *)user;  /* polled from workers too */
}

static bool stop_at_three(float progress, void *user) {
    (void)progress; (void)user;
    return ++g_progress_calls % 3 != 0;
}

/* 16x8 JPEG (Pillow, quality 95): left half RGB (200, 30, 60), right half (20, 180, 90). */
static const unsigned char k_jpeg[] = {
    0xff,0xd8,0xff,0xe0,0x00,0x10,0x4a,0x46,0x49,0x46,0x00,0x01,0x01,0x00,0x00,0x01,0x00,0x01,0x00,0x00,0xff,0xdb,
    0x00,0x43,0x00,0x02,0x01,0x01,0x01,0x01,0x01,0x02,0x01,0x01,0x01,0x02,0x02,0x02,0x02,0x02,0x04,0x03,0x02,0x02,
    0x02,0x02,0x05,0x04,0x04,0x03,0x04,0x06,0x05,0x06,0x06,0x06,0x05,0x06,0x06,0x06,0x07,0x09,0x08,0x06,0x07,0x09,
    0x07,0x06,0x06,0x08,0x0b,0x08,0x09,0x0a,0x0a,0x0a,0x0a,0x0a,0x06,0x08,0x0b,0x0c,0x0b,0x0a,0x0c,0x09,0x0a,0x0a,
    0x0a,0xff,0xdb,0x00,0x43,0x01,0x02,0x02,0x02,0x02,0x02,0x02,0x05,0x03,0x03,0x05,0x0a,0x07,0x06,0x07,0x0a,0x0a,
    0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,
    0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,0x0a,
    0x0a,0x0a,0x0a,0x0a,0xff,0xc0,0x00,0x11,0x08,0x00,0x08,0x00,0x10,0x03,0x01,0x22,0x00,0x02,0x11,0x01,0x03,0x11,
    0x01,0xff,0xc4,0x00,0x1f,0x00,0x00,0x01,0x05,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,0x00,0x00,0x00,0x00,
    0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0xff,0xc4,0x00,0xb5,0x10,0x00,0x02,0x01,0x03,0x03,
    0x02,0x04,0x03,0x05,0x05,0x04,0x04,0x00,0x00,0x01,0x7d,0x01,0x02,0x03,0x00,0x04,0x11,0x05,0x12,0x21,0x31,0x41,
    0x06,0x13,0x51,0x61,0x07,0x22,0x71,0x14,0x32,0x81,0x91,0xa1,0x08,0x23,0x42,0xb1,0xc1,0x15,0x52,0xd1,0xf0,0x24,
    0x33,0x62,0x72,0x82,0x09,0x0a,0x16,0x17,0x18,0x19,0x1a,0x25,0x26,0x27,0x28,0x29,0x2a,0x34,0x35,0x36,0x37,0x38,
    0x39,0x3a,0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,
    0x67,0x68,0x69,0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,0x92,0x93,
    0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,
    0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,0xe1,
    0xe2,0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf1,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,0xfa,0xff,0xc4,0x00,
    0x1f,0x01,0x00,0x03,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,0x00,0x00,0x00,0x01,0x02,0x03,
    0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0xff,0xc4,0x00,0xb5,0x11,0x00,0x02,0x01,0x02,0x04,0x04,0x03,0x04,0x07,
    0x05,0x04,0x04,0x00,0x01,0x02,0x77,0x00,0x01,0x02,0x03,0x11,0x04,0x05,0x21,0x31,0x06,0x12,0x41,0x51,0x07,0x61,
    0x71,0x13,0x22,0x32,0x81,0x08,0x14,0x42,0x91,0xa1,0xb1,0xc1,0x09,0x23,0x33,0x52,0xf0,0x15,0x62,0x72,0xd1,0x0a,
    0x16,0x24,0x34,0xe1,0x25,0xf1,0x17,0x18,0x19,0x1a,0x26,0x27,0x28,0x29,0x2a,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,
    0x44,0x45,0x46,0x47,0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,
    0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x82,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,0x92,0x93,0x94,0x95,
    0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,
    0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,0xe2,0xe3,0xe4,
    0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,0xfa,0xff,0xda,0x00,0x0c,0x03,0x01,0x00,
    0x02,0x11,0x03,0x11,0x00,0x3f,0x00,0xf9,0x3e,0xbe,0x98,0xa2,0x8a,0xfc,0xfe,0xbf,0x43,0xd4,0xfd,0xa3,0x7f,0xf3,
    0x4b,0xff,0x00,0xdc,0xef,0xfe,0xea,0x1f,0xff,0xd9
};

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(data, 1, n, f); fclose(f); }
}

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *shared = argc > 2 ? argv[2] : "../shared";
    LOAD(hy_last_error);
    LOAD(hy_status_name);
    LOAD(hy_recon_default_params);
    LOAD(hy_recon_load);
    LOAD(hy_recon_free);
    LOAD(hy_recon_get_info);
    LOAD(hy_recon_preprocess);
    LOAD(hy_recon_encode);
    LOAD(hy_recon_query);
    LOAD(hy_recon_sdf_grid);
    LOAD(hy_recon_mesh_default_params);
    LOAD(hy_recon_views_to_mesh);
    LOAD(hy_mesh_free);
    LOAD(hy_mesh_vertex_count);
    LOAD(hy_mesh_face_count);
    LOAD(hy_recon_image_load);
    LOAD(hy_recon_image_free);
    { /* hy_recon_image_load / _free: JPEG pixels, truncated and foreign files, NULLs */
    char path[] = "/tmp/hy_test_imageXXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    hy_recon_image im;
    write_file(path, k_jpeg, sizeof k_jpeg);
    EXPECT_STATUS(p_hy_recon_image_load(path, &im), HY_OK);
    CHECK(im.pixels && im.width == 16 && im.height == 8 && im.channels == 3, "jpeg %dx%dx%d", im.width, im.height, im.channels);
    if (im.pixels) {
        const uint8_t *a = im.pixels + (4 * 16 + 2) * 3, *b = im.pixels + (4 * 16 + 12) * 3;
        CHECK(abs(a[0] - 200) <= 3 && abs(a[1] - 30) <= 3 && abs(a[2] - 60) <= 3, "left %d %d %d", a[0], a[1], a[2]);
        CHECK(abs(b[0] - 20) <= 3 && abs(b[1] - 180) <= 3 && abs(b[2] - 90) <= 3, "right %d %d %d", b[0], b[1], b[2]);
    }
    p_hy_recon_image_free(&im);
    CHECK(im.pixels == NULL && im.width == 0, "image not zeroed by free");
    p_hy_recon_image_free(&im);  /* twice: a no-op */
    p_hy_recon_image_free(NULL);
    write_file(path, k_jpeg, sizeof k_jpeg / 2);
    EXPECT_STATUS(p_hy_recon_image_load(path, &im), HY_ERR_FORMAT);
    CHECK(im.pixels == NULL, "pixels set on failure");
    write_file(path, k_jpeg, 40);
    EXPECT_STATUS(p_hy_recon_image_load(path, &im), HY_ERR_FORMAT);
    write_file(path, "P6 1 1 255 abc", 14);
    EXPECT_STATUS(p_hy_recon_image_load(path, &im), HY_ERR_FORMAT);
    CHECK(strstr(p_hy_last_error(), path) != NULL, "message names the file: %s", p_hy_last_error());
    unlink(path);
    EXPECT_STATUS(p_hy_recon_image_load(path, &im), HY_ERR_IO);
    EXPECT_STATUS(p_hy_recon_image_load(NULL, &im), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_image_load("/tmp/x", NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_image_load("\xff\xfe", &im), HY_ERR_INVALID_ARGUMENT);
    }

    hy_recon *r = NULL;
    hy_recon_params params = p_hy_recon_default_params();
    CHECK(params.struct_size == sizeof params, "struct_size %u", params.struct_size);
    EXPECT_STATUS(p_hy_recon_load(NULL, NULL, &r), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_load("/nonexistent/svrm", NULL, &r), HY_ERR_IO);
    CHECK(r == NULL, "handle set on failure");
    p_hy_recon_free(NULL);
    float dummy = 0;
    EXPECT_STATUS(p_hy_recon_query(NULL, &dummy, 0, &dummy, NULL), HY_ERR_INVALID_ARGUMENT);

    char dir[1024], file[1200];
    snprintf(dir, sizeof dir, "%s/fixtures/svrm/svrm-tiny", shared);
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("SKIP recon fixture tests: %s not present\n", dir);
        return finish("test_recon");
    }
    params.n_threads = 2;
    EXPECT_STATUS(p_hy_recon_load(dir, &params, &r), HY_OK);
    if (r == NULL) return finish("test_recon");

    hy_recon_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT_STATUS(p_hy_recon_get_info(r, &info), HY_OK);
    CHECK(info.n_views == 7 && info.camera_dim == 20 && info.triplane_channels == 8 && info.triplane_resolution == 16,
          "info %d %d %d %d", info.n_views, info.camera_dim, info.triplane_channels, info.triplane_resolution);
    CHECK(info.box_min == -0.6f && info.box_max == 0.6f, "box %g %g", info.box_min, info.box_max);
    const size_t per_view = 3 * (size_t)info.image_size * (size_t)info.image_size;

    size_t n_images = 0, n_cams = 0, n_points = 0, n_sdf = 0, n_rgb = 0, n_grid = 0, n_u8 = 0;
    snprintf(file, sizeof file, "%s/inputs.safetensors", dir);
    float *images = read_tensor(file, "images", &n_images);
    float *cams = read_tensor(file, "cameras", &n_cams);
    float *u8 = read_tensor(file, "images_uint8", &n_u8);
    snprintf(file, sizeof file, "%s/reference.safetensors", dir);
    float *points = read_tensor(file, "points", &n_points);
    float *sdf_ref = read_tensor(file, "sdf", &n_sdf);
    float *rgb_ref = read_tensor(file, "rgb", &n_rgb);
    float *grid_ref = read_tensor(file, "sdf_grid", &n_grid);
    CHECK(images && cams && u8 && points && sdf_ref && rgb_ref && grid_ref, "fixture tensors readable");
    if (!(images && cams && u8 && points && sdf_ref && rgb_ref && grid_ref)) return finish("test_recon");
    CHECK(n_images == 7 * per_view, "images %zu", n_images);

    /* preprocessing from the raw views (128x128 RGB) reproduces `images` */
    size_t raw = n_u8 / 7, side = 128;
    uint8_t *pix = malloc(raw);
    float *pre = malloc(per_view * sizeof(float));
    double pre_err = 0;
    for (int v = 0; v < 7 && pix && pre; v++) {
        for (size_t i = 0; i < raw; i++) pix[i] = (uint8_t)u8[v * raw + i];
        EXPECT_STATUS(p_hy_recon_preprocess(r, pix, (int32_t)side, (int32_t)side, 3, pre, per_view), HY_OK);
        double e = max_abs_diff(pre, images + v * per_view, per_view);
        if (e > pre_err) pre_err = e;
    }
    CHECK(pre_err <= 1e-3, "preprocess error %g", pre_err);
    EXPECT_STATUS(p_hy_recon_preprocess(r, pix, (int32_t)side, (int32_t)side, 2, pre, per_view), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_preprocess(r, pix, (int32_t)side, (int32_t)side, 3, pre, 10), HY_ERR_INVALID_ARGUMENT);
    free(pix);
    free(pre);

    /* query before encode, wrong view count */
    size_t np = n_points / 3;
    float *sdf = malloc(np * sizeof(float)), *rgb = malloc(3 * np * sizeof(float));
    EXPECT_STATUS(p_hy_recon_query(r, points, np, sdf, rgb), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_encode(r, images, 6, cams), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_encode(r, NULL, 7, cams), HY_ERR_INVALID_ARGUMENT);

    /* encode with the fixture's cameras, and with NULL (the predictor's own, which are the same) */
    EXPECT_STATUS(p_hy_recon_encode(r, images, 7, NULL), HY_OK);
    EXPECT_STATUS(p_hy_recon_query(r, points, np, sdf, rgb), HY_OK);
    double e_null = max_abs_diff(sdf, sdf_ref, np);
    EXPECT_STATUS(p_hy_recon_encode(r, images, 7, cams), HY_OK);
    EXPECT_STATUS(p_hy_recon_query(r, points, np, sdf, rgb), HY_OK);
    double e_sdf = max_abs_diff(sdf, sdf_ref, np), e_rgb = max_abs_diff(rgb, rgb_ref, 3 * np);
    CHECK(e_sdf <= 1e-4 && e_rgb <= 1e-4 && e_null <= 1e-4, "sdf %g rgb %g (default cameras %g)", e_sdf, e_rgb, e_null);
    EXPECT_STATUS(p_hy_recon_query(r, points, np, sdf, NULL), HY_OK);
    EXPECT_STATUS(p_hy_recon_query(r, NULL, np, sdf, NULL), HY_ERR_INVALID_ARGUMENT);

    /* SDF grid */
    int32_t g = 32;
    float *grid = malloc((size_t)g * g * g * sizeof(float));
    CHECK(n_grid == (size_t)g * g * g, "grid size %zu", n_grid);
    EXPECT_STATUS(p_hy_recon_sdf_grid(r, g, grid, (size_t)g * g * g, NULL, NULL), HY_OK);
    double e_grid = max_abs_diff(grid, grid_ref, n_grid);
    CHECK(e_grid <= 1e-4, "sdf_grid error %g", e_grid);
    EXPECT_STATUS(p_hy_recon_sdf_grid(r, g, grid, 100, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_sdf_grid(r, 1, grid, 100, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_sdf_grid(r, g, grid, (size_t)g * g * g, stop_at_three, NULL), HY_ERR_ABORTED);
    printf("test_recon: sdf %.3g rgb %.3g sdf_grid %.3g preprocess %.3g (max abs vs reference)\n", e_sdf, e_rgb, e_grid, pre_err);

    /* views → mesh from the raw uint8 views (after which the handle holds their triplane) */
    hy_recon_image views[7];
    uint8_t *view_bytes = malloc(n_u8);
    for (size_t i = 0; view_bytes && i < n_u8; i++) view_bytes[i] = (uint8_t)u8[i];
    for (int v = 0; v < 7; v++) {
        views[v].pixels = view_bytes + (size_t)v * raw;
        views[v].width = (int32_t)side;
        views[v].height = (int32_t)side;
        views[v].channels = 3;
    }
    hy_recon_mesh_params mp = p_hy_recon_mesh_default_params();
    CHECK(mp.resolution == 384 && mp.export_axes, "mesh defaults %d", mp.resolution);
    mp.resolution = 32;
    mp.target_faces = 0;
    hy_mesh *mesh = NULL;
    EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 6, &mp, NULL, NULL, NULL, NULL, &mesh), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 7, &mp, stop_at_three, NULL, NULL, NULL, &mesh), HY_ERR_ABORTED);
    CHECK(mesh == NULL, "mesh set on failure");
    /* abort polled inside the encoder (first block) and inside the transformer (after the encoder's blocks) */
    int first = 1;
    g_abort_polls = 0;
    EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 7, &mp, NULL, NULL, abort_after, &first, &mesh), HY_ERR_ABORTED);
    CHECK(mesh == NULL && strstr(p_hy_last_error(), "encoder") != NULL, "abort in the encoder: %s", p_hy_last_error());
    int never = 1 << 30;
    g_abort_polls = 0;
    EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 7, &mp, NULL, NULL, abort_after, &never, &mesh), HY_OK);
    int polls = g_abort_polls;  /* a full run: one per encoder block, per transformer block, per SDF slab */
    p_hy_mesh_free(mesh);
    mesh = NULL;
    CHECK(polls > 4, "abort polled only %d times in a full run", polls);
    for (int at = 2; at <= polls; at += (polls > 8 ? polls / 4 : 1)) {  /* every stage cancels cleanly */
        g_abort_polls = 0;
        EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 7, &mp, NULL, NULL, abort_after, &at, &mesh), HY_ERR_ABORTED);
        CHECK(mesh == NULL, "mesh set on an abort at poll %d", at);
    }
    views[3].width = 100;
    EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 7, &mp, NULL, NULL, NULL, NULL, &mesh), HY_ERR_INVALID_ARGUMENT);
    views[3].width = (int32_t)side;
    EXPECT_STATUS(p_hy_recon_views_to_mesh(r, views, 7, &mp, NULL, NULL, NULL, NULL, &mesh), HY_OK);
    CHECK(mesh != NULL && p_hy_mesh_face_count(mesh) > 1000 && p_hy_mesh_vertex_count(mesh) > 500, "mesh %zu faces",
          mesh ? p_hy_mesh_face_count(mesh) : 0);
    EXPECT_STATUS(p_hy_recon_query(r, points, np, sdf, rgb), HY_OK);
    CHECK(max_abs_diff(sdf, sdf_ref, np) <= 1e-4, "triplane after views_to_mesh");
    p_hy_mesh_free(mesh);
    free(view_bytes);

    free(grid); free(sdf); free(rgb);
    free(images); free(cams); free(u8); free(points); free(sdf_ref); free(rgb_ref); free(grid_ref);
    p_hy_recon_free(r);
    return finish("test_recon");
}
