/* hunyuan._native.Mesh and MeshView: hy_mesh (the "Meshes" section of hunyuan.h, MeshAPI.swift), and
 * the module functions that make meshes. */
#include "_native.h"

/* A hy_mesh plus a count of live buffer exports: while numpy arrays view the mesh's memory, methods
 * that modify the mesh raise BufferError (as bytearray does) instead of leaving the arrays dangling. */
typedef struct {
    PyObject_HEAD
    hy_mesh *mesh;
    Py_ssize_t exports;
} MeshObject;

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

PyObject *mesh_wrap(hy_mesh *m) {
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

NATIVE_TYPE_DEFINE(MeshView, "MeshView", Py_TPFLAGS_DEFAULT)

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
PyObject *mod_mesh_new(PyObject *m, PyObject *args) {
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
PyObject *mod_mesh_from_grid(PyObject *m, PyObject *args) {
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

PyObject *mod_mesh_load(PyObject *m, PyObject *args) {
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

NATIVE_TYPE_DEFINE(Mesh, "Mesh", Py_TPFLAGS_DEFAULT)
