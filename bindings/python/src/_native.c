/* hunyuan._native — the CPython extension over include/hunyuan.h: the module, its error classes and
 * the helpers every type file uses (see _native.h for the layout and the rules). */
#include "_native.h"

/* ---- errors ------------------------------------------------------------------------------- */

PyObject *HunyuanError;
PyObject *StatusErrors[9];

static const char *const status_class_names[9] = {
    NULL, "InvalidArgumentError", "IOError", "FormatError", "UnsupportedError",
    "OutOfMemoryError", "ContextFullError", "AbortedError", "InternalError",
};

PyObject *raise_status(hy_status status) {
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

PyObject *path_bytes(PyObject *arg) {
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

void release_object(PyObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

int call_with_path(PyObject *path, path_call fn, void *ctx) {
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

/* ---- ids ------------------------------------------------------------------------------------ */

PyObject *ids_to_list(const hy_token *ids, size_t n) {
    PyObject *list = PyList_New((Py_ssize_t)n);
    if (list == NULL) return NULL;
    for (size_t i = 0; i < n; i++) PyList_SetItem(list, (Py_ssize_t)i, PyLong_FromLong(ids[i]));
    return list;
}

int32_t *ids_from_sequence(PyObject *seq, size_t *n_out) {
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

int is_main_thread(void) {
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
    if (Checkpoint_register(m) < 0 || Mesh_register(m) < 0 || MeshView_register(m) < 0 || Tokenizer_register(m) < 0 ||
        Model_register(m) < 0 || Session_register(m) < 0 || Recon_register(m) < 0 ||
        MultiView_register(m) < 0 || Generator_register(m) < 0)
        return -1;
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

/* ---- progress and cancel callbacks shared by the long calls --------------------------------- */
bool long_call_progress(float fraction, void *user) {
    ProgressCallbacks *rc = (ProgressCallbacks *)user;
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

bool long_call_abort(void *user) { return ((ProgressCallbacks *)user)->cancelled != 0; }

ProgressCallbacks progress_callbacks(PyObject *progress) {
    ProgressCallbacks rc = {progress == Py_None ? NULL : progress, 0, 0, NULL, NULL, NULL, is_main_thread()};
    return rc;
}

int progress_callbacks_failed(ProgressCallbacks *rc) {
    if (!rc->failed) return 0;
    PyErr_Restore(rc->exc_type, rc->exc_value, rc->exc_tb);
    return 1;
}
