/* C ABI test of the foundation: runtime, errors, logging and checkpoints. Compiled with
 * -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_core LIBRARY SHARED_DIR SCRATCH_DIR */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include "abi_test.h"

static int g_log_lines = 0;
static void on_log(hy_log_level level, const char *message, void *user) {
    (void)level;
    (void)message;
    *(int *)user += 1;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) { perror(path); exit(1); }
    fwrite(data, 1, n, f);
    fclose(f);
}

struct thread_result {
    const char *(*last_error)(void);
    char seen[64];
};

static void *other_thread(void *arg) {
    struct thread_result *r = (struct thread_result *)arg;
    strncpy(r->seen, r->last_error(), sizeof r->seen - 1);
    return NULL;
}

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *shared = argc > 2 ? argv[2] : "../shared";
    const char *scratch = argc > 3 ? argv[3] : "build/capi-scratch";
    char path[4096];

    LOAD(hy_last_error);
    LOAD(hy_status_name);
    LOAD(hy_abi_version);
    LOAD(hy_version_string);
    LOAD(hy_set_log_callback);
    LOAD(hy_system_info);
    LOAD(hy_checkpoint_default_params);
    LOAD(hy_checkpoint_open);
    LOAD(hy_checkpoint_free);
    LOAD(hy_checkpoint_tensor_count);
    LOAD(hy_checkpoint_tensor_info);
    LOAD(hy_checkpoint_find);
    LOAD(hy_checkpoint_read_f32);

    /* runtime */
    CHECK(p_hy_abi_version() == HY_ABI_VERSION, "abi %u", p_hy_abi_version());
    CHECK(p_hy_version_string() != NULL && strstr(p_hy_version_string(), "abi") != NULL, "version string");
    CHECK(p_hy_system_info() != NULL && strstr(p_hy_system_info(), "AVX2=") != NULL, "system info");
    CHECK(p_hy_last_error() != NULL, "last_error never NULL");
    CHECK(strcmp(p_hy_status_name(HY_ERR_FORMAT), "HY_ERR_FORMAT") == 0, "status name");
    CHECK(strcmp(p_hy_status_name((hy_status)999), "HY_ERR_UNKNOWN") == 0, "unknown status name");
    p_hy_set_log_callback(on_log, HY_LOG_DEBUG, &g_log_lines);
    p_hy_set_log_callback(NULL, HY_LOG_NONE, NULL);
    p_hy_set_log_callback(on_log, (hy_log_level)77, &g_log_lines); /* out-of-range level: no crash */
    p_hy_set_log_callback(NULL, HY_LOG_WARN, NULL);

    /* checkpoint: bad arguments */
    hy_checkpoint *ck = (hy_checkpoint *)(uintptr_t)1; /* must be reset to NULL on failure */
    EXPECT_STATUS(p_hy_checkpoint_open(NULL, NULL, &ck), HY_ERR_INVALID_ARGUMENT);
    CHECK(ck == NULL, "out reset on failure");
    EXPECT_STATUS(p_hy_checkpoint_open("x.safetensors", NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_checkpoint_open("/nonexistent/dir/model.safetensors", NULL, &ck), HY_ERR_IO);
    CHECK(strstr(p_hy_last_error(), "/nonexistent/dir/model.safetensors") != NULL, "message names the path: %s", p_hy_last_error());
    EXPECT_STATUS(p_hy_checkpoint_open("\xff\xfe bad utf8", NULL, &ck), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_checkpoint_open("\xc3", NULL, &ck), HY_ERR_INVALID_ARGUMENT);
    mkdir(scratch, 0755);
    snprintf(path, sizeof path, "%s/empty-dir", scratch);
    mkdir(path, 0755);
    EXPECT_STATUS(p_hy_checkpoint_open(path, NULL, &ck), HY_ERR_IO);
    EXPECT_STATUS(p_hy_checkpoint_open("/", NULL, &ck), HY_ERR_IO);

    hy_checkpoint_params cp = p_hy_checkpoint_default_params();
    CHECK(cp.struct_size == sizeof(hy_checkpoint_params), "default params size %u", cp.struct_size);
    cp.struct_size = 0;
    EXPECT_STATUS(p_hy_checkpoint_open("x", &cp, &ck), HY_ERR_INVALID_ARGUMENT);
    cp.struct_size = 3;
    EXPECT_STATUS(p_hy_checkpoint_open("x", &cp, &ck), HY_ERR_INVALID_ARGUMENT);

    /* corrupt files */
    {
        static const unsigned char truncated[] = {0x40, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        snprintf(path, sizeof path, "%s/truncated.safetensors", scratch);
        write_file(path, truncated, sizeof truncated);
        EXPECT_STATUS(p_hy_checkpoint_open(path, NULL, &ck), HY_ERR_FORMAT);
        CHECK(strstr(p_hy_last_error(), "truncated.safetensors") != NULL, "names the file: %s", p_hy_last_error());
        static const unsigned char tiny[] = {1, 2, 3};
        snprintf(path, sizeof path, "%s/tiny.safetensors", scratch);
        write_file(path, tiny, sizeof tiny);
        EXPECT_STATUS(p_hy_checkpoint_open(path, NULL, &ck), HY_ERR_FORMAT);
        static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
        snprintf(path, sizeof path, "%s/huge.safetensors", scratch);
        write_file(path, huge, sizeof huge);
        EXPECT_STATUS(p_hy_checkpoint_open(path, NULL, &ck), HY_ERR_FORMAT);
        const char *overflow = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,0]}}";
        unsigned char buf[256];
        size_t n = strlen(overflow);
        memset(buf, 0, 8);
        buf[0] = (unsigned char)n;
        memcpy(buf + 8, overflow, n);
        snprintf(path, sizeof path, "%s/overflow.safetensors", scratch);
        write_file(path, buf, 8 + n);
        EXPECT_STATUS(p_hy_checkpoint_open(path, NULL, &ck), HY_ERR_FORMAT);
    }

    /* thread-local error message */
    {
        struct thread_result r;
        memset(&r, 0, sizeof r);
        r.last_error = p_hy_last_error;
        pthread_t t;
        pthread_create(&t, NULL, other_thread, &r);
        pthread_join(t, NULL);
        CHECK(r.seen[0] == '\0', "another thread sees its own (empty) error, got: %s", r.seen);
        CHECK(p_hy_last_error()[0] != '\0', "this thread keeps its error");
    }

    /* NULL handles */
    p_hy_checkpoint_free(NULL);
    CHECK(p_hy_checkpoint_tensor_count(NULL) == 0, "count of NULL");
    hy_tensor_info info;
    EXPECT_STATUS(p_hy_checkpoint_tensor_info(NULL, 0, &info), HY_ERR_INVALID_ARGUMENT);
    size_t idx = 0;
    EXPECT_STATUS(p_hy_checkpoint_find(NULL, "x", &idx), HY_ERR_INVALID_ARGUMENT);
    float f = 0;
    EXPECT_STATUS(p_hy_checkpoint_read_f32(NULL, 0, &f, 1), HY_ERR_INVALID_ARGUMENT);

    /* a real sharded checkpoint */
    snprintf(path, sizeof path, "%s/fixtures/lm/hunyuan-large-tiny-bf16-sharded", shared);
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("SKIP checkpoint tests: %s not present\n", path);
    } else {
        EXPECT_STATUS(p_hy_checkpoint_open(path, NULL, &ck), HY_OK);
        size_t count = p_hy_checkpoint_tensor_count(ck);
        CHECK(count > 10, "tensor count %zu", count);
        EXPECT_STATUS(p_hy_checkpoint_find(ck, "model.embed_tokens.weight", &idx), HY_OK);
        EXPECT_STATUS(p_hy_checkpoint_tensor_info(ck, idx, &info), HY_OK);
        CHECK(info.dtype == HY_DTYPE_BF16 && info.n_dims == 2, "embed info");
        CHECK(strcmp(info.name, "model.embed_tokens.weight") == 0, "name %s", info.name);
        EXPECT_STATUS(p_hy_checkpoint_tensor_info(ck, count, &info), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_tensor_info(ck, (size_t)-1, &info), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_tensor_info(ck, 0, NULL), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_find(ck, "no.such.tensor", &idx), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_find(ck, NULL, &idx), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_find(ck, "\xff", &idx), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_find(ck, "x", NULL), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_find(ck, "model.embed_tokens.weight", &idx), HY_OK);
        size_t n = (size_t)(info.shape[0] * info.shape[1]);
        float *data = (float *)malloc(n * sizeof(float));
        EXPECT_STATUS(p_hy_checkpoint_read_f32(ck, idx, data, n - 1), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_read_f32(ck, idx, NULL, n), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_read_f32(ck, idx, data, 0), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_checkpoint_read_f32(ck, idx, data, (size_t)-1), HY_OK);
        EXPECT_STATUS(p_hy_checkpoint_read_f32(ck, idx, data, n), HY_OK);
        int finite = 1;
        for (size_t i = 0; i < n; i++) finite &= data[i] == data[i];
        CHECK(finite, "finite embedding values");
        free(data);
        p_hy_checkpoint_free(ck);
    }
    return finish("test_core");
}
