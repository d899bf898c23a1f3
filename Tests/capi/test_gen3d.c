/* C ABI test of image → 3D (hy_gen3d_*) on a weights folder laid out like the release, made of the tiny
 * fixtures (mvd_lite/ = mvd-lite-tiny, svrm/ = svrm-tiny, u2net.onnx = u2netp-tiny's ONNX export): load
 * (a missing stage is named), background removal alone (512x512 RGBA), image → mesh (the same mesh twice
 * for the same seed, progress through every stage in order), cancel at every stage through abort and
 * through progress (HY_ERR_ABORTED, no mesh, the generator still works), and the argument errors. The
 * stages' numerics are checked against their fixtures elsewhere. Text: a folder with hunyuanDiT/ (the
 * t2i fixture) turns a prompt into a picture and a mesh (text stage first in the progress, the same
 * picture for the same seed, cancel inside the text stage, argument errors), a folder without it says
 * so, and a folder with only hunyuanDiT/ opens for text and names the missing image stages; Tests/cli/test_image_to_3d_cli.py
 * checks that the run equals the stages in sequence.
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_gen3d LIBRARY [SHARED_DIR] [SCRATCH_DIR] */
#define _XOPEN_SOURCE 700
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi_test.h"

typedef struct {
    int calls;
    int last_stage;
    int ordered;            /* stages never go back */
    int seen[4];
    int abort_at;           /* stage at which abort_at_stage starts answering true; -1 never */
    int refuse_at;          /* stage at which the progress callback returns false; -1 never */
} run_state;

static bool on_progress(const hy_gen3d_progress *p, void *user) {
    run_state *s = (run_state *)user;
    s->calls++;
    if (p->stage < s->last_stage) s->ordered = 0;
    if (p->stage_fraction < 0 || p->stage_fraction > 1 || p->overall < 0 || p->overall > 1) s->ordered = 0;
    s->last_stage = p->stage;
    if (p->stage >= 0 && p->stage < 4) s->seen[p->stage] = 1;
    return p->stage != s->refuse_at;
}

typedef struct {
    int first_stage, last_stage, ordered, text_calls, cancel_in_text;
    float overall;
} text_state;

static bool on_text_progress(const hy_gen3d_progress *p, void *user) {
    text_state *s = (text_state *)user;
    if (s->last_stage == -1) s->first_stage = p->stage;
    /* text (4) first, then 0..3 */
    int rank = p->stage == HY_GEN3D_TEXT_TO_IMAGE ? -1 : p->stage;
    int last = s->last_stage == HY_GEN3D_TEXT_TO_IMAGE ? -1 : s->last_stage;
    if (s->last_stage != -1 && rank < last) s->ordered = 0;
    if (p->overall + 1e-6f < s->overall || p->overall > 1) s->ordered = 0;
    s->overall = p->overall;
    s->last_stage = p->stage;
    if (p->stage == HY_GEN3D_TEXT_TO_IMAGE) s->text_calls++;
    return !(s->cancel_in_text && p->stage == HY_GEN3D_TEXT_TO_IMAGE && s->text_calls > 2);
}

static bool abort_at_stage(void *user) {
    run_state *s = (run_state *)user;
    return s->abort_at >= 0 && s->last_stage >= s->abort_at;
}

static void reset(run_state *s, int abort_at, int refuse_at) {
    memset(s, 0, sizeof *s);
    s->last_stage = -1;
    s->ordered = 1;
    s->abort_at = abort_at;
    s->refuse_at = refuse_at;
}

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *shared = argc > 2 ? argv[2] : "../shared";
    const char *scratch = argc > 3 ? argv[3] : "/tmp/hunyuan-capi-scratch";
    LOAD(hy_last_error);
    LOAD(hy_status_name);
    LOAD(hy_gen3d_default_params);
    LOAD(hy_gen3d_load);
    LOAD(hy_gen3d_free);
    LOAD(hy_gen3d_run_default_params);
    LOAD(hy_gen3d_image_to_mesh);
    LOAD(hy_gen3d_remove_background);
    LOAD(hy_gen3d_text_to_image);
    LOAD(hy_gen3d_text_to_mesh);
    LOAD(hy_recon_image_free);
    LOAD(hy_mesh_vertex_count);
    LOAD(hy_mesh_face_count);
    LOAD(hy_mesh_free);

    /* The weights folder: symlinks to the fixtures. */
    char mvd[1024], svrm[1024], onnx[1024], root[1024], link[1100];
    snprintf(mvd, sizeof mvd, "%s/fixtures/mvd/mvd-lite-tiny", shared);
    snprintf(svrm, sizeof svrm, "%s/fixtures/svrm/svrm-tiny", shared);
    snprintf(onnx, sizeof onnx, "%s/fixtures/rembg/u2netp-tiny/u2netp.onnx", shared);
    struct stat st;
    if (stat(mvd, &st) != 0 || stat(svrm, &st) != 0 || stat(onnx, &st) != 0) {
        printf("test_gen3d: fixtures missing under %s\n", shared);
        return 1;
    }
    char abs_mvd[4096], abs_svrm[4096], abs_onnx[4096];
    CHECK(realpath(mvd, abs_mvd) && realpath(svrm, abs_svrm) && realpath(onnx, abs_onnx), "realpath");
    mkdir(scratch, 0755);
    snprintf(root, sizeof root, "%s/gen3d", scratch);
    mkdir(root, 0755);
    snprintf(link, sizeof link, "%s/mvd_lite", root);
    unlink(link);
    CHECK(symlink(abs_mvd, link) == 0, "symlink mvd_lite");
    snprintf(link, sizeof link, "%s/u2net.onnx", root);
    unlink(link);
    CHECK(symlink(abs_onnx, link) == 0, "symlink u2net.onnx");
    snprintf(link, sizeof link, "%s/svrm", root);
    unlink(link);

    /* Loading: defaults, errors, a missing stage named. */
    hy_gen3d_params params = p_hy_gen3d_default_params();
    CHECK(params.struct_size == sizeof params && params.n_threads == 0 && params.u2net_path == NULL && !params.keep_loaded,
          "defaults");
    hy_gen3d *g = NULL;
    EXPECT_STATUS(p_hy_gen3d_load(NULL, NULL, &g), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_load(root, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_load("\xff\xfe", NULL, &g), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_load("/nonexistent/weights", NULL, &g), HY_ERR_IO);
    EXPECT_STATUS(p_hy_gen3d_load(root, NULL, &g), HY_ERR_IO);
    CHECK(strstr(p_hy_last_error(), "svrm/svrm.safetensors") != NULL, "missing stage named: %s", p_hy_last_error());
    CHECK(g == NULL, "handle set on failure");
    CHECK(symlink(abs_svrm, link) == 0, "symlink svrm");
    hy_gen3d_params bad = params;
    bad.n_threads = -1;
    EXPECT_STATUS(p_hy_gen3d_load(root, &bad, &g), HY_ERR_INVALID_ARGUMENT);
    bad = params;
    bad.struct_size = 4;
    EXPECT_STATUS(p_hy_gen3d_load(root, &bad, &g), HY_ERR_INVALID_ARGUMENT);
    bad = params;
    bad.u2net_path = "/nonexistent/u2net.onnx";
    EXPECT_STATUS(p_hy_gen3d_load(root, &bad, &g), HY_ERR_IO);
    params.n_threads = 2;
    EXPECT_STATUS(p_hy_gen3d_load(root, &params, &g), HY_OK);

    /* An object: a coloured disc on a grey background, 96 x 72. */
    enum { W = 96, H = 72 };
    static uint8_t px[W * H * 3];
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            int dx = x - W / 2, dy = y - H / 2, in = dx * dx + dy * dy < 28 * 28;
            uint8_t *p = px + 3 * (y * W + x);
            p[0] = in ? (uint8_t)(150 + x) : 128;
            p[1] = in ? (uint8_t)(40 + 2 * y) : 128;
            p[2] = in ? 60 : 128;
        }
    }
    hy_recon_image image = {px, W, H, 3};

    /* Background removal alone. */
    hy_recon_image cut;
    EXPECT_STATUS(p_hy_gen3d_remove_background(g, &image, false, NULL, NULL, &cut), HY_OK);
    CHECK(cut.width == 512 && cut.height == 512 && cut.channels == 4 && cut.pixels != NULL, "cut-out %dx%dx%d",
          cut.width, cut.height, cut.channels);
    p_hy_recon_image_free(&cut);
    CHECK(cut.pixels == NULL, "freed image zeroed");
    EXPECT_STATUS(p_hy_gen3d_remove_background(NULL, &image, false, NULL, NULL, &cut), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_remove_background(g, NULL, false, NULL, NULL, &cut), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_remove_background(g, &image, false, NULL, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    /* 1 x 1 and an all-background image: a clear error, no crash. */
    uint8_t one[3] = {200, 10, 10};
    hy_recon_image tiny = {one, 1, 1, 3};
    hy_status s1 = p_hy_gen3d_remove_background(g, &tiny, false, NULL, NULL, &cut);
    CHECK(s1 == HY_OK || s1 == HY_ERR_INVALID_ARGUMENT, "1x1: %d", (int)s1);
    if (s1 == HY_OK) p_hy_recon_image_free(&cut);
    uint8_t rgba_clear[4 * 16 * 16];
    memset(rgba_clear, 0, sizeof rgba_clear);
    hy_recon_image clear = {rgba_clear, 16, 16, 4};
    EXPECT_STATUS(p_hy_gen3d_remove_background(g, &clear, true, NULL, NULL, &cut), HY_ERR_INVALID_ARGUMENT);
    CHECK(strstr(p_hy_last_error(), "empty") != NULL, "empty mask: %s", p_hy_last_error());
    hy_recon_image huge = {px, 40000, 2, 3};
    EXPECT_STATUS(p_hy_gen3d_remove_background(g, &huge, false, NULL, NULL, &cut), HY_ERR_INVALID_ARGUMENT);

    /* Image → mesh at the tiny sizes. */
    hy_gen3d_run_params rp = p_hy_gen3d_run_default_params();
    CHECK(rp.struct_size == sizeof rp && rp.steps == 50 && rp.resolution == 384 && rp.target_faces == 90000 &&
          rp.grid_width == 640 && rp.grid_height == 960 && rp.compute == HY_COMPUTE_FP32 && !rp.keep_alpha &&
          rp.smooth_iterations == 2, "run defaults");
    rp.steps = 2;
    rp.seed = 3;
    rp.grid_width = 160;
    rp.grid_height = 240;
    rp.resolution = 40;
    rp.target_faces = 0;
    run_state rs;
    reset(&rs, -1, -1);
    hy_mesh *mesh = NULL, *mesh2 = NULL;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, on_progress, &rs, abort_at_stage, &rs, &mesh), HY_OK);
    CHECK(mesh != NULL, "mesh");
    CHECK(rs.ordered && rs.seen[0] && rs.seen[1] && rs.seen[2] && rs.seen[3] && rs.last_stage == HY_GEN3D_DONE,
          "progress: ordered %d, stages %d%d%d%d, last %d", rs.ordered, rs.seen[0], rs.seen[1], rs.seen[2], rs.seen[3],
          rs.last_stage);
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, NULL, NULL, NULL, NULL, &mesh2), HY_OK);
    CHECK(mesh2 != NULL && p_hy_mesh_vertex_count(mesh) == p_hy_mesh_vertex_count(mesh2) &&
          p_hy_mesh_face_count(mesh) == p_hy_mesh_face_count(mesh2), "same seed, same mesh (%zu / %zu vertices)",
          p_hy_mesh_vertex_count(mesh), mesh2 ? p_hy_mesh_vertex_count(mesh2) : 0);
    p_hy_mesh_free(mesh2);
    mesh2 = NULL;

    /* Cancel at every stage, by abort and by progress; the generator stays usable. */
    for (int stage = HY_GEN3D_REMOVE_BACKGROUND; stage <= HY_GEN3D_RECONSTRUCT; stage++) {
        reset(&rs, stage, -1);
        EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, on_progress, &rs, abort_at_stage, &rs, &mesh2), HY_ERR_ABORTED);
        CHECK(mesh2 == NULL && rs.last_stage == stage, "abort at stage %d: stopped at %d", stage, rs.last_stage);
        reset(&rs, -1, stage);
        EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, on_progress, &rs, NULL, NULL, &mesh2), HY_ERR_ABORTED);
        CHECK(mesh2 == NULL && rs.last_stage == stage, "progress cancel at stage %d: stopped at %d", stage, rs.last_stage);
    }
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, NULL, NULL, NULL, NULL, &mesh2), HY_OK);
    CHECK(mesh2 != NULL && p_hy_mesh_vertex_count(mesh2) == p_hy_mesh_vertex_count(mesh), "usable after cancels");
    p_hy_mesh_free(mesh2);
    mesh2 = NULL;

    /* Argument errors. */
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(NULL, &image, &rp, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, NULL, &rp, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, NULL, NULL, NULL, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    hy_gen3d_run_params br = rp;
    br.steps = 0;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &br, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    br = rp;
    br.compute = 9;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &br, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    br = rp;
    br.resolution = 1;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &br, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    br = rp;
    br.smooth_iterations = -1;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &br, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    CHECK(strstr(p_hy_last_error(), "smooth_iterations") != NULL, "names smooth_iterations: %s", p_hy_last_error());
    br = rp;
    br.grid_width = 90;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &br, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    br = rp;
    br.struct_size = 4;
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &br, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    CHECK(mesh2 == NULL, "mesh set on failure");

    /* Text without hunyuanDiT/: a clear error. */
    hy_gen3d_run_params tp = rp;
    tp.text_steps = 2;
    tp.image_width = 48;
    tp.image_height = 64;
    hy_recon_image pic, pic2;
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &tp, NULL, NULL, NULL, NULL, &pic), HY_ERR_IO);
    CHECK(strstr(p_hy_last_error(), "hunyuanDiT") != NULL, "names hunyuanDiT/: %s", p_hy_last_error());
    CHECK(pic.pixels == NULL, "picture zeroed on failure");
    p_hy_gen3d_free(g);
    g = NULL;

    /* With hunyuanDiT/ (the t2i fixture). */
    char t2i[1024], abs_t2i[4096];
    snprintf(t2i, sizeof t2i, "%s/fixtures/t2i/hunyuandit-tiny", shared);
    CHECK(realpath(t2i, abs_t2i) != NULL, "t2i fixture at %s", t2i);
    snprintf(link, sizeof link, "%s/hunyuanDiT", root);
    unlink(link);
    CHECK(symlink(abs_t2i, link) == 0, "symlink hunyuanDiT");
    EXPECT_STATUS(p_hy_gen3d_load(root, &params, &g), HY_OK);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "一只戴着红色围巾的可爱小猫", &tp, NULL, NULL, NULL, NULL, &pic), HY_OK);
    CHECK(pic.pixels != NULL && pic.width == 48 && pic.height == 64 && pic.channels == 3, "picture %dx%dx%d", pic.width,
          pic.height, pic.channels);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "一只戴着红色围巾的可爱小猫", &tp, NULL, NULL, NULL, NULL, &pic2), HY_OK);
    CHECK(pic2.pixels != NULL && memcmp(pic.pixels, pic2.pixels, 48 * 64 * 3) == 0, "same seed, same picture");
    p_hy_recon_image_free(&pic2);
    hy_gen3d_run_params other = tp;
    other.seed = tp.seed + 1;
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "一只戴着红色围巾的可爱小猫", &other, NULL, NULL, NULL, NULL, &pic2), HY_OK);
    CHECK(pic2.pixels != NULL && memcmp(pic.pixels, pic2.pixels, 48 * 64 * 3) != 0, "another seed, another picture");
    p_hy_recon_image_free(&pic2);
    p_hy_recon_image_free(&pic);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "", &tp, NULL, NULL, NULL, NULL, &pic), HY_OK);  /* empty prompt: a picture */
    p_hy_recon_image_free(&pic);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, NULL, &tp, NULL, NULL, NULL, NULL, &pic), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "bad \xff utf8", &tp, NULL, NULL, NULL, NULL, &pic), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &tp, NULL, NULL, NULL, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(NULL, "a cat", &tp, NULL, NULL, NULL, NULL, &pic), HY_ERR_INVALID_ARGUMENT);
    hy_gen3d_run_params bt = tp;
    bt.image_width = 40;
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &bt, NULL, NULL, NULL, NULL, &pic), HY_ERR_INVALID_ARGUMENT);
    CHECK(strstr(p_hy_last_error(), "image_width") != NULL, "names image_width: %s", p_hy_last_error());
    bt = tp;
    bt.text_steps = 0;
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &bt, NULL, NULL, NULL, NULL, &pic), HY_ERR_INVALID_ARGUMENT);
    bt = tp;
    bt.pag_scale = -1;
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &bt, NULL, NULL, NULL, NULL, &pic), HY_ERR_INVALID_ARGUMENT);
    bt = tp;
    bt.guidance_scale = 0.0f / 0.0f;
    EXPECT_STATUS(p_hy_gen3d_text_to_mesh(g, "a cat", &bt, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_INVALID_ARGUMENT);
    CHECK(mesh2 == NULL, "no mesh on failure");

    /* Text → mesh: the text stage first, then the image stages in order; overall never goes back. */
    text_state ts;
    memset(&ts, 0, sizeof ts);
    ts.last_stage = -1;
    ts.ordered = 1;
    EXPECT_STATUS(p_hy_gen3d_text_to_mesh(g, "a red ball", &tp, on_text_progress, &ts, NULL, NULL, &mesh2), HY_OK);
    CHECK(mesh2 != NULL && p_hy_mesh_face_count(mesh2) > 0, "a mesh from text");
    CHECK(ts.first_stage == HY_GEN3D_TEXT_TO_IMAGE && ts.ordered && ts.last_stage == HY_GEN3D_DONE && ts.text_calls > 1,
          "text progress: first %d, ordered %d, last %d, %d text reports", ts.first_stage, ts.ordered, ts.last_stage,
          ts.text_calls);
    p_hy_mesh_free(mesh2);
    mesh2 = NULL;
    /* Cancel inside the text stage, through progress; the generator stays usable. */
    memset(&ts, 0, sizeof ts);
    ts.last_stage = -1;
    ts.ordered = 1;
    ts.cancel_in_text = 1;
    EXPECT_STATUS(p_hy_gen3d_text_to_mesh(g, "a red ball", &tp, on_text_progress, &ts, NULL, NULL, &mesh2), HY_ERR_ABORTED);
    CHECK(mesh2 == NULL && ts.last_stage == HY_GEN3D_TEXT_TO_IMAGE, "cancelled in the text stage (last %d)", ts.last_stage);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &tp, NULL, NULL, NULL, NULL, &pic), HY_OK);
    p_hy_recon_image_free(&pic);
    p_hy_gen3d_free(g);
    g = NULL;

    /* A folder with only hunyuanDiT/: text works, image stages are named. */
    char only[1024];
    snprintf(only, sizeof only, "%s/gen3d-text-only", scratch);
    mkdir(only, 0755);
    snprintf(link, sizeof link, "%s/hunyuanDiT", only);
    unlink(link);
    CHECK(symlink(abs_t2i, link) == 0, "symlink hunyuanDiT (text only)");
    EXPECT_STATUS(p_hy_gen3d_load(only, &params, &g), HY_OK);
    EXPECT_STATUS(p_hy_gen3d_text_to_image(g, "a cat", &tp, NULL, NULL, NULL, NULL, &pic), HY_OK);
    p_hy_recon_image_free(&pic);
    EXPECT_STATUS(p_hy_gen3d_image_to_mesh(g, &image, &rp, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_IO);
    CHECK(strstr(p_hy_last_error(), "mvd_lite") != NULL, "names mvd_lite/: %s", p_hy_last_error());
    EXPECT_STATUS(p_hy_gen3d_text_to_mesh(g, "a cat", &tp, NULL, NULL, NULL, NULL, &mesh2), HY_ERR_IO);

    p_hy_mesh_free(mesh);
    p_hy_gen3d_free(g);
    p_hy_gen3d_free(NULL);
    return finish("test_gen3d");
}
