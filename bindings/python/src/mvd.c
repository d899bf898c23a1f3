/* hunyuan._native.MultiView: hy_mvd (the "Multi-view diffusion" section of hunyuan.h, MVDAPI.swift). */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    hy_mvd *mvd;
    int users;
} MultiViewObject;

typedef struct {
    hy_mvd_params params;
    hy_mvd *mvd;
} MultiViewLoad;

static hy_status load_mvd(const char *path, void *ctx) {
    MultiViewLoad *l = (MultiViewLoad *)ctx;
    return hy_mvd_load(path, &l->params, &l->mvd);
}

static hy_mvd *multiview_get(MultiViewObject *self);
NATIVE_HANDLE_BASICS(MultiView, mvd, hy_mvd, hy_mvd_free, multiview_get, "multi-view model")

static int MultiView_init(MultiViewObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", "n_threads", "variant", "compute", NULL};
    PyObject *path;
    int n_threads = 0;
    const char *variant = NULL;
    const char *compute = "fp32";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|izs", kwlist, &path, &n_threads, &variant, &compute)) return -1;
    int compute_code;
    if (strcmp(compute, "fp32") == 0) compute_code = HY_COMPUTE_FP32;
    else if (strcmp(compute, "bf16") == 0) compute_code = HY_COMPUTE_BF16;
    else {
        PyErr_Format(PyExc_ValueError, "compute must be 'fp32' or 'bf16', not '%s'", compute);
        return -1;
    }
    if (self->users > 0) {
        PyErr_SetString(PyExc_RuntimeError, "multi-view model is in use by a running call");
        return -1;
    }
    MultiViewLoad load = {hy_mvd_default_params(), NULL};
    load.params.n_threads = n_threads;
    load.params.variant = variant;
    load.params.compute = compute_code;
    if (call_with_path(path, load_mvd, &load) < 0) return -1;
    if (self->mvd) hy_mvd_free(self->mvd);
    self->mvd = load.mvd;
    return 0;
}

/* (pixels: bytes, width, height) of a borrowed RGB image, copied. */
static PyObject *image_tuple(const hy_recon_image *im) {
    return Py_BuildValue("(y#ii)", (const char *)im->pixels, (Py_ssize_t)im->width * im->height * 3, (int)im->width,
                         (int)im->height);
}

/* generate(pixels: bytes, width, height, channels, steps, seed, grid_width, grid_height, progress)
 *   -> ([(pixels, w, h)] * 6, (grid_pixels, w, h)) */
static PyObject *MultiView_generate(MultiViewObject *self, PyObject *args) {
    const char *px;
    Py_ssize_t len;
    int width, height, channels, steps, gw, gh;
    unsigned long long seed;
    PyObject *progress;
    if (!PyArg_ParseTuple(args, "y#iiiiKiiO", &px, &len, &width, &height, &channels, &steps, &seed, &gw, &gh, &progress))
        return NULL;
    hy_mvd *mvd = multiview_get(self);
    if (mvd == NULL) return NULL;
    if (width <= 0 || height <= 0 || (channels != 3 && channels != 4) ||
        (long long)len != (long long)width * height * channels)
        return PyErr_Format(StatusErrors[HY_ERR_INVALID_ARGUMENT], "image: %zd bytes for %dx%dx%d", len, width, height,
                            channels);
    hy_recon_image im = {(const uint8_t *)px, width, height, channels};
    hy_mvd_generate_params gp = hy_mvd_generate_default_params();
    gp.steps = steps;
    gp.seed = (uint64_t)seed;
    gp.width = gw;
    gp.height = gh;
    ProgressCallbacks rc = progress_callbacks(progress);
    hy_views *out = NULL;
    hy_status st;
    self->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_mvd_generate(mvd, &im, &gp, long_call_progress, &rc, long_call_abort, &rc, &out);
    Py_END_ALLOW_THREADS
    self->users--;
    if (progress_callbacks_failed(&rc)) {
        if (out) hy_views_free(out);
        return NULL;
    }
    if (st != HY_OK) return raise_status(st);
    size_t n = hy_views_count(out);
    PyObject *views = PyList_New((Py_ssize_t)n);
    PyObject *grid = NULL;
    if (views == NULL) goto fail;
    for (size_t i = 0; i < n; i++) {
        hy_recon_image v;
        if ((st = hy_views_get(out, i, &v)) != HY_OK) {
            raise_status(st);
            goto fail;
        }
        PyObject *t = image_tuple(&v);
        if (t == NULL) goto fail;
        PyList_SetItem(views, (Py_ssize_t)i, t);
    }
    hy_recon_image g;
    if ((st = hy_views_grid(out, &g)) != HY_OK) {
        raise_status(st);
        goto fail;
    }
    grid = image_tuple(&g);
    if (grid == NULL) goto fail;
    hy_views_free(out);
    PyObject *r = Py_BuildValue("(NN)", views, grid);
    return r;
fail:
    Py_XDECREF(views);
    Py_XDECREF(grid);
    hy_views_free(out);
    return NULL;
}

static PyMethodDef MultiView_methods[] = {
    {"close", (PyCFunction)MultiView_close, METH_NOARGS, "Free the model."},
    {"generate", (PyCFunction)MultiView_generate, METH_VARARGS, "One image to six views."},
    {NULL, NULL, 0, NULL},
};

NATIVE_HANDLE_SLOTS(MultiView, "Hunyuan3D-1.0 multi-view diffusion (lite); one call at a time.");

NATIVE_TYPE_DEFINE(MultiView, "MultiView", Py_TPFLAGS_DEFAULT)
