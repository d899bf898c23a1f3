/* C ABI test of the language engine: load, info, eval + logits against the reference fixture (read
 * through hy_checkpoint), greedy hy_generate, context full / truncate / reset, abort, bad input.
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_lm LIBRARY SHARED_DIR SCRATCH_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>

#include "abi_test.h"

static bool abort_after_two(void *user) {
    int *polls = (int *)user;
    *polls += 1;
    return *polls > 2;
}

static int g_streamed = 0;
static bool count_tokens(int32_t token, void *user) {
    (void)token;
    (void)user;
    g_streamed++;
    return true;
}

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *shared = argc > 2 ? argv[2] : "../shared";
    char dir[4096], refpath[4200];
    snprintf(dir, sizeof dir, "%s/fixtures/lm/hunyuan-large-tiny", shared);
    snprintf(refpath, sizeof refpath, "%s/reference.safetensors", dir);

    LOAD(hy_last_error); LOAD(hy_status_name);
    LOAD(hy_checkpoint_open); LOAD(hy_checkpoint_free); LOAD(hy_checkpoint_find);
    LOAD(hy_checkpoint_tensor_info); LOAD(hy_checkpoint_read_f32);
    LOAD(hy_model_default_params); LOAD(hy_model_load); LOAD(hy_model_free); LOAD(hy_model_get_info);
    LOAD(hy_session_default_params); LOAD(hy_session_new); LOAD(hy_session_free); LOAD(hy_session_reset);
    LOAD(hy_session_truncate); LOAD(hy_session_n_past); LOAD(hy_session_n_ctx);
    LOAD(hy_eval_default_params); LOAD(hy_session_eval); LOAD(hy_session_logits);
    LOAD(hy_sampler_default_params); LOAD(hy_model_sampler_params);
    LOAD(hy_generate_default_params); LOAD(hy_generate); LOAD(hy_generate_text);
    LOAD(hy_tokenizer_load); LOAD(hy_tokenizer_free); LOAD(hy_model_tokenizer);

    FILE *probe = fopen(refpath, "rb");
    if (probe == NULL) {
        printf("SKIP test_lm: fixture %s not found (set HUNYUAN_SHARED)\n", refpath);
        return 0;
    }
    fclose(probe);

    /* Reference: input_ids, logits [T, V], greedy_ids, read through the checkpoint API. */
    hy_checkpoint *ref = NULL;
    EXPECT_STATUS(p_hy_checkpoint_open(refpath, NULL, &ref), HY_OK);
    size_t i_ids = 0, i_logits = 0, i_greedy = 0;
    EXPECT_STATUS(p_hy_checkpoint_find(ref, "input_ids", &i_ids), HY_OK);
    EXPECT_STATUS(p_hy_checkpoint_find(ref, "logits", &i_logits), HY_OK);
    EXPECT_STATUS(p_hy_checkpoint_find(ref, "greedy_ids", &i_greedy), HY_OK);
    hy_tensor_info ti, tl, tg;
    p_hy_checkpoint_tensor_info(ref, i_ids, &ti);
    p_hy_checkpoint_tensor_info(ref, i_logits, &tl);
    p_hy_checkpoint_tensor_info(ref, i_greedy, &tg);
    size_t T = (size_t)ti.shape[0], V = (size_t)tl.shape[1], G = (size_t)tg.shape[0];
    float *idsf = malloc(T * sizeof(float)), *ref_logits = malloc(T * V * sizeof(float)), *gf = malloc(G * sizeof(float));
    int32_t *ids = malloc(T * sizeof(int32_t));
    EXPECT_STATUS(p_hy_checkpoint_read_f32(ref, i_ids, idsf, T), HY_OK);
    EXPECT_STATUS(p_hy_checkpoint_read_f32(ref, i_logits, ref_logits, T * V), HY_OK);
    EXPECT_STATUS(p_hy_checkpoint_read_f32(ref, i_greedy, gf, G), HY_OK);
    for (size_t i = 0; i < T; i++) ids[i] = (int32_t)idsf[i];

    /* Load and describe. */
    hy_model *model = NULL;
    hy_model_params mp = p_hy_model_default_params();
    mp.n_threads = 2;
    EXPECT_STATUS(p_hy_model_load(dir, &mp, &model), HY_OK);
    hy_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    EXPECT_STATUS(p_hy_model_get_info(model, &info), HY_OK);
    CHECK(info.arch == HY_LM_ARCH_HUNYUAN_LARGE, "arch %d", (int)info.arch);
    CHECK((size_t)info.n_vocab == V, "n_vocab %d", info.n_vocab);
    CHECK(info.cla_share_factor == 2, "cla %d", info.cla_share_factor);
    /* 4 layers, CLA 2 → 2 KV entries × (K + V) × 2 kv heads × head_dim 8 × 4 bytes */
    CHECK(info.kv_bytes_per_token == 2u * 2u * 2u * 8u * 4u, "kv bytes %llu", (unsigned long long)info.kv_bytes_per_token);
    CHECK(info.n_eos == 1 && info.eos_token_ids[0] == 2, "eos");

    /* Eval all positions; compare with the reference. */
    hy_session *s = NULL;
    hy_session_params sp = p_hy_session_default_params();
    sp.n_ctx = (uint32_t)(T + G + 2);
    EXPECT_STATUS(p_hy_session_new(model, &sp, &s), HY_OK);
    CHECK(p_hy_session_n_ctx(s) == T + G + 2, "n_ctx");
    const float *lg = NULL;
    size_t rows = 0, nv = 0;
    EXPECT_STATUS(p_hy_session_logits(s, &lg, &rows, &nv), HY_ERR_INVALID_ARGUMENT);
    hy_eval_params ep = p_hy_eval_default_params();
    ep.all_logits = true;
    EXPECT_STATUS(p_hy_session_eval(s, ids, T, &ep), HY_OK);
    EXPECT_STATUS(p_hy_session_logits(s, &lg, &rows, &nv), HY_OK);
    CHECK(rows == T && nv == V, "rows %zu vocab %zu", rows, nv);
    double maxd = max_abs_diff(lg, ref_logits, T * V);
    CHECK(maxd <= 1e-4, "max |dlogit| %g", maxd);

    /* An f16 KV cache: the same logits within f16 rounding of the cached keys/values; bad kv_type. */
    {
        hy_session *s16 = NULL;
        hy_session_params p16 = sp;
        CHECK(p16.kv_type == HY_KV_F32, "default kv_type %d", (int)p16.kv_type);
        p16.kv_type = HY_KV_F16;
        EXPECT_STATUS(p_hy_session_new(model, &p16, &s16), HY_OK);
        EXPECT_STATUS(p_hy_session_eval(s16, ids, T, &ep), HY_OK);
        const float *l16 = NULL;
        EXPECT_STATUS(p_hy_session_logits(s16, &l16, &rows, &nv), HY_OK);
        double d16 = max_abs_diff(l16, ref_logits, T * V);
        CHECK(d16 <= 5e-3, "f16 KV max |dlogit| %g", d16);
        p_hy_session_free(s16);
        s16 = NULL;
        p16.kv_type = 7;
        EXPECT_STATUS(p_hy_session_new(model, &p16, &s16), HY_ERR_INVALID_ARGUMENT);
        CHECK(s16 == NULL, "session set on failure");
        p16.kv_type = HY_KV_Q8_0;  /* this fixture's head_dim (16) is not a multiple of the 32-value block */
        EXPECT_STATUS(p_hy_session_new(model, &p16, &s16), HY_ERR_UNSUPPORTED);
        CHECK(s16 == NULL && strstr(p_hy_last_error(), "head_dim") != NULL, "q8_0 KV: %s", p_hy_last_error());
    }

    /* Greedy generation continues from the cached prompt and reproduces greedy_ids. */
    p_hy_session_reset(s);
    CHECK(p_hy_session_n_past(s) == 0, "reset");
    hy_sampler_params greedy = p_hy_sampler_default_params();
    greedy.greedy = true;
    hy_generate_params gp = p_hy_generate_default_params();
    gp.max_tokens = (uint32_t)G;
    gp.on_token = count_tokens;
    int32_t out[64];
    size_t n_out = 0;
    hy_stop_reason why = HY_STOP_EOS;
    EXPECT_STATUS(p_hy_generate(s, ids, T, &gp, &greedy, out, 64, &n_out, &why), HY_OK);
    CHECK(n_out == G && why == HY_STOP_MAX_TOKENS && g_streamed == (int)G, "n_out %zu why %d", n_out, (int)why);
    for (size_t k = 0; k < G && k < n_out; k++) CHECK(out[k] == (int32_t)gf[k], "greedy token %zu: %d vs %d", k, out[k], (int)gf[k]);

    /* Context full: the session stays usable after truncate. */
    EXPECT_STATUS(p_hy_session_eval(s, ids, T, NULL), HY_ERR_CONTEXT_FULL);
    size_t past = p_hy_session_n_past(s);
    CHECK(past == T + G - 1, "n_past %zu", past);
    EXPECT_STATUS(p_hy_session_truncate(s, 4), HY_OK);
    EXPECT_STATUS(p_hy_session_logits(s, &lg, &rows, &nv), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_session_eval(s, ids + 4, 4, NULL), HY_OK);
    EXPECT_STATUS(p_hy_session_logits(s, &lg, &rows, &nv), HY_OK);
    maxd = max_abs_diff(lg, ref_logits + 7 * V, V);
    CHECK(rows == 1 && maxd <= 1e-4, "after truncate: rows %zu max %g", rows, maxd);

    /* Abort during the prompt: HY_ERR_ABORTED, nothing kept. */
    int polls = 0;
    hy_eval_params ap = p_hy_eval_default_params();
    ap.abort = abort_after_two;
    ap.abort_user = &polls;
    EXPECT_STATUS(p_hy_session_eval(s, ids, 8, &ap), HY_ERR_ABORTED);
    CHECK(p_hy_session_n_past(s) == 8, "n_past after abort %zu", p_hy_session_n_past(s));

    /* Bad input. */
    int32_t bad = (int32_t)V;
    EXPECT_STATUS(p_hy_session_eval(s, &bad, 1, NULL), HY_ERR_INVALID_ARGUMENT);
    bad = -5;
    EXPECT_STATUS(p_hy_session_eval(s, &bad, 1, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_session_eval(s, ids, 0, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_session_eval(s, NULL, 3, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_session_eval(NULL, ids, 3, NULL), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_session_new(NULL, NULL, &s), HY_ERR_INVALID_ARGUMENT);
    hy_sampler_params badp = p_hy_model_sampler_params(model);
    badp.top_p = 0;
    EXPECT_STATUS(p_hy_generate(s, ids, 1, NULL, &badp, NULL, 0, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
    /* Text generation: the real tokenizer's ids do not fit this tiny model's 512-token vocabulary. */
    char tokdir[4200];
    snprintf(tokdir, sizeof tokdir, "%s/data/tokenizer", shared);
    hy_tokenizer *tok = NULL;
    if (p_hy_tokenizer_load(tokdir, &tok) == HY_OK) {
        const char *text = "hello world, a prompt of several tokens";
        size_t n_text = 99;
        EXPECT_STATUS(p_hy_generate_text(s, tok, text, strlen(text), HY_TOKENIZE_DEFAULT, NULL, NULL, NULL, NULL,
                                         &n_text, NULL), HY_ERR_INVALID_ARGUMENT);
        CHECK(n_text == 0, "n_out %zu", n_text);
        EXPECT_STATUS(p_hy_generate_text(s, tok, text, strlen(text), 8, NULL, NULL, NULL, NULL, NULL, NULL),
                      HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_generate_text(s, NULL, text, strlen(text), 0, NULL, NULL, NULL, NULL, NULL, NULL),
                      HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_generate_text(s, tok, NULL, 5, 0, NULL, NULL, NULL, NULL, NULL, NULL),
                      HY_ERR_INVALID_ARGUMENT);
        p_hy_tokenizer_free(tok);
    }
    hy_model *m2 = NULL;
    EXPECT_STATUS(p_hy_model_load("/nonexistent/model", NULL, &m2), HY_ERR_IO);
    CHECK(m2 == NULL, "model set on failure");
    EXPECT_STATUS(p_hy_model_load(NULL, NULL, &m2), HY_ERR_INVALID_ARGUMENT);

    /* the built-in model, found beside the library (build/models) without the source tree */
    {
        hy_model *tiny = NULL;
        hy_tokenizer *ttok = NULL;
        EXPECT_STATUS(p_hy_model_load("builtin:hunyuan-tiny", NULL, &tiny), HY_OK);
        EXPECT_STATUS(p_hy_tokenizer_load("builtin:hunyuan-tiny", &ttok), HY_OK);
        CHECK(p_hy_model_tokenizer(tiny) != NULL, "the model folder's tokenizer is loaded with the model");
        CHECK(p_hy_model_tokenizer(NULL) == NULL, "NULL model: no tokenizer");
        if (tiny != NULL && ttok != NULL) {
            hy_session *ts = NULL;
            EXPECT_STATUS(p_hy_session_new(tiny, NULL, &ts), HY_OK);
            size_t n_gen = 0;
            hy_generate_params tgp = p_hy_generate_default_params();
            tgp.max_tokens = 8;
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "ROMEO:", 6, 0, &tgp, NULL, NULL, NULL, &n_gen, NULL), HY_OK);
            CHECK(n_gen >= 1 && n_gen <= 8, "built-in model generated %zu tokens", n_gen);
            p_hy_session_free(ts);
        }
        p_hy_tokenizer_free(ttok);
        p_hy_model_free(tiny);
        hy_model *bad = NULL;
        EXPECT_STATUS(p_hy_model_load("builtin:no-such-model", NULL, &bad), HY_ERR_IO);
        CHECK(strstr(p_hy_last_error(), "no-such-model") != NULL, "names the model: %s", p_hy_last_error());
        EXPECT_STATUS(p_hy_model_load("builtin:../etc", NULL, &bad), HY_ERR_INVALID_ARGUMENT);
        EXPECT_STATUS(p_hy_model_load("builtin:", NULL, &bad), HY_ERR_INVALID_ARGUMENT);
    }

    CHECK(p_hy_model_tokenizer(model) == NULL, "a folder without hy.tiktoken has no tokenizer");
    p_hy_model_free(model); /* the session keeps the weights */
    EXPECT_STATUS(p_hy_session_eval(s, ids + 8, 2, NULL), HY_OK);
    p_hy_session_free(s);
    p_hy_session_free(NULL);
    p_hy_model_free(NULL);
    p_hy_checkpoint_free(ref);
    free(idsf); free(ref_logits); free(gf); free(ids);
    return finish("test_lm");
}
