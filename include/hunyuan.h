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
 *   are only ever appended, so an old caller keeps working; a struct_size smaller than the first
 *   version of the struct is HY_ERR_INVALID_ARGUMENT. Passing NULL for params means "defaults".
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
/* (added by the language-engine work) */

/* ==== Tokenizer =============================================================================== */
/* (added by the tokenizer work) */

/* ==== Meshes ================================================================================== */
/* (added by the mesh-engine work) */

#ifdef __cplusplus
}
#endif

#endif /* HUNYUAN_H */
