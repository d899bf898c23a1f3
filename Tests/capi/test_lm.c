/* C ABI test of the language engine: load, info, eval + logits against the reference fixture (read
 * through hy_checkpoint), greedy hy_generate, context full / truncate / reset, abort, bad input.
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_lm LIBRARY SHARED_DIR SCRATCH_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>

#include "abi_test.h"

static bool abort_after_two(void *user) {
    int *polls = (int *)user;
    *polls += 1;
    return *polls > 2;
}

/* Collects hy_generate_text's pieces into one NUL-terminated string and checks that no piece is
 * empty; `stop_after` > 0 makes the callback refuse after that many pieces. */
typedef struct {
    char text[4096];
    size_t len;
    int pieces, empty_pieces, stop_after;
} TextSink;

static bool collect_text(const char *piece, size_t len, void *user) {
    TextSink *t = (TextSink *)user;
    if (len == 0) t->empty_pieces++;
    if (t->len + len < sizeof t->text) {
        memcpy(t->text + t->len, piece, len);
        t->len += len;
        t->text[t->len] = '\0';
    }
    t->pieces++;
    return t->stop_after == 0 || t->pieces < t->stop_after;
}

/* The ids of one hy_generate_text call, in order. */
typedef struct {
    int32_t ids[256];
    size_t n;
} IdSink;

static bool collect_id(int32_t token, void *user) {
    IdSink *s = (IdSink *)user;
    if (s->n < 256) s->ids[s->n] = token;
    s->n++;
    return true;
}

/* The first published layout of hy_generate_params (without stop / n_stop): an old caller's struct. */
typedef struct {
    uint32_t struct_size;
    uint32_t max_tokens;
    hy_token_callback on_token;
    void *token_user;
    hy_abort_callback abort;
    void *abort_user;
} generate_params_v1;

/* Resolved in main (LOAD declares locals) for the helpers below. */
static __typeof__(&hy_generate_text) g_generate_text;
static __typeof__(&hy_generate_default_params) g_generate_default_params;
static __typeof__(&hy_session_reset) g_session_reset;
static __typeof__(&hy_sampler_default_params) g_sampler_default_params;

/* Greedy text from "ROMEO:" on a fresh session with `stop[0 .. n_stop)`; the ids go to *ids. */
static hy_status generate_greedy(hy_session *s, const hy_tokenizer *tok, const char *const *stop, size_t n_stop,
                                 uint32_t max_tokens, TextSink *text, IdSink *ids, size_t *n_out, hy_stop_reason *why) {
    memset(text, 0, sizeof *text);
    memset(ids, 0, sizeof *ids);
    g_session_reset(s);
    hy_sampler_params greedy = g_sampler_default_params();
    greedy.greedy = true;
    hy_generate_params gp = g_generate_default_params();
    gp.max_tokens = max_tokens;
    gp.on_token = collect_id;
    gp.token_user = ids;
    gp.stop = stop;
    gp.n_stop = n_stop;
    return g_generate_text(s, tok, "ROMEO:", 6, HY_TOKENIZE_NONE, &gp, &greedy, collect_text, text, n_out, why);
}

/* The number of leading ids whose pieces cover the first `len` bytes of the text (pieces[i] bytes each). */
static size_t tokens_covering(const size_t *piece_len, size_t n, size_t len) {
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += piece_len[i];
        if (sum >= len) return i + 1;
    }
    return n;
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
    LOAD(hy_session_kv_type); LOAD(hy_session_kv_bytes);
    LOAD(hy_eval_default_params); LOAD(hy_session_eval); LOAD(hy_session_logits);
    LOAD(hy_sampler_default_params); LOAD(hy_model_sampler_params);
    LOAD(hy_generate_default_params); LOAD(hy_generate); LOAD(hy_generate_text);
    LOAD(hy_tokenizer_load); LOAD(hy_tokenizer_free); LOAD(hy_model_tokenizer); LOAD(hy_token_to_piece);
    LOAD(hy_tokenize);

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
    /* The automatic cache is f32 at this length; its bytes are n_ctx x the model's bytes per token. */
    CHECK(p_hy_session_kv_type(s) == HY_KV_F32, "auto kv_type %d", (int)p_hy_session_kv_type(s));
    CHECK(p_hy_session_kv_bytes(s) == (T + G + 2) * info.kv_bytes_per_token, "kv bytes %zu", p_hy_session_kv_bytes(s));
    CHECK(p_hy_session_kv_type(NULL) == HY_KV_F32 && p_hy_session_kv_bytes(NULL) == 0, "NULL session");
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
        CHECK(p16.kv_type == HY_KV_AUTO, "default kv_type %d", (int)p16.kv_type);
        /* Above HY_KV_AUTO_F32_MAX "auto" would take q8_0; head_dim 16 keeps this fixture in f32. */
        p16.n_ctx = HY_KV_AUTO_F32_MAX + 1;
        EXPECT_STATUS(p_hy_session_new(model, &p16, &s16), HY_OK);
        CHECK(p_hy_session_kv_type(s16) == HY_KV_F32, "auto kv_type (head_dim 16) %d", (int)p_hy_session_kv_type(s16));
        p_hy_session_free(s16);
        s16 = NULL;
        p16.n_ctx = sp.n_ctx;
        p16.kv_type = HY_KV_F16;
        EXPECT_STATUS(p_hy_session_new(model, &p16, &s16), HY_OK);
        CHECK(p_hy_session_kv_type(s16) == HY_KV_F16, "f16 kv_type");
        CHECK(p_hy_session_kv_bytes(s16) * 2 == p_hy_session_kv_bytes(s), "f16 kv bytes %zu", p_hy_session_kv_bytes(s16));
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
            /* Stop strings. The oracle is the text generated without them, cut before the first
             * occurrence; the count of tokens comes from the ids' own pieces (hy_token_to_piece). */
            g_generate_text = p_hy_generate_text;
            g_generate_default_params = p_hy_generate_default_params;
            g_session_reset = p_hy_session_reset;
            g_sampler_default_params = p_hy_sampler_default_params;
            TextSink full, cut;
            IdSink full_ids, cut_ids;
            size_t n_full = 0, n_cut = 0;
            hy_stop_reason why_full = HY_STOP_STRING, why_cut = HY_STOP_EOS;
            EXPECT_STATUS(generate_greedy(ts, ttok, NULL, 0, 48, &full, &full_ids, &n_full, &why_full), HY_OK);
            CHECK(n_full == full_ids.n && full.len >= 40 && full.empty_pieces == 0, "n %zu text %zu bytes", n_full, full.len);
            CHECK(why_full == HY_STOP_MAX_TOKENS || why_full == HY_STOP_EOS, "reason %d", (int)why_full);
            size_t piece_len[256] = {0}, offset[257] = {0};
            for (size_t i = 0; i < full_ids.n && i < 256; i++) {
                char piece[64];
                EXPECT_STATUS(p_hy_token_to_piece(ttok, full_ids.ids[i], piece, sizeof piece, &piece_len[i]), HY_OK);
                offset[i + 1] = offset[i] + piece_len[i];
            }
            CHECK(offset[full_ids.n] == full.len, "pieces %zu bytes, text %zu", offset[full_ids.n], full.len);

            /* (a) a stop string in the middle of the text */
            char mid[8] = {0};
            memcpy(mid, full.text + full.len / 2, 3);
            const char *stops_a[] = {mid};
            size_t at = (size_t)(strstr(full.text, mid) - full.text);
            EXPECT_STATUS(generate_greedy(ts, ttok, stops_a, 1, 48, &cut, &cut_ids, &n_cut, &why_cut), HY_OK);
            CHECK(cut.len == at && memcmp(cut.text, full.text, at) == 0, "stop \"%s\": got \"%s\", expected %zu bytes of \"%s\"",
                  mid, cut.text, at, full.text);
            CHECK(why_cut == HY_STOP_STRING, "reason %d", (int)why_cut);
            CHECK(n_cut == tokens_covering(piece_len, full_ids.n, at + strlen(mid)), "n_out %zu", n_cut);
            CHECK(n_cut == cut_ids.n && memcmp(cut_ids.ids, full_ids.ids, n_cut * sizeof(int32_t)) == 0, "same ids");

            /* (b) a stop string made of the last byte of one token and the first of the next */
            size_t k = 0;
            for (size_t i = full_ids.n / 3; i + 1 < full_ids.n && k == 0; i++)
                if (piece_len[i] >= 1 && piece_len[i + 1] >= 1 && (unsigned char)full.text[offset[i + 1] - 1] < 0x80 &&
                    (unsigned char)full.text[offset[i + 1]] < 0x80)
                    k = i + 1;
            CHECK(k > 0, "no two ASCII tokens in \"%s\"", full.text);
            char span[3] = {full.text[offset[k] - 1], full.text[offset[k]], 0};
            const char *stops_b[] = {span};
            at = (size_t)(strstr(full.text, span) - full.text);
            CHECK(at <= offset[k] - 1, "first occurrence");
            EXPECT_STATUS(generate_greedy(ts, ttok, stops_b, 1, 48, &cut, &cut_ids, &n_cut, &why_cut), HY_OK);
            CHECK(cut.len == at && memcmp(cut.text, full.text, at) == 0 && why_cut == HY_STOP_STRING,
                  "stop \"%s\": got \"%s\" (reason %d)", span, cut.text, (int)why_cut);
            CHECK(n_cut == tokens_covering(piece_len, full_ids.n, at + 2), "n_out %zu", n_cut);

            /* (c) several stop strings: the earliest occurrence wins, whatever the order; one that never
             * occurs changes nothing */
            const char *stops_c[] = {"\x01never", mid, span};
            size_t first = (size_t)(strstr(full.text, mid) - full.text);
            if (at < first) first = at;
            EXPECT_STATUS(generate_greedy(ts, ttok, stops_c, 3, 48, &cut, &cut_ids, &n_cut, &why_cut), HY_OK);
            CHECK(cut.len == first && memcmp(cut.text, full.text, first) == 0, "earliest: got %zu bytes, expected %zu",
                  cut.len, first);
            const char *stops_none[] = {"\x01never"};
            EXPECT_STATUS(generate_greedy(ts, ttok, stops_none, 1, 48, &cut, &cut_ids, &n_cut, &why_cut), HY_OK);
            CHECK(cut.len == full.len && strcmp(cut.text, full.text) == 0 && why_cut == why_full && n_cut == n_full,
                  "an absent stop string changed the output");
            /* a stop string longer than the text: held back until the end, then emitted */
            const char *stops_long[] = {full.text};
            char longer[4200];
            snprintf(longer, sizeof longer, "%sXYZ", full.text);
            stops_long[0] = longer;
            EXPECT_STATUS(generate_greedy(ts, ttok, stops_long, 1, 48, &cut, &cut_ids, &n_cut, &why_cut), HY_OK);
            CHECK(strcmp(cut.text, full.text) == 0 && cut.pieces == 1, "held back: %d pieces", cut.pieces);

            /* (d) bad stop arguments: HY_ERR_INVALID_ARGUMENT naming the problem, nothing generated */
            const char *null_entry[] = {"ok", NULL};
            const char *bad_utf8[] = {"\xff\xfe"};
            const char *empty[] = {"ok", ""};
            EXPECT_STATUS(generate_greedy(ts, ttok, NULL, 2, 8, &cut, &cut_ids, &n_cut, &why_cut), HY_ERR_INVALID_ARGUMENT);
            CHECK(strstr(p_hy_last_error(), "stop") != NULL && cut_ids.n == 0 && n_cut == 0, "%s", p_hy_last_error());
            EXPECT_STATUS(generate_greedy(ts, ttok, null_entry, 2, 8, &cut, &cut_ids, &n_cut, &why_cut), HY_ERR_INVALID_ARGUMENT);
            CHECK(strstr(p_hy_last_error(), "stop[1]") != NULL && cut_ids.n == 0, "%s", p_hy_last_error());
            EXPECT_STATUS(generate_greedy(ts, ttok, bad_utf8, 1, 8, &cut, &cut_ids, &n_cut, &why_cut), HY_ERR_INVALID_ARGUMENT);
            CHECK(strstr(p_hy_last_error(), "UTF-8") != NULL && cut_ids.n == 0, "%s", p_hy_last_error());
            EXPECT_STATUS(generate_greedy(ts, ttok, empty, 2, 8, &cut, &cut_ids, &n_cut, &why_cut), HY_ERR_INVALID_ARGUMENT);
            CHECK(strstr(p_hy_last_error(), "empty") != NULL && cut_ids.n == 0, "%s", p_hy_last_error());

            /* (e) old callers: a struct_size without stop / n_stop works and reads nothing beyond it */
            hy_sampler_params greedy2 = p_hy_sampler_default_params();
            greedy2.greedy = true;
            generate_params_v1 v1;
            memset(&v1, 0, sizeof v1);
            v1.struct_size = sizeof v1;
            v1.max_tokens = 48;
            p_hy_session_reset(ts);
            memset(&cut, 0, sizeof cut);
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "ROMEO:", 6, 0, (const hy_generate_params *)(const void *)&v1,
                                             &greedy2, collect_text, &cut, &n_cut, &why_cut), HY_OK);
            CHECK(strcmp(cut.text, full.text) == 0 && n_cut == n_full, "v1 struct: \"%s\"", cut.text);
            hy_generate_params trunc = p_hy_generate_default_params();
            trunc.struct_size = (uint32_t)offsetof(hy_generate_params, stop);
            trunc.max_tokens = 48;
            trunc.stop = null_entry; /* beyond struct_size: never read */
            trunc.n_stop = 99;
            p_hy_session_reset(ts);
            memset(&cut, 0, sizeof cut);
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "ROMEO:", 6, 0, &trunc, &greedy2, collect_text, &cut, &n_cut,
                                             &why_cut), HY_OK);
            CHECK(strcmp(cut.text, full.text) == 0, "short struct_size: \"%s\"", cut.text);
            /* hy_generate neither reads nor checks the stop fields */
            hy_generate_params ids_only = p_hy_generate_default_params();
            ids_only.max_tokens = 4;
            ids_only.stop = NULL;
            ids_only.n_stop = 3;
            int32_t four[4];
            size_t n_four = 0;
            p_hy_session_reset(ts);
            EXPECT_STATUS(p_hy_generate(ts, full_ids.ids, 2, &ids_only, &greedy2, four, 4, &n_four, NULL), HY_OK);
            CHECK(n_four == 4, "hy_generate with stop fields: %zu tokens", n_four);

            /* (f) the text callback refusing: HY_STOP_CALLBACK, nothing more passed on */
            p_hy_session_reset(ts);
            memset(&cut, 0, sizeof cut);
            cut.stop_after = 2;
            hy_generate_params gp2 = p_hy_generate_default_params();
            gp2.max_tokens = 48;
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "ROMEO:", 6, 0, &gp2, &greedy2, collect_text, &cut, &n_cut,
                                             &why_cut), HY_OK);
            CHECK(cut.pieces == 2 && why_cut == HY_STOP_CALLBACK && n_cut < n_full, "pieces %d reason %d", cut.pieces,
                  (int)why_cut);
            CHECK(strncmp(cut.text, full.text, cut.len) == 0, "prefix");

            /* (g) HY_TOKENIZE_CONTINUE: the prompt evaluated first (max_tokens 0), then an empty
             * continuation gives the same text */
            p_hy_session_reset(ts);
            gp2.max_tokens = 0;
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "ROMEO:", 6, 0, &gp2, &greedy2, NULL, NULL, &n_cut, &why_cut), HY_OK);
            CHECK(n_cut == 0 && why_cut == HY_STOP_MAX_TOKENS, "max_tokens 0: %zu", n_cut);
            memset(&cut, 0, sizeof cut);
            gp2.max_tokens = 48;
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "", 0, HY_TOKENIZE_CONTINUE, &gp2, &greedy2, collect_text, &cut,
                                             &n_cut, &why_cut), HY_OK);
            CHECK(strcmp(cut.text, full.text) == 0 && n_cut == n_full, "continued: \"%s\"", cut.text);
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "x", 1, HY_TOKENIZE_CONTINUE | HY_TOKENIZE_WRAP, &gp2, &greedy2,
                                             NULL, NULL, NULL, NULL), HY_ERR_INVALID_ARGUMENT);
            p_hy_session_reset(ts);
            EXPECT_STATUS(p_hy_generate_text(ts, ttok, "", 0, HY_TOKENIZE_CONTINUE, &gp2, &greedy2, NULL, NULL, NULL, NULL),
                          HY_ERR_INVALID_ARGUMENT); /* nothing to continue from */
            int32_t tk[8];
            size_t n_tk = 0;
            EXPECT_STATUS(p_hy_tokenize(ttok, "x", 1, HY_TOKENIZE_CONTINUE, tk, 8, &n_tk), HY_ERR_INVALID_ARGUMENT);
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
