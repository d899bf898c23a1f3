/* llama.cpp side of the greedy check in bench/compare-llamacpp.sh:
 *
 *     llama_greedy MODEL.gguf N_PREDICT THREADS ID,ID,...
 *
 * N_PREDICT > 0: decodes the ids as one batch, then N_PREDICT times takes the argmax of the last
 * logits (the lowest id among equal maxima) and feeds it back. No stop tokens: exactly N_PREDICT
 * ids are printed on stdout, space-separated.
 * N_PREDICT = 0 (teacher forcing): decodes the ids as one batch and prints, for every position, the
 * argmax of its logits — the greedy choice after each prefix of the given sequence.
 *
 * The KV cache is f32 without flash attention, as in our engine (llama.cpp's default f16 cache alone
 * moves the logits by ~1e-3 relative); LLAMA_GREEDY_KV=f16 keeps llama.cpp's defaults instead.
 * LLAMA_GREEDY_LOGITS=FILE writes the logits behind every printed id (rows of n_vocab float32, native
 * byte order), to measure how close a divergence was. llama.cpp's log goes to stderr only when
 * LLAMA_GREEDY_LOG is set. Build (compare-llamacpp.sh does it):
 *     cc -O2 -I$LLAMA/include -I$LLAMA/ggml/include llama_greedy.c -L$BUILD/bin -lllama
 * Exit status 1 with a message on stderr on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)level; (void)user;
    if (getenv("LLAMA_GREEDY_LOG")) fputs(text, stderr);
}

static FILE *dump;

/* Prints the argmax of one row of logits (and dumps the row). */
static int emit(const float *logits, int n_vocab, int first) {
    if (!logits) { fprintf(stderr, "no logits\n"); exit(1); }
    if (dump && fwrite(logits, sizeof(float), (size_t)n_vocab, dump) != (size_t)n_vocab) {
        fprintf(stderr, "logits dump: write failed\n"); exit(1);
    }
    int best = 0;
    for (int i = 1; i < n_vocab; i++) if (logits[i] > logits[best]) best = i;
    printf(first ? "%d" : " %d", best);
    return best;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT THREADS ID,ID,...\n", argv[0]);
        return 1;
    }
    int n_predict = atoi(argv[2]), threads = atoi(argv[3]);
    int cap = 1;
    for (const char *c = argv[4]; *c; c++) cap += *c == ',';
    llama_token *prompt = malloc(sizeof(llama_token) * (size_t)cap);
    int n_prompt = 0;
    for (char *s = argv[4], *end; *s; s = *end == ',' ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || (*end && *end != ',')) { fprintf(stderr, "bad token list at \"%s\"\n", s); return 1; }
        prompt[n_prompt++] = (llama_token)v;
    }
    if (n_prompt == 0 || n_predict < 0 || threads < 1) { fprintf(stderr, "need ids, N_PREDICT >= 0, THREADS >= 1\n"); return 1; }

    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "%s: cannot load the model\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int n_vocab = llama_vocab_n_tokens(vocab);
    for (int i = 0; i < n_prompt; i++) {
        if (prompt[i] >= n_vocab) { fprintf(stderr, "token %d out of range (%d)\n", prompt[i], n_vocab); return 1; }
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)(n_prompt + n_predict);
    cp.n_batch = (uint32_t)n_prompt;
    cp.n_ubatch = (uint32_t)n_prompt;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    const char *kv = getenv("LLAMA_GREEDY_KV");
    if (!kv || strcmp(kv, "f16") != 0) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
        cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    }
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create the context\n"); return 1; }
    const char *dump_path = getenv("LLAMA_GREEDY_LOGITS");
    if (dump_path && !(dump = fopen(dump_path, "wb"))) { fprintf(stderr, "%s: cannot write\n", dump_path); return 1; }

    struct llama_batch batch = llama_batch_init(n_prompt, 0, 1);
    for (int i = 0; i < n_prompt; i++) {
        batch.token[i] = prompt[i];
        batch.pos[i] = i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = n_predict == 0 || i == n_prompt - 1;
    }
    batch.n_tokens = n_prompt;
    if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "llama_decode failed on the prompt\n"); return 1; }
    if (n_predict == 0) {
        for (int i = 0; i < n_prompt; i++) emit(llama_get_logits_ith(ctx, i), n_vocab, i == 0);
    } else {
        llama_token next = emit(llama_get_logits_ith(ctx, n_prompt - 1), n_vocab, 1);
        for (int k = 1; k < n_predict; k++) {
            if (llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) { fprintf(stderr, "llama_decode failed at step %d\n", k); return 1; }
            next = emit(llama_get_logits_ith(ctx, -1), n_vocab, 0);
        }
    }
    printf("\n");
    if (dump && fclose(dump) != 0) { fprintf(stderr, "%s: write failed\n", dump_path); return 1; }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    free(prompt);
    return 0;
}
