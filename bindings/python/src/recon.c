/* hunyuan._native.Reconstructor: hy_recon (the "Reconstruction" section of hunyuan.h, ReconAPI.swift),
 * and image_load. */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    hy_recon *recon;
    int busy;
} ReconObject;

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
    ProgressCallbacks rc = progress_callbacks(progress);
    hy_mesh *out = NULL;
    hy_status st;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    st = hy_recon_views_to_mesh(self->recon, imgs, (size_t)n, &mp, long_call_progress, &rc, long_call_abort, &rc, &out);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyMem_Free(imgs);
    Py_DECREF(fast); /* keeps the pixel bytes alive until here */
    if (progress_callbacks_failed(&rc)) {
        if (out) hy_mesh_free(out);
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

NATIVE_HANDLE_SLOTS(Recon, "Hunyuan3D-1.0 sparse-view reconstruction model (one call at a time).");

NATIVE_TYPE_DEFINE(Recon, "Reconstructor", Py_TPFLAGS_DEFAULT)

static hy_status load_image(const char *path, void *out) { return hy_recon_image_load(path, (hy_recon_image *)out); }

/* image_load(path) -> (pixels: bytes, width, height, channels), PNG or JPEG */
PyObject *mod_image_load(PyObject *mod, PyObject *args) {
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
