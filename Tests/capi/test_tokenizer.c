/* C ABI test of the tokenizer: load, tokenize (flags, size queries, errors), detokenize, pieces,
 * chat formatting, stop ids, and one tokenizer shared by two threads.
 * Compiled with -std=c99 -Wall -Wextra -Werror -pedantic; loads the library with dlopen.
 * usage: test_tokenizer LIBRARY SHARED_DIR [SCRATCH_DIR] */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "abi_test.h"

typedef hy_status (*tokenize_fn)(const hy_tokenizer *, const char *, size_t, uint32_t, hy_token *, size_t, size_t *);

struct worker {
    tokenize_fn tokenize;
    const hy_tokenizer *tok;
    int ok;
};

static void *work(void *arg) {
    struct worker *w = (struct worker *)arg;
    hy_token ids[64];
    size_t n = 0;
    w->ok = 1;
    for (int i = 0; i < 2000; i++) {
        if (w->tokenize(w->tok, "Hello world, 你好世界", strlen("Hello world, 你好世界"), HY_TOKENIZE_NONE, ids, 64,
                        &n) != HY_OK || n == 0 || ids[0] != 9906)
            w->ok = 0;
    }
    return NULL;
}

int main(int argc, char **argv) {
    open_library(argc, argv);
    const char *shared = argc > 2 ? argv[2] : "../shared";
    char path[4096];

    LOAD(hy_last_error);
    LOAD(hy_status_name);
    LOAD(hy_tokenizer_load);
    LOAD(hy_tokenizer_free);
    LOAD(hy_tokenizer_vocab_size);
    LOAD(hy_tokenize);
    LOAD(hy_detokenize);
    LOAD(hy_token_to_piece);
    LOAD(hy_chat_tokenize);
    LOAD(hy_tokenizer_stop_ids);

    snprintf(path, sizeof path, "%s/data/tokenizer", shared);
    FILE *probe = NULL;
    {
        char file[4200];
        snprintf(file, sizeof file, "%s/hy.tiktoken", path);
        probe = fopen(file, "rb");
    }
    if (probe == NULL) {
        printf("test_tokenizer: SKIPPED (no hy.tiktoken in %s)\n", path);
        return 0;
    }
    fclose(probe);

    hy_tokenizer *tok = NULL;
    EXPECT_STATUS(p_hy_tokenizer_load(NULL, &tok), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_tokenizer_load("/nonexistent/hy.tiktoken", &tok), HY_ERR_IO);
    CHECK(tok == NULL, "failed load left a handle");
    EXPECT_STATUS(p_hy_tokenizer_load(path, &tok), HY_OK);
    if (tok == NULL) return finish("test_tokenizer");
    CHECK(p_hy_tokenizer_vocab_size(tok) == 128166, "vocab size %zu", p_hy_tokenizer_vocab_size(tok));
    CHECK(p_hy_tokenizer_vocab_size(NULL) == 0, "NULL vocab size");
    p_hy_tokenizer_free(NULL);

    /* size query, then the real call; default flags wrap and parse specials */
    const char *text = "Hello<|eos|>";
    size_t need = 0;
    EXPECT_STATUS(p_hy_tokenize(tok, text, strlen(text), HY_TOKENIZE_DEFAULT, NULL, 0, &need), HY_ERR_INVALID_ARGUMENT);
    CHECK(need == 4, "n_needed %zu", need);
    hy_token ids[64];
    size_t n = 0;
    EXPECT_STATUS(p_hy_tokenize(tok, text, strlen(text), HY_TOKENIZE_DEFAULT, ids, 64, &n), HY_OK);
    CHECK(n == 4 && ids[0] == HY_TOKEN_STARTOFTEXT && ids[1] == 9906 && ids[2] == HY_TOKEN_EOS &&
              ids[3] == HY_TOKEN_ENDOFTEXT, "ids %d %d %d %d", ids[0], ids[1], ids[2], ids[3]);
    EXPECT_STATUS(p_hy_tokenize(tok, text, strlen(text), HY_TOKENIZE_NONE, ids, 64, &n), HY_OK);
    CHECK(n > 2 && ids[0] == 9906, "no-special n=%zu", n);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] < 127957, "special id %d from unparsed text", ids[i]);
    EXPECT_STATUS(p_hy_tokenize(tok, NULL, 0, HY_TOKENIZE_NONE, ids, 64, &n), HY_OK);
    CHECK(n == 0, "empty text gave %zu ids", n);
    EXPECT_STATUS(p_hy_tokenize(tok, "a\xff", 2, HY_TOKENIZE_NONE, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);
    CHECK(strstr(p_hy_last_error(), "UTF-8") != NULL, "message: %s", p_hy_last_error());
    EXPECT_STATUS(p_hy_tokenize(tok, "a", 1, 8, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_tokenize(NULL, "a", 1, 0, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_tokenize(tok, NULL, 3, 0, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);

    /* detokenize: round trip, size query, bad ids */
    const char *src = "naïve 世界 🎉";
    EXPECT_STATUS(p_hy_tokenize(tok, src, strlen(src), HY_TOKENIZE_NONE, ids, 64, &n), HY_OK);
    char buf[256];
    size_t nb = 0;
    EXPECT_STATUS(p_hy_detokenize(tok, ids, n, buf, 3, &nb), HY_ERR_INVALID_ARGUMENT);
    CHECK(nb == strlen(src), "n_needed %zu", nb);
    EXPECT_STATUS(p_hy_detokenize(tok, ids, n, buf, sizeof buf, &nb), HY_OK);
    CHECK(nb == strlen(src) && memcmp(buf, src, nb) == 0, "round trip %.*s", (int)nb, buf);
    hy_token bad = 128166;
    EXPECT_STATUS(p_hy_detokenize(tok, &bad, 1, buf, sizeof buf, &nb), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_token_to_piece(tok, HY_TOKEN_EOS, buf, sizeof buf, &nb), HY_OK);
    CHECK(nb == 7 && memcmp(buf, "<|eos|>", 7) == 0, "piece %.*s", (int)nb, buf);
    EXPECT_STATUS(p_hy_token_to_piece(tok, -1, buf, sizeof buf, &nb), HY_ERR_INVALID_ARGUMENT);

    /* chat: the example */
    hy_chat_message msgs[2] = {{"system", "You are a helpful assistant."}, {"user", "Hello"}};
    const hy_token want[10] = {127958, 2675, 527, 264, 11190, 18328, 13, 127966, 9906, 127962};
    EXPECT_STATUS(p_hy_chat_tokenize(tok, msgs, 2, 0, ids, 64, &n), HY_OK);
    CHECK(n == 10 && memcmp(ids, want, sizeof want) == 0, "chat ids (n=%zu)", n);
    EXPECT_STATUS(p_hy_chat_tokenize(tok, msgs, 2, 0, ids, 5, &n), HY_ERR_INVALID_ARGUMENT);
    CHECK(n == 10, "chat n_needed %zu", n);
    hy_chat_message odd[1] = {{"tool", "x"}};
    EXPECT_STATUS(p_hy_chat_tokenize(tok, odd, 1, 0, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);
    hy_chat_message null_content[1] = {{"user", NULL}};
    EXPECT_STATUS(p_hy_chat_tokenize(tok, null_content, 1, 0, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);
    EXPECT_STATUS(p_hy_chat_tokenize(tok, msgs, 2, 1, ids, 64, &n), HY_ERR_INVALID_ARGUMENT);

    EXPECT_STATUS(p_hy_tokenizer_stop_ids(tok, ids, 64, &n), HY_OK);
    CHECK(n == 2 && ids[0] == 127960 && ids[1] == 127967, "stop ids n=%zu", n);

    /* one handle, two threads */
    struct worker w[2] = {{p_hy_tokenize, tok, 0}, {p_hy_tokenize, tok, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, work, &w[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(w[0].ok && w[1].ok, "concurrent tokenize");

    p_hy_tokenizer_free(tok);
    return finish("test_tokenizer");
}
