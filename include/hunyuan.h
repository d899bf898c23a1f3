/*
 * hunyuan.h — the C ABI of libhunyuan: Tencent Hunyuan's open models on a CPU.
 *
 * This header is the only public contract of the library. It is C99 and usable from C++.
 * Read it top to bottom: conventions first, then one section per engine.
 *
 * Conventions
 * -----------
 * - Every fallible function returns hy_status; HY_OK (0) is success. On failure the message is in
 *   hy_last_error() (thread-local: it describes the last failed call made on the calling thread).
 *   A failed call leaves its handles usable and writes no output parameter except where stated.
 * - Opaque handles are created by a *_load / *_new / *_open function and released by the matching
 *   *_free. Freeing NULL is a no-op. Passing a pointer that the library never returned (or one that
 *   was already freed) is the caller's bug, as in every C library: it cannot be detected.
 * - Params structs start with `uint32_t struct_size`, which the caller sets to sizeof(the struct)
 *   as its header knew it; hy_*_default_params() fills a struct with defaults and the size. New fields
 *   are only ever appended, so an old caller's source keeps compiling and working, and a struct that
 *   an old binary filled itself (struct_size = its sizeof) is read correctly; a struct_size smaller
 *   than the first version of the struct is HY_ERR_INVALID_ARGUMENT. Passing NULL for params means
 *   "defaults". Note: hy_*_default_params() return the struct by value in the library's own (newest)
 *   layout, so a binary built against an older header that calls one of them must be rebuilt
 *   against the header of the library it loads.
 * - Strings passed in are NUL-terminated UTF-8; invalid UTF-8 is HY_ERR_INVALID_ARGUMENT.
 *   Strings returned are owned by the library and valid as documented per function.
 * - Variable-size output goes into caller-owned buffers with a capacity and a `size_t *n_needed`
 *   out-parameter; a buffer that is too small gives HY_ERR_INVALID_ARGUMENT with n_needed set, so the
 *   caller can retry.
 * - Callbacks are `fn(..., void *user)`. Each callback's thread is stated where it is accepted.
 *   A progress callback returning false, or an abort callback returning true, cancels the work:
 *   the call returns HY_ERR_ABORTED and nothing partial is kept.
 * - Threads: functions on different handles may run concurrently. A handle documented as
 *   "shareable" may be used by many threads at once; any other handle by one thread at a time.
 *
 * Usage (text in, text out; error handling shortened)
 * -----
 *     static bool print_piece(const char *piece, size_t len, void *user) {
 *         (void)user; fwrite(piece, 1, len, stdout); return true;
 *     }
 *     hy_model *model; hy_session *session;
 *     if (hy_model_load("builtin:hunyuan-tiny", NULL, &model) != HY_OK) {
 *         fprintf(stderr, "%s\n", hy_last_error()); return 1;
 *     }
 *     hy_session_new(model, NULL, &session);
 *     hy_generate_params gp = hy_generate_default_params();
 *     gp.max_tokens = 64;
 *     const char *prompt = "Once upon a time";
 *     hy_generate_text(session, hy_model_tokenizer(model), prompt, strlen(prompt), HY_TOKENIZE_NONE,
 *                      &gp, NULL, print_piece, NULL, NULL, NULL);
 *     hy_session_free(session);
 *     hy_model_free(model);
 */
#ifndef HUNYUAN_H
#define HUNYUAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define HY_API __attribute__((visibility("default")))
#else
#define HY_API
#endif

/* ABI version: bumped only when an existing function, struct field or enum value changes meaning.
 * Appending functions, struct fields or enum values keeps it. The shared object is libhunyuan.so.0. */
#define HY_ABI_VERSION 0

/* ==== Status, errors, logging ================================================================ */

/* Status codes. The values are fixed forever; new codes are only appended. */
typedef enum hy_status {
    HY_OK = 0,
    HY_ERR_INVALID_ARGUMENT = 1, /* NULL where a value is required, out-of-range size, bad UTF-8 */
    HY_ERR_IO = 2,               /* a file could not be opened, read or written */
    HY_ERR_FORMAT = 3,           /* a file's content is corrupt, truncated or inconsistent */
    HY_ERR_UNSUPPORTED = 4,      /* a valid request this build or model does not support */
    HY_ERR_OUT_OF_MEMORY = 5,    /* an allocation failed or would exceed a stated limit */
    HY_ERR_CONTEXT_FULL = 6,     /* a session has no room for more tokens */
    HY_ERR_ABORTED = 7,          /* cancelled through a progress or abort callback */
    HY_ERR_INTERNAL = 8          /* a bug in the library: please report it with the message */
} hy_status;

/* The message of the last failed call on this thread, in UTF-8. Never NULL: "" when no call has
 * failed yet. Valid until the next failing call on the same thread. */
HY_API const char *hy_last_error(void);

/* Short English name of a status ("HY_ERR_FORMAT"); "HY_ERR_UNKNOWN" for values not listed above. */
HY_API const char *hy_status_name(hy_status status);

/* The ABI version the library was built with (HY_ABI_VERSION of its header). A caller compiled
 * against a different major version must not use the library. */
HY_API uint32_t hy_abi_version(void);

/* Human-readable version, e.g. "0.1.0 (abi 0)". Static storage. */
HY_API const char *hy_version_string(void);

typedef enum hy_log_level {
    HY_LOG_DEBUG = 0,
    HY_LOG_INFO = 1,
    HY_LOG_WARN = 2,
    HY_LOG_ERROR = 3,
    HY_LOG_NONE = 4
} hy_log_level;

/* Receives one log line (UTF-8, no trailing newline; valid only during the call). May be called from
 * any thread, including the library's worker threads, and concurrently; it must not call back into
 * the library. */
typedef void (*hy_log_callback)(hy_log_level level, const char *message, void *user);

/* Installs a process-wide log sink for messages at or above min_level. NULL restores the default
 * (messages at HY_LOG_WARN and above go to stderr). Thread-safe. */
HY_API void hy_set_log_callback(hy_log_callback callback, hy_log_level min_level, void *user);

/* Progress of long work, in [0, 1]. Return false to cancel. Called on the thread that made the call
 * unless stated otherwise. */
typedef bool (*hy_progress_callback)(float progress, void *user);

/* Polled during long work; return true to stop it. May be called from the library's worker threads. */
typedef bool (*hy_abort_callback)(void *user);

/* ==== System ================================================================================= */

/* What this machine and build offer, as a static NUL-terminated string such as
 * "AVX2=1 FMA=1 AVX512F=0 AVX512_VNNI=0 BLAS=OpenBLAS threads=2". */
HY_API const char *hy_system_info(void);

/* ==== Checkpoints (safetensors) =============================================================== */

/* A read-only view of a safetensors checkpoint: one .safetensors file, or a folder holding
 * model.safetensors or model.safetensors.index.json with its shards. Files are memory-mapped and
 * fully validated when opened (header, dtypes, shapes, byte ranges, shard index).
 * Shareable: all functions below may be called from many threads at once. */
typedef struct hy_checkpoint hy_checkpoint;

typedef enum hy_dtype {
    HY_DTYPE_F32 = 0,
    HY_DTYPE_F16 = 1,
    HY_DTYPE_BF16 = 2,
    HY_DTYPE_F8_E4M3 = 3,
    HY_DTYPE_I8 = 4,
    HY_DTYPE_I32 = 5,
    HY_DTYPE_I64 = 6,
    HY_DTYPE_U8 = 7
} hy_dtype;

#define HY_MAX_DIMS 8

typedef struct hy_tensor_info {
    const char *name;             /* owned by the checkpoint; valid until hy_checkpoint_free */
    hy_dtype dtype;
    uint32_t n_dims;              /* 0 for a scalar; at most HY_MAX_DIMS */
    int64_t shape[HY_MAX_DIMS];   /* first n_dims entries are used */
    uint64_t n_bytes;             /* byte length of the stored data */
} hy_tensor_info;

typedef struct hy_checkpoint_params {
    uint32_t struct_size;         /* sizeof(hy_checkpoint_params) */
} hy_checkpoint_params;

HY_API hy_checkpoint_params hy_checkpoint_default_params(void);

/* Opens a checkpoint. path: a .safetensors file or a folder (see above). On success *out receives a
 * handle to free with hy_checkpoint_free. Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8, bad
 * struct_size), HY_ERR_IO (missing, unreadable, a folder without weights), HY_ERR_FORMAT (corrupt or
 * inconsistent file; the message names the file and the problem). */
HY_API hy_status hy_checkpoint_open(const char *path, const hy_checkpoint_params *params,
                                    hy_checkpoint **out);

HY_API void hy_checkpoint_free(hy_checkpoint *checkpoint);

/* Number of tensors (over all shards). 0 for NULL. */
HY_API size_t hy_checkpoint_tensor_count(const hy_checkpoint *checkpoint);

/* Describes tensor `index` (0 ≤ index < count; tensors are sorted by name). */
HY_API hy_status hy_checkpoint_tensor_info(const hy_checkpoint *checkpoint, size_t index,
                                           hy_tensor_info *out);

/* Finds a tensor by name. HY_ERR_INVALID_ARGUMENT naming it when absent. */
HY_API hy_status hy_checkpoint_find(const hy_checkpoint *checkpoint, const char *name, size_t *index);

/* Converts tensor `index` to float32 into `out`, which holds `capacity` floats; the tensor's element
 * count must fit (otherwise HY_ERR_INVALID_ARGUMENT). Float and integer dtypes are converted. */
HY_API hy_status hy_checkpoint_read_f32(const hy_checkpoint *checkpoint, size_t index, float *out,
                                        size_t capacity);

/* ==== Language models ========================================================================= */

/* Hunyuan language models as Tencent / Hugging Face ship them: a folder with config.json,
 * generation_config.json (optional) and safetensors weights (one file, or shards + index), stored as
 * f32, f16 or bf16 and used in place (memory-mapped). Architectures: HunYuanForCausalLM
 * (Hunyuan-Large), HunYuanMoEV1ForCausalLM (Hunyuan-A13B), HunYuanDenseV1ForCausalLM (dense
 * Hunyuan 0.5B-7B); any other is HY_ERR_UNSUPPORTED naming it.
 *
 * hy_model: the weights. Immutable once loaded; shareable: any number of sessions on any threads.
 * hy_session: a KV cache, activation buffers and the last logits. One thread at a time. A session
 * keeps its model alive (freeing the model first is allowed). */
typedef struct hy_model hy_model;
typedef struct hy_session hy_session;

typedef enum hy_lm_arch {
    HY_LM_ARCH_HUNYUAN_LARGE = 0,     /* HunYuanForCausalLM */
    HY_LM_ARCH_HUNYUAN_MOE_V1 = 1,    /* HunYuanMoEV1ForCausalLM */
    HY_LM_ARCH_HUNYUAN_DENSE_V1 = 2   /* HunYuanDenseV1ForCausalLM */
} hy_lm_arch;

typedef struct hy_model_params {
    uint32_t struct_size;             /* sizeof(hy_model_params) */
    int32_t n_threads;                /* default threads of this model's sessions; 0 = all processors */
    hy_progress_callback progress;    /* optional; called on the loading thread; false cancels */
    void *progress_user;
} hy_model_params;

HY_API hy_model_params hy_model_default_params(void);

/* Loads the model folder `path`. On success *out receives a handle for hy_model_free.
 * Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8, bad struct_size), HY_ERR_IO (missing folder or
 * files), HY_ERR_FORMAT (bad config, corrupt safetensors, a missing tensor or wrong shape, config and
 * weights that disagree: the message names the tensor), HY_ERR_UNSUPPORTED (architecture, dtype),
 * HY_ERR_ABORTED (progress returned false). */
HY_API hy_status hy_model_load(const char *path, const hy_model_params *params, hy_model **out);

/* Releases the caller's reference; sessions created from it keep the weights until they are freed. */
HY_API void hy_model_free(hy_model *model);

struct hy_tokenizer; /* the tokenizer handle (hy_tokenizer, see the Tokenizer section) */

/* The tokenizer of the model's folder (its hy.tiktoken, loaded and validated by hy_model_load: a corrupt
 * one fails the load with HY_ERR_FORMAT), or NULL when the folder has none or model is NULL. Borrowed:
 * owned by the model, valid until hy_model_free; never pass it to hy_tokenizer_free. */
HY_API const struct hy_tokenizer *hy_model_tokenizer(const hy_model *model);

#define HY_MAX_EOS_TOKENS 8

typedef struct hy_model_info {
    uint32_t struct_size;             /* set by the caller to sizeof(hy_model_info) */
    hy_lm_arch arch;
    int32_t n_vocab;
    int32_t n_embd;                   /* hidden_size */
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    int32_t n_ctx_train;              /* max_position_embeddings */
    int32_t n_expert;                 /* routed experts per layer (0 for dense models) */
    int32_t n_expert_used;            /* largest moe_topk over the layers (0 for dense models) */
    int32_t cla_share_factor;         /* layers sharing one KV entry (1 = no cross-layer attention) */
    int32_t bos_token_id;             /* -1 when unknown */
    int32_t n_eos;                    /* number of entries used in eos_token_ids */
    int32_t eos_token_ids[HY_MAX_EOS_TOKENS]; /* stop tokens (generation_config.json, else config.json) */
    uint64_t n_params;                /* stored parameters */
    uint64_t weight_bytes;            /* bytes of stored weights */
    uint64_t kv_bytes_per_token;      /* KV-cache bytes one cached token takes in a session */
} hy_model_info;

/* Fills *out (the first out->struct_size bytes). Errors: HY_ERR_INVALID_ARGUMENT. Thread-safe. */
HY_API hy_status hy_model_get_info(const hy_model *model, hy_model_info *out);

typedef struct hy_session_params {
    uint32_t struct_size;             /* sizeof(hy_session_params) */
    uint32_t n_ctx;                   /* positions the cache holds; 0 = max_position_embeddings capped
                                         so the cache takes at most 1/4 of physical memory */
    int32_t n_threads;                /* 0 = the model's n_threads */
    uint32_t n_batch;                 /* prompt tokens per GEMM pass; 0 = 128 */
    int32_t kv_type;                  /* hy_kv_type: storage of cached keys/values; HY_KV_AUTO */
} hy_session_params;

/* Storage of a session's KV cache. F16 halves its bytes per token (keys and values rounded to f16
 * once when cached: logits drift by ~1e-3); Q8_0 takes 8.5 bits per value (blocks of 32 with an f16
 * scale; logits drift by ~1e-2; needs head_dim % 32 == 0, else HY_ERR_UNSUPPORTED). AUTO (the
 * default) is F32 for contexts up to HY_KV_AUTO_F32_MAX positions and Q8_0 above (F32 where
 * head_dim % 32 != 0); hy_session_kv_type tells which a session took. */
#define HY_KV_AUTO_F32_MAX 8192
typedef enum hy_kv_type {
    HY_KV_AUTO = -1,
    HY_KV_F32 = 0,
    HY_KV_F16 = 1,
    HY_KV_Q8_0 = 2
} hy_kv_type;

HY_API hy_session_params hy_session_default_params(void);

/* Creates a session on `model`. Errors: HY_ERR_INVALID_ARGUMENT (incl. an unknown kv_type),
 * HY_ERR_OUT_OF_MEMORY. */
HY_API hy_status hy_session_new(const hy_model *model, const hy_session_params *params, hy_session **out);

HY_API void hy_session_free(hy_session *session);

/* Forgets every cached token. NULL is a no-op. */
HY_API void hy_session_reset(hy_session *session);

/* Keeps the first n_keep cached tokens and drops the rest (n_keep >= count: nothing changes).
 * Logits become unavailable until the next eval. Errors: HY_ERR_INVALID_ARGUMENT (NULL). */
HY_API hy_status hy_session_truncate(hy_session *session, size_t n_keep);

/* Tokens currently cached, and the session's context length. 0 for NULL. */
HY_API size_t hy_session_n_past(const hy_session *session);
HY_API size_t hy_session_n_ctx(const hy_session *session);

/* The storage the session's KV cache uses (never HY_KV_AUTO; HY_KV_F32 for NULL), and the bytes it
 * holds for all n_ctx positions (allocated when the session was made; 0 for NULL). */
HY_API hy_kv_type hy_session_kv_type(const hy_session *session);
HY_API size_t hy_session_kv_bytes(const hy_session *session);

typedef struct hy_eval_params {
    uint32_t struct_size;             /* sizeof(hy_eval_params) */
    bool all_logits;                  /* keep the logits of every evaluated position, not only the last */
    hy_abort_callback abort;          /* optional; polled on the calling thread before every layer */
    void *abort_user;
} hy_eval_params;

HY_API hy_eval_params hy_eval_default_params(void);

/* Appends tokens[0..n) to the session and runs them through the model (prompts as GEMMs, single
 * tokens as matrix-vector products). params may be NULL. On any error the session is unchanged
 * and stays usable. Errors: HY_ERR_INVALID_ARGUMENT (NULL, n == 0, a token id < 0 or >= n_vocab:
 * the message names it), HY_ERR_CONTEXT_FULL (n_past + n > n_ctx: reset or truncate, then retry),
 * HY_ERR_ABORTED. */
HY_API hy_status hy_session_eval(hy_session *session, const int32_t *tokens, size_t n,
                                 const hy_eval_params *params);

/* Borrowed logits of the last successful eval: [*n_rows, *n_vocab] floats, row-major. n_rows is the
 * number of tokens of that eval when it asked for all_logits, else 1 (the last position). Valid until
 * the next call on this session. Errors: HY_ERR_INVALID_ARGUMENT (NULL, or no logits: nothing
 * evaluated since the session was created, reset or truncated). */
HY_API hy_status hy_session_logits(const hy_session *session, const float **logits, size_t *n_rows,
                                   size_t *n_vocab);

/* Sampling with Hugging Face generate() semantics, applied in this order: repetition penalty,
 * temperature, top-k, top-p, min-p, then a draw from the softmax. greedy (or temperature 0) takes
 * the argmax after the repetition penalty. */
typedef struct hy_sampler_params {
    uint32_t struct_size;             /* sizeof(hy_sampler_params) */
    bool greedy;
    float temperature;                /* > 0; default 1 */
    int32_t top_k;                    /* 0 = off */
    float top_p;                      /* (0, 1]; 1 = off */
    float min_p;                      /* [0, 1]; 0 = off */
    float repeat_penalty;             /* HF repetition_penalty over the whole context; 1 = off */
    uint64_t seed;                    /* same seed, same tokens */
} hy_sampler_params;

/* Neutral defaults: temperature 1, no top-k/top-p/min-p/penalty, seed 0. */
HY_API hy_sampler_params hy_sampler_default_params(void);

/* The model's own defaults from generation_config.json (do_sample false means greedy), e.g.
 * Hunyuan-Large Instruct: temperature 0.7, top_k 20, top_p 0.6, repetition_penalty 1.05.
 * NULL model gives hy_sampler_default_params(). */
HY_API hy_sampler_params hy_model_sampler_params(const hy_model *model);

typedef enum hy_stop_reason {
    HY_STOP_MAX_TOKENS = 0,           /* max_tokens generated */
    HY_STOP_EOS = 1,                  /* an end-of-sequence token was generated (it is reported) */
    HY_STOP_CALLBACK = 2,             /* the token callback (or hy_generate_text's text callback)
                                         returned false */
    HY_STOP_STRING = 3                /* hy_generate_text: the text reached one of params->stop */
} hy_stop_reason;

/* Receives each generated token on the calling thread, before it is decoded. Return false to stop. */
typedef bool (*hy_token_callback)(int32_t token, void *user);

typedef struct hy_generate_params {
    uint32_t struct_size;             /* sizeof(hy_generate_params) */
    uint32_t max_tokens;              /* default 128 */
    hy_token_callback on_token;       /* optional */
    void *token_user;
    hy_abort_callback abort;          /* optional; polled before every token and, during the prompt,
                                         before every layer; on the calling thread */
    void *abort_user;
    const char *const *stop;          /* hy_generate_text: stop strings stop[0 .. n_stop), each
                                         NUL-terminated, non-empty UTF-8, read during the call only;
                                         may be NULL when n_stop is 0. hy_generate neither reads nor
                                         checks stop and n_stop. */
    size_t n_stop;                    /* default 0; at most 65536 */
} hy_generate_params;

HY_API hy_generate_params hy_generate_default_params(void);

/* Appends the prompt tokens[0..n) (n may be 0 to continue from the session's current logits), then
 * samples up to max_tokens tokens, stopping at the model's eos ids. sampler NULL = the model's
 * defaults (hy_model_sampler_params). The generated ids go to out_tokens (up to out_capacity; it may
 * be NULL with capacity 0) and their count to *n_out (optional) — also when the call fails part-way
 * (HY_ERR_CONTEXT_FULL, HY_ERR_ABORTED), so what was produced is not lost. The last generated token is
 * not yet in the cache; evaluating it continues the text. Errors: as hy_session_eval, plus invalid
 * sampler values. (hy_generate_text below is the text-in/text-out variant.) */
HY_API hy_status hy_generate(hy_session *session, const int32_t *tokens, size_t n,
                             const hy_generate_params *params, const hy_sampler_params *sampler,
                             int32_t *out_tokens, size_t out_capacity, size_t *n_out,
                             hy_stop_reason *reason);


/* Receives generated text in pieces of whole UTF-8 characters (bytes of a character split across
 * tokens wait for the rest; special tokens produce no text). `piece` is not NUL-terminated and is
 * valid only during the call; called on the calling thread. Return false to stop. */
typedef bool (*hy_text_callback)(const char *piece, size_t len, void *user);

/* Text in, text out: encodes prompt[0 .. prompt_len) as a generation prompt, appends it to the
 * session, generates as hy_generate — stopping at the model's eos ids and the tokenizer's stop ids —
 * and streams the text through on_text (optional).
 * tokenize_flags (hy_tokenize_flags): 0 (HY_TOKENIZE_NONE, recommended) encodes `<|startoftext|>` +
 * the text with special surface forms kept as plain text, so untrusted text cannot forge control
 * tokens; HY_TOKENIZE_PARSE_SPECIAL also turns special surface forms into their ids (trusted prompts
 * only); HY_TOKENIZE_WRAP uses the official encode's full wrap, which also appends `<|endoftext|>`;
 * HY_TOKENIZE_CONTINUE encodes the text alone, continuing what the session holds (e.g. after a chat
 * prompt evaluated with hy_session_eval; an empty prompt then continues from the session's logits).
 * Stop strings (params->stop): generation ends as soon as the generated text contains one of them
 * (reason HY_STOP_STRING); the earliest occurrence wins, and it and everything after it are never
 * passed to on_text. Until then, a tail of the text that could still be the start of a stop string is
 * held back and passed on once it cannot (or when generation ends for another reason). Text is
 * matched after decoding: special tokens produce none, so a stop string never matches them.
 * params->on_token, when set, also receives every id. *n_out (optional) receives the number of
 * generated tokens (including the stop id or the tokens that completed a stop string), also when the
 * call fails part-way; on such a failure the text already passed to on_text stays passed and held-back
 * text is dropped. Errors: HY_ERR_INVALID_ARGUMENT for a NULL, non-UTF-8 or empty stop string (its
 * index named) or unknown flag bits; a prompt id the model's vocabulary lacks is
 * HY_ERR_INVALID_ARGUMENT (tokenizer and model do not belong together); else as hy_generate. */
HY_API hy_status hy_generate_text(hy_session *session, const struct hy_tokenizer *tokenizer,
                                  const char *prompt, size_t prompt_len, uint32_t tokenize_flags,
                                  const hy_generate_params *params, const hy_sampler_params *sampler,
                                  hy_text_callback on_text, void *text_user, size_t *n_out,
                                  hy_stop_reason *reason);

/* ==== Tokenizer =============================================================================== */

/* Hunyuan's tokenizer (tokenization_hy.py): byte-level BPE over the 127,957 ranks of hy.tiktoken,
 * then 209 special tokens: <|endoftext|> 127957, <|startoftext|> 127958, <|bos|> 127959,
 * <|eos|> 127960, <|pad|> 127961, <|extra_0|> ... <|extra_203|> = 127962 ... 128165.
 * Text is NFC-normalized before splitting, exactly like the official encode; ids match tiktoken.
 * Immutable once loaded: shareable, every function below may be called from many threads at once. */
typedef struct hy_tokenizer hy_tokenizer;

typedef int32_t hy_token;

#define HY_TOKEN_ENDOFTEXT 127957
#define HY_TOKEN_STARTOFTEXT 127958
#define HY_TOKEN_EOS 127960
#define HY_TOKEN_PAD 127961
#define HY_TOKEN_EXTRA_0 127962 /* <|extra_i|> is HY_TOKEN_EXTRA_0 + i, 0 <= i < 204 */

/* Flags of hy_tokenize. The official encode uses both: pass HY_TOKENIZE_DEFAULT to match it. */
typedef enum hy_tokenize_flags {
    HY_TOKENIZE_NONE = 0,
    /* Surround the ids with <|startoftext|> ... <|endoftext|> (the official default). */
    HY_TOKENIZE_WRAP = 1,
    /* Turn special surface forms in the text (e.g. "<|eos|>") into their ids (the official default,
     * allowed_special="all"). Leave it off for text from an untrusted user: then "<|eos|>" is
     * encoded as ordinary characters and cannot forge a control token. */
    HY_TOKENIZE_PARSE_SPECIAL = 2,
    HY_TOKENIZE_DEFAULT = 3,
    /* hy_generate_text only (hy_tokenize refuses it; not with HY_TOKENIZE_WRAP): no <|startoftext|>,
     * the prompt continues the text the session already holds. */
    HY_TOKENIZE_CONTINUE = 4
} hy_tokenize_flags;

/* Loads a tokenizer. path: an hy.tiktoken file or a folder holding one (a checkpoint folder).
 * tokenizer_config.json and generation_config.json beside it, when present, give the chat format
 * and the stop ids. The vocabulary is validated: malformed base64, duplicate or missing ranks, a
 * repeated token or a wrong rank count give HY_ERR_FORMAT with the file and line number.
 * Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8), HY_ERR_IO, HY_ERR_FORMAT.
 * On success *out receives a handle to free with hy_tokenizer_free. */
HY_API hy_status hy_tokenizer_load(const char *path, hy_tokenizer **out);

HY_API void hy_tokenizer_free(hy_tokenizer *tokenizer);

/* Number of valid ids (ranks + specials): 128166. 0 for NULL. */
HY_API size_t hy_tokenizer_vocab_size(const hy_tokenizer *tokenizer);

/* Encodes text[0 .. text_len) (UTF-8, need not be NUL-terminated; NULL allowed when text_len is 0)
 * with `flags` (hy_tokenize_flags, OR-ed). The ids go to ids_out[0 .. capacity); *n_needed always
 * receives the number of ids (also on HY_ERR_INVALID_ARGUMENT for a too-small buffer, so a caller
 * can pass capacity 0 to ask for the size). Invalid UTF-8 → HY_ERR_INVALID_ARGUMENT naming the byte
 * offset (n_needed is then 0). Unknown flag bits → HY_ERR_INVALID_ARGUMENT. */
HY_API hy_status hy_tokenize(const hy_tokenizer *tokenizer, const char *text, size_t text_len, uint32_t flags,
                             hy_token *ids_out, size_t capacity, size_t *n_needed);

/* Decodes ids[0 .. n) to their bytes, concatenated, into buf[0 .. capacity) (not NUL-terminated;
 * specials give their surface form). The bytes are UTF-8 when the ids came from hy_tokenize; a
 * sequence cut between ids may leave an incomplete character at either end. *n_needed receives
 * the byte count; too small a buffer → HY_ERR_INVALID_ARGUMENT with n_needed set. An id outside
 * [0, vocab size) → HY_ERR_INVALID_ARGUMENT naming it. */
HY_API hy_status hy_detokenize(const hy_tokenizer *tokenizer, const hy_token *ids, size_t n, char *buf,
                               size_t capacity, size_t *n_needed);

/* The bytes of one token (possibly part of a UTF-8 character) into buf, not NUL-terminated; same
 * buffer rules as hy_detokenize. */
HY_API hy_status hy_token_to_piece(const hy_tokenizer *tokenizer, hy_token id, char *buf, size_t capacity,
                                   size_t *n_needed);

/* One chat message: role is "system", "user" or "assistant"; content is UTF-8 text. Both
 * NUL-terminated and borrowed for the duration of the call. */
typedef struct hy_chat_message {
    const char *role;
    const char *content;
} hy_chat_message;

/* Formats messages[0 .. n) in the model's chat format and encodes them, into ids_out (same buffer
 * rules as hy_tokenize). Hunyuan-Large Instruct's format:
 *   system (first) → <|startoftext|>{system}<|extra_4|>;  first user after it → {user}<|extra_0|>;
 *   other users → <|startoftext|>{user}<|extra_0|>;  assistant → {content}<|eos|>.
 * Generation continues after the last <|extra_0|>. Contents never parse special surface forms:
 * control tokens are inserted by id. flags must be 0 (reserved).
 * Errors: HY_ERR_UNSUPPORTED naming the model when the tokenizer's folder has a
 * tokenizer_config.json whose chat template is not Hunyuan-Large Instruct's (e.g. Hunyuan-A13B);
 * HY_ERR_INVALID_ARGUMENT for an unknown role, NULL strings or invalid UTF-8. */
HY_API hy_status hy_chat_tokenize(const hy_tokenizer *tokenizer, const hy_chat_message *messages, size_t n,
                                  uint32_t flags, hy_token *ids_out, size_t capacity, size_t *n_needed);

/* Writes the ids that end generation (generation_config.json's eos_token_id; without one
 * <|endoftext|>, <|eos|> and <|extra_5|>) into ids_out; same buffer rules as hy_tokenize. */
HY_API hy_status hy_tokenizer_stop_ids(const hy_tokenizer *tokenizer, hy_token *ids_out, size_t capacity,
                                       size_t *n_needed);

/* ==== Meshes ================================================================================== */

/* A triangle mesh: float positions [V][3], uint32 faces [F][3] wound counter-clockwise seen from
 * outside, and optional per-vertex colours (RGB or RGBA floats in [0, 1]), normals and UVs.
 * One thread at a time per mesh; different meshes may be used concurrently.
 *
 * Borrowed arrays: hy_mesh_positions / faces / colors / normals / uvs return pointers owned by the
 * mesh. They stay valid until the mesh is modified (any hy_mesh_* call taking a non-const hy_mesh*)
 * or freed; callers that keep data longer must copy it. */
typedef struct hy_mesh hy_mesh;

/* Flags of hy_mesh_from_grid / hy_mesh_from_field (bit mask). */
typedef enum hy_mesh_flags {
    HY_MESH_DEFAULT = 0,          /* values below the level are inside (signed-distance convention) */
    HY_MESH_INSIDE_ABOVE = 1,     /* values above the level are inside (density / occupancy) */
    HY_MESH_EDGE_VERTICES_ONLY = 2 /* no vertex inside a cell: the vertex set of classic marching cubes
                                      (PyMCubes, scikit-image); the ~1 in 2,000 cells that would get a
                                      centre vertex are fanned, possibly leaving a non-manifold edge */
} hy_mesh_flags;

/* Flags of hy_mesh_save / hy_mesh_render_preview (bit mask). */
typedef enum hy_save_flags {
    HY_SAVE_DEFAULT = 0,          /* fail with HY_ERR_IO if the file exists */
    HY_SAVE_OVERWRITE = 1         /* replace an existing file */
} hy_save_flags;

/* Iso-surface of a dense grid by marching cubes (face ambiguities resolved by the asymptotic decider,
 * so a surface that does not touch the grid border is closed, manifold and consistently wound).
 * values: dims[0]*dims[1]*dims[2] floats, C order (z fastest): value(x,y,z) = values[(x*Y + y)*Z + z];
 * count must equal that product and each dim must be in 2..65536.
 * bounds: NULL for voxel-index coordinates (sample (i,j,k) at (i,j,k)), or 6 floats
 * x0,y0,z0,x1,y1,z1 mapping the first and last samples of each axis (min < max).
 * level: the iso value. flags: hy_mesh_flags (other bits: HY_ERR_INVALID_ARGUMENT). n_threads: 0 = all processors.
 * Vertices lie on grid edges at the zero of the linear interpolation of value - level, plus (without
 * HY_MESH_EDGE_VERTICES_ONLY) a centre vertex in the rare cells whose surface piece cannot be
 * triangulated manifold from its edge vertices alone.
 * On success *out receives a new mesh (possibly empty) for hy_mesh_free.
 * Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad dims, count mismatch, NaN/inf value or level, bad
 * bounds), HY_ERR_OUT_OF_MEMORY (more than 2^32 vertices). */
HY_API hy_status hy_mesh_from_grid(const float *values, size_t count, const int32_t dims[3],
                                   const float *bounds, float level, uint32_t flags,
                                   int32_t n_threads, hy_mesh **out);

/* Fills out[dims[0]*dims[1]*dims[2]] (C order) with the field at the samples origin + (i, j, k) of
 * the whole grid. Called from the library's worker threads, concurrently for different blocks when
 * n_threads > 1 (pass n_threads = 1 for a callback that is not thread-safe). Return false to cancel. */
typedef bool (*hy_mesh_field_callback)(const int32_t origin[3], const int32_t dims[3], float *out,
                                       void *user);

/* Like hy_mesh_from_grid, but the grid of dims samples is never held in memory: the field is
 * requested in slabs of whole y-z planes (a few planes per worker), so 512^3 grids need only tens
 * of MB. Errors as hy_mesh_from_grid (a non-finite value written by the callback is
 * HY_ERR_INVALID_ARGUMENT), plus HY_ERR_ABORTED when the callback returns false. */
HY_API hy_status hy_mesh_from_field(const int32_t dims[3], const float *bounds, float level,
                                    uint32_t flags, int32_t n_threads, hy_mesh_field_callback field,
                                    void *user, hy_mesh **out);

/* A mesh from caller arrays (copied): positions [n_vertices][3], faces [n_faces][3] with indices
 * < n_vertices. Errors: HY_ERR_INVALID_ARGUMENT (NULL with a non-zero count, index out of range,
 * non-finite position). */
HY_API hy_status hy_mesh_new(const float *positions, size_t n_vertices, const uint32_t *faces,
                             size_t n_faces, hy_mesh **out);

/* Reads .obj / .ply / .glb / .stl (format from the extension). Errors: HY_ERR_IO (unreadable),
 * HY_ERR_FORMAT (corrupt: the message names the file), HY_ERR_UNSUPPORTED (unknown extension). */
HY_API hy_status hy_mesh_load(const char *path, hy_mesh **out);

HY_API void hy_mesh_free(hy_mesh *mesh);

/* Counts; 0 for NULL. */
HY_API size_t hy_mesh_vertex_count(const hy_mesh *mesh);
HY_API size_t hy_mesh_face_count(const hy_mesh *mesh);

/* Borrowed arrays (see above); NULL for NULL, for an empty mesh, or when the attribute is absent.
 * positions: [V][3]; faces: [F][3]; colors: [V][*channels] (channels 3 or 4 is stored to
 * *channels when not NULL); normals: [V][3]; uvs: [V][2]. */
HY_API const float *hy_mesh_positions(hy_mesh *mesh);
HY_API const uint32_t *hy_mesh_faces(hy_mesh *mesh);
HY_API const float *hy_mesh_colors(hy_mesh *mesh, int32_t *channels);
HY_API const float *hy_mesh_normals(hy_mesh *mesh);
HY_API const float *hy_mesh_uvs(hy_mesh *mesh);

/* Replaces the per-vertex colours: colors [V][channels] floats in [0, 1], channels 3 or 4;
 * NULL removes them. Errors: HY_ERR_INVALID_ARGUMENT (count != V * channels, bad channels). */
HY_API hy_status hy_mesh_set_colors(hy_mesh *mesh, const float *colors, size_t count, int32_t channels);

/* Derived properties of a mesh. */
typedef struct hy_mesh_stats {
    uint32_t struct_size;         /* sizeof(hy_mesh_stats); set by the caller */
    uint64_t n_vertices;
    uint64_t n_faces;
    float bounds[6];              /* x0 y0 z0 x1 y1 z1; zeros for an empty mesh */
    bool watertight;              /* every edge shared by exactly two faces */
    bool winding_consistent;      /* every shared edge traversed in opposite directions */
    int64_t euler_characteristic; /* V - E + F over the vertices faces use */
    uint64_t n_components;        /* vertex-connected components */
    double area;
    double volume;                /* signed; positive for a closed outward-wound mesh */
} hy_mesh_stats;

HY_API hy_status hy_mesh_get_stats(const hy_mesh *mesh, hy_mesh_stats *out);

/* Clean-up in place: merges vertices closer than merge_epsilon (0 = identical positions; attributes
 * averaged), drops faces using a vertex twice and repeated faces, drops unused vertices; then, when
 * keep_largest > 0, keeps only the keep_largest components with the most faces, and drops components
 * of fewer than min_component_faces faces. */
HY_API hy_status hy_mesh_clean(hy_mesh *mesh, float merge_epsilon, size_t keep_largest,
                               size_t min_component_faces);

typedef enum hy_smooth_method {
    HY_SMOOTH_TAUBIN = 0,         /* lambda 0.5 / mu -0.53 pairs: smooths without shrinking */
    HY_SMOOTH_LAPLACIAN = 1       /* uniform Laplacian, lambda 0.5: shrinks */
} hy_smooth_method;

HY_API hy_status hy_mesh_smooth(hy_mesh *mesh, int32_t iterations, hy_smooth_method method);

/* Quadric-error edge-collapse decimation to at most target_faces faces; a closed manifold mesh stays
 * closed and manifold, colours / UVs are interpolated. May stop above the target when no collapse
 * keeps the mesh valid. */
HY_API hy_status hy_mesh_simplify(hy_mesh *mesh, size_t target_faces);

/* Open3D-style vertex clustering on a grid of cell size voxel_size (> 0). */
HY_API hy_status hy_mesh_cluster(hy_mesh *mesh, float voxel_size);

/* Replaces the normals by area-weighted vertex normals. */
HY_API hy_status hy_mesh_compute_normals(hy_mesh *mesh);

/* Writes .obj (v x y z r g b; .mtl + .png when the mesh has UVs and a texture), .ply (binary, uchar
 * colours), .glb (glTF 2.0) or .stl (binary), by extension. Written to a temporary file renamed on
 * success: a failure leaves no file. flags: hy_save_flags. Errors: HY_ERR_IO (exists without
 * HY_SAVE_OVERWRITE, unwritable), HY_ERR_UNSUPPORTED (unknown extension). */
HY_API hy_status hy_mesh_save(const hy_mesh *mesh, const char *path, uint32_t flags);

/* Renders a size x size PNG (16..8192) with a 2x2 grid of views (front, side, top, three-quarter),
 * Lambert-shaded vertex colours (grey without colours). flags: hy_save_flags. */
HY_API hy_status hy_mesh_render_preview(const hy_mesh *mesh, const char *path, int32_t size,
                                        uint32_t flags);

/* ==== Reconstruction ========================================================================== */

/* Hunyuan3D-1.0's sparse-view reconstruction model (SVRM): 7 views (6 generated views at azimuth
 * 0, 60, ..., 300 degrees, then the condition image) → a triplane → signed distance (< 0 inside) and
 * colour at any point of the box [-0.6, 0.6]^3. Loads the released svrm/svrm.safetensors (a folder
 * holding it, with an optional config.json; or the file itself) under the official tensor names,
 * f32/f16/bf16, checking every tensor's name and shape.
 *
 * hy_recon holds the weights and the triplane of the last hy_recon_encode. One thread at a time
 * (the library parallelises each call internally over n_threads). */
typedef struct hy_recon hy_recon;

typedef struct hy_recon_params {
    uint32_t struct_size;             /* sizeof(hy_recon_params) */
    int32_t n_threads;                /* worker threads for every call on this handle; 0 = all processors */
} hy_recon_params;

HY_API hy_recon_params hy_recon_default_params(void);

/* Loads a model. On success *out receives a handle for hy_recon_free. Errors: HY_ERR_INVALID_ARGUMENT
 * (NULL, bad UTF-8, bad struct_size, n_threads < 0), HY_ERR_IO (missing path), HY_ERR_FORMAT (corrupt
 * file, missing / unexpected / mis-shaped tensor: the message names it), HY_ERR_UNSUPPORTED (dtype). */
HY_API hy_status hy_recon_load(const char *path, const hy_recon_params *params, hy_recon **out);

HY_API void hy_recon_free(hy_recon *recon);

/* The model's sizes. */
typedef struct hy_recon_info {
    uint32_t struct_size;             /* sizeof(hy_recon_info); set by the caller */
    int32_t n_views;                  /* views per encode (7 for the released model) */
    int32_t image_size;               /* side S of a preprocessed view (504) */
    int32_t camera_dim;               /* floats per camera vector (20) */
    int32_t triplane_channels;        /* C (120) */
    int32_t triplane_resolution;      /* R (256) */
    float box_min;                    /* the box of the SDF grid: [box_min, box_max]^3 (-0.6, 0.6) */
    float box_max;
} hy_recon_info;

HY_API hy_status hy_recon_get_info(const hy_recon *recon, hy_recon_info *out);

/* Preprocesses one 8-bit view as the official predictor does: RGBA composited over white, Pillow's
 * bicubic resize to image_size x image_size, /255, ImageNet mean/std. pixels: height rows of
 * width * channels bytes (channels 3 = RGB or 4 = RGBA), tightly packed; the image must be square.
 * out receives 3 * image_size^2 floats (CHW); capacity is its size in floats. */
HY_API hy_status hy_recon_preprocess(const hy_recon *recon, const uint8_t *pixels, int32_t width,
                                     int32_t height, int32_t channels, float *out, size_t capacity);

/* Encodes n_views preprocessed views: images [n_views, 3, image_size, image_size] floats; cameras
 * [n_views, camera_dim] floats, or NULL for the official predictor's cameras (elevation 0, azimuths
 * 0..300, distance 1.5, the condition view's all zero). Replaces the handle's triplane.
 * Errors: HY_ERR_INVALID_ARGUMENT (NULL, n_views != n_views of the model, non-finite input),
 * HY_ERR_FORMAT (the network produced non-finite values: corrupt weights). */
HY_API hy_status hy_recon_encode(hy_recon *recon, const float *images, size_t n_views,
                                 const float *cameras);

/* SDF (n floats) and colour (n * 3 floats, RGB in [0, 1]; rgb_out may be NULL) at n points
 * (n * 3 floats, x y z in the model's world frame) of the last encode. HY_ERR_INVALID_ARGUMENT when
 * nothing was encoded yet. */
HY_API hy_status hy_recon_query(hy_recon *recon, const float *points, size_t n, float *sdf_out,
                                float *rgb_out);

/* The SDF over the resolution^3 grid of the box (sdf[i][j][k] at x_i, y_j, z_k with
 * x_i = box_min + i * (box_max - box_min) / (resolution - 1)), into out (capacity floats, at least
 * resolution^3). progress (optional) is called on the calling thread once per x-slice. */
HY_API hy_status hy_recon_sdf_grid(hy_recon *recon, int32_t resolution, float *out, size_t capacity,
                                   hy_progress_callback progress, void *progress_user);

/* One 8-bit view: height rows of width * channels bytes, tightly packed, channels 3 (RGB) or 4
 * (RGBA, composited over white). Views must be square. Borrowed for the duration of the call. */
typedef struct hy_recon_image {
    const uint8_t *pixels;
    int32_t width;
    int32_t height;
    int32_t channels;
} hy_recon_image;

/* Reads a PNG (8/16-bit grey, grey+alpha, RGB, RGBA, palette) or JPEG (baseline/progressive, grey,
 * YCbCr, CMYK) file, chosen by its signature, into *out: 8-bit RGB, or RGBA when the PNG has alpha.
 * The pixels belong to the library: release them with hy_recon_image_free. On failure *out is zeroed.
 * Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8), HY_ERR_IO (cannot open), HY_ERR_FORMAT (not PNG
 * or JPEG, corrupt or truncated data, side > 32768). Thread-safe. */
HY_API hy_status hy_recon_image_load(const char *path, hy_recon_image *out);

/* Frees the pixels of an image from hy_recon_image_load and zeroes *image. NULL is a no-op. */
HY_API void hy_recon_image_free(hy_recon_image *image);

typedef struct hy_recon_mesh_params {
    uint32_t struct_size;             /* sizeof(hy_recon_mesh_params) */
    int32_t resolution;               /* marching-cubes grid side; 384 as the official code */
    int32_t target_faces;             /* decimate to this many faces when more; 0 keeps all; 90000 */
    float cluster_size;               /* vertex-clustering cell in model units; 0.007 as the official */
    int32_t smooth_iterations;        /* neighbour-average smoothing passes; 2 as the official */
    bool export_axes;                 /* true: vertices as (y, z, x), the official OBJ/GLB order */
} hy_recon_mesh_params;

HY_API hy_recon_mesh_params hy_recon_mesh_default_params(void);

/* Views → coloured mesh, as the official pipeline: n_views == n_views of the model (7: the six
 * generated views at azimuth 0, 60, ..., 300 degrees, then the condition image), preprocessing, the
 * predictor's cameras, encode, the SDF over the grid evaluated block by block into marching cubes,
 * clean-up, vertex clustering, smoothing, decimation, vertex colours from the decoder. On success
 * *out receives a mesh for hy_mesh_free, and the handle keeps the triplane (hy_recon_query works).
 * progress (optional) is called on the calling thread between stages and after every encoder and
 * transformer block (so a progress bar moves during the long encode); abort (optional) is polled
 * before each encoder / transformer block (calling thread) and from worker threads during the SDF
 * evaluation, so a cancel takes effect within one block. Errors: HY_ERR_INVALID_ARGUMENT (NULLs, view count,
 * non-square or malformed views), HY_ERR_FORMAT (non-finite network output), HY_ERR_ABORTED. */
HY_API hy_status hy_recon_views_to_mesh(hy_recon *recon, const hy_recon_image *views, size_t n_views,
                                        const hy_recon_mesh_params *params,
                                        hy_progress_callback progress, void *progress_user,
                                        hy_abort_callback abort, void *abort_user, hy_mesh **out);

/* ==== Multi-view diffusion ===================================================================== */

/* Hunyuan3D-1.0's lite multi-view diffusion: one image → six views at azimuth 0, 60, ..., 300
 * degrees (the order hy_recon_views_to_mesh takes them, before the condition image). path is the
 * release's mvd_lite/ folder as diffusers saves it (model_index.json, unet/, vae/, text_encoder/,
 * tokenizer/, vision_encoder/, feature_extractor_vae/, feature_extractor_clip/, scheduler/), weights
 * f32/f16/bf16. Loading reads the small files and checks every component; each network is mapped
 * when its stage runs and released after it. One thread at a time per handle. */
typedef struct hy_mvd hy_mvd;

/* How the UNet's and the VAE's matrix products are computed. */
typedef enum hy_compute {
    HY_COMPUTE_FP32 = 0,              /* fp32 products: the reference implementation to fp32 rounding */
    HY_COMPUTE_BF16 = 1               /* weights held as bf16 (converted at load), activations rounded to
                                         bf16 per product, fp32 sums: about 1.4x faster per step where
                                         the CPU has AVX512_BF16 (elsewhere products stay fp32) */
} hy_compute;

typedef struct hy_mvd_params {
    uint32_t struct_size;             /* sizeof(hy_mvd_params) */
    int32_t n_threads;                /* worker threads; 0 = all processors */
    const char *variant;              /* weights variant, e.g. "fp16"; NULL = the plain files (or the
                                         fp16 ones when only they exist) */
    int32_t compute;                  /* hy_compute; HY_COMPUTE_FP32 by default */
} hy_mvd_params;

HY_API hy_mvd_params hy_mvd_default_params(void);

/* Opens a folder. Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8, bad struct_size, n_threads < 0),
 * HY_ERR_IO (missing folder or component: the message names it), HY_ERR_FORMAT (a broken config). */
HY_API hy_status hy_mvd_load(const char *path, const hy_mvd_params *params, hy_mvd **out);

HY_API void hy_mvd_free(hy_mvd *mvd);

typedef struct hy_mvd_generate_params {
    uint32_t struct_size;             /* sizeof(hy_mvd_generate_params) */
    int32_t steps;                    /* denoising steps, 1..1000; 50 as the official caller */
    uint64_t seed;                    /* seed of the library's own Gaussian generator (documented in
                                         Sources/HunyuanDiffusion/Noise.swift; not torch's) */
    int32_t width;                    /* grid size: 640 x 960 as the official pipeline (3 rows x 2 */
    int32_t height;                   /* columns of views); multiples of the model's down-sampling */
} hy_mvd_generate_params;

HY_API hy_mvd_generate_params hy_mvd_generate_default_params(void);

/* The result of hy_mvd_generate: the views and the grid they were cut from. */
typedef struct hy_views hy_views;

/* Generates the views of one image (RGB, or RGBA whose background is whited out as the official
 * pipeline does; any size). progress (optional) is called on the calling thread at each stage and
 * after every denoising step with the fraction done; abort (optional) is polled inside the networks.
 * On success *out receives a result for hy_views_free. Errors: HY_ERR_INVALID_ARGUMENT (NULL,
 * malformed image, steps or size out of range), HY_ERR_IO / HY_ERR_FORMAT (a component's weights are
 * missing or broken: the message names the component; non-finite latents), HY_ERR_ABORTED. */
HY_API hy_status hy_mvd_generate(hy_mvd *mvd, const hy_recon_image *image, const hy_mvd_generate_params *params,
                                 hy_progress_callback progress, void *progress_user,
                                 hy_abort_callback abort, void *abort_user, hy_views **out);

/* Number of views (6). NULL gives 0. */
HY_API size_t hy_views_count(const hy_views *views);

/* View index (0..count-1) as RGB pixels borrowed from views (valid until hy_views_free). */
HY_API hy_status hy_views_get(const hy_views *views, size_t index, hy_recon_image *out);

/* The whole grid (width x height RGB) borrowed from views. */
HY_API hy_status hy_views_grid(const hy_views *views, hy_recon_image *out);

HY_API void hy_views_free(hy_views *views);

/* ==== Text / image to 3D ======================================================================= */

/* Hunyuan3D-1.0 text / image → mesh (lite) over a weights folder laid out like the release: mvd_lite/,
 * svrm/svrm.safetensors (config.json optional) and u2net.onnx (or u2netp.onnx, or
 * u2net/model.safetensors; else rembg's $U2NET_HOME/u2net.onnx or ~/.u2net/u2net.onnx) for image to
 * mesh, and hunyuanDiT/ (HunyuanDiT v1.1, diffusers layout) for text. The stages run as the official
 * main.py: text to image (HunyuanDiT with PAG, the prompt + the official style suffix, the official
 * negative prompt), background removal (rembg's U²-Net, white-out, recentred 512x512 RGBA), the six
 * views, the reconstruction (views 0..5 then the condition image). Each stage's weights are loaded
 * when it starts and released when it ends unless keep_loaded. One thread at a time per handle.
 *
 * A folder holding a hunyuan3d-tiny model (config.json model_type "hunyuan3d-tiny", trained by
 * `hunyuan-cli train-3d`; also as builtin:NAME) opens the small text-to-3D model instead: prompt →
 * tokens → a small transformer → one triplane per object → the SVRM's decoder (SDF + colour) →
 * marching cubes → clean-up, in seconds, deterministic (the seed is unused). Only
 * hy_gen3d_text_to_mesh runs on it (resolution, target_faces, smooth_iterations apply; 128-256 is
 * plenty); the image functions return HY_ERR_UNSUPPORTED. */
typedef struct hy_gen3d hy_gen3d;

typedef struct hy_gen3d_params {
    uint32_t struct_size;             /* sizeof(hy_gen3d_params) */
    int32_t n_threads;                /* worker threads; 0 = all processors */
    const char *u2net_path;           /* the U²-Net (ONNX or safetensors); NULL = the folder's / rembg's */
    bool keep_loaded;                 /* keep every stage's weights between runs (faster, more memory) */
} hy_gen3d_params;

HY_API hy_gen3d_params hy_gen3d_default_params(void);

/* Opens a weights folder: every image stage must be present, unless the folder has hunyuanDiT/ (then
 * a run that needs a missing stage fails with HY_ERR_IO naming it); or hunyuan3d-tiny (above).
 * Errors: HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8, bad struct_size, n_threads < 0), HY_ERR_IO (the
 * message names each missing stage), HY_ERR_FORMAT (a broken hunyuan3d-tiny config or checkpoint). */
HY_API hy_status hy_gen3d_load(const char *path, const hy_gen3d_params *params, hy_gen3d **out);

HY_API void hy_gen3d_free(hy_gen3d *gen);

typedef enum hy_gen3d_stage {
    HY_GEN3D_REMOVE_BACKGROUND = 0,
    HY_GEN3D_VIEWS = 1,
    HY_GEN3D_RECONSTRUCT = 2,
    HY_GEN3D_DONE = 3,
    HY_GEN3D_TEXT_TO_IMAGE = 4,      /* first in a text run */
    HY_GEN3D_TEXT_TO_TRIPLANE = 5    /* hunyuan3d-tiny: text encoding and the triplane */
} hy_gen3d_stage;

/* A progress report: the stage, the fraction of it done, the fraction of the whole run and the
 * seconds the stage still needs at its pace so far (-1 while unknown). */
typedef struct hy_gen3d_progress {
    int32_t stage;                    /* hy_gen3d_stage */
    float stage_fraction;
    float overall;
    float eta_seconds;
} hy_gen3d_progress;

/* Called on the calling thread; returning false cancels the run (HY_ERR_ABORTED). */
typedef bool (*hy_gen3d_progress_callback)(const hy_gen3d_progress *progress, void *user);

typedef struct hy_gen3d_run_params {
    uint32_t struct_size;             /* sizeof(hy_gen3d_run_params) */
    int32_t steps;                    /* denoising steps, 1..1000; 50 */
    uint64_t seed;                    /* seed of the views' Gaussian draws (hy_mvd_generate_params.seed) */
    int32_t resolution;               /* marching-cubes grid side, 384; 0 = the model's default (384, or 128
                                         on hunyuan3d-tiny, which takes up to 512) */
    int32_t target_faces;             /* decimate to this many faces; 0 keeps all; 90000 */
    bool keep_alpha;                  /* an RGBA image keeps its alpha and skips the U²-Net (official
                                         force=False); false = remove the background again */
    int32_t compute;                  /* hy_compute of the diffusion; HY_COMPUTE_FP32 */
    int32_t grid_width;               /* views grid, 640 x 960 as the official pipeline */
    int32_t grid_height;
    /* Text to image (text runs only; an older, shorter struct gets these defaults): */
    int32_t text_steps;               /* DiT denoising steps, 1..1000; 25 */
    int32_t image_width;              /* the generated picture, multiples of 16, 16..4096; 1024 x 1024 */
    int32_t image_height;
    float guidance_scale;             /* classifier-free guidance; 5 (<= 1 runs no negative branch) */
    float pag_scale;                  /* perturbed-attention guidance; 1.3 (0 turns PAG off) */
    /* Mesh clean-up (an older, shorter struct gets this default): */
    int32_t smooth_iterations;        /* smoothing passes after marching cubes, 0..100; 2 */
} hy_gen3d_run_params;

HY_API hy_gen3d_run_params hy_gen3d_run_default_params(void);

/* image (RGB or RGBA, any size up to 32768 per side) → a coloured mesh for hy_mesh_free. abort
 * (optional) is polled inside every stage, also from worker threads. On error or abort *out is NULL
 * and the handle stays usable. Errors: HY_ERR_INVALID_ARGUMENT (NULL, malformed image or params),
 * HY_ERR_IO / HY_ERR_FORMAT (a stage's weights are missing or broken: the message names it),
 * HY_ERR_ABORTED. */
HY_API hy_status hy_gen3d_image_to_mesh(hy_gen3d *gen, const hy_recon_image *image, const hy_gen3d_run_params *params,
                                        hy_gen3d_progress_callback progress, void *progress_user,
                                        hy_abort_callback abort, void *abort_user, hy_mesh **out);

/* The background removal alone: *out receives the 512x512 RGBA cut-out, its pixels owned by the
 * caller (release them with hy_recon_image_free). Errors as hy_gen3d_image_to_mesh. */
HY_API hy_status hy_gen3d_remove_background(hy_gen3d *gen, const hy_recon_image *image, bool keep_alpha,
                                            hy_abort_callback abort, void *abort_user, hy_recon_image *out);

/* prompt (UTF-8, any length; Chinese or English) → *out, the image_width x image_height RGB picture
 * (pixels owned by the caller, release with hy_recon_image_free), with params' text_steps, seed,
 * guidance_scale, pag_scale and compute. Progress reports HY_GEN3D_TEXT_TO_IMAGE. Errors:
 * HY_ERR_INVALID_ARGUMENT (NULL, bad UTF-8, bad params), HY_ERR_IO (no hunyuanDiT/), HY_ERR_FORMAT
 * (broken weights or tokenizer files, named), HY_ERR_ABORTED. *out is zeroed on error. */
HY_API hy_status hy_gen3d_text_to_image(hy_gen3d *gen, const char *prompt, const hy_gen3d_run_params *params,
                                        hy_gen3d_progress_callback progress, void *progress_user,
                                        hy_abort_callback abort, void *abort_user, hy_recon_image *out);

/* prompt → picture → mesh (hy_gen3d_text_to_image, then hy_gen3d_image_to_mesh on the picture, as
 * main.py); on hunyuan3d-tiny prompt → triplane → mesh (progress HY_GEN3D_TEXT_TO_TRIPLANE, then
 * HY_GEN3D_RECONSTRUCT; an empty or blank prompt is HY_ERR_INVALID_ARGUMENT, unknown words are read as
 * unknown tokens). Errors as both; *out is NULL on error. */
HY_API hy_status hy_gen3d_text_to_mesh(hy_gen3d *gen, const char *prompt, const hy_gen3d_run_params *params,
                                       hy_gen3d_progress_callback progress, void *progress_user,
                                       hy_abort_callback abort, void *abort_user, hy_mesh **out);

#ifdef __cplusplus
}
#endif

#endif /* HUNYUAN_H */
