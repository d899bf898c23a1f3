/* hunyuan._native — the CPython extension over include/hunyuan.h.
 *
 * Built against the stable ABI (Py_LIMITED_API 3.11) so one abi3 wheel serves CPython 3.11+ and every
 * Blender that embeds them. Rules: the GIL is released around every engine call; callbacks re-acquire
 * it; every hy_status other than HY_OK becomes a hunyuan.HunyuanError subclass carrying
 * hy_last_error(); a freed handle raises instead of crashing. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
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

/* The end of every tp_dealloc of a heap type: free the memory, drop the type's reference. */
static void release_object(PyObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

/* Calls fn(utf8_path, ctx) with the GIL released; on failure sets the exception (hy_last_error()'s
 * message, or the path conversion's) and returns -1. */
typedef hy_status (*path_call)(const char *path, void *ctx);

static int call_with_path(PyObject *path, path_call fn, void *ctx) {
    PyObject *b = path_bytes(path);
    if (b == NULL) return -1;
    const char *p = PyBytes_AsString(b);
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = fn(p, ctx);
    Py_END_ALLOW_THREADS
    Py_DECREF(b);
    if (st != HY_OK) {
        raise_status(st);
        return -1;
    }
    return 0;
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

static void Checkpoint_dealloc(CheckpointObject *self) {
    if (self->ck) hy_checkpoint_free(self->ck);
    release_object((PyObject *)self);
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


/* ---- Mesh ----------------------------------------------------------------------------------- */

/* A hy_mesh plus a count of live buffer exports: while numpy arrays view the mesh's memory, methods
 * that modify the mesh raise BufferError (as bytearray does) instead of leaving the arrays dangling. */
typedef struct {
    PyObject_HEAD
    hy_mesh *mesh;
    Py_ssize_t exports;
} MeshObject;

static PyObject *MeshType;
static PyObject *MeshViewType;

enum { VIEW_POSITIONS = 0, VIEW_FACES = 1, VIEW_COLORS = 2, VIEW_NORMALS = 3, VIEW_UVS = 4 };

/* A read-only 2-D buffer over one of a mesh's arrays; keeps the mesh alive. */
typedef struct {
    PyObject_HEAD
    MeshObject *owner;
    int kind;
    Py_ssize_t shape[2];
    Py_ssize_t strides[2];
} MeshViewObject;

static hy_mesh *mesh_get(MeshObject *self) {
    if (self->mesh == NULL) PyErr_SetString(PyExc_ValueError, "mesh is closed");
    return self->mesh;
}

/* The mesh for a modifying call: refused while arrays still view it. */
static hy_mesh *mesh_get_mutable(MeshObject *self) {
    hy_mesh *m = mesh_get(self);
    if (m != NULL && self->exports > 0) {
        PyErr_SetString(PyExc_BufferError,
                        "the mesh's arrays are still referenced (numpy views of vertices/faces/colors); "
                        "copy or delete them before modifying the mesh");
        return NULL;
    }
    return m;
}

static PyObject *mesh_wrap(hy_mesh *m) {
    MeshObject *obj = (MeshObject *)PyObject_CallNoArgs(MeshType);
    if (obj == NULL) {
        hy_mesh_free(m);
        return NULL;
    }
    obj->mesh = m;
    return (PyObject *)obj;
}

static void Mesh_dealloc(MeshObject *self) {
    if (self->mesh) hy_mesh_free(self->mesh);
    release_object((PyObject *)self);
}

static PyObject *Mesh_close(MeshObject *self, PyObject *unused) {
    (void)unused;
    if (self->mesh && self->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "the mesh's arrays are still referenced; delete them first");
        return NULL;
    }
    if (self->mesh) hy_mesh_free(self->mesh);
    self->mesh = NULL;
    Py_RETURN_NONE;
}

static PyObject *Mesh_view(MeshObject *self, PyObject *args) {
    int kind;
    if (!PyArg_ParseTuple(args, "i", &kind)) return NULL;
    hy_mesh *m = mesh_get(self);
    if (m == NULL) return NULL;
    if (kind < VIEW_POSITIONS || kind > VIEW_UVS) return PyErr_Format(PyExc_ValueError, "bad view kind %d", kind);
    int32_t channels = 0;
    const void *p;
    Py_ssize_t rows = (Py_ssize_t)hy_mesh_vertex_count(m), cols = 3;
    switch (kind) {
    case VIEW_POSITIONS: p = hy_mesh_positions(m); break;
    case VIEW_FACES: p = hy_mesh_faces(m); rows = (Py_ssize_t)hy_mesh_face_count(m); break;
    case VIEW_COLORS: p = hy_mesh_colors(m, &channels); cols = channels; break;
    case VIEW_NORMALS: p = hy_mesh_normals(m); break;
    default: p = hy_mesh_uvs(m); cols = 2; break;
    }
    if (p == NULL && kind >= VIEW_COLORS) Py_RETURN_NONE; /* attribute absent */
    MeshViewObject *v = (MeshViewObject *)PyObject_CallNoArgs(MeshViewType);
    if (v == NULL) return NULL;
    Py_INCREF((PyObject *)self);
    v->owner = self;
    v->kind = kind;
    v->shape[0] = rows;
    v->shape[1] = cols;
    v->strides[0] = cols * 4;
    v->strides[1] = 4;
    return (PyObject *)v;
}

static const float empty_storage[4];

static int MeshView_getbuffer(MeshViewObject *self, Py_buffer *view, int flags) {
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "mesh arrays are read-only; use Mesh methods to modify a mesh");
        return -1;
    }
    MeshObject *owner = self->owner;
    hy_mesh *m = mesh_get(owner);
    if (m == NULL) return -1;
    int32_t channels = 0;
    const void *p;
    switch (self->kind) {
    case VIEW_POSITIONS: p = hy_mesh_positions(m); break;
    case VIEW_FACES: p = hy_mesh_faces(m); break;
    case VIEW_COLORS: p = hy_mesh_colors(m, &channels); break;
    case VIEW_NORMALS: p = hy_mesh_normals(m); break;
    default: p = hy_mesh_uvs(m); break;
    }
    if (p == NULL) p = empty_storage;
    view->buf = (void *)p;
    view->obj = (PyObject *)self;
    Py_INCREF((PyObject *)self);
    view->len = self->shape[0] * self->shape[1] * 4;
    view->readonly = 1;
    view->itemsize = 4;
    view->format = (flags & PyBUF_FORMAT) ? (self->kind == VIEW_FACES ? "I" : "f") : NULL;
    view->ndim = 2;
    view->shape = (flags & PyBUF_ND) ? self->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? self->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    owner->exports++;
    return 0;
}

static void MeshView_releasebuffer(MeshViewObject *self, Py_buffer *view) {
    (void)view;
    self->owner->exports--;
}

static void MeshView_dealloc(MeshViewObject *self) {
    Py_XDECREF((PyObject *)self->owner);
    release_object((PyObject *)self);
}

static PyType_Slot MeshView_slots[] = {
    {Py_tp_doc, (void *)"Read-only buffer over a mesh array (internal; use Mesh.vertices etc.)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)MeshView_dealloc},
    {Py_bf_getbuffer, (void *)MeshView_getbuffer},
    {Py_bf_releasebuffer, (void *)MeshView_releasebuffer},
    {0, NULL},
};

static PyType_Spec MeshView_spec = {"hunyuan._native.MeshView", sizeof(MeshViewObject), 0, Py_TPFLAGS_DEFAULT, MeshView_slots};

/* Gets a C-contiguous buffer of `itemsize`-byte items from obj. */
static int get_contiguous(PyObject *obj, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->itemsize != 4) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "%s must hold 4-byte items (float32 / uint32)", what);
        return -1;
    }
    return 0;
}

/* new(positions f32 [V*3], faces u32 [F*3]) */
static PyObject *mod_mesh_new(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *pos, *faces;
    if (!PyArg_ParseTuple(args, "OO", &pos, &faces)) return NULL;
    Py_buffer pv, fv;
    if (get_contiguous(pos, &pv, "vertices") < 0) return NULL;
    if (get_contiguous(faces, &fv, "faces") < 0) {
        PyBuffer_Release(&pv);
        return NULL;
    }
    hy_mesh *out = NULL;
    hy_status st;
    size_t nv = (size_t)pv.len / 12, nf = (size_t)fv.len / 12;
    if ((size_t)pv.len % 12 || (size_t)fv.len % 12) {
        PyBuffer_Release(&pv);
        PyBuffer_Release(&fv);
        PyErr_SetString(PyExc_ValueError, "vertices and faces must have 3 columns");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_new((const float *)pv.buf, nv, (const uint32_t *)fv.buf, nf, &out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&pv);
    PyBuffer_Release(&fv);
    if (st != HY_OK) return raise_status(st);
    return mesh_wrap(out);
}

/* from_grid(values f32 buffer, (X,Y,Z), bounds or None, level, flags, n_threads) */
static PyObject *mod_mesh_from_grid(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *values, *bounds_obj;
    int32_t dims[3];
    float level;
    unsigned int flags;
    int n_threads;
    if (!PyArg_ParseTuple(args, "O(iii)OfIi", &values, &dims[0], &dims[1], &dims[2], &bounds_obj, &level, &flags, &n_threads))
        return NULL;
    float bounds[6];
    const float *bp = NULL;
    if (bounds_obj != Py_None) {
        if (!PyArg_ParseTuple(bounds_obj, "ffffff", &bounds[0], &bounds[1], &bounds[2], &bounds[3], &bounds[4], &bounds[5]))
            return NULL;
        bp = bounds;
    }
    Py_buffer v;
    if (get_contiguous(values, &v, "grid") < 0) return NULL;
    hy_mesh *out = NULL;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_from_grid((const float *)v.buf, (size_t)v.len / 4, dims, bp, level, flags, n_threads, &out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&v);
    if (st != HY_OK) return raise_status(st);
    return mesh_wrap(out);
}

static hy_status load_mesh(const char *path, void *out) { return hy_mesh_load(path, (hy_mesh **)out); }

static PyObject *mod_mesh_load(PyObject *m, PyObject *args) {
    (void)m;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O", &path)) return NULL;
    hy_mesh *out = NULL;
    if (call_with_path(path, load_mesh, &out) < 0) return NULL;
    return mesh_wrap(out);
}

/* A mesh and the flags / size of a write. */
typedef struct {
    const hy_mesh *mesh;
    uint32_t flags;
    int size;
} MeshWrite;

static hy_status save_mesh(const char *path, void *ctx) {
    MeshWrite *w = (MeshWrite *)ctx;
    return hy_mesh_save(w->mesh, path, w->flags);
}

static hy_status preview_mesh(const char *path, void *ctx) {
    MeshWrite *w = (MeshWrite *)ctx;
    return hy_mesh_render_preview(w->mesh, path, w->size, w->flags);
}

static PyObject *Mesh_counts(MeshObject *self, PyObject *unused) {
    (void)unused;
    hy_mesh *m = mesh_get(self);
    if (m == NULL) return NULL;
    return Py_BuildValue("(nn)", (Py_ssize_t)hy_mesh_vertex_count(m), (Py_ssize_t)hy_mesh_face_count(m));
}

static PyObject *Mesh_save(MeshObject *self, PyObject *args) {
    PyObject *path;
    int overwrite = 0;
    if (!PyArg_ParseTuple(args, "O|p", &path, &overwrite)) return NULL;
    hy_mesh *m = mesh_get(self);
    if (m == NULL) return NULL;
    MeshWrite w = {m, overwrite ? HY_SAVE_OVERWRITE : HY_SAVE_DEFAULT, 0};
    if (call_with_path(path, save_mesh, &w) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Mesh_preview(MeshObject *self, PyObject *args) {
    PyObject *path;
    int size = 512, overwrite = 0;
    if (!PyArg_ParseTuple(args, "O|ip", &path, &size, &overwrite)) return NULL;
    hy_mesh *m = mesh_get(self);
    if (m == NULL) return NULL;
    MeshWrite w = {m, overwrite ? HY_SAVE_OVERWRITE : HY_SAVE_DEFAULT, size};
    if (call_with_path(path, preview_mesh, &w) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Mesh_clean(MeshObject *self, PyObject *args) {
    float eps = 0;
    Py_ssize_t keep = 0, min_faces = 0;
    if (!PyArg_ParseTuple(args, "|fnn", &eps, &keep, &min_faces)) return NULL;
    if (keep < 0 || min_faces < 0) return PyErr_Format(PyExc_ValueError, "counts must be >= 0");
    hy_mesh *m = mesh_get_mutable(self);
    if (m == NULL) return NULL;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_clean(m, eps, (size_t)keep, (size_t)min_faces);
    Py_END_ALLOW_THREADS
    if (st != HY_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Mesh_smooth(MeshObject *self, PyObject *args) {
    int iterations = 1, method = HY_SMOOTH_TAUBIN;
    if (!PyArg_ParseTuple(args, "|ii", &iterations, &method)) return NULL;
    hy_mesh *m = mesh_get_mutable(self);
    if (m == NULL) return NULL;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_smooth(m, iterations, (hy_smooth_method)method);
    Py_END_ALLOW_THREADS
    if (st != HY_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Mesh_simplify(MeshObject *self, PyObject *args) {
    Py_ssize_t target;
    if (!PyArg_ParseTuple(args, "n", &target)) return NULL;
    if (target < 0) return PyErr_Format(PyExc_ValueError, "target_faces must be >= 0");
    hy_mesh *m = mesh_get_mutable(self);
    if (m == NULL) return NULL;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_simplify(m, (size_t)target);
    Py_END_ALLOW_THREADS
    if (st != HY_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Mesh_cluster(MeshObject *self, PyObject *args) {
    float voxel;
    if (!PyArg_ParseTuple(args, "f", &voxel)) return NULL;
    hy_mesh *m = mesh_get_mutable(self);
    if (m == NULL) return NULL;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_cluster(m, voxel);
    Py_END_ALLOW_THREADS
    if (st != HY_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Mesh_compute_normals(MeshObject *self, PyObject *unused) {
    (void)unused;
    hy_mesh *m = mesh_get_mutable(self);
    if (m == NULL) return NULL;
    hy_status st = hy_mesh_compute_normals(m);
    if (st != HY_OK) return raise_status(st);
    Py_RETURN_NONE;
}

/* set_colors(buffer f32 [V*channels] or None, channels) */
static PyObject *Mesh_set_colors(MeshObject *self, PyObject *args) {
    PyObject *colors;
    int channels = 3;
    if (!PyArg_ParseTuple(args, "O|i", &colors, &channels)) return NULL;
    hy_mesh *m = mesh_get_mutable(self);
    if (m == NULL) return NULL;
    hy_status st;
    if (colors == Py_None) {
        st = hy_mesh_set_colors(m, NULL, 0, channels);
    } else {
        Py_buffer v;
        if (get_contiguous(colors, &v, "colors") < 0) return NULL;
        st = hy_mesh_set_colors(m, (const float *)v.buf, (size_t)v.len / 4, channels);
        PyBuffer_Release(&v);
    }
    if (st != HY_OK) return raise_status(st);
    Py_RETURN_NONE;
}

static PyObject *Mesh_stats(MeshObject *self, PyObject *unused) {
    (void)unused;
    hy_mesh *m = mesh_get(self);
    if (m == NULL) return NULL;
    hy_mesh_stats s;
    memset(&s, 0, sizeof s);
    s.struct_size = sizeof s;
    hy_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mesh_get_stats(m, &s);
    Py_END_ALLOW_THREADS
    if (st != HY_OK) return raise_status(st);
    return Py_BuildValue("{s:K,s:K,s:(ffffff),s:O,s:O,s:L,s:K,s:d,s:d}",
                         "vertices", (unsigned long long)s.n_vertices, "faces", (unsigned long long)s.n_faces,
                         "bounds", s.bounds[0], s.bounds[1], s.bounds[2], s.bounds[3], s.bounds[4], s.bounds[5],
                         "watertight", s.watertight ? Py_True : Py_False,
                         "winding_consistent", s.winding_consistent ? Py_True : Py_False,
                         "euler_characteristic", (long long)s.euler_characteristic,
                         "components", (unsigned long long)s.n_components, "area", s.area, "volume", s.volume);
}

static PyMethodDef Mesh_methods[] = {
    {"close", (PyCFunction)Mesh_close, METH_NOARGS, "Free the mesh (idempotent)."},
    {"view", (PyCFunction)Mesh_view, METH_VARARGS, "Buffer over an array: 0 positions, 1 faces, 2 colors, 3 normals, 4 uvs."},
    {"counts", (PyCFunction)Mesh_counts, METH_NOARGS, "(vertices, faces)."},
    {"save", (PyCFunction)Mesh_save, METH_VARARGS, "save(path, overwrite=False)."},
    {"preview", (PyCFunction)Mesh_preview, METH_VARARGS, "preview(path, size=512, overwrite=False)."},
    {"clean", (PyCFunction)Mesh_clean, METH_VARARGS, "clean(merge_epsilon=0, keep_largest=0, min_component_faces=0)."},
    {"smooth", (PyCFunction)Mesh_smooth, METH_VARARGS, "smooth(iterations=1, method=0 taubin | 1 laplacian)."},
    {"simplify", (PyCFunction)Mesh_simplify, METH_VARARGS, "simplify(target_faces)."},
    {"cluster", (PyCFunction)Mesh_cluster, METH_VARARGS, "cluster(voxel_size)."},
    {"compute_normals", (PyCFunction)Mesh_compute_normals, METH_NOARGS, "Area-weighted vertex normals."},
    {"set_colors", (PyCFunction)Mesh_set_colors, METH_VARARGS, "set_colors(buffer or None, channels)."},
    {"stats", (PyCFunction)Mesh_stats, METH_NOARGS, "Counts, bounds, watertightness, volume..."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Mesh_slots[] = {
    {Py_tp_doc, (void *)"A triangle mesh owned by libhunyuan (use hunyuan.Mesh)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)Mesh_dealloc},
    {Py_tp_methods, Mesh_methods},
    {0, NULL},
};

static PyType_Spec Mesh_spec = {"hunyuan._native.Mesh", sizeof(MeshObject), 0, Py_TPFLAGS_DEFAULT, Mesh_slots};


/* ---- Tokenizer ------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    hy_tokenizer *tok;
} TokenizerObject;

static PyObject *TokenizerType;

static hy_tokenizer *tokenizer_get(TokenizerObject *self) {
    if (self->tok == NULL) PyErr_SetString(PyExc_ValueError, "tokenizer is closed");
    return self->tok;
}

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

static void Tokenizer_dealloc(TokenizerObject *self) {
    if (self->tok) hy_tokenizer_free(self->tok);
    release_object((PyObject *)self);
}

static PyObject *Tokenizer_close(TokenizerObject *self, PyObject *unused) {
    (void)unused;
    if (self->tok) hy_tokenizer_free(self->tok);
    self->tok = NULL;
    Py_RETURN_NONE;
}

static PyObject *ids_to_list(const hy_token *ids, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL) return NULL;
    for (size_t i = 0; i < n; i++) PyList_SetItem(list, (Py_ssize_t)i, PyLong_FromLong(ids[i]));
    return list;
}

/* Calls a buffer-filling function twice: once for the size, once to fill. */
#define FILL_IDS(call_with_buf_cap)                                                  \
    do {                                                                             \
        size_t needed_ = 0;                                                          \
        hy_token *buf_ = NULL;                                                       \
        size_t cap_ = 0;                                                             \
        hy_status st_;                                                               \
        for (int pass_ = 0; pass_ < 2; pass_++) {                                    \
            Py_BEGIN_ALLOW_THREADS                                                   \
            st_ = call_with_buf_cap;                                                 \
            Py_END_ALLOW_THREADS                                                     \
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

/* Reads a sequence of ints into a new int32 array (PyMem_Free it). */
static int32_t *ids_from_sequence(PyObject *seq, size_t *n_out) {
    PyObject *fast = PySequence_Tuple(seq);
    if (fast == NULL) return NULL;
    Py_ssize_t n = PyTuple_Size(fast);
    int32_t *ids = (int32_t *)PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (ids == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PyTuple_GetItem(fast, i));
        if (v == -1 && PyErr_Occurred()) {
            PyMem_Free(ids);
            Py_DECREF(fast);
            return NULL;
        }
        if (v < INT32_MIN || v > INT32_MAX) {
            PyMem_Free(ids);
            Py_DECREF(fast);
            PyErr_Format(StatusErrors[HY_ERR_INVALID_ARGUMENT], "token id %ld out of range", v);
            return NULL;
        }
        ids[i] = (int32_t)v;
    }
    Py_DECREF(fast);
    *n_out = (size_t)n;
    return ids;
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
    Py_BEGIN_ALLOW_THREADS
    st = hy_detokenize(t, ids, n, PyBytes_AsString(out), needed, &needed);
    Py_END_ALLOW_THREADS
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

static PyType_Slot Tokenizer_slots[] = {
    {Py_tp_doc, (void *)"Hunyuan's tokenizer (hy.tiktoken)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Tokenizer_init},
    {Py_tp_dealloc, (void *)Tokenizer_dealloc},
    {Py_tp_methods, Tokenizer_methods},
    {0, NULL},
};

static PyType_Spec Tokenizer_spec = {"hunyuan._native.Tokenizer", sizeof(TokenizerObject), 0, Py_TPFLAGS_DEFAULT, Tokenizer_slots};

/* ---- Model and Session ---------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    hy_model *model;
} ModelObject;

typedef struct {
    PyObject_HEAD
    hy_session *session;
    int busy; /* a call is running: a second concurrent call on the same session raises */
} SessionObject;

static PyObject *ModelType;
static PyObject *SessionType;

typedef struct {
    hy_model_params params;
    hy_model *model;
} ModelLoad;

static hy_status load_model(const char *path, void *ctx) {
    ModelLoad *l = (ModelLoad *)ctx;
    return hy_model_load(path, &l->params, &l->model);
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", "n_threads", NULL};
    PyObject *path;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i", kwlist, &path, &n_threads)) return -1;
    ModelLoad load = {hy_model_default_params(), NULL};
    load.params.n_threads = n_threads;
    if (call_with_path(path, load_model, &load) < 0) return -1;
    hy_model *m = load.model;
    if (self->model) hy_model_free(self->model);
    self->model = m;
    return 0;
}

static void Model_dealloc(ModelObject *self) {
    if (self->model) hy_model_free(self->model);
    release_object((PyObject *)self);
}

static hy_model *model_get(ModelObject *self) {
    if (self->model == NULL) PyErr_SetString(PyExc_ValueError, "model is closed");
    return self->model;
}

static PyObject *Model_close(ModelObject *self, PyObject *unused) {
    (void)unused;
    if (self->model) hy_model_free(self->model); /* sessions keep their own reference */
    self->model = NULL;
    Py_RETURN_NONE;
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    (void)unused;
    hy_model *m = model_get(self);
    if (m == NULL) return NULL;
    hy_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    hy_status st = hy_model_get_info(m, &info);
    if (st != HY_OK) return raise_status(st);
    PyObject *eos = ids_to_list(info.eos_token_ids, (size_t)(info.n_eos < 0 ? 0 : info.n_eos));
    if (eos == NULL) return NULL;
    hy_sampler_params sp = hy_model_sampler_params(m);
    return Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:N,s:K,s:K,s:K,s:{s:O,s:f,s:i,s:f,s:f,s:f}}",
        "arch", (int)info.arch, "n_vocab", info.n_vocab, "n_embd", info.n_embd, "n_layer", info.n_layer,
        "n_head", info.n_head, "n_head_kv", info.n_head_kv, "head_dim", info.head_dim, "n_ctx_train", info.n_ctx_train,
        "n_expert", info.n_expert, "n_expert_used", info.n_expert_used, "cla_share_factor", info.cla_share_factor,
        "bos_token_id", info.bos_token_id, "eos_token_ids", eos, "n_params", (unsigned long long)info.n_params,
        "weight_bytes", (unsigned long long)info.weight_bytes, "kv_bytes_per_token", (unsigned long long)info.kv_bytes_per_token,
        "sampler", "greedy", sp.greedy ? Py_True : Py_False, "temperature", sp.temperature, "top_k", sp.top_k,
        "top_p", sp.top_p, "min_p", sp.min_p, "repetition_penalty", sp.repeat_penalty);
}

static PyMethodDef Model_methods[] = {
    {"close", (PyCFunction)Model_close, METH_NOARGS, "Release the caller's reference to the weights."},
    {"info", (PyCFunction)Model_info, METH_NOARGS, "Sizes, architecture, eos ids and sampling defaults."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Model_slots[] = {
    {Py_tp_doc, (void *)"Language-model weights (shareable across threads)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Model_init},
    {Py_tp_dealloc, (void *)Model_dealloc},
    {Py_tp_methods, Model_methods},
    {0, NULL},
};

static PyType_Spec Model_spec = {"hunyuan._native.Model", sizeof(ModelObject), 0, Py_TPFLAGS_DEFAULT, Model_slots};

static int Session_init(SessionObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"model", "n_ctx", "n_threads", "kv_type", NULL};
    PyObject *model;
    unsigned int n_ctx = 0;
    int n_threads = 0, kv_type = HY_KV_F32;
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
    Py_BEGIN_ALLOW_THREADS
    st = hy_session_new(m, &params, &s);
    Py_END_ALLOW_THREADS
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

static int is_main_thread(void) {
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyObject *cur = PyObject_CallMethod(threading, "current_thread", NULL);
    PyObject *main = PyObject_CallMethod(threading, "main_thread", NULL);
    int r = cur != NULL && cur == main;
    Py_XDECREF(cur);
    Py_XDECREF(main);
    Py_DECREF(threading);
    PyErr_Clear();
    return r;
}

/* logits(ids, should_abort=None) -> bytes of float32 [n, n_vocab], n_vocab */
static PyObject *Session_logits(SessionObject *self, PyObject *args) {
    PyObject *seq, *should_abort = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &seq, &should_abort)) return NULL;
    size_t n = 0;
    int32_t *ids = ids_from_sequence(seq, &n);
    if (ids == NULL) return NULL;
    hy_session *s = session_acquire(self);
    if (s == NULL) {
        PyMem_Free(ids);
        return NULL;
    }
    CallbackState cs = {NULL, should_abort == Py_None ? NULL : should_abort, 0, NULL, NULL, NULL, is_main_thread()};
    hy_eval_params ep = hy_eval_default_params();
    ep.all_logits = true;
    ep.abort = abort_cb;
    ep.abort_user = &cs;
    hy_status st;
    const float *logits = NULL;
    size_t rows = 0, vocab = 0;
    Py_BEGIN_ALLOW_THREADS
    st = hy_session_eval(s, ids, n, &ep);
    if (st == HY_OK) st = hy_session_logits(s, &logits, &rows, &vocab);
    Py_END_ALLOW_THREADS
    PyMem_Free(ids);
    self->busy = 0;
    if (cs.failed) {
        PyErr_Restore(cs.exc_type, cs.exc_value, cs.exc_tb);
        return NULL;
    }
    if (st != HY_OK) return raise_status(st);
    PyObject *out = PyBytes_FromStringAndSize((const char *)logits, (Py_ssize_t)(rows * vocab * sizeof(float)));
    if (out == NULL) return NULL;
    return Py_BuildValue("(Nn)", out, (Py_ssize_t)vocab);
}

/* generate(ids, max_tokens, sampler tuple or None, on_token, should_abort) -> (ids, reason) */
static PyObject *Session_generate(SessionObject *self, PyObject *args) {
    PyObject *seq, *sampler, *on_token, *should_abort;
    unsigned int max_tokens;
    if (!PyArg_ParseTuple(args, "OIOOO", &seq, &max_tokens, &sampler, &on_token, &should_abort)) return NULL;
    hy_sampler_params sp = hy_sampler_default_params();
    int greedy = 0;
    unsigned long long seed = 0;
    if (sampler != Py_None) {
        if (!PyArg_ParseTuple(sampler, "pfifffK", &greedy, &sp.temperature, &sp.top_k, &sp.top_p, &sp.min_p,
                              &sp.repeat_penalty, &seed))
            return NULL;
    }
    sp.greedy = greedy != 0;
    sp.seed = seed;
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
        PyErr_Restore(cs.exc_type, cs.exc_value, cs.exc_tb);
        return NULL;
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

static PyMethodDef Session_methods[] = {
    {"close", (PyCFunction)Session_close, METH_NOARGS, "Free the session."},
    {"reset", (PyCFunction)Session_reset, METH_NOARGS, "Forget every cached token."},
    {"n_past", (PyCFunction)Session_n_past, METH_NOARGS, "Tokens in the cache."},
    {"logits", (PyCFunction)Session_logits, METH_VARARGS, "Evaluate ids; float32 logits of every position."},
    {"generate", (PyCFunction)Session_generate, METH_VARARGS, "Generate from ids."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Session_slots[] = {
    {Py_tp_doc, (void *)"A KV cache on a model (one thread at a time)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Session_init},
    {Py_tp_dealloc, (void *)Session_dealloc},
    {Py_tp_methods, Session_methods},
    {0, NULL},
};

static PyType_Spec Session_spec = {"hunyuan._native.Session", sizeof(SessionObject), 0, Py_TPFLAGS_DEFAULT, Session_slots};


/* ---- Reconstruction ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    hy_recon *recon;
    int busy;
} ReconObject;

static PyObject *ReconType;

typedef struct {
    hy_recon_params params;
    hy_recon *recon;
} ReconLoad;

static hy_status load_recon(const char *path, void *ctx) {
    ReconLoad *l = (ReconLoad *)ctx;
    return hy_recon_load(path, &l->params, &l->recon);
}

static int Recon_init(ReconObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", "n_threads", NULL};
    PyObject *path;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i", kwlist, &path, &n_threads)) return -1;
    ReconLoad load = {hy_recon_default_params(), NULL};
    load.params.n_threads = n_threads;
    if (call_with_path(path, load_recon, &load) < 0) return -1;
    hy_recon *r = load.recon;
    if (self->recon) hy_recon_free(self->recon);
    self->recon = r;
    return 0;
}

static void Recon_dealloc(ReconObject *self) {
    if (self->recon) hy_recon_free(self->recon);
    release_object((PyObject *)self);
}

static PyObject *Recon_close(ReconObject *self, PyObject *unused) {
    (void)unused;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "reconstruction is running");
        return NULL;
    }
    if (self->recon) hy_recon_free(self->recon);
    self->recon = NULL;
    Py_RETURN_NONE;
}

static PyObject *Recon_info(ReconObject *self, PyObject *unused) {
    (void)unused;
    if (self->recon == NULL) {
        PyErr_SetString(PyExc_ValueError, "model is closed");
        return NULL;
    }
    hy_recon_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    hy_status st = hy_recon_get_info(self->recon, &info);
    if (st != HY_OK) return raise_status(st);
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:f,s:f}", "n_views", info.n_views, "image_size", info.image_size,
                         "camera_dim", info.camera_dim, "triplane_channels", info.triplane_channels,
                         "triplane_resolution", info.triplane_resolution, "box_min", info.box_min, "box_max", info.box_max);
}

typedef struct {
    PyObject *progress;     /* callable(fraction) -> bool or None */
    volatile int cancelled; /* read by the abort callback on worker threads: no Python there */
    int failed;
    PyObject *exc_type, *exc_value, *exc_tb;
    int check_signals;
} ReconCallbacks;

static bool recon_progress_cb(float fraction, void *user) {
    ReconCallbacks *rc = (ReconCallbacks *)user;
    if (rc->cancelled) return false;
    if (rc->progress == NULL && !rc->check_signals) return true;
    PyGILState_STATE g = PyGILState_Ensure();
    if (rc->check_signals && PyErr_CheckSignals() < 0) {
        if (!rc->failed) {
            rc->failed = 1;
            PyErr_Fetch(&rc->exc_type, &rc->exc_value, &rc->exc_tb);
        }
        rc->cancelled = 1;
    } else if (rc->progress) {
        PyObject *f = PyFloat_FromDouble(fraction);
        PyObject *r = f ? PyObject_CallFunctionObjArgs(rc->progress, f, NULL) : NULL;
        Py_XDECREF(f);
        if (r == NULL) {
            if (!rc->failed) {
                rc->failed = 1;
                PyErr_Fetch(&rc->exc_type, &rc->exc_value, &rc->exc_tb);
            }
            rc->cancelled = 1;
        } else {
            if (r == Py_False) rc->cancelled = 1;
            Py_DECREF(r);
        }
    }
    PyGILState_Release(g);
    return !rc->cancelled;
}

static bool recon_abort_cb(void *user) { return ((ReconCallbacks *)user)->cancelled != 0; }

/* views_to_mesh([(pixels: bytes, width, height, channels)], resolution, faces, cluster, smooth,
 *               export_axes, progress) -> Mesh */
static PyObject *Recon_views_to_mesh(ReconObject *self, PyObject *args) {
    PyObject *views, *progress;
    int resolution, faces, smooth, export_axes;
    float cluster;
    if (!PyArg_ParseTuple(args, "OiifipO", &views, &resolution, &faces, &cluster, &smooth, &export_axes, &progress))
        return NULL;
    if (self->recon == NULL) {
        PyErr_SetString(PyExc_ValueError, "model is closed");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "reconstruction already running on this model");
        return NULL;
    }
    PyObject *fast = PySequence_Tuple(views);
    if (fast == NULL) return NULL;
    Py_ssize_t n = PyTuple_Size(fast);
    hy_recon_image *imgs = (hy_recon_image *)PyMem_Calloc((size_t)(n ? n : 1), sizeof(hy_recon_image));
    if (imgs == NULL) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *px;
        Py_ssize_t len;
        if (!PyArg_ParseTuple(PyTuple_GetItem(fast, i), "y#iii", &px, &len, &imgs[i].width, &imgs[i].height,
                              &imgs[i].channels)) {
            PyMem_Free(imgs);
            Py_DECREF(fast);
            return NULL;
        }
        if ((long long)len != (long long)imgs[i].width * imgs[i].height * imgs[i].channels) {
            PyMem_Free(imgs);
            Py_DECREF(fast);
            return PyErr_Format(StatusErrors[HY_ERR_INVALID_ARGUMENT], "view %zd: %zd bytes for %dx%dx%d", i, len,
                                imgs[i].width, imgs[i].height, imgs[i].channels);
        }
        imgs[i].pixels = (const uint8_t *)px;
    }
    hy_recon_mesh_params mp = hy_recon_mesh_default_params();
    mp.resolution = resolution;
    mp.target_faces = faces;
    mp.cluster_size = cluster;
    mp.smooth_iterations = smooth;
    mp.export_axes = export_axes != 0;
    ReconCallbacks rc = {progress == Py_None ? NULL : progress, 0, 0, NULL, NULL, NULL, is_main_thread()};
    hy_mesh *out = NULL;
    hy_status st;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    st = hy_recon_views_to_mesh(self->recon, imgs, (size_t)n, &mp, recon_progress_cb, &rc, recon_abort_cb, &rc, &out);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyMem_Free(imgs);
    Py_DECREF(fast); /* keeps the pixel bytes alive until here */
    if (rc.failed) {
        if (out) hy_mesh_free(out);
        PyErr_Restore(rc.exc_type, rc.exc_value, rc.exc_tb);
        return NULL;
    }
    if (st != HY_OK) return raise_status(st);
    return mesh_wrap(out);
}

static PyMethodDef Recon_methods[] = {
    {"close", (PyCFunction)Recon_close, METH_NOARGS, "Free the model."},
    {"info", (PyCFunction)Recon_info, METH_NOARGS, "Model sizes."},
    {"views_to_mesh", (PyCFunction)Recon_views_to_mesh, METH_VARARGS, "Views to a coloured mesh."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Recon_slots[] = {
    {Py_tp_doc, (void *)"Hunyuan3D-1.0 sparse-view reconstruction model (one call at a time)."},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_init, (void *)Recon_init},
    {Py_tp_dealloc, (void *)Recon_dealloc},
    {Py_tp_methods, Recon_methods},
    {0, NULL},
};

static PyType_Spec Recon_spec = {"hunyuan._native.Reconstructor", sizeof(ReconObject), 0, Py_TPFLAGS_DEFAULT, Recon_slots};

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

static hy_status load_image(const char *path, void *out) { return hy_recon_image_load(path, (hy_recon_image *)out); }

/* image_load(path) -> (pixels: bytes, width, height, channels), PNG or JPEG */
static PyObject *mod_image_load(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O", &path)) return NULL;
    hy_recon_image im = {0};
    if (call_with_path(path, load_image, &im) < 0) return NULL;
    PyObject *r = Py_BuildValue("(y#iii)", (const char *)im.pixels, (Py_ssize_t)im.width * im.height * im.channels,
                                (int)im.width, (int)im.height, (int)im.channels);
    hy_recon_image_free(&im);
    return r;
}

static PyMethodDef module_methods[] = {
    {"version", mod_version, METH_NOARGS, "Library version string."},
    {"abi_version", mod_abi_version, METH_NOARGS, "ABI version of the loaded libhunyuan."},
    {"system_info", mod_system_info, METH_NOARGS, "CPU features and build information."},
    {"mesh_new", mod_mesh_new, METH_VARARGS, "Mesh from float32 vertices [V*3] and uint32 faces [F*3] buffers."},
    {"mesh_from_grid", mod_mesh_from_grid, METH_VARARGS, "Marching cubes over a float32 grid buffer."},
    {"mesh_load", mod_mesh_load, METH_VARARGS, "Load .obj/.ply/.glb/.stl."},
    {"image_load", mod_image_load, METH_VARARGS, "Read a PNG or JPEG file: (pixels, width, height, channels)."},
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
    MeshType = PyType_FromSpec(&Mesh_spec);
    if (MeshType == NULL || PyModule_AddObjectRef(m, "Mesh", MeshType) < 0) return -1;
    TokenizerType = PyType_FromSpec(&Tokenizer_spec);
    if (TokenizerType == NULL || PyModule_AddObjectRef(m, "Tokenizer", TokenizerType) < 0) return -1;
    ModelType = PyType_FromSpec(&Model_spec);
    if (ModelType == NULL || PyModule_AddObjectRef(m, "Model", ModelType) < 0) return -1;
    SessionType = PyType_FromSpec(&Session_spec);
    if (SessionType == NULL || PyModule_AddObjectRef(m, "Session", SessionType) < 0) return -1;
    ReconType = PyType_FromSpec(&Recon_spec);
    if (ReconType == NULL || PyModule_AddObjectRef(m, "Reconstructor", ReconType) < 0) return -1;
    MeshViewType = PyType_FromSpec(&MeshView_spec);
    if (MeshViewType == NULL || PyModule_AddObjectRef(m, "MeshView", MeshViewType) < 0) return -1;
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
