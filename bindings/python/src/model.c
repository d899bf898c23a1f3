/* hunyuan._native.Model: hy_model (the "Language models" section of hunyuan.h, ModelAPI.swift). */
#include "_native.h"

typedef struct {
    hy_model_params params;
    hy_model *model;
} ModelLoad;

static hy_status load_model(const char *path, void *ctx) {
    ModelLoad *l = (ModelLoad *)ctx;
    return hy_model_load(path, &l->params, &l->model);
}

NATIVE_HANDLE_BASICS(Model, model, hy_model, hy_model_free, model_get, "model")

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

NATIVE_HANDLE_SLOTS(Model, "Language-model weights (shareable across threads).");

NATIVE_TYPE_DEFINE(Model, "Model", Py_TPFLAGS_DEFAULT)
