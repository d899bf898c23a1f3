"""The Python binding (hunyuan.Model / Tokenizer / Mesh) against independent references: the
reference fixtures, tiktoken, trimesh; plus the host guarantees: GIL released, Ctrl-C, freed handles."""
import json
import shutil
import subprocess
import threading
import time
import _thread

import numpy as np
import pytest
from safetensors.numpy import load_file

import hunyuan


def lm_fixtures(shared):
    root = shared / "fixtures" / "lm"
    dirs = sorted(d for d in root.iterdir() if (d / "reference.safetensors").exists())
    if not dirs:
        pytest.skip(f"no LM fixtures in {root}")
    return dirs


@pytest.fixture(scope="module")
def text_model(cli, shared, tmp_path_factory):
    """A random-weight Hunyuan-Large-structured model with the real tokenizer (vocab 128166), large
    enough that generating thousands of tokens takes seconds."""
    tok = shared / "data" / "tokenizer"
    if not (tok / "hy.tiktoken").exists():
        pytest.skip("tokenizer not in shared/data")
    cfg = json.loads((shared / "fixtures" / "lm" / "hunyuan-large-tiny" / "config.json").read_text())
    cfg.update(vocab_size=128166, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
               max_position_embeddings=8192, eos_token_id=127960, bos_token_id=127958)
    d = tmp_path_factory.mktemp("textmodel")
    (d / "config.json").write_text(json.dumps(cfg))
    out = d / "model"
    subprocess.run([str(cli), "random-model", str(d / "config.json"), "-o", str(out), "--seed", "3"],
                   check=True, capture_output=True)
    for f in ("hy.tiktoken", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(tok / f, out / f)
    return hunyuan.Model(out, n_threads=1)


def test_logits_and_greedy_match_reference(shared):
    for d in lm_fixtures(shared):
        ref = load_file(str(d / "reference.safetensors"))
        with hunyuan.Model(d) as m:
            lg = m.logits(ref["input_ids"].tolist())
            assert lg.shape == ref["logits"].shape
            assert np.abs(lg - ref["logits"]).max() <= 1e-4, d.name
            ids, _ = m.generate_ids(ref["input_ids"].tolist(), max_tokens=len(ref["greedy_ids"]), greedy=True)
            assert ids == ref["greedy_ids"][: len(ids)].tolist(), d.name
        with hunyuan.Model(d, kv_type="f16") as m:  # keys/values rounded to f16 once: ~1e-3 drift
            assert np.abs(m.logits(ref["input_ids"].tolist()) - ref["logits"]).max() <= 5e-3, d.name
    with pytest.raises(ValueError):
        hunyuan.Model(d, kv_type="q3")
    with pytest.raises(hunyuan.UnsupportedError, match="head_dim"):  # fixtures: head_dim 8-16
        hunyuan.Model(d, kv_type="q8_0").logits([1, 2])
    ids = list(range(100, 140))
    with hunyuan.Model("builtin:hunyuan-tiny") as a, hunyuan.Model("builtin:hunyuan-tiny", kv_type="q8_0") as b:
        la, lb = a.logits(ids), b.logits(ids)
        assert np.abs(la - lb).max() <= 0.005 * (la.max() - la.min())
        # KV bytes from the config (4 layers / CLA 2 = 2 entries, 2 KV heads x 64, K and V): f32 below
        # HY_KV_AUTO_F32_MAX; q8_0 blocks of 34 bytes per 32 values.
        assert a.kv_cache() == {"n_ctx": 1024, "kv_type": "f32", "kv_bytes": 1024 * 2 * 2 * 2 * 64 * 4}
        assert b.kv_cache() == {"n_ctx": 1024, "kv_type": "q8_0", "kv_bytes": 1024 * 2 * 2 * 2 * 2 * 34}
    for n_ctx, kv in ((8192, "f32"), (8193, "q8_0")):  # "auto" switches above HY_KV_AUTO_F32_MAX
        with hunyuan.Model("builtin:hunyuan-tiny", n_ctx=n_ctx) as m:
            assert m.kv_cache()["kv_type"] == kv


def test_tokenizer_matches_tiktoken(shared):
    import base64

    import tiktoken

    from conftest import PAT, SPECIALS  # the official pattern and specials

    ranks = {}
    for line in open(shared / "data" / "tokenizer" / "hy.tiktoken", "rb"):
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    enc = tiktoken.Encoding("hy", pat_str=PAT, mergeable_ranks=ranks,
                            special_tokens={t: 127957 + i for i, t in enumerate(SPECIALS)})
    tok = hunyuan.Tokenizer(shared / "data" / "tokenizer")
    text = "Hello, 世界! 12345 <|eos|>  tabs\tand\r\nlines 👩‍👩‍👧"
    assert tok.encode(text, wrap=False, special=False) == enc.encode(text, disallowed_special=())
    assert tok.decode(tok.encode(text)) == "<|startoftext|>" + text + "<|endoftext|>"
    assert tok.chat([{"role": "system", "content": "You are a helpful assistant."},
                     {"role": "user", "content": "Hello"}]) == [127958, 2675, 527, 264, 11190, 18328, 13, 127966, 9906, 127962]


def test_generate_text_stream_and_stop(text_model):
    kw = dict(max_tokens=24, temperature=0.8, top_k=40, seed=7)
    text = text_model.generate("Once upon a time", **kw)
    assert isinstance(text, str)
    pieces = list(text_model.generate("Once upon a time", stream=True, **kw))
    assert "".join(pieces) == text
    if len(text) > 3:
        cut = text[2:4]
        stopped = text_model.generate("Once upon a time", stop=[cut], **kw)
        assert stopped == text[: text.find(cut)]


def _cut(text, stops):
    """The independent oracle of stop strings: the text up to the earliest occurrence of any of them."""
    at = [text.find(s) for s in stops if s and text.find(s) >= 0]
    return text[: min(at)] if at else text


def test_stop_strings_cut_at_the_first_occurrence(text_model):
    """Stop strings (applied in the library, hy_generate_params.stop) against the text generated without
    them cut at the first occurrence; the same through streaming, which never shows a stop string."""
    tok = text_model.tokenizer
    kw = dict(max_tokens=40, greedy=True)
    full = text_model.generate("Once upon a time", **kw)
    assert len(full) > 20
    # the ids behind it (hy_generate: the same prompt ids, the same greedy choice) give the tokens' own text
    ids, _ = text_model.generate_ids([tok.start_id] + tok.encode("Once upon a time", wrap=False, special=False), **kw)
    pieces = [tok.decode_bytes([t]) for t in ids if not tok.is_special(t)]
    assert b"".join(pieces).decode("utf-8", errors="replace").startswith(full[:10])
    # a stop string across two tokens: the last character of one token and the first of the next
    ends, spans = 0, []
    for a, b in zip(pieces, pieces[1:]):
        ends += len(a)
        if a and b and a[-1] < 0x80 and b[0] < 0x80 and b"\x00" not in a[-1:] + b[:1]:
            spans.append((a[-1:] + b[:1]).decode())
    assert spans
    cases = [[full[len(full) // 2: len(full) // 2 + 3]], [spans[len(spans) // 2]], [full[-2:], full[5:7]],
             ["never \u2603 here"], [full]]
    for i, stops in enumerate(cases):
        want = _cut(full, stops)
        assert (want == full) == (i == 3), stops  # every case but the absent string cuts
        assert text_model.generate("Once upon a time", stop=stops, **kw) == want, stops
        streamed = list(text_model.generate("Once upon a time", stop=stops, stream=True, **kw))
        assert "".join(streamed) == want, stops
        assert all(p for p in streamed)
    # an empty stop string is ignored, as before; a non-string is a TypeError
    assert text_model.generate("Once upon a time", stop=[""], **kw) == full
    with pytest.raises(TypeError):
        text_model.generate("Once upon a time", stop=[3], **kw)
    with pytest.raises(ValueError, match="NUL"):
        text_model.generate("Once upon a time", stop=["a\0b"], **kw)


def test_chat_runs_the_same_generator(text_model):
    """chat(): the chat ids (Tokenizer.chat) then hy_generate_text; checked against hy_generate's ids for
    the same ids, cut after the first stop id and decoded without specials, and against its own stream."""
    tok = text_model.tokenizer
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    kw = dict(max_tokens=40, greedy=True)
    text = text_model.chat(msgs, **kw)
    ids, _ = text_model.generate_ids(tok.chat(msgs), **kw)
    stop_ids = set(tok.stop_ids) | set(text_model.info["eos_token_ids"])
    n = next((i + 1 for i, t in enumerate(ids) if t in stop_ids), len(ids))
    assert text == tok.decode([t for t in ids[:n] if not tok.is_special(t)])
    assert "".join(text_model.chat(msgs, stream=True, **kw)) == text
    stop = text[len(text) // 2: len(text) // 2 + 2]
    assert text_model.chat(msgs, stop=[stop], **kw) == _cut(text, [stop])


def _assert_interrupt_stops_quickly(call):
    """Ctrl-C (a KeyboardInterrupt sent to the main thread 0.3 s into `call`) ends it within 200 ms."""
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    timer = threading.Timer(0.3, interrupt)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        call()
    stopped = time.perf_counter()
    timer.join()
    assert fired and stopped - fired[0] < 0.2, stopped - fired[0]


def test_keyboard_interrupt_stops_text_generation_quickly(text_model):
    _assert_interrupt_stops_quickly(
        lambda: text_model.generate("Once upon a time", max_tokens=8000, greedy=True, stop=["\u2603\u2603"]))
    assert text_model.generate("Once upon a time", max_tokens=4, greedy=True)


def test_two_threads_generate_concurrently(text_model):
    """Both threads must make progress while the other runs (the GIL is released in the engine)."""
    stamps = {0: [], 1: []}

    def work(i):
        text_model.generate_ids([127958, 100 + i], max_tokens=150, greedy=True,
                                on_token=lambda t: stamps[i].append(time.perf_counter()) or True)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = stamps[0], stamps[1]
    assert len(a) == 150 and len(b) == 150
    # overlap: each thread produced tokens while the other was still producing
    overlap_start, overlap_end = max(a[0], b[0]), min(a[-1], b[-1])
    assert overlap_end > overlap_start
    in_a = sum(overlap_start <= x <= overlap_end for x in a)
    in_b = sum(overlap_start <= x <= overlap_end for x in b)
    assert in_a >= 10 and in_b >= 10, (in_a, in_b)


def test_keyboard_interrupt_stops_generation_quickly(text_model):
    ref = text_model.logits([127958, 5, 6])
    _assert_interrupt_stops_quickly(lambda: text_model.generate_ids([127958, 5], max_tokens=8000, greedy=True))
    # still usable, same numbers
    np.testing.assert_array_equal(text_model.logits([127958, 5, 6]), ref)


def test_errors_are_typed_and_model_survives(shared, text_model):
    with pytest.raises(hunyuan.IOError):
        hunyuan.Model(shared / "nonexistent")
    with pytest.raises(hunyuan.InvalidArgumentError, match="vocab"):
        text_model.logits([127958, 10 ** 7])
    with pytest.raises(hunyuan.InvalidArgumentError):
        text_model.logits([])
    assert text_model.logits([127958]).shape == (1, 128166)


def sphere_grid(n=48):
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32)] * 3, indexing="ij")
    return np.sqrt(x * x + y * y + z * z) - 0.7


def test_mesh_arrays_are_zero_copy_and_guarded(tmp_path):
    import trimesh

    mesh = hunyuan.mesh_from_grid(sphere_grid(), 0.0, ((-1, -1, -1), (1, 1, 1)))
    v = mesh.vertices
    assert v.dtype == np.float32 and v.shape[1] == 3 and not v.flags.writeable
    assert np.shares_memory(v, mesh.vertices)  # the same library memory, no copy
    with pytest.raises(BufferError):
        mesh.simplify(100)
    del v
    mesh.simplify(1000)
    assert len(mesh.faces) <= 1000
    mesh.colors = np.tile(np.array([[1.0, 0.5, 0.25]], np.float32), (len(mesh.vertices), 1))
    path = tmp_path / "s.ply"
    mesh.save(path)
    with pytest.raises(hunyuan.IOError, match="exists"):
        mesh.save(path)
    tm = trimesh.load(path, process=False)
    np.testing.assert_allclose(tm.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(tm.faces, mesh.faces)
    assert tm.is_watertight
    back = hunyuan.Mesh.load(path)
    assert back.colors is not None
    np.testing.assert_allclose(back.colors[:, :3], mesh.colors, atol=1 / 255)
    assert mesh.to_trimesh().is_watertight


def test_mesh_errors_and_closed_handles(tmp_path):
    g = sphere_grid(16)
    g[3, 3, 3] = np.nan
    with pytest.raises(hunyuan.InvalidArgumentError):
        hunyuan.mesh_from_grid(g)
    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF garbage")
    with pytest.raises(hunyuan.FormatError, match="bad.glb"):
        hunyuan.Mesh.load(bad)
    m = hunyuan.mesh_from_grid(sphere_grid(16))
    arr = np.array(m.vertices)  # a copy outlives the mesh
    m.close()
    with pytest.raises(ValueError, match="closed"):
        m.vertices
    assert arr.shape[1] == 3


def test_reconstructor_reproduces_official_marching_cubes(shared):
    """views → mesh through the binding, with post-processing off, against the official pipeline's
    PyMCubes vertices (svrm-tiny: reference.safetensors mc_vertices, world coordinates)."""
    from scipy.spatial import cKDTree

    d = shared / "fixtures" / "svrm" / "svrm-tiny"
    if not d.is_dir():
        pytest.skip(f"{d} not present")
    inputs = load_file(str(d / "inputs.safetensors"))
    ref = load_file(str(d / "reference.safetensors"))
    progress = []
    with hunyuan.Reconstructor(d) as rec:
        mesh = rec.views_to_mesh(list(inputs["images_uint8"]), resolution=ref["sdf_grid"].shape[0], faces=0,
                                 cluster_size=0, smooth=0, export_axes=False,
                                 progress=lambda f: progress.append(f) or True)
        ours, theirs = np.array(mesh.vertices), ref["mc_vertices"]
        assert len(ours) == len(theirs)
        d_theirs, _ = cKDTree(ours).query(theirs)
        assert d_theirs.max() < 1e-5  # every official vertex is reproduced
        d_ours, _ = cKDTree(theirs).query(ours)
        assert d_ours.max() < 1e-5  # and nothing else
        assert progress and progress[-1] == 1.0
        with pytest.raises(hunyuan.AbortedError):
            rec.views_to_mesh(list(inputs["images_uint8"]), resolution=16, progress=lambda f: False)
        with pytest.raises(hunyuan.InvalidArgumentError):
            rec.views_to_mesh(list(inputs["images_uint8"])[:3], resolution=16)


def test_load_image_png_and_jpeg_against_pillow(tmp_path):
    """hunyuan.load_image (the library's PNG decoder and libjpeg-turbo) against Pillow's decoding of files
    Pillow wrote: RGBA PNG exact, 16-bit grey PNG to its high byte, JPEG (4:2:0 and 4:4:4, progressive)
    within JPEG decoder rounding; broken files raise FormatError naming the file."""
    from PIL import Image as PILImage
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128]
    rgb = np.stack([xx * 2, yy * 2, (xx + yy) % 256], -1).astype(np.uint8)
    rgba = np.concatenate([rgb, rng.integers(0, 256, (96, 128, 1), dtype=np.uint8)], -1)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(hunyuan.load_image(tmp_path / "a.png"), rgba)
    grey16 = (xx * 500 + yy).astype(np.uint16)
    PILImage.fromarray(grey16).save(tmp_path / "g.png")
    got = hunyuan.load_image(str(tmp_path / "g.png"))
    assert got.shape == (96, 128, 3) and np.array_equal(got[..., 0], (grey16 >> 8).astype(np.uint8))
    for name, kw in [("s420.jpg", dict(quality=90, subsampling=2)), ("s444.jpg", dict(quality=95, subsampling=0)),
                     ("prog.jpg", dict(quality=85, progressive=True))]:
        PILImage.fromarray(rgb, "RGB").save(tmp_path / name, "JPEG", **kw)
        ours = hunyuan.load_image(tmp_path / name).astype(int)
        with PILImage.open(tmp_path / name) as im:
            theirs = np.asarray(im.convert("RGB")).astype(int)
        assert ours.shape == theirs.shape == (96, 128, 3)
        assert np.abs(ours - theirs).max() <= 2 and np.abs(ours - theirs).mean() < 0.05, name
    PILImage.fromarray(rgb[..., 0], "L").save(tmp_path / "grey.jpg", "JPEG", quality=90)
    assert hunyuan.load_image(tmp_path / "grey.jpg").shape == (96, 128, 3)
    data = (tmp_path / "s420.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"GIF89a......")
    for bad in ["cut.jpg", "junk.png"]:
        with pytest.raises(hunyuan.FormatError, match=bad):
            hunyuan.load_image(tmp_path / bad)
    with pytest.raises(hunyuan.IOError):
        hunyuan.load_image(tmp_path / "missing.jpg")


def test_reconstructor_from_image_files(shared, tmp_path):
    """views_to_mesh from PNG and JPEG files of the fixture's views: PNG gives exactly the array result,
    JPEG (quality 98) a mesh of nearly the same size."""
    from PIL import Image as PILImage
    d = shared / "fixtures" / "svrm" / "svrm-tiny"
    if not d.is_dir():
        pytest.skip(f"{d} not present")
    views = list(load_file(str(d / "inputs.safetensors"))["images_uint8"])
    pngs, jpgs = [], []
    for i, v in enumerate(views):
        PILImage.fromarray(v).save(tmp_path / f"v{i}.png")
        PILImage.fromarray(v).save(tmp_path / f"v{i}.jpg", "JPEG", quality=98, subsampling=0)
        pngs.append(tmp_path / f"v{i}.png")
        jpgs.append(str(tmp_path / f"v{i}.jpg"))
    with hunyuan.Reconstructor(d) as rec:
        kw = dict(resolution=24, faces=0, cluster_size=0, smooth=0)
        a = rec.views_to_mesh(views, **kw)
        b = rec.views_to_mesh(pngs, **kw)
        c = rec.views_to_mesh(jpgs, **kw)
        assert np.array_equal(np.array(a.vertices), np.array(b.vertices))
        assert abs(len(c.vertices) - len(a.vertices)) <= 0.1 * len(a.vertices)


def test_damaged_image_files_are_errors_not_crashes(tmp_path):
    """Random truncations and byte flips of a PNG (our decoder) and a JPEG (libjpeg-turbo behind a
    longjmp error handler): every file either decodes to the right size or raises FormatError; the
    process (think Blender) survives."""
    from PIL import Image as PILImage
    yy, xx = np.mgrid[0:40, 0:56]
    rgb = np.stack([xx * 4, yy * 6, (xx * yy) % 256], -1).astype(np.uint8)
    PILImage.fromarray(rgb).save(tmp_path / "a.png")
    PILImage.fromarray(rgb).save(tmp_path / "a.jpg", "JPEG", quality=80)
    rng = np.random.default_rng(11)
    outcomes = {"ok": 0, "error": 0}
    for name in ("a.png", "a.jpg"):
        good = (tmp_path / name).read_bytes()
        for i in range(150):
            b = bytearray(good)
            if i % 3 == 0:
                b = b[: int(rng.integers(1, len(b)))]
            else:
                for _ in range(int(rng.integers(1, 8))):
                    b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            p = tmp_path / f"bad-{i}-{name}"
            p.write_bytes(bytes(b))
            try:
                im = hunyuan.load_image(p)
                assert im.ndim == 3 and im.shape[2] in (3, 4) and im.size > 0
                outcomes["ok"] += 1
            except (hunyuan.FormatError, hunyuan.UnsupportedError) as e:  # e.g. a flipped interlace flag
                assert p.name in str(e)
                outcomes["error"] += 1
    assert outcomes["error"] > 50  # most damage is detected (bit flips inside entropy-coded data may not be)


def test_closing_a_tokenizer_or_model_in_use_is_refused():
    """A handle is never freed under a running call: Tokenizer.close() from inside the text callback of a
    generation that uses it raises (the library keeps reading it until the call returns); afterwards the
    tokenizer still works, and closing succeeds once the call is over."""
    m = hunyuan.Model("builtin:hunyuan-tiny")
    tok = m.tokenizer
    refused = []

    def on_text(piece):
        try:
            tok.close()
        except RuntimeError as e:
            refused.append(str(e))
        return True

    s = m._session()
    try:
        text, _, _ = s.generate_text(tok._t, b"ROMEO:", 0, 8, None, [], on_text, None)
    finally:
        m._release(s)
    assert refused and all("in use" in r for r in refused)
    assert text and tok.decode(tok.encode("ROMEO:", wrap=False)) == "ROMEO:"
    tok.close()
    with pytest.raises(ValueError):
        tok.encode("closed")
    m.close()
