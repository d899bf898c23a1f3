/* hunyuan._native.Session: hy_session and generation (the "Language models" section of hunyuan.h,
 * ModelAPI.swift). */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    hy_session *session;
    int busy; /* a call is running: a second concurrent call on the same session raises */
} SessionObject;

static int Session_init(SessionObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"model", "n_ctx", "n_threads", "kv_type", NULL};
    PyObject *model;
    unsigned int n_ctx = 0;
    int n_threads = 0, kv_type = HY_KV_AUTO;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Iii", kwlist, &model, &n_ctx, &n_threads, &kv_type)) return -1;
    if (!PyObject_TypeCheck(model, (PyTypeObject *)ModelType)) {
        PyErr_SetString(PyExc_TypeError, "model must be a hunyuan._native.Model");
        return -1;
    }
    hy_model *m = model_get((ModelObject *)model);
    if (m == NULL) return -1;
    hy_session_params params = hy_session_default_params();
    params.n_ctx = n_ctx;
    params.n_threads = n_threads;
    params.kv_type = kv_type;
    hy_session *s = NULL;
    hy_status st;
    ((ModelObject *)model)->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_session_new(m, &params, &s);
    Py_END_ALLOW_THREADS
    ((ModelObject *)model)->users--;
    if (st != HY_OK) {
        raise_status(st);
        return -1;
    }
    if (self->session) hy_session_free(self->session);
    self->session = s;
    return 0;
}

static void Session_dealloc(SessionObject *self) {
    if (self->session) hy_session_free(self->session);
    release_object((PyObject *)self);
}

static hy_session *session_acquire(SessionObject *self) {
    if (self->session == NULL) {
        PyErr_SetString(PyExc_ValueError, "session is closed");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "session is in use by another call (use one session per thread)");
        return NULL;
    }
    self->busy = 1;
    return self->session;
}

static PyObject *Session_close(SessionObject *self, PyObject *unused) {
    (void)unused;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "session is in use");
        return NULL;
    }
    if (self->session) hy_session_free(self->session);
    self->session = NULL;
    Py_RETURN_NONE;
}

static PyObject *Session_reset(SessionObject *self, PyObject *unused) {
    (void)unused;
    hy_session *s = session_acquire(self);
    if (s == NULL) return NULL;
    hy_session_reset(s);
    self->busy = 0;
    Py_RETURN_NONE;
}

static PyObject *Session_n_past(SessionObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromSize_t(self->session ? hy_session_n_past(self->session) : 0);
}

static PyObject *Session_kv_cache(SessionObject *self, PyObject *unused) {
    (void)unused;
    if (self->session == NULL) {
        PyErr_SetString(PyExc_ValueError, "session is closed");
        return NULL;
    }
    static const char *names[] = {"f32", "f16", "q8_0"};
    hy_kv_type t = hy_session_kv_type(self->session);
    return Py_BuildValue("{s:n,s:s,s:K}", "n_ctx", (Py_ssize_t)hy_session_n_ctx(self->session),
                         "kv_type", (t >= 0 && t <= 2) ? names[t] : "?",
                         "kv_bytes", (unsigned long long)hy_session_kv_bytes(self->session));
}

/* State shared with the engine's callbacks during one call. They run on the calling thread (whose
 * GIL was released), so they re-acquire it. */
typedef struct {
    PyObject *on_token;     /* callable(id) -> bool, or NULL */
    PyObject *should_abort; /* callable() -> bool, or NULL */
    int failed;             /* a callback raised: its exception is saved below */
    PyObject *exc_type, *exc_value, *exc_tb;
    int check_signals;      /* the calling thread is the main thread: poll for Ctrl-C */
} CallbackState;

static void save_exception(CallbackState *cs) {
    if (!cs->failed) {
        cs->failed = 1;
        PyErr_Fetch(&cs->exc_type, &cs->exc_value, &cs->exc_tb);
    } else {
        PyErr_Clear();
    }
}

static bool on_token_cb(int32_t token, void *user) {
    CallbackState *cs = (CallbackState *)user;
    if (cs->on_token == NULL) return true;
    PyGILState_STATE g = PyGILState_Ensure();
    bool more = true;
    PyObject *arg = PyLong_FromLong(token);
    PyObject *r = arg ? PyObject_CallFunctionObjArgs(cs->on_token, arg, NULL) : NULL;
    Py_XDECREF(arg);
    if (r == NULL) {
        save_exception(cs);
        more = false;
    } else {
        more = PyObject_IsTrue(r) != 0;
        Py_DECREF(r);
    }
    PyGILState_Release(g);
    return more;
}

static bool abort_cb(void *user) {
    CallbackState *cs = (CallbackState *)user;
    if (cs->failed) return true;
    if (!cs->check_signals && cs->should_abort == NULL) return false;
    PyGILState_STATE g = PyGILState_Ensure();
    bool stop = false;
    if (cs->check_signals && PyErr_CheckSignals() < 0) {
        save_exception(cs);
        stop = true;
    } else if (cs->should_abort) {
        PyObject *r = PyObject_CallNoArgs(cs->should_abort);
        if (r == NULL) {
            save_exception(cs);
            stop = true;
        } else {
            stop = PyObject_IsTrue(r) != 0;
            Py_DECREF(r);
        }
    }
    PyGILState_Release(g);
    return stop;
}

/* The sampler tuple (greedy, temperature, top_k, top_p, min_p, repeat_penalty, seed) into sp; None
 * gives the library's defaults (unused: the call passes NULL then). -1 with an exception on a bad tuple. */
static int sampler_arg(PyObject *sampler, hy_sampler_params *sp) {
    *sp = hy_sampler_default_params();
    if (sampler == Py_None) return 0;
    int greedy = 0;
    unsigned long long seed = 0;
    if (!PyArg_ParseTuple(sampler, "pfifffK", &greedy, &sp->temperature, &sp->top_k, &sp->top_p, &sp->min_p,
                          &sp->repeat_penalty, &seed))
        return -1;
    sp->greedy = greedy != 0;
    sp->seed = seed;
    return 0;
}

/* Raises what a callback raised (the call was stopped for it); NULL for the caller to return. */
static PyObject *restore_failure(CallbackState *cs) {
    PyErr_Restore(cs->exc_type, cs->exc_value, cs->exc_tb);
    return NULL;
}

/* Appends the ids of `seq` to the session (hy_session_eval, abortable through should_abort and
 * Ctrl-C), keeping the logits of every position when all_logits. 0, or -1 with an exception. */
static int eval_ids(SessionObject *self, PyObject *seq, PyObject *should_abort, bool all_logits) {
    size_t n = 0;
    int32_t *ids = ids_from_sequence(seq, &n);
    if (ids == NULL) return -1;
    hy_session *s = session_acquire(self);
    if (s == NULL) {
        PyMem_Free(ids);
        return -1;
    }
    CallbackState cs = {NULL, should_abort == Py_None ? NULL : should_abort, 0, NULL, NULL, NULL, is_main_thread()};
    hy_eval_params ep = hy_eval_default_params();
    ep.all_logits = all_logits;
    ep.abort = abort_cb;
    ep.abort_user = &cs;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_session_eval(s, ids, n, &ep);
    Py_END_ALLOW_THREADS
    PyMem_Free(ids);
    self->busy = 0;
    if (cs.failed) {
        restore_failure(&cs);
        return -1;
    }
    if (st != HY_OK) {
        raise_status(st);
        return -1;
    }
    return 0;
}

/* logits(ids, should_abort=None) -> bytes of float32 [n, n_vocab], n_vocab */
static PyObject *Session_logits(SessionObject *self, PyObject *args) {
    PyObject *seq, *should_abort = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &seq, &should_abort)) return NULL;
    if (eval_ids(self, seq, should_abort, true) < 0) return NULL;
    hy_session *s = session_acquire(self);  /* the logits stay valid until the next call on the session */
    if (s == NULL) return NULL;
    const float *logits = NULL;
    size_t rows = 0, vocab = 0;
    hy_status st = hy_session_logits(s, &logits, &rows, &vocab);
    PyObject *out = st == HY_OK ? PyBytes_FromStringAndSize((const char *)logits, (Py_ssize_t)(rows * vocab * sizeof(float)))
                                : NULL;
    self->busy = 0;
    if (st != HY_OK) return raise_status(st);
    if (out == NULL) return NULL;
    return Py_BuildValue("(Nn)", out, (Py_ssize_t)vocab);
}

/* generate(ids, max_tokens, sampler tuple or None, on_token, should_abort) -> (ids, reason) */
static PyObject *Session_generate(SessionObject *self, PyObject *args) {
    PyObject *seq, *sampler, *on_token, *should_abort;
    unsigned int max_tokens;
    if (!PyArg_ParseTuple(args, "OIOOO", &seq, &max_tokens, &sampler, &on_token, &should_abort)) return NULL;
    hy_sampler_params sp;
    if (sampler_arg(sampler, &sp) < 0) return NULL;
    size_t n = 0;
    int32_t *ids = ids_from_sequence(seq, &n);
    if (ids == NULL) return NULL;
    int32_t *out = (int32_t *)PyMem_Malloc((max_tokens ? max_tokens : 1) * sizeof(int32_t));
    if (out == NULL) {
        PyMem_Free(ids);
        return PyErr_NoMemory();
    }
    hy_session *s = session_acquire(self);
    if (s == NULL) {
        PyMem_Free(ids);
        PyMem_Free(out);
        return NULL;
    }
    CallbackState cs = {on_token == Py_None ? NULL : on_token, should_abort == Py_None ? NULL : should_abort, 0,
                        NULL, NULL, NULL, is_main_thread()};
    hy_generate_params gp = hy_generate_default_params();
    gp.max_tokens = max_tokens;
    gp.on_token = on_token_cb;
    gp.token_user = &cs;
    gp.abort = abort_cb;
    gp.abort_user = &cs;
    size_t n_out = 0;
    hy_stop_reason reason = HY_STOP_MAX_TOKENS;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_generate(s, ids, n, &gp, sampler == Py_None ? NULL : &sp, out, max_tokens, &n_out, &reason);
    Py_END_ALLOW_THREADS
    PyMem_Free(ids);
    self->busy = 0;
    if (cs.failed) {
        PyMem_Free(out);
        return restore_failure(&cs);
    }
    if (st != HY_OK) {
        PyMem_Free(out);
        return raise_status(st);
    }
    PyObject *list = ids_to_list(out, n_out);
    PyMem_Free(out);
    if (list == NULL) return NULL;
    return Py_BuildValue("(Ni)", list, (int)reason);
}

/* eval(ids, should_abort=None) -> None: appends ids to the cache (no logits copied out). */
static PyObject *Session_eval(SessionObject *self, PyObject *args) {
    PyObject *seq, *should_abort = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &seq, &should_abort)) return NULL;
    if (eval_ids(self, seq, should_abort, false) < 0) return NULL;
    Py_RETURN_NONE;
}

/* The text of one generate_text call: every piece is appended here (without the GIL, so with malloc)
   and, when on_text is set, also handed to it. */
typedef struct {
    CallbackState *cs;
    PyObject *on_text; /* callable(str) -> bool, or NULL */
    char *buf;
    size_t len, cap;
    int out_of_memory;
} TextState;

static bool on_text_cb(const char *piece, size_t len, void *user) {
    TextState *ts = (TextState *)user;
    if (ts->len + len > ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        while (cap < ts->len + len) cap *= 2;
        char *b = (char *)realloc(ts->buf, cap);
        if (b == NULL) {
            ts->out_of_memory = 1;
            return false;
        }
        ts->buf = b;
        ts->cap = cap;
    }
    memcpy(ts->buf + ts->len, piece, len);
    ts->len += len;
    if (ts->on_text == NULL) return true;
    PyGILState_STATE g = PyGILState_Ensure();
    bool more = true;
    PyObject *arg = PyUnicode_DecodeUTF8(piece, (Py_ssize_t)len, "replace");
    PyObject *r = arg ? PyObject_CallFunctionObjArgs(ts->on_text, arg, NULL) : NULL;
    Py_XDECREF(arg);
    if (r == NULL) {
        save_exception(ts->cs);
        more = false;
    } else {
        more = PyObject_IsTrue(r) != 0;
        Py_DECREF(r);
    }
    PyGILState_Release(g);
    return more;
}

/* generate_text(tokenizer, prompt: bytes, flags, max_tokens, sampler tuple or None, stop: sequence of
 * str, on_text, should_abort) -> (text, n_tokens, reason): hy_generate_text. */
static PyObject *Session_generate_text(SessionObject *self, PyObject *args) {
    PyObject *tokenizer, *sampler, *stop, *on_text, *should_abort;
    const char *prompt;
    Py_ssize_t prompt_len;
    unsigned int flags, max_tokens;
    if (!PyArg_ParseTuple(args, "O!y#IIOOOO", (PyTypeObject *)TokenizerType, &tokenizer, &prompt, &prompt_len, &flags,
                          &max_tokens, &sampler, &stop, &on_text, &should_abort))
        return NULL;
    hy_tokenizer *tok = tokenizer_get((TokenizerObject *)tokenizer);
    if (tok == NULL) return NULL;
    hy_sampler_params sp;
    if (sampler_arg(sampler, &sp) < 0) return NULL;
    /* the stop strings as UTF-8 bytes objects (kept alive by `stops` until the call returns) */
    PyObject *stops = PySequence_Tuple(stop);
    if (stops == NULL) return NULL;
    Py_ssize_t n_stop = PyTuple_Size(stops);
    const char **stop_ptrs = (const char **)PyMem_Malloc((size_t)(n_stop ? n_stop : 1) * sizeof(char *));
    PyObject *encoded = PyTuple_New(n_stop);
    if (stop_ptrs == NULL || encoded == NULL) {
        PyMem_Free(stop_ptrs);
        Py_XDECREF(encoded);
        Py_DECREF(stops);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n_stop; i++) {
        PyObject *b = PyUnicode_AsUTF8String(PyTuple_GetItem(stops, i));
        if (b == NULL || (size_t)PyBytes_Size(b) != strlen(PyBytes_AsString(b))) {
            if (b != NULL) PyErr_Format(PyExc_ValueError, "stop string %zd contains a NUL character", i);
            Py_XDECREF(b);
            PyMem_Free(stop_ptrs);
            Py_DECREF(encoded);
            Py_DECREF(stops);
            return NULL;
        }
        PyTuple_SetItem(encoded, i, b);
        stop_ptrs[i] = PyBytes_AsString(b);
    }
    Py_DECREF(stops);
    hy_session *s = session_acquire(self);
    if (s == NULL) {
        PyMem_Free(stop_ptrs);
        Py_DECREF(encoded);
        return NULL;
    }
    CallbackState cs = {NULL, should_abort == Py_None ? NULL : should_abort, 0, NULL, NULL, NULL, is_main_thread()};
    TextState ts = {&cs, on_text == Py_None ? NULL : on_text, NULL, 0, 0, 0};
    hy_generate_params gp = hy_generate_default_params();
    gp.max_tokens = max_tokens;
    gp.abort = abort_cb;
    gp.abort_user = &cs;
    gp.stop = stop_ptrs;
    gp.n_stop = (size_t)n_stop;
    size_t n_out = 0;
    hy_stop_reason reason = HY_STOP_MAX_TOKENS;
    hy_status st;
    ((TokenizerObject *)tokenizer)->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_generate_text(s, tok, prompt, (size_t)prompt_len, flags, &gp, sampler == Py_None ? NULL : &sp, on_text_cb,
                          &ts, &n_out, &reason);
    Py_END_ALLOW_THREADS
    ((TokenizerObject *)tokenizer)->users--;
    self->busy = 0;
    PyMem_Free(stop_ptrs);
    Py_DECREF(encoded);
    PyObject *result = NULL;
    if (cs.failed) {
        restore_failure(&cs);
    } else if (ts.out_of_memory) {
        PyErr_NoMemory();
    } else if (st != HY_OK) {
        raise_status(st);
    } else {
        PyObject *text = PyUnicode_DecodeUTF8(ts.buf ? ts.buf : "", (Py_ssize_t)ts.len, "replace");
        if (text != NULL) result = Py_BuildValue("(Nni)", text, (Py_ssize_t)n_out, (int)reason);
    }
    free(ts.buf);
    return result;
}

static PyMethodDef Session_methods[] = {
    {"close", (PyCFunction)Session_close, METH_NOARGS, "Free the session."},
    {"reset", (PyCFunction)Session_reset, METH_NOARGS, "Forget every cached token."},
    {"n_past", (PyCFunction)Session_n_past, METH_NOARGS, "Tokens in the cache."},
    {"kv_cache", (PyCFunction)Session_kv_cache, METH_NOARGS, "{n_ctx, kv_type, kv_bytes} of the KV cache."},
    {"eval", (PyCFunction)Session_eval, METH_VARARGS, "Append ids to the cache."},
    {"logits", (PyCFunction)Session_logits, METH_VARARGS, "Evaluate ids; float32 logits of every position."},
    {"generate", (PyCFunction)Session_generate, METH_VARARGS, "Generate from ids."},
    {"generate_text", (PyCFunction)Session_generate_text, METH_VARARGS, "Generate text (hy_generate_text)."},
    {NULL, NULL, 0, NULL},
};

NATIVE_HANDLE_SLOTS(Session, "A KV cache on a model (one thread at a time).");

NATIVE_TYPE_DEFINE(Session, "Session", Py_TPFLAGS_DEFAULT)
