"""`hunyuan-cli export-gguf` read back with the `gguf` package (llama.cpp's own Python reader):
llama.cpp hunyuan-moe tensor names, shapes, types and metadata, and the weights dequantized by
gguf.quants against the source checkpoint."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

gguf = pytest.importorskip("gguf")


def fixture(shared: Path, name="hunyuan-a13b-tiny"):
    d = shared / "fixtures" / "lm" / name
    if not (d / "config.json").exists():
        pytest.skip(f"LM fixture {d} not found")
    return d


def field(r, key):
    f = r.fields[key]
    v = f.parts[f.data[0]]
    return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v[0]


@pytest.mark.parametrize("typ,tol", [("f16", 1e-3), ("q8_0", 0.01), ("q4_0", 0.13)])
def test_export_gguf_reads_back(cli, shared, tmp_path, typ, tol):
    src = fixture(shared)
    out = tmp_path / f"m-{typ}.gguf"
    subprocess.run([str(cli), "export-gguf", str(src), str(out), "--type", typ], check=True, capture_output=True)
    r = gguf.GGUFReader(str(out))
    import json
    cfg = json.loads((src / "config.json").read_text())
    assert field(r, "general.architecture") == "hunyuan-moe"
    assert field(r, "hunyuan-moe.block_count") == cfg["num_hidden_layers"]
    assert field(r, "hunyuan-moe.embedding_length") == cfg["hidden_size"]
    assert field(r, "hunyuan-moe.expert_count") == cfg["num_experts"]
    assert field(r, "hunyuan-moe.expert_used_count") == cfg["moe_topk"]
    assert field(r, "hunyuan-moe.attention.head_count_kv") == cfg["num_key_value_heads"]
    assert field(r, "hunyuan-moe.vocab_size") == cfg["vocab_size"]
    tensors = {t.name: t for t in r.tensors}
    L, E = cfg["num_hidden_layers"], cfg["num_experts"]
    expected = {"token_embd.weight", "output_norm.weight"}
    for i in range(L):
        expected |= {f"blk.{i}.{n}.weight" for n in [
            "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "attn_q_norm", "attn_k_norm", "ffn_norm",
            "ffn_gate_inp", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps",
            "ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"]}
    assert set(tensors) == expected
    w = load_file(str(src / "model.safetensors"))
    qtype = {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0,
             "q4_0": gguf.GGMLQuantizationType.Q4_0}[typ]

    def check(name, ref):
        t = tensors[name]
        assert t.tensor_type == qtype, name
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(ref.shape)
        err = np.sqrt(((got - ref) ** 2).sum() / (ref ** 2).sum())
        assert err < tol, (name, err)

    check("token_embd.weight", w["model.embed_tokens.weight"].astype(np.float32))
    check("blk.1.attn_q.weight", w["model.layers.1.self_attn.q_proj.weight"].astype(np.float32))
    for proj, g in [("gate_proj", "ffn_gate_exps"), ("down_proj", "ffn_down_exps")]:
        stacked = np.stack([w[f"model.layers.2.mlp.experts.{e}.{proj}.weight"] for e in range(E)]).astype(np.float32)
        check(f"blk.2.{g}.weight", stacked)
    router = tensors["blk.0.ffn_gate_inp.weight"]
    assert router.tensor_type == gguf.GGMLQuantizationType.F32
    np.testing.assert_array_equal(np.asarray(router.data).reshape(E, -1), w["model.layers.0.mlp.gate.wg.weight"])
