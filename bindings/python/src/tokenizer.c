/* hunyuan._native.Tokenizer: hy_tokenizer (the "Tokenizer" section of hunyuan.h, TokenizerAPI.swift). */
#include "_native.h"

NATIVE_HANDLE_BASICS(Tokenizer, tok, hy_tokenizer, hy_tokenizer_free, tokenizer_get, "tokenizer")

static hy_status load_tokenizer(const char *path, void *out) { return hy_tokenizer_load(path, (hy_tokenizer **)out); }

static int Tokenizer_init(TokenizerObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &path)) return -1;
    hy_tokenizer *t = NULL;
    if (call_with_path(path, load_tokenizer, &t) < 0) return -1;
    if (self->tok) hy_tokenizer_free(self->tok);
    self->tok = t;
    return 0;
}

/* Calls a buffer-filling function twice: once for the size, once to fill. */
#define FILL_IDS(call_with_buf_cap)                                                  \
    do {                                                                             \
        size_t needed_ = 0;                                                          \
        hy_token *buf_ = NULL;                                                       \
        size_t cap_ = 0;                                                             \
        hy_status st_;                                                               \
        for (int pass_ = 0; pass_ < 2; pass_++) {                                    \
            self->users++;                                                           \
            Py_BEGIN_ALLOW_THREADS                                                   \
            st_ = call_with_buf_cap;                                                 \
            Py_END_ALLOW_THREADS                                                     \
            self->users--;                                                           \
            if (st_ == HY_OK) break;                                                 \
            if (pass_ == 0 && needed_ > cap_) {                                      \
                buf_ = (hy_token *)PyMem_Malloc((needed_ ? needed_ : 1) * sizeof(hy_token)); \
                if (buf_ == NULL) return PyErr_NoMemory();                           \
                cap_ = needed_;                                                      \
                continue;                                                            \
            }                                                                        \
            PyMem_Free(buf_);                                                        \
            return raise_status(st_);                                                \
        }                                                                            \
        PyObject *r_ = ids_to_list(buf_, needed_);                                   \
        PyMem_Free(buf_);                                                            \
        return r_;                                                                   \
    } while (0)

/* tokenize(text: bytes, flags) -> list[int] */
static PyObject *Tokenizer_tokenize(TokenizerObject *self, PyObject *args) {
    const char *text;
    Py_ssize_t len;
    unsigned int flags;
    if (!PyArg_ParseTuple(args, "y#I", &text, &len, &flags)) return NULL;
    hy_tokenizer *t = tokenizer_get(self);
    if (t == NULL) return NULL;
    FILL_IDS(hy_tokenize(t, text, (size_t)len, flags, buf_, cap_, &needed_));
}

/* chat([(role, content), ...]) -> list[int] */
static PyObject *Tokenizer_chat(TokenizerObject *self, PyObject *args) {
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) return NULL;
    hy_tokenizer *t = tokenizer_get(self);
    if (t == NULL) return NULL;
    PyObject *fast = PySequence_Tuple(seq);
    if (fast == NULL) return NULL;
    Py_ssize_t n = PyTuple_Size(fast);
    hy_chat_message *msgs = (hy_chat_message *)PyMem_Malloc((size_t)(n ? n : 1) * sizeof(hy_chat_message));
    if (msgs == NULL) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyArg_ParseTuple(PyTuple_GetItem(fast, i), "ss", &msgs[i].role, &msgs[i].content)) {
            PyMem_Free(msgs);
            Py_DECREF(fast);
            return NULL;
        }
    }
    size_t needed_ = 0;
    hy_token *buf_ = NULL;
    size_t cap_ = 0;
    hy_status st = HY_OK;
    for (int pass = 0; pass < 2; pass++) {
        st = hy_chat_tokenize(t, msgs, (size_t)n, 0, buf_, cap_, &needed_);
        if (st == HY_OK) break;
        if (pass == 0 && needed_ > cap_) {
            buf_ = (hy_token *)PyMem_Malloc((needed_ ? needed_ : 1) * sizeof(hy_token));
            if (buf_ == NULL) break;
            cap_ = needed_;
        }
    }
    PyMem_Free(msgs);
    Py_DECREF(fast);
    if (st != HY_OK) {
        PyMem_Free(buf_);
        return raise_status(st);
    }
    if (buf_ == NULL && needed_ > 0) return PyErr_NoMemory();
    PyObject *r = ids_to_list(buf_, needed_);
    PyMem_Free(buf_);
    return r;
}

static PyObject *Tokenizer_stop_ids(TokenizerObject *self, PyObject *unused) {
    (void)unused;
    hy_tokenizer *t = tokenizer_get(self);
    if (t == NULL) return NULL;
    FILL_IDS(hy_tokenizer_stop_ids(t, buf_, cap_, &needed_));
}

/* detokenize(ids) -> bytes */
static PyObject *Tokenizer_detokenize(TokenizerObject *self, PyObject *args) {
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) return NULL;
    hy_tokenizer *t = tokenizer_get(self);
    if (t == NULL) return NULL;
    size_t n = 0;
    int32_t *ids = ids_from_sequence(seq, &n);
    if (ids == NULL) return NULL;
    size_t needed = 0;
    hy_status st = hy_detokenize(t, ids, n, NULL, 0, &needed);
    if (st != HY_OK && needed == 0) {
        PyMem_Free(ids);
        return raise_status(st);
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)needed);
    if (out == NULL) {
        PyMem_Free(ids);
        return NULL;
    }
    self->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_detokenize(t, ids, n, PyBytes_AsString(out), needed, &needed);
    Py_END_ALLOW_THREADS
    self->users--;
    PyMem_Free(ids);
    if (st != HY_OK) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

static PyObject *Tokenizer_vocab_size(TokenizerObject *self, PyObject *unused) {
    (void)unused;
    hy_tokenizer *t = tokenizer_get(self);
    if (t == NULL) return NULL;
    return PyLong_FromSize_t(hy_tokenizer_vocab_size(t));
}

static PyMethodDef Tokenizer_methods[] = {
    {"close", (PyCFunction)Tokenizer_close, METH_NOARGS, "Release the tokenizer."},
    {"tokenize", (PyCFunction)Tokenizer_tokenize, METH_VARARGS, "tokenize(utf8: bytes, flags) -> ids."},
    {"detokenize", (PyCFunction)Tokenizer_detokenize, METH_VARARGS, "detokenize(ids) -> bytes."},
    {"chat", (PyCFunction)Tokenizer_chat, METH_VARARGS, "chat([(role, content)]) -> ids."},
    {"stop_ids", (PyCFunction)Tokenizer_stop_ids, METH_NOARGS, "Ids that end generation."},
    {"vocab_size", (PyCFunction)Tokenizer_vocab_size, METH_NOARGS, "Number of ids."},
    {NULL, NULL, 0, NULL},
};

NATIVE_HANDLE_SLOTS(Tokenizer, "Hunyuan's tokenizer (hy.tiktoken).");

NATIVE_TYPE_DEFINE(Tokenizer, "Tokenizer", Py_TPFLAGS_DEFAULT)
