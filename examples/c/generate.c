/* Loads libhunyuan with dlopen, loads a Hunyuan checkpoint folder and generates greedily from a few
 * token ids, printing the ids as they come (the per-token callback).
 *
 *   cc -std=c99 -Iinclude examples/c/generate.c -ldl -o generate
 *   ./generate build/libhunyuan.so.0 ../shared            # a fixture checkpoint
 *   ./generate build/libhunyuan.so.0 - path/to/model_dir   # any checkpoint
 */
#include <stdio.h>

#include "hunyuan.h"
#include "load.h"

static bool print_token(int32_t token, void *user) {
    (void)user;
    printf(" %d", token);
    fflush(stdout);
    return true;
}

int main(int argc, char **argv) {
    const char *lib_path = argc > 1 ? argv[1] : "libhunyuan.so.0";
    char model_dir[4096];
    if (argc > 3)
        snprintf(model_dir, sizeof model_dir, "%s", argv[3]);
    else
        snprintf(model_dir, sizeof model_dir, "%s/fixtures/lm/hunyuan-large-tiny", argc > 2 ? argv[2] : "../shared");

    void *lib = hy_example_open(lib_path);
    if (lib == NULL) return 1;
    const char *(*last_error)(void);
    hy_status (*model_load)(const char *, const hy_model_params *, hy_model **);
    void (*model_free)(hy_model *);
    hy_status (*model_get_info)(const hy_model *, hy_model_info *);
    hy_status (*session_new)(const hy_model *, const hy_session_params *, hy_session **);
    void (*session_free)(hy_session *);
    hy_generate_params (*generate_default_params)(void);
    hy_status (*generate)(hy_session *, const int32_t *, size_t, const hy_generate_params *, const hy_sampler_params *,
                          int32_t *, size_t, size_t *, hy_stop_reason *);
    RESOLVE(lib, "hy_last_error", last_error);
    RESOLVE(lib, "hy_model_load", model_load);
    RESOLVE(lib, "hy_model_free", model_free);
    RESOLVE(lib, "hy_model_get_info", model_get_info);
    RESOLVE(lib, "hy_session_new", session_new);
    RESOLVE(lib, "hy_session_free", session_free);
    RESOLVE(lib, "hy_generate_default_params", generate_default_params);
    RESOLVE(lib, "hy_generate", generate);

    hy_model *model = NULL;
    if (model_load(model_dir, NULL, &model) != HY_OK) {
        printf("could not load %s: %s\n", model_dir, last_error());
        dlclose(lib);
        return 0; /* no fixture: nothing to show */
    }
    hy_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    model_get_info(model, &info);
    printf("%s: %d layers, %d experts (top %d), vocab %d, KV cache %llu bytes/token\n", model_dir, info.n_layer,
           info.n_expert, info.n_expert_used, info.n_vocab, (unsigned long long)info.kv_bytes_per_token);

    hy_session *session = NULL;
    if (session_new(model, NULL, &session) != HY_OK) {
        fprintf(stderr, "session: %s\n", last_error());
        return 1;
    }
    const int32_t prompt[] = {1, 5, 17, 42};
    int32_t out[16];
    size_t n_out = 0;
    hy_stop_reason reason;
    hy_generate_params gp = generate_default_params();
    gp.max_tokens = 16;
    gp.on_token = print_token;
    printf("greedy from [1, 5, 17, 42]:");
    /* sampler NULL = the checkpoint's generation_config.json defaults */
    hy_status st = generate(session, prompt, 4, &gp, NULL, out, 16, &n_out, &reason);
    printf("\n%zu tokens, status %d, stop reason %d\n", n_out, (int)st, (int)reason);
    session_free(session);
    model_free(model);
    dlclose(lib);
    return st == HY_OK ? 0 : 1;
}
