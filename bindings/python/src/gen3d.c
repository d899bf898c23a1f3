/* hunyuan._native.Generator: hy_gen3d (the "Text / image to 3D" section of hunyuan.h, Gen3DAPI.swift). */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    hy_gen3d *gen;
    int users;
} GeneratorObject;

typedef struct {
    hy_gen3d_params params;
    hy_gen3d *gen;
} GeneratorLoad;

static hy_status load_gen3d(const char *path, void *ctx) {
    GeneratorLoad *l = (GeneratorLoad *)ctx;
    return hy_gen3d_load(path, &l->params, &l->gen);
}

static hy_gen3d *generator_get(GeneratorObject *self);
NATIVE_HANDLE_BASICS(Generator, gen, hy_gen3d, hy_gen3d_free, generator_get, "generator")

static int Generator_init(GeneratorObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"path", "n_threads", "u2net", "keep_loaded", NULL};
    PyObject *path;
    int n_threads = 0, keep_loaded = 0;
    const char *u2net = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|izp", kwlist, &path, &n_threads, &u2net, &keep_loaded)) return -1;
    if (self->users > 0) {
        PyErr_SetString(PyExc_RuntimeError, "generator is in use by a running call");
        return -1;
    }
    GeneratorLoad load = {hy_gen3d_default_params(), NULL};
    load.params.n_threads = n_threads;
    load.params.u2net_path = u2net;
    load.params.keep_loaded = keep_loaded != 0;
    if (call_with_path(path, load_gen3d, &load) < 0) return -1;
    if (self->gen) hy_gen3d_free(self->gen);
    self->gen = load.gen;
    return 0;
}

/* The stage reports as the overall fraction for the shared progress machinery. */
static bool gen3d_progress(const hy_gen3d_progress *p, void *user) { return long_call_progress(p->overall, user); }

static int check_image(Py_ssize_t len, int width, int height, int channels) {
    if (width <= 0 || height <= 0 || (channels != 3 && channels != 4) ||
        (long long)len != (long long)width * height * channels) {
        PyErr_Format(StatusErrors[HY_ERR_INVALID_ARGUMENT], "image: %zd bytes for %dx%dx%d", len, width, height, channels);
        return -1;
    }
    return 0;
}

/* image_to_mesh(pixels, width, height, channels, steps, seed, resolution, faces, keep_alpha, compute,
 *               grid_width, grid_height, progress) -> Mesh */
static PyObject *Generator_image_to_mesh(GeneratorObject *self, PyObject *args) {
    const char *px, *compute;
    Py_ssize_t len;
    int width, height, channels, steps, resolution, faces, keep_alpha, gw, gh;
    unsigned long long seed;
    PyObject *progress;
    if (!PyArg_ParseTuple(args, "y#iiiiKiipsiiO", &px, &len, &width, &height, &channels, &steps, &seed, &resolution,
                          &faces, &keep_alpha, &compute, &gw, &gh, &progress))
        return NULL;
    hy_gen3d *gen = generator_get(self);
    if (gen == NULL || check_image(len, width, height, channels) < 0) return NULL;
    hy_gen3d_run_params rp = hy_gen3d_run_default_params();
    if (strcmp(compute, "fp32") == 0) rp.compute = HY_COMPUTE_FP32;
    else if (strcmp(compute, "bf16") == 0) rp.compute = HY_COMPUTE_BF16;
    else return PyErr_Format(PyExc_ValueError, "compute must be 'fp32' or 'bf16', not '%s'", compute);
    rp.steps = steps;
    rp.seed = (uint64_t)seed;
    rp.resolution = resolution;
    rp.target_faces = faces;
    rp.keep_alpha = keep_alpha != 0;
    rp.grid_width = gw;
    rp.grid_height = gh;
    hy_recon_image im = {(const uint8_t *)px, width, height, channels};
    ProgressCallbacks rc = progress_callbacks(progress);
    hy_mesh *out = NULL;
    hy_status st;
    self->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_gen3d_image_to_mesh(gen, &im, &rp, gen3d_progress, &rc, long_call_abort, &rc, &out);
    Py_END_ALLOW_THREADS
    self->users--;
    if (progress_callbacks_failed(&rc)) {
        if (out) hy_mesh_free(out);
        return NULL;
    }
    if (st != HY_OK) return raise_status(st);
    return mesh_wrap(out);
}

/* The text fields of params from Python (steps, seed, width, height, guidance, pag, compute). */
static int text_params(hy_gen3d_run_params *rp, int steps, unsigned long long seed, int width, int height, float guidance,
                       float pag, const char *compute) {
    if (strcmp(compute, "fp32") == 0) rp->compute = HY_COMPUTE_FP32;
    else if (strcmp(compute, "bf16") == 0) rp->compute = HY_COMPUTE_BF16;
    else {
        PyErr_Format(PyExc_ValueError, "compute must be 'fp32' or 'bf16', not '%s'", compute);
        return -1;
    }
    rp->text_steps = steps;
    rp->seed = (uint64_t)seed;
    rp->image_width = width;
    rp->image_height = height;
    rp->guidance_scale = guidance;
    rp->pag_scale = pag;
    return 0;
}

/* text_to_image(prompt, seed, steps, width, height, guidance, pag, compute, progress) -> (pixels, w, h) RGB */
static PyObject *Generator_text_to_image(GeneratorObject *self, PyObject *args) {
    const char *prompt, *compute;
    int steps, width, height;
    unsigned long long seed;
    float guidance, pag;
    PyObject *progress;
    if (!PyArg_ParseTuple(args, "sKiiiffsO", &prompt, &seed, &steps, &width, &height, &guidance, &pag, &compute, &progress))
        return NULL;
    hy_gen3d *gen = generator_get(self);
    if (gen == NULL) return NULL;
    hy_gen3d_run_params rp = hy_gen3d_run_default_params();
    if (text_params(&rp, steps, seed, width, height, guidance, pag, compute) < 0) return NULL;
    ProgressCallbacks rc = progress_callbacks(progress);
    hy_recon_image out = {NULL, 0, 0, 0};
    hy_status st;
    self->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_gen3d_text_to_image(gen, prompt, &rp, gen3d_progress, &rc, long_call_abort, &rc, &out);
    Py_END_ALLOW_THREADS
    self->users--;
    if (progress_callbacks_failed(&rc)) {
        hy_recon_image_free(&out);
        return NULL;
    }
    if (st != HY_OK) return raise_status(st);
    PyObject *r = Py_BuildValue("(y#ii)", (const char *)out.pixels, (Py_ssize_t)out.width * out.height * out.channels,
                                (int)out.width, (int)out.height);
    hy_recon_image_free(&out);
    return r;
}

/* text_to_mesh(prompt, seed, text_steps, width, height, guidance, pag, compute, steps, resolution, faces,
 *              grid_width, grid_height, smooth, progress) -> Mesh */
static PyObject *Generator_text_to_mesh(GeneratorObject *self, PyObject *args) {
    const char *prompt, *compute;
    int text_steps, width, height, steps, resolution, faces, gw, gh, smooth;
    unsigned long long seed;
    float guidance, pag;
    PyObject *progress;
    if (!PyArg_ParseTuple(args, "sKiiiffsiiiiiiO", &prompt, &seed, &text_steps, &width, &height, &guidance, &pag, &compute,
                          &steps, &resolution, &faces, &gw, &gh, &smooth, &progress))
        return NULL;
    hy_gen3d *gen = generator_get(self);
    if (gen == NULL) return NULL;
    hy_gen3d_run_params rp = hy_gen3d_run_default_params();
    if (text_params(&rp, text_steps, seed, width, height, guidance, pag, compute) < 0) return NULL;
    rp.steps = steps;
    rp.resolution = resolution;
    rp.target_faces = faces;
    rp.grid_width = gw;
    rp.grid_height = gh;
    rp.smooth_iterations = smooth;
    ProgressCallbacks rc = progress_callbacks(progress);
    hy_mesh *out = NULL;
    hy_status st;
    self->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_gen3d_text_to_mesh(gen, prompt, &rp, gen3d_progress, &rc, long_call_abort, &rc, &out);
    Py_END_ALLOW_THREADS
    self->users--;
    if (progress_callbacks_failed(&rc)) {
        if (out) hy_mesh_free(out);
        return NULL;
    }
    if (st != HY_OK) return raise_status(st);
    return mesh_wrap(out);
}

/* remove_background(pixels, width, height, channels, keep_alpha) -> (pixels, 512, 512) RGBA */
static PyObject *Generator_remove_background(GeneratorObject *self, PyObject *args) {
    const char *px;
    Py_ssize_t len;
    int width, height, channels, keep_alpha;
    if (!PyArg_ParseTuple(args, "y#iiip", &px, &len, &width, &height, &channels, &keep_alpha)) return NULL;
    hy_gen3d *gen = generator_get(self);
    if (gen == NULL || check_image(len, width, height, channels) < 0) return NULL;
    hy_recon_image im = {(const uint8_t *)px, width, height, channels}, out = {NULL, 0, 0, 0};
    ProgressCallbacks rc = progress_callbacks(NULL);
    hy_status st;
    self->users++;
    Py_BEGIN_ALLOW_THREADS
    st = hy_gen3d_remove_background(gen, &im, keep_alpha != 0, long_call_abort, &rc, &out);
    Py_END_ALLOW_THREADS
    self->users--;
    if (st != HY_OK) return raise_status(st);
    PyObject *r = Py_BuildValue("(y#ii)", (const char *)out.pixels, (Py_ssize_t)out.width * out.height * out.channels,
                                (int)out.width, (int)out.height);
    hy_recon_image_free(&out);
    return r;
}

static PyMethodDef Generator_methods[] = {
    {"close", (PyCFunction)Generator_close, METH_NOARGS, "Free the generator."},
    {"image_to_mesh", (PyCFunction)Generator_image_to_mesh, METH_VARARGS, "One image to a coloured mesh."},
    {"remove_background", (PyCFunction)Generator_remove_background, METH_VARARGS, "The 512x512 RGBA cut-out."},
    {"text_to_image", (PyCFunction)Generator_text_to_image, METH_VARARGS, "A prompt to an RGB picture."},
    {"text_to_mesh", (PyCFunction)Generator_text_to_mesh, METH_VARARGS, "A prompt to a coloured mesh."},
    {NULL, NULL, 0, NULL},
};

NATIVE_HANDLE_SLOTS(Generator, "Hunyuan3D-1.0 text / image to 3D (lite); one call at a time.");

NATIVE_TYPE_DEFINE(Generator, "Generator", Py_TPFLAGS_DEFAULT)
