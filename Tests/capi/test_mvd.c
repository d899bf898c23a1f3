/* C ABI test of the multi-view diffusion section on the mvd-lite-tiny fixture (the official pipeline's
 * folder layout): load, generate (sizes, views = the grid's tiles, same seed = same views), progress and
 * cancel, and the error paths (NULLs, bad sizes and steps, missing folder or component, bad struct_size).
 * Numerical parity with the official run is checked through `hunyuan-cli mvd-eval` (Tests/cli).
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_mvd LIBRARY [SHARED_DIR] */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_test.h"

static int g_progress_calls = 0;
static float g_last_progress = -1;
static bool count_progress(float progress, void *user) {
    (void)user;
    g_progress_calls++;
    g_last_progress = progress;
    return true;
}
static bool stop_progress(float progress, void *user) {
    (void)progress;
    return ++*(int *)user < 3;
}
static bool abort_now(void *user) { return *(int *)user != 0; }

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *shared = argc > 2 ? argv[2] : "../shared";
    LOAD(hy_last_error);
    LOAD(hy_status_name);
    LOAD(hy_mvd_default_params);
    LOAD(hy_mvd_load);
    LOAD(hy_mvd_free);
    LOAD(hy_mvd_generate_default_params);
    LOAD(hy_mvd_generate);
    LOAD(hy_views_count);
    LOAD(hy_views_get);
    LOAD(hy_views_grid);
    LOAD(hy_views_free);

    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fixtures/mvd/mvd-lite-tiny", shared);
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("test_mvd: no fixture at %s\n", dir);
        return 1;
    }

    /* loading errors */
    hy_mvd *m = NULL;
    hy_mvd_params params = p_hy_mvd_default_params();
    CHECK(params.struct_size == sizeof params && params.n_threads == 0 && params.variant == NULL &&
          params.compute == HY_COMPUTE_FP32, "defaults");
    EXPECT_STATUS(p_hy_mvd_load(NULL, NULL, &m), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mvd_load(dir, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mvd_load("/nonexistent/mvd", NULL, &m), HY_ERR_IO);
    EXPECT_STATUS(p_hy_mvd_load("\xff\xfe", NULL, &m), HY_ERR_INVALID_ARGUMENT);
    char unet[1100];
    snprintf(unet, sizeof unet, "%s/unet", dir);
    EXPECT_STATUS(p_hy_mvd_load(unet, NULL, &m), HY_ERR_IO);   /* a component, not the pipeline folder */
    CHECK(strstr(p_hy_last_error(), "model_index.json") != NULL, "message: %s", p_hy_last_error());
    CHECK(m == NULL, "handle set on failure");
    hy_mvd_params bad = params;
    bad.struct_size = 2;
    EXPECT_STATUS(p_hy_mvd_load(dir, &bad, &m), HY_ERR_INVALID_ARGUMENT);
    bad = params;
    bad.n_threads = -1;
    EXPECT_STATUS(p_hy_mvd_load(dir, &bad, &m), HY_ERR_INVALID_ARGUMENT);
    bad = params;
    bad.compute = 7;
    EXPECT_STATUS(p_hy_mvd_load(dir, &bad, &m), HY_ERR_INVALID_ARGUMENT);
    CHECK(strstr(p_hy_last_error(), "compute") != NULL, "message: %s", p_hy_last_error());
    bad = params;
    bad.variant = "";
    EXPECT_STATUS(p_hy_mvd_load(dir, &bad, &m), HY_ERR_INVALID_ARGUMENT);
    bad.variant = "fp16";   /* the fixture has no fp16 files: named when the stage opens them */
    EXPECT_STATUS(p_hy_mvd_load(dir, &bad, &m), HY_OK);
    hy_mvd_generate_params gp = p_hy_mvd_generate_default_params();
    CHECK(gp.struct_size == sizeof gp && gp.steps == 50 && gp.width == 640 && gp.height == 960, "generate defaults");
    gp.steps = 2;
    gp.width = 160;
    gp.height = 240;
    enum { W = 40, H = 30 };
    uint8_t rgba[W * H * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgba + (y * W + x) * 4;
            int inside = (x - 20) * (x - 20) + (y - 15) * (y - 15) < 100;
            p[0] = (uint8_t)(40 + 5 * x); p[1] = (uint8_t)(200 - 4 * y); p[2] = 90; p[3] = inside ? 255 : 0;
        }
    hy_recon_image image = {rgba, W, H, 4};
    hy_views *v = NULL;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, NULL, NULL, NULL, NULL, &v), HY_ERR_IO);
    CHECK(strstr(p_hy_last_error(), "fp16") != NULL && strstr(p_hy_last_error(), "vae") != NULL, "message: %s",
          p_hy_last_error());
    CHECK(v == NULL, "views set on failure");
    p_hy_mvd_free(m);
    p_hy_mvd_free(NULL);

    /* generate */
    m = NULL;
    EXPECT_STATUS(p_hy_mvd_load(dir, &params, &m), HY_OK);
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, count_progress, NULL, NULL, NULL, &v), HY_OK);
    CHECK(g_progress_calls >= 4 && g_last_progress == 1.0f, "progress calls %d, last %f", g_progress_calls,
          (double)g_last_progress);
    CHECK(p_hy_views_count(v) == 6, "count %zu", p_hy_views_count(v));
    hy_recon_image grid, view;
    EXPECT_STATUS(p_hy_views_grid(v, &grid), HY_OK);
    CHECK(grid.width == 160 && grid.height == 240 && grid.channels == 3 && grid.pixels, "grid %dx%dx%d", grid.width,
          grid.height, grid.channels);
    int tiles_match = 1;
    for (size_t i = 0; i < 6 && grid.pixels; i++) {
        EXPECT_STATUS(p_hy_views_get(v, i, &view), HY_OK);
        CHECK(view.width == 80 && view.height == 80 && view.channels == 3, "view %zu: %dx%d", i, view.width, view.height);
        int r = (int)i / 2, c = (int)i % 2;
        for (int y = 0; y < 80 && view.pixels; y++)
            if (memcmp(view.pixels + y * 80 * 3, grid.pixels + ((r * 80 + y) * 160 + c * 80) * 3, 80 * 3) != 0) tiles_match = 0;
    }
    CHECK(tiles_match, "the views are not the grid's 3x2 tiles, row-major");
    EXPECT_STATUS(p_hy_views_get(v, 6, &view), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_views_get(v, 0, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_views_get(NULL, 0, &view), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_views_grid(NULL, &view), HY_ERR_INVALID_ARGUMENT);
    CHECK(p_hy_views_count(NULL) == 0, "count of NULL");

    /* same seed → same grid; another seed → another grid */
    hy_views *v2 = NULL;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, NULL, NULL, NULL, NULL, &v2), HY_OK);
    hy_recon_image grid2;
    EXPECT_STATUS(p_hy_views_grid(v2, &grid2), HY_OK);
    CHECK(grid.pixels && grid2.pixels && memcmp(grid.pixels, grid2.pixels, 160 * 240 * 3) == 0, "same seed, other views");
    p_hy_views_free(v2);
    gp.seed = 12345;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, NULL, NULL, NULL, NULL, &v2), HY_OK);
    EXPECT_STATUS(p_hy_views_grid(v2, &grid2), HY_OK);
    CHECK(grid.pixels && grid2.pixels && memcmp(grid.pixels, grid2.pixels, 160 * 240 * 3) != 0, "seed ignored");
    p_hy_views_free(v2);
    p_hy_views_free(v);
    p_hy_views_free(NULL);

    /* argument errors; the handle stays usable */
    EXPECT_STATUS(p_hy_mvd_generate(NULL, &image, &gp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mvd_generate(m, NULL, &gp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, NULL, NULL, NULL, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    hy_recon_image badim = {rgba, W, H, 2};
    EXPECT_STATUS(p_hy_mvd_generate(m, &badim, &gp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    badim.channels = 4;
    badim.pixels = NULL;
    EXPECT_STATUS(p_hy_mvd_generate(m, &badim, &gp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    badim = image;
    badim.width = -1;
    EXPECT_STATUS(p_hy_mvd_generate(m, &badim, &gp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    hy_mvd_generate_params bgp = gp;
    bgp.steps = 0;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &bgp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    bgp.steps = 1001;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &bgp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    bgp = gp;
    bgp.width = 90;   /* not a multiple of the VAE × UNet down-sampling (4) */
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &bgp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    bgp = gp;
    bgp.height = -240;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &bgp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    bgp = gp;
    bgp.struct_size = 8;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &bgp, NULL, NULL, NULL, NULL, &v), HY_ERR_INVALID_ARGUMENT);
    CHECK(v == NULL, "views set on failure");

    /* cancel through progress and through abort */
    int calls = 0;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, stop_progress, &calls, NULL, NULL, &v), HY_ERR_ABORTED);
    CHECK(v == NULL && calls == 3, "progress cancel: calls %d", calls);
    int stop = 1;
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, NULL, NULL, abort_now, &stop, &v), HY_ERR_ABORTED);
    CHECK(v == NULL, "views set on abort");
    EXPECT_STATUS(p_hy_mvd_generate(m, &image, &gp, NULL, NULL, NULL, NULL, &v), HY_OK);
    p_hy_views_free(v);
    p_hy_mvd_free(m);
    return finish("test_mvd");
}
