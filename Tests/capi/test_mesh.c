/* C ABI test of the mesh section: marching cubes from a grid and from a block callback (against the
 * analytic sphere), stats, borrowed arrays, clean-up / smoothing / decimation, save / load round trip,
 * preview, and the error paths (NaN grid, size mismatch, unwritable path, existing file).
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_mesh LIBRARY [SCRATCH_DIR] */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "abi_test.h"

#define N 40
static const double R = 13.3, CX = 19.4, CY = 20.2, CZ = 18.7;

static float sphere(int x, int y, int z) {
    double dx = x - CX, dy = y - CY, dz = z - CZ;
    return (float)(sqrt(dx * dx + dy * dy + dz * dz) - R);
}

static int g_calls = 0;
static bool field(const int32_t origin[3], const int32_t dims[3], float *out, void *user) {
    (void)user;
    g_calls++;
    for (int i = 0; i < dims[0]; i++)
        for (int j = 0; j < dims[1]; j++)
            for (int k = 0; k < dims[2]; k++)
                out[((size_t)i * dims[1] + j) * dims[2] + k] = sphere(origin[0] + i, origin[1] + j, origin[2] + k);
    return true;
}

static bool cancel(const int32_t origin[3], const int32_t dims[3], float *out, void *user) {
    (void)origin; (void)dims; (void)out; (void)user;
    return false;
}

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *scratch = argc > 2 ? argv[2] : "/tmp";
    LOAD(hy_last_error);
    LOAD(hy_status_name);
    LOAD(hy_mesh_from_grid);
    LOAD(hy_mesh_from_field);
    LOAD(hy_mesh_free);
    LOAD(hy_mesh_vertex_count);
    LOAD(hy_mesh_face_count);
    LOAD(hy_mesh_positions);
    LOAD(hy_mesh_faces);
    LOAD(hy_mesh_get_stats);
    LOAD(hy_mesh_clean);
    LOAD(hy_mesh_smooth);
    LOAD(hy_mesh_simplify);
    LOAD(hy_mesh_compute_normals);
    LOAD(hy_mesh_normals);
    LOAD(hy_mesh_save);
    LOAD(hy_mesh_load);
    LOAD(hy_mesh_render_preview);
    LOAD(hy_mesh_new);
    LOAD(hy_mesh_colors);
    LOAD(hy_mesh_set_colors);
    LOAD(hy_mesh_uvs);
    LOAD(hy_mesh_cluster);

    static float grid[N * N * N];
    for (int x = 0; x < N; x++)
        for (int y = 0; y < N; y++)
            for (int z = 0; z < N; z++) grid[((size_t)x * N + y) * N + z] = sphere(x, y, z);
    const int32_t dims[3] = {N, N, N};
    const double volume = 4.0 / 3.0 * 3.14159265358979 * R * R * R;

    hy_mesh *m = NULL;
    EXPECT_STATUS(p_hy_mesh_from_grid(grid, (size_t)N * N * N, dims, NULL, 0.0f, HY_MESH_DEFAULT, 2, &m), HY_OK);
    size_t nv = p_hy_mesh_vertex_count(m), nf = p_hy_mesh_face_count(m);
    CHECK(nv > 1000 && nf == 2 * nv - 4, "a sphere: F = 2V - 4 (V=%zu F=%zu)", nv, nf);
    hy_mesh_stats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    EXPECT_STATUS(p_hy_mesh_get_stats(m, &st), HY_OK);
    CHECK(st.watertight && st.winding_consistent && st.euler_characteristic == 2 && st.n_components == 1,
          "topology: watertight %d winding %d euler %lld", st.watertight, st.winding_consistent,
          (long long)st.euler_characteristic);
    CHECK(fabs(st.volume - volume) < 0.005 * volume, "volume %f vs %f", st.volume, volume);
    const float *pos = p_hy_mesh_positions(m);
    const uint32_t *faces = p_hy_mesh_faces(m);
    CHECK(pos != NULL && faces != NULL, "borrowed arrays");
    int bad = 0;
    for (size_t i = 0; i < nf * 3; i++) bad += faces[i] >= nv;
    for (size_t i = 0; i < nv; i++) {
        double dx = pos[3 * i] - CX, dy = pos[3 * i + 1] - CY, dz = pos[3 * i + 2] - CZ;
        bad += fabs(sqrt(dx * dx + dy * dy + dz * dz) - R) > 0.1;
    }
    CHECK(bad == 0, "%d vertices/indices off the sphere or out of range", bad);

    /* the same from a block callback */
    hy_mesh *mf = NULL;
    EXPECT_STATUS(p_hy_mesh_from_field(dims, NULL, 0.0f, HY_MESH_DEFAULT, 1, field, NULL, &mf), HY_OK);
    CHECK(g_calls > 1 && p_hy_mesh_face_count(mf) == nf, "callback mesh: %d calls, %zu faces", g_calls,
          p_hy_mesh_face_count(mf));
    p_hy_mesh_free(mf);
    mf = (hy_mesh *)1;
    EXPECT_STATUS(p_hy_mesh_from_field(dims, NULL, 0.0f, HY_MESH_DEFAULT, 1, cancel, NULL, &mf), HY_ERR_ABORTED);
    CHECK(mf == NULL, "out cleared on failure");

    /* save / load / operations */
    char path[4096], png[4096], bad_path[4096];
    snprintf(path, sizeof path, "%s/hy_test_mesh_%d.glb", scratch, (int)getpid());
    snprintf(png, sizeof png, "%s/hy_test_mesh_%d.png", scratch, (int)getpid());
    snprintf(bad_path, sizeof bad_path, "%s/no/such/dir/m.glb", scratch);
    EXPECT_STATUS(p_hy_mesh_compute_normals(m), HY_OK);
    CHECK(p_hy_mesh_normals(m) != NULL, "normals");
    EXPECT_STATUS(p_hy_mesh_save(m, path, HY_SAVE_DEFAULT), HY_OK);
    EXPECT_STATUS(p_hy_mesh_save(m, path, HY_SAVE_DEFAULT), HY_ERR_IO);
    EXPECT_STATUS(p_hy_mesh_save(m, path, HY_SAVE_OVERWRITE), HY_OK);
    EXPECT_STATUS(p_hy_mesh_save(m, bad_path, HY_SAVE_OVERWRITE), HY_ERR_IO);
    CHECK(access(bad_path, F_OK) != 0, "no file at an unwritable path");
    hy_mesh *l = NULL;
    EXPECT_STATUS(p_hy_mesh_load(path, &l), HY_OK);
    CHECK(p_hy_mesh_vertex_count(l) == nv && p_hy_mesh_face_count(l) == nf, "GLB round trip counts");
    EXPECT_STATUS(p_hy_mesh_clean(l, 0.0f, 1, 0), HY_OK);
    EXPECT_STATUS(p_hy_mesh_smooth(l, 5, HY_SMOOTH_TAUBIN), HY_OK);
    EXPECT_STATUS(p_hy_mesh_simplify(l, nf / 5), HY_OK);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    EXPECT_STATUS(p_hy_mesh_get_stats(l, &st), HY_OK);
    CHECK(st.n_faces <= nf / 5 && st.watertight && st.euler_characteristic == 2, "decimated: %llu faces, watertight %d",
          (unsigned long long)st.n_faces, st.watertight);
    CHECK(fabs(st.volume - volume) < 0.03 * volume, "decimated volume %f vs %f", st.volume, volume);
    EXPECT_STATUS(p_hy_mesh_render_preview(l, png, 128, HY_SAVE_OVERWRITE), HY_OK);
    EXPECT_STATUS(p_hy_mesh_render_preview(l, png, 4, HY_SAVE_OVERWRITE), HY_ERR_INVALID_ARGUMENT);
    p_hy_mesh_free(l);
    unlink(path);
    unlink(png);

    /* caller arrays, colours, UVs, clustering */
    {
        const float tet[12] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
        const uint32_t tf[12] = {0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3};
        hy_mesh *t = NULL;
        EXPECT_STATUS(p_hy_mesh_new(tet, 4, tf, 4, &t), HY_OK);
        hy_mesh_stats ts;
        memset(&ts, 0, sizeof ts);
        ts.struct_size = sizeof ts;
        EXPECT_STATUS(p_hy_mesh_get_stats(t, &ts), HY_OK);
        CHECK(ts.watertight && fabs(ts.volume - 1.0 / 6.0) < 1e-6, "tetrahedron volume %f (1/6)", ts.volume);
        int32_t ch = -1;
        CHECK(p_hy_mesh_colors(t, &ch) == NULL && p_hy_mesh_uvs(t) == NULL, "no colours / uvs yet");
        const float rgba[16] = {1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0.5f};
        EXPECT_STATUS(p_hy_mesh_set_colors(t, rgba, 16, 4), HY_OK);
        const float *c = p_hy_mesh_colors(t, &ch);
        CHECK(c != NULL && ch == 4 && c[15] == 0.5f, "colours stored (channels %d)", ch);
        EXPECT_STATUS(p_hy_mesh_set_colors(t, rgba, 15, 4), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_set_colors(t, rgba, 16, 2), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_set_colors(NULL, rgba, 16, 4), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_set_colors(t, NULL, 0, 3), HY_OK);
        CHECK(p_hy_mesh_colors(t, NULL) == NULL, "colours removed");
        EXPECT_STATUS(p_hy_mesh_cluster(t, 0.0f), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_cluster(t, -1.0f), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_cluster(t, NAN), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_cluster(NULL, 0.1f), HY_ERR_INVALID_ARGUMENT);
        p_hy_mesh_free(t);
        const uint32_t bad_faces[3] = {0, 1, 4};
        EXPECT_STATUS(p_hy_mesh_new(tet, 4, bad_faces, 1, &t), HY_ERR_INVALID_ARGUMENT);
        const float nan_pos[3] = {NAN, 0, 0};
        const uint32_t one[3] = {0, 0, 0};
        EXPECT_STATUS(p_hy_mesh_new(nan_pos, 1, one, 1, &t), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_new(NULL, 4, tf, 4, &t), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_mesh_new(tet, 4, tf, 4, NULL), HY_ERR_INVALID_ARGUMENT);
        /* clustering the marching-cubes sphere keeps it closed and about the same size */
        hy_mesh *k = NULL;
        EXPECT_STATUS(p_hy_mesh_from_grid(grid, (size_t)N * N * N, dims, NULL, 0.0f, 0, 1, &k), HY_OK);
        size_t before = p_hy_mesh_face_count(k);
        EXPECT_STATUS(p_hy_mesh_cluster(k, 2.0f), HY_OK);
        hy_mesh_stats ks;
        memset(&ks, 0, sizeof ks);
        ks.struct_size = sizeof ks;
        EXPECT_STATUS(p_hy_mesh_get_stats(k, &ks), HY_OK);
        CHECK(ks.n_faces < before && ks.n_faces > 100, "clustered %zu -> %llu faces", before, (unsigned long long)ks.n_faces);
        CHECK(fabs(ks.volume - volume) < 0.05 * volume, "clustered volume %f vs %f", ks.volume, volume);
        p_hy_mesh_free(k);
    }

    /* errors */
    hy_mesh *e = NULL;
    grid[123] = NAN;
    EXPECT_STATUS(p_hy_mesh_from_grid(grid, (size_t)N * N * N, dims, NULL, 0.0f, 0, 1, &e), HY_ERR_INVALID_ARGUMENT);
    CHECK(e == NULL && strstr(p_hy_last_error(), "NaN") != NULL, "NaN message: %s", p_hy_last_error());
    grid[123] = 1.0f;
    EXPECT_STATUS(p_hy_mesh_from_grid(grid, (size_t)N * N * N - 1, dims, NULL, 0.0f, 0, 1, &e), HY_ERR_INVALID_ARGUMENT);
    const int32_t zero[3] = {0, N, N};
    EXPECT_STATUS(p_hy_mesh_from_grid(grid, 0, zero, NULL, 0.0f, 0, 1, &e), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mesh_from_grid(NULL, 8, dims, NULL, 0.0f, 0, 1, &e), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mesh_from_grid(grid, (size_t)N * N * N, dims, NULL, 0.0f, 0, 1, NULL), HY_ERR_INVALID_ARGUMENT);
    const float bounds[6] = {1, 0, 0, 0, 1, 1};
    EXPECT_STATUS(p_hy_mesh_from_grid(grid, (size_t)N * N * N, dims, bounds, 0.0f, 0, 1, &e), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_mesh_simplify(NULL, 10), HY_ERR_INVALID_ARGUMENT);
    CHECK(p_hy_mesh_vertex_count(NULL) == 0 && p_hy_mesh_positions(NULL) == NULL, "NULL mesh accessors");
    p_hy_mesh_free(NULL);
    p_hy_mesh_free(m);
    return finish("test_mesh");
}
