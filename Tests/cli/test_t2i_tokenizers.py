"""`hunyuan-cli t2i-tokenize` (HunyuanDiT's BERT WordPiece and mT5 SentencePiece tokenizers) against the real
libraries on the hunyuandit-tiny fixture's tokenizer folders: transformers 4.46.3's slow BertTokenizer and
T5Tokenizer (as the official pipeline calls them: padding="max_length", truncation=True, 77 / 256) and
sentencepiece's own encode, on varied hand-picked strings (Chinese/English, punctuation, digits, accents,
emoji, repeated spaces, tabs and newlines, fullwidth forms, special-token strings, long texts) and on
random strings of random code points. Nothing is downloaded: every file is the fixture's.

Needs: sentencepiece and transformers (skipped without them), the CLI ($HUNYUAN_CLI), $HUNYUAN_SHARED.
"""
import json
import random
import subprocess

import pytest

TEXTS = [
    "", " ", "café", "jpeg", "3d", "pgly", "３", "，", "😀",
    "一只戴着红色围巾的可爱小猫,白色背景,3D风格,最佳质量",
    "Hello,  World!\tTabs\nnew\r\nlines   and   spaces",
    "ÅNGSTRÖM naïve résumé Crème Brûlée",
    "ﬁ ﬂ ™ ½ ① ㍻ ℃ Ⅻ",
    "  leading and trailing  ",
    "[CLS] x [SEP] [MASK] [unk] [PAD]",
    "a</s>b <pad> <unk> text",
    "text ending </s>",
    "ΣΑΣ σ ΟΔΟΣ İstanbul ǅ",
    "x\u0301\u0323y e\u0301 \u1e9b\u0323",
    "\u3000全角\u3000空格　ＡＢＣ１２３！？",
    "カタカナ ﾊﾝｶｸ 한국어 텍스트",
    "\u200b\u200d zero width \ufeff bom \u00ad soft",
    "\x01\x7f ctrl \x0b\x0c\x1c \x85 next",
    "a\u2028b\u2029c",
    "mixed中文English123混合 3D风格",
    "emoji 👍🏽 family 👨‍👩‍👧 flag 🇨🇳",
    "¡¿ «quotes» “curly” —dash– … ‘x’",
    "x" * 150,
    "ab" * 60 + " " + "好" * 10,
    "文本,特写,裁剪,出框,最差质量,低质量,JPEG伪影,PGLY,重复,病态,残缺,多余的手指" * 8,
]

POOL = list("abcXYZ019 ,.!?;:-_'\"()[]{}<>/\\@#$%^&*+=~`|\t\n\r") + list("中文字体一二三白色背景风格最佳质量猫") + [
    "é", "ü", "ñ", "Å", "ß", "ﬁ", "３", "，", "。", "、", "！", "？", "Ａ", "ｚ", "ｶ", "㍻", "①", "½", "\u0301", "\u0308",
    "\u00a0", "\u3000", "\u2003", "\u200b", "\u2028", "😀", "👍🏽", "🇨🇳", "\ufffd", "\x0b", "\x0c", "\x85", "Σ", "İ",
    "ǅ", "Ⅻ", "℃", "™", "…", "—", "\u0f73", "\ufeff", "\u00ad", "\ue000", "가", "[SEP]", "[MASK]", "</s>", "<pad>",
]


@pytest.fixture(scope="module")
def folder(shared):
    d = shared / "fixtures" / "t2i" / "hunyuandit-tiny"
    if not (d / "tokenizer" / "vocab.txt").exists() or not (d / "tokenizer_2" / "spiece.model").exists():
        pytest.skip(f"no hunyuandit-tiny tokenizers in {d}")
    return d


@pytest.fixture(scope="module")
def refs(folder):
    pytest.importorskip("sentencepiece")
    transformers = pytest.importorskip("transformers")
    bert = transformers.BertTokenizer.from_pretrained(str(folder / "tokenizer"))
    t5 = transformers.T5Tokenizer.from_pretrained(str(folder / "tokenizer_2"))
    return bert, t5


def cli_encode(cli, folder, texts):
    """One JSON object per text from `t2i-tokenize --batch --json` (texts NUL-separated, no NUL inside)."""
    data = b"\0".join(t.encode("utf-8") for t in texts)
    p = subprocess.run([str(cli), "t2i-tokenize", str(folder), "--batch", "--json"], input=data,
                       capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert len(out) == len(texts)
    return out


def compare(cli, folder, refs, texts):
    bert, t5 = refs
    bad = []
    for text, ours in zip(texts, cli_encode(cli, folder, texts)):
        b = bert(text, padding="max_length", max_length=77, truncation=True)
        t = t5(text, padding="max_length", max_length=256, truncation=True)
        if (ours["bert_ids"], ours["bert_mask"]) != (b["input_ids"], b["attention_mask"]):
            bad.append(("bert", text, bert.tokenize(text), ours["bert_tokens"]))
        if (ours["t5_ids"], ours["t5_mask"]) != (t["input_ids"], t["attention_mask"]):
            bad.append(("t5", text, t5.tokenize(text), ours["t5_pieces"]))
        if ours["bert_tokens"] != bert.tokenize(text) or ours["t5_pieces"] != t5.tokenize(text):
            bad.append(("pieces", text, bert.tokenize(text), ours["bert_tokens"], t5.tokenize(text), ours["t5_pieces"]))
    assert not bad, bad[:5]


def test_hand_picked_strings_match_transformers(cli, folder, refs):
    compare(cli, folder, refs, TEXTS)


def test_sentencepiece_encode_matches(cli, folder, refs):
    """The T5 ids are sentencepiece's own `encode(text)[:255] + [</s>]` (no special-token strings here)."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer_2" / "spiece.model"))
    texts = [t for t in TEXTS if "</s>" not in t and "<pad>" not in t and "<unk>" not in t]
    for text, ours in zip(texts, cli_encode(cli, folder, texts)):
        ids = sp.encode(text)[:255] + [1]
        assert ours["t5_ids"] == ids + [0] * (256 - len(ids)), text


def test_random_strings_match_transformers(cli, folder, refs):
    rnd = random.Random(0)
    texts = ["".join(rnd.choice(POOL) for _ in range(rnd.randint(1, 40))) for _ in range(300)]

    def code_point():
        while True:
            r = rnd.random()
            c = rnd.randint(0x20, 0x7E) if r < 0.3 else rnd.randint(0xA0, 0x3000) if r < 0.7 \
                else rnd.randint(0x3000, 0xFFFF) if r < 0.9 else rnd.randint(0x10000, 0x2FFFF)
            if not 0xD800 <= c <= 0xDFFF:
                return chr(c)
    texts += ["".join(code_point() for _ in range(rnd.randint(1, 30))) for _ in range(300)]
    compare(cli, folder, refs, texts)


def test_errors(cli, tmp_path):
    (tmp_path / "tokenizer").mkdir()
    p = subprocess.run([str(cli), "t2i-tokenize", str(tmp_path), "--text", "x"], capture_output=True, text=True)
    assert p.returncode != 0 and "vocab.txt" in p.stderr
