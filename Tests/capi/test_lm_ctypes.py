"""The language-model section of the C ABI through ctypes on HUNYUAN_LIB (as a host that binds the
library without our binding does): logits against the reference fixtures, errors, hy_generate_text."""
import ctypes
import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import LIB, lm_fixtures, run


@pytest.fixture(scope="module")
def lib():
    if not LIB.exists():
        pytest.skip(f"libhunyuan not built at {LIB} (set HUNYUAN_LIB)")
    return ctypes.CDLL(str(LIB))


def test_c_api_eval_logits_and_errors(lib, shared):
    lib.hy_last_error.restype = ctypes.c_char_p
    lib.hy_session_logits.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_float)),
                                      ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    lib.hy_session_eval.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.c_void_p]
    lib.hy_session_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.hy_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.hy_session_free.argtypes = [ctypes.c_void_p]
    lib.hy_model_free.argtypes = [ctypes.c_void_p]
    lib.hy_session_n_past.argtypes = [ctypes.c_void_p]
    lib.hy_session_n_past.restype = ctypes.c_size_t
    for d in lm_fixtures(shared):
        ref = load_file(str(d / "reference.safetensors"))
        model = ctypes.c_void_p()
        assert lib.hy_model_load(str(d).encode(), None, ctypes.byref(model)) == 0, lib.hy_last_error()
        sess = ctypes.c_void_p()
        assert lib.hy_session_new(model, None, ctypes.byref(sess)) == 0
        lib.hy_model_free(model)  # the session keeps the weights alive
        ids = (ctypes.c_int32 * len(ref["input_ids"]))(*[int(i) for i in ref["input_ids"]])
        assert lib.hy_session_eval(sess, ids, len(ids), None) == 0, lib.hy_last_error()
        p = ctypes.POINTER(ctypes.c_float)()
        rows, vocab = ctypes.c_size_t(), ctypes.c_size_t()
        assert lib.hy_session_logits(sess, ctypes.byref(p), ctypes.byref(rows), ctypes.byref(vocab)) == 0
        assert rows.value == 1 and vocab.value == ref["logits"].shape[1]
        last = np.ctypeslib.as_array(p, shape=(vocab.value,))
        assert np.abs(last - ref["logits"][-1]).max() <= 1e-4
        bad = (ctypes.c_int32 * 1)(vocab.value)
        assert lib.hy_session_eval(sess, bad, 1, None) == 1  # HY_ERR_INVALID_ARGUMENT
        assert b"vocabulary" in lib.hy_last_error()
        assert lib.hy_session_eval(sess, ids, 0, None) == 1
        assert lib.hy_session_eval(None, ids, 1, None) == 1
        assert lib.hy_session_n_past(sess) == len(ids)
        lib.hy_session_free(sess)
    model = ctypes.c_void_p()
    assert lib.hy_model_load(b"/nonexistent", None, ctypes.byref(model)) == 2  # HY_ERR_IO


def test_c_api_generate_text_streams_the_generated_tokens(lib, cli, shared, tmp_path):
    """hy_generate_text: the streamed UTF-8 equals tiktoken's decoding (hy.tiktoken ranks) of the ids
    hy_generate produces for the same prompt ids, up to the first stop id."""
    tiktoken_load = pytest.importorskip("tiktoken.load")
    tokdir = shared / "data" / "tokenizer"
    if not (tokdir / "hy.tiktoken").exists():
        pytest.skip(f"no tokenizer at {tokdir}")
    cfg = json.loads((lm_fixtures(shared)[0].parent / "hunyuan-large-tiny" / "config.json").read_text())
    cfg["vocab_size"] = 129024
    cfg["eos_token_id"] = 127960
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    run(cli, "random-model", tmp_path / "cfg.json", "-o", tmp_path / "m", "--seed", "5")

    c_void_pp = ctypes.POINTER(ctypes.c_void_p)
    lib.hy_last_error.restype = ctypes.c_char_p
    lib.hy_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, c_void_pp]
    lib.hy_session_new.argtypes = [ctypes.c_void_p, ctypes.c_void_p, c_void_pp]
    lib.hy_tokenizer_load.argtypes = [ctypes.c_char_p, c_void_pp]
    lib.hy_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]

    class SamplerParams(ctypes.Structure):
        _fields_ = [("struct_size", ctypes.c_uint32), ("greedy", ctypes.c_bool), ("temperature", ctypes.c_float),
                    ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float), ("min_p", ctypes.c_float),
                    ("repeat_penalty", ctypes.c_float), ("seed", ctypes.c_uint64)]

    # the header's layout: hy_generate_default_params() returns it by value and sets struct_size to its size
    class GenerateParams(ctypes.Structure):
        _fields_ = [("struct_size", ctypes.c_uint32), ("max_tokens", ctypes.c_uint32), ("on_token", ctypes.c_void_p),
                    ("token_user", ctypes.c_void_p), ("abort", ctypes.c_void_p), ("abort_user", ctypes.c_void_p),
                    ("stop", ctypes.POINTER(ctypes.c_char_p)), ("n_stop", ctypes.c_size_t)]

    TEXT_CB = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t, ctypes.c_void_p)
    lib.hy_sampler_default_params.restype = SamplerParams
    lib.hy_generate_default_params.restype = GenerateParams
    lib.hy_generate.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                                ctypes.POINTER(GenerateParams), ctypes.POINTER(SamplerParams),
                                ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
                                ctypes.POINTER(ctypes.c_int)]
    lib.hy_generate_text.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                     ctypes.POINTER(GenerateParams), ctypes.POINTER(SamplerParams), TEXT_CB,
                                     ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_int)]
    lib.hy_session_reset.argtypes = [ctypes.c_void_p]

    model, sess, tok = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.hy_model_load(str(tmp_path / "m").encode(), None, ctypes.byref(model)) == 0, lib.hy_last_error()
    assert lib.hy_session_new(model, None, ctypes.byref(sess)) == 0
    assert lib.hy_tokenizer_load(str(tokdir).encode(), ctypes.byref(tok)) == 0, lib.hy_last_error()
    prompt = "混元 says: héllo".encode()
    ids = (ctypes.c_int32 * 256)()
    n = ctypes.c_size_t()
    assert lib.hy_tokenize(tok, prompt, len(prompt), 3, ids, 256, ctypes.byref(n)) == 0
    sp = lib.hy_sampler_default_params()
    sp.greedy = True
    gp = lib.hy_generate_default_params()
    gp.max_tokens = 24
    out = (ctypes.c_int32 * 64)()
    n_out, why = ctypes.c_size_t(), ctypes.c_int()
    assert lib.hy_generate(sess, ids, n.value, ctypes.byref(gp), ctypes.byref(sp), out, 64,
                           ctypes.byref(n_out), ctypes.byref(why)) == 0, lib.hy_last_error()
    gen = list(out[: n_out.value])

    pieces = []
    cb = TEXT_CB(lambda p, ln, _u: pieces.append(ctypes.string_at(p, ln)) or True)
    lib.hy_session_reset(sess)
    n_text = ctypes.c_size_t()
    assert lib.hy_generate_text(sess, tok, prompt, len(prompt), 3, ctypes.byref(gp), ctypes.byref(sp), cb, None,
                                ctypes.byref(n_text), ctypes.byref(why)) == 0, lib.hy_last_error()
    stops = {127957, 127960, 127962 + 5}
    cut = next((i + 1 for i, t in enumerate(gen) if t in stops), len(gen))
    assert n_text.value == cut and cut > 3, (gen, cut)
    ranks = tiktoken_load.load_tiktoken_bpe(str(tokdir / "hy.tiktoken"))
    by_id = {v: k for k, v in ranks.items()}
    expected = b"".join(by_id.get(t, b"") for t in gen[:cut])
    got = b"".join(pieces)
    assert got.decode("utf-8") == expected.decode("utf-8", errors="replace")
    for p in pieces:
        p.decode("utf-8")  # every piece is whole characters
