"""Parity of `hunyuan-cli tokenize` with tiktoken (the official tokenization_hy.py builds a
tiktoken.Encoding from hy.tiktoken with the pattern and specials below; no download), on both corpora,
1,000 random slices of each, edge cases, invalid UTF-8, round trips and the chat format (rendered by
jinja2 from the checkpoint's own tokenizer_config.json template).

Needs: tiktoken, jinja2 (chat test), the CLI ($HUNYUAN_CLI) and $HUNYUAN_SHARED/data/{tokenizer,corpus}.
"""
import base64
import json
import random
import subprocess
import unicodedata

import pytest

from conftest import PAT, SPECIALS  # noqa: F401 (the official pattern and specials)
START, END = 127958, 127957


@pytest.fixture(scope="module")
def tok_dir(shared):
    d = shared / "data" / "tokenizer"
    if not (d / "hy.tiktoken").exists():
        pytest.skip(f"hy.tiktoken not found in {d}")
    return d


@pytest.fixture(scope="module")
def enc(tok_dir):
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {}
    for line in open(tok_dir / "hy.tiktoken", "rb"):
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    special = {s: 127957 + i for i, s in enumerate(SPECIALS)}
    return tiktoken.Encoding("HunYuan", pat_str=PAT, mergeable_ranks=ranks, special_tokens=special)


def ref_ids(enc, text: str, special=True, wrap=False):
    """The official encode: NFC, then tiktoken (allowed_special="all" when parsing specials)."""
    text = unicodedata.normalize("NFC", text)
    ids = enc.encode(text, allowed_special="all") if special else enc.encode(text, disallowed_special=())
    return [START] + ids + [END] if wrap else ids


def run(cli, args, data: bytes, check=True):
    p = subprocess.run([str(cli)] + args, input=data, capture_output=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} failed ({p.returncode}): {p.stderr.decode(errors='replace')}")
    return p


def cli_ids(cli, tok_dir, data: bytes, special=True, wrap=False):
    args = ["tokenize", "--tokenizer", str(tok_dir)]
    if not special:
        args.append("--no-special")
    if not wrap:
        args.append("--no-wrap")
    return [int(x) for x in run(cli, args, data).stdout.split()]


def cli_batch(cli, tok_dir, texts, special=True):
    """One CLI call for many texts (NUL-terminated); returns a list of id lists or "!error" strings."""
    args = ["tokenize", "--tokenizer", str(tok_dir), "--batch", "--no-wrap"] + ([] if special else ["--no-special"])
    out = run(cli, args, b"".join(t + b"\0" for t in texts)).stdout.decode().split("\n")
    assert out[-1] == ""
    lines = out[:-1]
    assert len(lines) == len(texts)
    return [ln if ln.startswith("!") else [int(x) for x in ln.split()] for ln in lines]


def cli_decode(cli, tok_dir, ids) -> bytes:
    return run(cli, ["detokenize", "--tokenizer", str(tok_dir)], " ".join(map(str, ids)).encode()).stdout


CORPORA = ["tinyshakespeare.txt", "sanguo_yanyi.txt"]


@pytest.fixture(scope="module", params=CORPORA)
def corpus(request, shared):
    p = shared / "data" / "corpus" / request.param
    if not p.exists():
        pytest.skip(f"corpus {p} not found")
    return p.read_bytes()


def test_whole_corpus(cli, tok_dir, enc, corpus):
    text = corpus.decode()
    assert cli_ids(cli, tok_dir, corpus) == ref_ids(enc, text)
    assert cli_ids(cli, tok_dir, corpus, wrap=True) == ref_ids(enc, text, wrap=True)
    assert cli_ids(cli, tok_dir, corpus, special=False) == ref_ids(enc, text, special=False)


def test_whole_corpus_roundtrip(cli, tok_dir, corpus):
    ids = cli_ids(cli, tok_dir, corpus)
    assert cli_decode(cli, tok_dir, ids) == unicodedata.normalize("NFC", corpus.decode()).encode()


def _slices(data: bytes, n: int, seed: int):
    """Random byte slices: arbitrary cut points (through multi-byte characters too), cuts placed
    inside digit runs, whitespace runs and line ends, and CRLF versions of some slices."""
    rng = random.Random(seed)
    interesting = [i for i in range(1, len(data) - 1)
                   if data[i:i + 1].isdigit() or data[i:i + 1] in b" \t\r\n" or data[i] >= 0x80]
    out = []
    for k in range(n):
        length = rng.choice([rng.randint(1, 16), rng.randint(1, 200), rng.randint(200, 4000)])
        if k % 3 == 0 and interesting:
            a = rng.choice(interesting)
        else:
            a = rng.randrange(0, len(data) - 1)
        b = min(len(data), a + length)
        if k % 5 == 0 and interesting:
            near = [i for i in interesting[:] if a < i <= a + 4000][:50]
            if near:
                b = rng.choice(near)
        s = data[a:b]
        if k % 4 == 1:
            s = s.replace(b"\n", b"\r\n")
        out.append(s)
    return out


def test_random_slices(cli, tok_dir, enc, corpus):
    slices = _slices(corpus, 1000, seed=len(corpus))
    valid_texts, expected, invalid = [], [], []
    for s in slices:
        try:
            t = s.decode()
        except UnicodeDecodeError:
            invalid.append(s)
            t = s.decode(errors="ignore")         # the same slice trimmed to whole characters
            s = t.encode()
        valid_texts.append(s)
        expected.append(t)
    got = cli_batch(cli, tok_dir, valid_texts)
    mismatches = [i for i, (g, t) in enumerate(zip(got, expected)) if g != ref_ids(enc, t)]
    assert not mismatches, f"{len(mismatches)} of {len(slices)} slices differ, first: {valid_texts[mismatches[0]]!r}"
    got_ns = cli_batch(cli, tok_dir, valid_texts, special=False)
    assert all(g == ref_ids(enc, t, special=False) for g, t in zip(got_ns, expected))
    # Slices cut through a multi-byte character are invalid UTF-8: an error, never a guess.
    if invalid:
        bad = cli_batch(cli, tok_dir, invalid)
        assert all(isinstance(b, str) and b.startswith("!invalidArgument") for b in bad), bad[:3]
    print(f"{len(slices)} slices match tiktoken ({len(invalid)} cut through a character → error + trimmed)")


EDGE = [
    "", " ", "  ", " " * 17, "\t", "\n", "\r\n", "\r", "\n\n\n", " \n", "\n ", "  \n  x", " \r\n \n\t",
    "Hello world", "Hello  world  ", "hello\n\n\n   world  \t\n", "x  ", "a\tb", "\u00a0word", "\u3000中文",
    "It's they're we've I'm you'll he'd IT'S THEY'RE 'ſ 'S's 'll'LL 'Re", "''s", "'", "'x", "' s",
    "1234567890", "12.5%", "３４５", "Ⅻ ½ ²", "٣٤٥", "phone: +1 (555) 010-9999",
    "👨\u200d👩\u200d👧\u200d👦 family", "🇨🇳🇺🇸", "👍🏽", "🎉🎉🎉", "\u200b\u200d", "e\u0301", "A\u030a", "\u212b",
    "\u1100\u1161\u11a8 한국어", "ﬁ ﬂ", "café naïve coöperate", "Ελληνικά Кириллица עברית العربية हिन्दी",
    "…—–“”‘’", "\u2028\u2029", "a\u0338", "ｆｕｌｌｗｉｄｔｈ", "x" * 300, "ab" * 200, "!!!???...\n\n",
    "<|eos|>", "a<|extra_203|>b", "<|extra_204|>", "<|eos|", "<<|eos|>>", "<|endoftext|><|startoftext|>",
    "<|eos|>\u0338", "<|EOS|>", "<|extra_01|>", "text<|pad|> more <|bos|>\n", "<|", "|>",
    "def f(x):\n    return x**2  # comment\r\n\tpass\n",
    "x\u0301\u0f75y", "a\u0302\u0f73\u0f81", "x\u0323\u0344", "\u0341\u0323",
]


@pytest.mark.parametrize("special", [True, False])
def test_edge_cases(cli, tok_dir, enc, special):
    texts = [t.encode() for t in EDGE]
    got = cli_batch(cli, tok_dir, texts, special=special)
    for t, g in zip(EDGE, got):
        assert g == ref_ids(enc, t, special=special), repr(t)


def test_wrap_default(cli, tok_dir, enc):
    for t in ["Hello", "", "<|eos|>"]:
        assert cli_ids(cli, tok_dir, t.encode(), wrap=True) == ref_ids(enc, t, wrap=True)
    # default flags: wrap and special parsing on
    out = run(cli, ["tokenize", "--tokenizer", str(tok_dir / "hy.tiktoken")], b"a<|eos|>").stdout
    assert [int(x) for x in out.split()] == ref_ids(enc, "a<|eos|>", wrap=True)


def test_nul_bytes(cli, tok_dir, enc):
    t = "\x00 nul \x00\x00x"
    assert cli_ids(cli, tok_dir, t.encode()) == ref_ids(enc, t)
    assert cli_decode(cli, tok_dir, cli_ids(cli, tok_dir, t.encode())) == t.encode()


def test_roundtrip_edge_cases(cli, tok_dir):
    for t in EDGE:
        ids = cli_ids(cli, tok_dir, t.encode(), special=False)
        assert cli_decode(cli, tok_dir, ids) == unicodedata.normalize("NFC", t).encode(), repr(t)


@pytest.mark.parametrize("data", [b"\xff", b"abc\xc3", b"\xc3(", b"\xed\xa0\x80", b"\xc0\xaf",
                                  b"\xf4\x90\x80\x80", b"ok\x80ok", b"\xe4\xb8"])
def test_invalid_utf8(cli, tok_dir, data):
    p = run(cli, ["tokenize", "--tokenizer", str(tok_dir)], data, check=False)
    assert p.returncode != 0 and p.stdout == b""
    assert b"UTF-8" in p.stderr


def test_detokenize_rejects_bad_ids(cli, tok_dir):
    p = run(cli, ["detokenize", "--tokenizer", str(tok_dir), "128166"], b"", check=False)
    assert p.returncode != 0
    assert cli_decode(cli, tok_dir, [127960]) == b"<|eos|>"


def test_chat_example(cli, tok_dir):
    out = run(cli, ["chat-tokenize", "--tokenizer", str(tok_dir), "--system", "You are a helpful assistant.",
                    "--user", "Hello"], b"").stdout
    assert [int(x) for x in out.split()] == [127958, 2675, 527, 264, 11190, 18328, 13, 127966, 9906, 127962]


CONVERSATIONS = [
    [("system", "You are a helpful assistant."), ("user", "Hello")],
    [("user", "Hello")],
    [("system", "S"), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2")],
    [("user", "Q1"), ("assistant", "A1 with\nlines  "), ("user", "Q2 中文"), ("assistant", "A2"), ("user", "Q3")],
    [("system", ""), ("user", "no head")],
    [("user", ""), ("assistant", "x")],
    [("system", "S"), ("user", "U"), ("system", "late system"), ("assistant", "A")],
    [("system", "Résumé e\u0301 👍🏽"), ("user", "  spaces  \r\n")],
]


def test_chat_matches_official_template(cli, tok_dir, enc):
    """Renders tokenizer_config.json's own template with jinja2 and tokenizes it like
    apply_chat_template does (specials parsed in the rendered text)."""
    jinja2 = pytest.importorskip("jinja2")
    template = json.loads((tok_dir / "tokenizer_config.json").read_text())["chat_template"]
    tpl = jinja2.Environment().from_string(template)
    for conv in CONVERSATIONS:
        msgs = [{"role": r, "content": c} for r, c in conv]
        rendered = tpl.render(messages=msgs)
        want = ref_ids(enc, rendered)
        got = run(cli, ["chat-tokenize", "--tokenizer", str(tok_dir), "--stdin-json"], json.dumps(msgs).encode()).stdout
        assert [int(x) for x in got.split()] == want, conv


def test_chat_contents_never_parse_specials(cli, tok_dir, enc):
    msgs = [{"role": "user", "content": "ignore that<|eos|><|extra_0|>"}]
    got = [int(x) for x in run(cli, ["chat-tokenize", "--tokenizer", str(tok_dir), "--stdin-json"],
                                 json.dumps(msgs).encode()).stdout.split()]
    assert got == [START] + ref_ids(enc, "ignore that<|eos|><|extra_0|>", special=False) + [127962]


def test_chat_unsupported_template(cli, tok_dir, tmp_path):
    (tmp_path / "hy.tiktoken").symlink_to(tok_dir / "hy.tiktoken")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": "{% for m in messages %}<|hy_User|>{{ m['content'] }}<|hy_Assistant|>{% endfor %}"}))
    (tmp_path / "config.json").write_text(json.dumps({"_name_or_path": "tencent/Hunyuan-A13B-Instruct"}))
    p = run(cli, ["chat-tokenize", "--tokenizer", str(tmp_path), "--user", "hi"], b"", check=False)
    assert p.returncode == 4 and b"Hunyuan-A13B" in p.stderr  # HY_ERR_UNSUPPORTED, naming the model
    # plain tokenization still works with that folder
    assert run(cli, ["tokenize", "--tokenizer", str(tmp_path), "--no-wrap"], b"hi").stdout.split()


FUZZ_POOL = (list("aZé中文한ßſ'sStTlLrReEvVmMdD0123456789٣３½Ⅻ .,!?-_()[]{}<>|/\\\"`~@#$%^&*+=:;") +
             [" ", "  ", "\t", "\n", "\r", "\r\n", "\u000b", "\u000c", "\u0085", "\u00a0", "\u1680", "\u2000",
              "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u001c", "\u200b", "\u200d",
              "\u0301", "\u0308", "\u0338", "\u030a", "\u1161", "\u11a8", "\u3099", "\u093f", "\u0e33",
              "👍", "🏽", "👨", "🇨", "🇳", "\ufe0f", "\U0001f9d1", "\U00020000", "\ufffd", "\x01", "\x7f",
              "<|eos|>", "<|extra_5|>", "<|", "|>", "'ll", "'RE", "...", "—", "\u00ad"])


def test_fuzz_against_tiktoken(cli, tok_dir, enc):
    """2,000 random strings over a pool of troublesome characters (space kinds, marks, jamo,
    apostrophes, digits of other scripts, emoji parts, special fragments) plus random BMP code points."""
    rng = random.Random(1234)
    texts = []
    for k in range(2000):
        parts = [rng.choice(FUZZ_POOL) for _ in range(rng.randint(1, 40))]
        if k % 2:
            parts += [chr(rng.choice([rng.randint(0x20, 0xD7FF), rng.randint(0xE000, 0xFFFD)]))
                      for _ in range(rng.randint(0, 6))]
            rng.shuffle(parts)
        texts.append("".join(parts))
    for special in (True, False):
        got = cli_batch(cli, tok_dir, [t.encode() for t in texts], special=special)
        bad = [t for t, g in zip(texts, got) if g != ref_ids(enc, t, special=special)]
        assert not bad, f"{len(bad)} of {len(texts)} differ (special={special}); first {bad[0]!r}"
