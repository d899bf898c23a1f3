/* hunyuan._native — the CPython extension over include/hunyuan.h.
 *
 * Built against the stable ABI (Py_LIMITED_API 3.11) so one abi3 wheel serves CPython 3.11+ and every
 * Blender that embeds them. Rules: the GIL is released around every engine call; callbacks re-acquire
 * it; every hy_status other than HY_OK becomes a hunyuan.HunyuanError subclass carrying
 * hy_last_error(); a freed handle raises instead of crashing. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "hunyuan.h"

/* ---- errors ------------------------------------------------------------------------------- */

static PyObject *HunyuanError;
static PyObject *StatusErrors[9];

static const char *const status_class_names[9] = {
    NULL, "InvalidArgumentError", "IOError", "FormatError", "UnsupportedError",
    "OutOfMemoryError", "ContextFullError", "AbortedError", "InternalError",
};

/* Sets the Python exception for `status` with hy_last_error(); returns NULL for convenience. */
static PyObject *raise_status(hy_status status) {
    PyObject *cls = (status > 0 && status < 9) ? StatusErrors[status] : HunyuanError;
    PyErr_SetString(cls, hy_last_error());
    return NULL;
}

static int make_errors(PyObject *m) {
    HunyuanError = PyErr_NewExceptionWithDoc("hunyuan._native.HunyuanError",
                                             "An error reported by libhunyuan (status + message).",
                                             PyExc_RuntimeError, NULL);
    if (HunyuanError == NULL || PyModule_AddObjectRef(m, "HunyuanError", HunyuanError) < 0) return -1;
    for (int i = 1; i < 9; i++) {
        char qualified[96];
        snprintf(qualified, sizeof qualified, "hunyuan._native.%s", status_class_names[i]);
        PyObject *bases;
        if (i == HY_ERR_INVALID_ARGUMENT)
            bases = PyTuple_Pack(2, HunyuanError, PyExc_ValueError);
        else if (i == HY_ERR_IO)
            bases = PyTuple_Pack(2, HunyuanError, PyExc_OSError);
        else if (i == HY_ERR_OUT_OF_MEMORY)
            bases = PyTuple_Pack(2, HunyuanError, PyExc_MemoryError);
        else
            bases = PyTuple_Pack(1, HunyuanError);
        if (bases == NULL) return -1;
        StatusErrors[i] = PyErr_NewException(qualified, bases, NULL);
        Py_DECREF(bases);
        if (StatusErrors[i] == NULL || PyModule_AddObjectRef(m, status_class_names[i], StatusErrors[i]) < 0) return -1;
        PyObject *code = PyLong_FromLong(i);
        if (code == NULL || PyObject_SetAttrString(StatusErrors[i], "status", code) < 0) return -1;
        Py_DECREF(code);
    }
    return 0;
}

/* A str or os.PathLike argument as UTF-8 bytes (new reference) or NULL with an exception. */
static PyObject *path_bytes(PyObject *arg) {
    PyObject *fs = PyOS_FSPath(arg);
    if (fs == NULL) return NULL;
    PyObject *out;
    if (PyUnicode_Check(fs))
        out = PyUnicode_AsUTF8String(fs);
    else {
        out = fs;
        Py_INCREF(out);
    }
    Py_DECREF(fs);
    return out;
}

/* ---- Checkpoint ----------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    hy_checkpoint *ck;
} CheckpointObject;

static PyObject *CheckpointType;

static hy_checkpoint *checkpoint_get(CheckpointObject *self) {
    if (self->ck == NULL) PyErr_SetString(PyExc_ValueError, "checkpoint is closed");
    return self->ck;
}

static int Checkpoint_init(CheckpointObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &path)) return -1;
    PyObject *b = path_bytes(path);
    if (b == NULL) return -1;
    hy_checkpoint *ck = NULL;
    hy_status st;
    const char *p = PyBytes_AsString(b);
    Py_BEGIN_ALLOW_THREADS
    st = hy_checkpoint_open(p, NULL, &ck);
    Py_END_ALLOW_THREADS
    Py_DECREF(b);
    if (st != HY_OK) {
        raise_status(st);
        return -1;
    }
    if (self->ck) hy_checkpoint_free(self->ck);
    self->ck = ck;
    return 0;
}

static void Checkpoint_dealloc(CheckpointObject *self) {
    if (self->ck) hy_checkpoint_free(self->ck);
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

static PyObject *Checkpoint_close(CheckpointObject *self, PyObject *unused) {
    (void)unused;
    if (self->ck) hy_checkpoint_free(self->ck);
    self->ck = NULL;
    Py_RETURN_NONE;
}

/* tensors() -> list of (name, dtype:int, shape:tuple, nbytes) */
static PyObject *Checkpoint_tensors(CheckpointObject *self, PyObject *unused) {
    (void)unused;
    hy_checkpoint *ck = checkpoint_get(self);
    if (ck == NULL) return NULL;
    size_t n = hy_checkpoint_tensor_count(ck);
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        hy_tensor_info info;
        hy_status st = hy_checkpoint_tensor_info(ck, i, &info);
        if (st != HY_OK) {
            Py_DECREF(list);
            return raise_status(st);
        }
        PyObject *shape = PyTuple_New(info.n_dims);
        if (shape == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        for (uint32_t d = 0; d < info.n_dims; d++) PyTuple_SetItem(shape, d, PyLong_FromLongLong(info.shape[d]));
        PyObject *item = Py_BuildValue("(siNK)", info.name, (int)info.dtype, shape, (unsigned long long)info.n_bytes);
        if (item == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SetItem(list, (Py_ssize_t)i, item);
    }
    return list;
}

/* read_f32(name) -> bytes of float32 values (C order) */
static PyObject *Checkpoint_read_f32(CheckpointObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    hy_checkpoint *ck = checkpoint_get(self);
    if (ck == NULL) return NULL;
    size_t index;
    hy_status st = hy_checkpoint_find(ck, name, &index);
    if (st != HY_OK) return raise_status(st);
    hy_tensor_info info;
    st = hy_checkpoint_tensor_info(ck, index, &info);
    if (st != HY_OK) return raise_status(st);
    size_t count = 1;
    for (uint32_t d = 0; d < info.n_dims; d++) count *= (size_t)info.shape[d];
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(count * sizeof(float)));
    if (out == NULL) return NULL;
    float *dst = (float *)PyBytes_AsString(out);
    Py_BEGIN_ALLOW_THREADS
    st = hy_checkpoint_read_f32(ck, index, dst, count);
    Py_END_ALLOW_THREADS
    if (st != HY_OK) {
        Py_DECREF(out);
        return raise_status(st);
    }
    return out;
}

static PyMethodDef Checkpoint_methods[] = {
    {"close", (PyCFunction)Checkpoint_close, METH_NOARGS, "Release the checkpoint (idempotent)."},
    {"tensors", (PyCFunction)Checkpoint_tensors, METH_NOARGS, "[(name, dtype, shape, nbytes)] sorted by name."},
    {"read_f32", (PyCFunction)Checkpoint_read_f32, METH_VARARGS, "A tensor converted to float32, as bytes."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Checkpoint_slots[] = {
    {Py_tp_doc, (void *)"A validated, memory-mapped safetensors checkpoint (file or folder)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Checkpoint_init},
    {Py_tp_dealloc, (void *)Checkpoint_dealloc},
    {Py_tp_methods, Checkpoint_methods},
    {0, NULL},
};

static PyType_Spec Checkpoint_spec = {
    "hunyuan._native.Checkpoint", sizeof(CheckpointObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    Checkpoint_slots,
};

/* ---- module --------------------------------------------------------------------------------- */

static PyObject *mod_version(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(hy_version_string());
}

static PyObject *mod_abi_version(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyLong_FromUnsignedLong(hy_abi_version());
}

static PyObject *mod_system_info(PyObject *m, PyObject *unused) {
    (void)m;
    (void)unused;
    return PyUnicode_FromString(hy_system_info());
}

static PyMethodDef module_methods[] = {
    {"version", mod_version, METH_NOARGS, "Library version string."},
    {"abi_version", mod_abi_version, METH_NOARGS, "ABI version of the loaded libhunyuan."},
    {"system_info", mod_system_info, METH_NOARGS, "CPU features and build information."},
    {NULL, NULL, 0, NULL},
};

static int module_exec(PyObject *m) {
    if (hy_abi_version() != HY_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError, "libhunyuan ABI %u does not match the extension's %d", hy_abi_version(), HY_ABI_VERSION);
        return -1;
    }
    if (make_errors(m) < 0) return -1;
    CheckpointType = PyType_FromSpec(&Checkpoint_spec);
    if (CheckpointType == NULL || PyModule_AddObjectRef(m, "Checkpoint", CheckpointType) < 0) return -1;
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "hunyuan._native", "Native binding of libhunyuan (see include/hunyuan.h).", 0,
    module_methods, module_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModuleDef_Init(&module_def); }
