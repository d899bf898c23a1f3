/* C ABI test of the reconstruction section on the svrm-tiny fixture (official-code reference):
 * load, info, preprocess from uint8 views, encode, query sdf/rgb at the reference points, the SDF grid,
 * and the error paths (NULLs, wrong view count, query before encode, corrupt path, cancel).
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_recon LIBRARY [SHARED_DIR] */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

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

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

static int g_progress_calls = 0;
static bool stop_at_three(float progress, void *user) {
    (void)progress; (void)user;
    return ++g_progress_calls % 3 != 0;
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
