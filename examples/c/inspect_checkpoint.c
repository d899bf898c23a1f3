/* Minimal C program that loads libhunyuan at run time with dlopen and lists a checkpoint's tensors.
 *
 *   cc -std=c99 -Iinclude examples/c/inspect_checkpoint.c -ldl -o inspect
 *   ./inspect build/libhunyuan.so.0 ../shared            # lists a fixture checkpoint
 *   ./inspect build/libhunyuan.so.0 - path/to/model_dir   # or any checkpoint
 */
#include <stdio.h>

#include "hunyuan.h"
#include "load.h"

int main(int argc, char **argv) {
    const char *lib_path = argc > 1 ? argv[1] : "libhunyuan.so.0";
    char model[4096];
    if (argc > 3)
        snprintf(model, sizeof model, "%s", argv[3]);
    else
        snprintf(model, sizeof model, "%s/fixtures/lm/hunyuan-large-tiny-bf16-sharded", argc > 2 ? argv[2] : "../shared");

    void *lib = hy_example_open(lib_path);
    if (lib == NULL) return 1;
    const char *(*version)(void);
    const char *(*last_error)(void);
    hy_status (*open)(const char *, const hy_checkpoint_params *, hy_checkpoint **);
    size_t (*count)(const hy_checkpoint *);
    hy_status (*info)(const hy_checkpoint *, size_t, hy_tensor_info *);
    void (*release)(hy_checkpoint *);
    RESOLVE(lib, "hy_version_string", version);
    RESOLVE(lib, "hy_last_error", last_error);
    RESOLVE(lib, "hy_checkpoint_open", open);
    RESOLVE(lib, "hy_checkpoint_tensor_count", count);
    RESOLVE(lib, "hy_checkpoint_tensor_info", info);
    RESOLVE(lib, "hy_checkpoint_free", release);

    printf("libhunyuan %s\n", version());
    hy_checkpoint *ck = NULL;
    if (open(model, NULL, &ck) != HY_OK) {
        /* a missing fixture folder is not an error for the example: say what happened */
        printf("could not open %s: %s\n", model, last_error());
        dlclose(lib);
        return 0;
    }
    size_t n = count(ck);
    printf("%s: %zu tensors\n", model, n);
    for (size_t i = 0; i < n && i < 5; i++) {
        hy_tensor_info t;
        if (info(ck, i, &t) != HY_OK) break;
        printf("  %-48s dtype %d  [", t.name, (int)t.dtype);
        for (uint32_t d = 0; d < t.n_dims; d++) printf(d ? ", %lld" : "%lld", (long long)t.shape[d]);
        printf("]\n");
    }
    release(ck);
    dlclose(lib);
    return 0;
}
