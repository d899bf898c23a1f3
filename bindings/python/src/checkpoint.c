/* hunyuan._native.Checkpoint: hy_checkpoint (the "Checkpoints" section of hunyuan.h, CheckpointAPI.swift). */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    hy_checkpoint *ck;
    int users; /* see TokenizerObject */
} CheckpointObject;

NATIVE_HANDLE_BASICS(Checkpoint, ck, hy_checkpoint, hy_checkpoint_free, checkpoint_get, "checkpoint")

static hy_status open_checkpoint(const char *path, void *out) {
    return hy_checkpoint_open(path, NULL, (hy_checkpoint **)out);
}

static int Checkpoint_init(CheckpointObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O", kwlist, &path)) return -1;
    hy_checkpoint *ck = NULL;
    if (call_with_path(path, open_checkpoint, &ck) < 0) return -1;
    if (self->ck) hy_checkpoint_free(self->ck);
    self->ck = ck;
    return 0;
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

NATIVE_HANDLE_SLOTS(Checkpoint, "A validated, memory-mapped safetensors checkpoint (file or folder).");

NATIVE_TYPE_DEFINE(Checkpoint, "Checkpoint", Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE)
