/* hunyuan._native — shared declarations of the extension's files.
 *
 * One file per Python type, mirroring the XxxAPI.swift files of Sources/HunyuanCAPI: checkpoint.c, mesh.c (Mesh and
 * its MeshView buffers), tokenizer.c, model.c, session.c, recon.c; _native.c holds the module, the
 * error classes and the helpers below. Everything is compiled with hidden visibility: the extension
 * exports only PyInit__native.
 *
 * Rules (every file): built against the stable ABI (Py_LIMITED_API 3.11); the GIL is released around
 * every engine call and callbacks re-acquire it; every hy_status other than HY_OK becomes a
 * hunyuan.HunyuanError subclass carrying hy_last_error(); a closed handle raises instead of crashing. */
#ifndef HUNYUAN_NATIVE_H
#define HUNYUAN_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hunyuan.h"

/* ---- errors and helpers (_native.c) -------------------------------------------------------- */

extern PyObject *HunyuanError;
extern PyObject *StatusErrors[9]; /* by hy_status; [0] unused */

/* Sets the Python exception for `status` with hy_last_error(); returns NULL for convenience. */
PyObject *raise_status(hy_status status);

/* A str or os.PathLike argument as UTF-8 bytes (new reference) or NULL with an exception. */
PyObject *path_bytes(PyObject *arg);

/* The end of every tp_dealloc of a heap type: free the memory, drop the type's reference. */
void release_object(PyObject *self);

/* Calls fn(utf8_path, ctx) with the GIL released; on failure sets the exception (hy_last_error()'s
 * message, or the path conversion's) and returns -1. */
typedef hy_status (*path_call)(const char *path, void *ctx);
int call_with_path(PyObject *path, path_call fn, void *ctx);

/* A new list of ints from ids[0 .. n). */
PyObject *ids_to_list(const hy_token *ids, size_t n);

/* Reads a sequence of ints into a new int32 array (PyMem_Free it); NULL with an exception. */
int32_t *ids_from_sequence(PyObject *seq, size_t *n_out);

/* True on the interpreter's main thread (where Ctrl-C is delivered). */
int is_main_thread(void);

/* Progress / cancel state of one long call (views_to_mesh, generate): long_call_progress calls the Python
 * callable with the fraction done (GIL re-acquired; False or an exception cancels) and polls
 * Ctrl-C on the main thread; long_call_abort (any thread, no Python) reports the cancel. */
typedef struct {
    PyObject *progress;     /* callable(fraction) -> bool or None */
    volatile int cancelled; /* read by the abort callback on worker threads: no Python there */
    int failed;
    PyObject *exc_type, *exc_value, *exc_tb;
    int check_signals;
} ProgressCallbacks;
ProgressCallbacks progress_callbacks(PyObject *progress);
bool long_call_progress(float fraction, void *user);
bool long_call_abort(void *user);
/* After the call: 1 with the callback's exception restored when it failed, else 0. */
int progress_callbacks_failed(ProgressCallbacks *rc);

/* ---- type boilerplate ----------------------------------------------------------------------- */

/* Declares the heap type `Name` of one file: its type object Name##Type (set when the module is
 * initialized) and Name##_register(module), which creates it and adds it to the module. */
#define NATIVE_TYPE_DECLARE(Name) \
    extern PyObject *Name##Type;  \
    int Name##_register(PyObject *module);

/* Defines what NATIVE_TYPE_DECLARE declares, from Name##Object and Name##_slots; the Python name is
 * "hunyuan._native." pyname. */
#define NATIVE_TYPE_DEFINE(Name, pyname, flags)                                                   \
    PyObject *Name##Type;                                                                         \
    static PyType_Spec Name##_spec = {"hunyuan._native." pyname, sizeof(Name##Object), 0, (flags), \
                                      Name##_slots};                                              \
    int Name##_register(PyObject *module) {                                                       \
        Name##Type = PyType_FromSpec(&Name##_spec);                                               \
        if (Name##Type == NULL) return -1;                                                        \
        return PyModule_AddObjectRef(module, pyname, Name##Type);                                 \
    }

/* The slots of a type constructed from Python: doc, PyType_GenericNew, Name##_init, Name##_dealloc and
 * Name##_methods. */
#define NATIVE_HANDLE_SLOTS(Name, doc)                        \
    static PyType_Slot Name##_slots[] = {                     \
        {Py_tp_doc, (void *)(doc)},                           \
        {Py_tp_new, (void *)PyType_GenericNew},               \
        {Py_tp_init, (void *)Name##_init},                    \
        {Py_tp_dealloc, (void *)Name##_dealloc},              \
        {Py_tp_methods, Name##_methods},                      \
        {0, NULL},                                            \
    }

/* For an object holding one library handle in `field`, released by `free_fn`: `getter` (the handle,
 * or NULL with ValueError "<what> is closed"), Name##_dealloc and an idempotent Name##_close. */
#define NATIVE_HANDLE_BASICS(Name, field, handle_t, free_fn, getter, what) \
    handle_t *getter(Name##Object *self) {                                 \
        if (self->field == NULL) PyErr_SetString(PyExc_ValueError, what " is closed"); \
        return self->field;                                                \
    }                                                                      \
    static void Name##_dealloc(Name##Object *self) {                       \
        if (self->field) free_fn(self->field);                             \
        release_object((PyObject *)self);                                  \
    }                                                                      \
    static PyObject *Name##_close(Name##Object *self, PyObject *unused) {  \
        (void)unused;                                                      \
        if (self->users > 0) {                                             \
            PyErr_SetString(PyExc_RuntimeError, what " is in use by a running call"); \
            return NULL;                                                   \
        }                                                                  \
        if (self->field) free_fn(self->field);                             \
        self->field = NULL;                                                \
        Py_RETURN_NONE;                                                    \
    }

/* ---- the types ------------------------------------------------------------------------------ */

NATIVE_TYPE_DECLARE(Checkpoint) /* checkpoint.c */
NATIVE_TYPE_DECLARE(Mesh)       /* mesh.c */
NATIVE_TYPE_DECLARE(MeshView)   /* mesh.c */
NATIVE_TYPE_DECLARE(Tokenizer)  /* tokenizer.c */
NATIVE_TYPE_DECLARE(Model)      /* model.c */
NATIVE_TYPE_DECLARE(Session)    /* session.c */
NATIVE_TYPE_DECLARE(Recon)      /* recon.c ("Reconstructor") */
NATIVE_TYPE_DECLARE(MultiView)  /* mvd.c */
NATIVE_TYPE_DECLARE(Generator)  /* gen3d.c */

/* Objects other files look into. */
/* `users` counts calls that run with the GIL released (or call back into Python) while using the
 * handle; close() refuses while it is non-zero, so a handle is never freed under a running call.
 * Changed only with the GIL held. */
typedef struct {
    PyObject_HEAD
    hy_tokenizer *tok;
    int users;
} TokenizerObject;

typedef struct {
    PyObject_HEAD
    hy_model *model;
    int users;
} ModelObject;

hy_tokenizer *tokenizer_get(TokenizerObject *self);
hy_model *model_get(ModelObject *self);

/* A new Mesh object owning m (freed on failure). */
PyObject *mesh_wrap(hy_mesh *m);

/* Module-level functions of mesh.c and recon.c. */
PyObject *mod_mesh_new(PyObject *m, PyObject *args);
PyObject *mod_mesh_from_grid(PyObject *m, PyObject *args);
PyObject *mod_mesh_load(PyObject *m, PyObject *args);
PyObject *mod_image_load(PyObject *m, PyObject *args);

#endif
