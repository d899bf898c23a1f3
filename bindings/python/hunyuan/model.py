"""Hunyuan language models: text in, text out, logits as numpy."""
from __future__ import annotations

import os
import queue
import threading
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native


TOKENIZE_WRAP = 1
TOKENIZE_PARSE_SPECIAL = 2
TOKENIZE_CONTINUE = 4  # hy_generate_text only: the prompt continues what the session holds


class Tokenizer:
    """Hunyuan's tokenizer (hy.tiktoken; a file or a folder holding one). Shareable across threads."""

    def __init__(self, path: str | os.PathLike):
        self._t = _native.Tokenizer(path)
        # <|startoftext|> and <|endoftext|>; the specials start at <|endoftext|> in every hy.tiktoken layout
        self.start_id, self.end_id = self._t.tokenize(b"", TOKENIZE_WRAP)

    def is_special(self, token: int) -> bool:
        return token >= self.end_id

    def encode(self, text: str, wrap: bool = True, special: bool = True) -> List[int]:
        """Ids as the official encode gives them (wrap in <|startoftext|> … <|endoftext|>, special surface
        forms parsed); pass special=False for untrusted text."""
        flags = (TOKENIZE_WRAP if wrap else 0) | (TOKENIZE_PARSE_SPECIAL if special else 0)
        return self._t.tokenize(text.encode("utf-8"), flags)

    def decode(self, ids: Iterable[int]) -> str:
        return self._t.detokenize(list(ids)).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return self._t.detokenize(list(ids))

    def chat(self, messages: Sequence) -> List[int]:
        """Chat ids for messages given as dicts {"role", "content"} or (role, content) pairs."""
        pairs = [(m["role"], m["content"]) if isinstance(m, dict) else tuple(m) for m in messages]
        return self._t.chat(pairs)

    @property
    def stop_ids(self) -> List[int]:
        return self._t.stop_ids()

    @property
    def vocab_size(self) -> int:
        return self._t.vocab_size()

    def close(self) -> None:
        self._t.close()


class Model:
    """A Hunyuan language model loaded from a checkpoint folder (config.json + safetensors, with
    hy.tiktoken for text). Methods may be called from several threads at once: each call takes its
    own session (KV cache), and the GIL is released while the engine runs. Ctrl-C stops a running
    call within a token (or a layer, while a prompt is processed) and the model stays usable.
    kv_type "auto" (the default) keeps the KV cache in f32 up to 8,192 positions and in q8_0 above;
    "f16" stores it in half precision (half the memory per token), "q8_0" in 8-bit blocks (~0.27 of
    it). kv_cache() tells what a session of this model holds."""

    def __init__(self, path: str | os.PathLike, n_threads: int = 0, n_ctx: int = 0,
                 tokenizer: Optional[Union[str, os.PathLike, Tokenizer]] = None, kv_type: str = "auto"):
        kv_types = {"auto": -1, "f32": 0, "f16": 1, "q8_0": 2}
        if kv_type not in kv_types:
            raise ValueError(f"kv_type {kv_type!r}: expected 'auto', 'f32', 'f16' or 'q8_0'")
        self._m = _native.Model(path, n_threads)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._kv_type = kv_types[kv_type]
        self._pool: List[_native.Session] = []
        self._lock = threading.Lock()
        if isinstance(tokenizer, Tokenizer):
            self.tokenizer: Optional[Tokenizer] = tokenizer
        else:
            try:
                self.tokenizer = Tokenizer(tokenizer if tokenizer is not None else path)
            except _native.HunyuanError:
                if tokenizer is not None:
                    raise
                self.tokenizer = None
        self.info = self._m.info()

    # -- sessions --------------------------------------------------------------------------------
    def _session(self) -> _native.Session:
        with self._lock:
            if self._pool:
                s = self._pool.pop()
                s.reset()
                return s
        return _native.Session(self._m, self.n_ctx, self.n_threads, self._kv_type)

    def kv_cache(self) -> dict:
        """The KV cache each call's session allocates: {"n_ctx": positions, "kv_type": "f32" | "f16" |
        "q8_0" (what "auto" chose), "kv_bytes": bytes for all n_ctx positions}."""
        s = self._session()
        try:
            return s.kv_cache()
        finally:
            self._release(s)

    def _release(self, s: _native.Session) -> None:
        with self._lock:
            if len(self._pool) < 4:
                self._pool.append(s)
                return
        s.close()

    def _need_tokenizer(self) -> Tokenizer:
        if self.tokenizer is None:
            raise _native.UnsupportedError("this model folder has no hy.tiktoken: pass tokenizer=...")
        return self.tokenizer

    # -- API -------------------------------------------------------------------------------------
    def tokenize(self, text: str, wrap: bool = True, special: bool = True) -> List[int]:
        return self._need_tokenizer().encode(text, wrap=wrap, special=special)

    def detokenize(self, ids: Iterable[int]) -> str:
        return self._need_tokenizer().decode(ids)

    def logits(self, tokens: Sequence[int]) -> np.ndarray:
        """float32 [T, V] logits of every position of `tokens` (a fresh context)."""
        s = self._session()
        try:
            data, vocab = s.logits(list(tokens))
        finally:
            self._release(s)
        return np.frombuffer(data, dtype=np.float32).reshape(-1, vocab)

    def _sampler(self, greedy, temperature, top_k, top_p, min_p, repetition_penalty, seed):
        d = self.info["sampler"]
        t = d["temperature"] if temperature is None else float(temperature)
        g = bool(d["greedy"] if greedy is None else greedy) or t == 0.0
        return (g, t if t > 0 else 1.0, int(d["top_k"] if top_k is None else top_k),
                float(d["top_p"] if top_p is None else top_p), float(d["min_p"] if min_p is None else min_p),
                float(d["repetition_penalty"] if repetition_penalty is None else repetition_penalty), int(seed))

    def generate_ids(self, tokens: Sequence[int], max_tokens: int = 128, on_token=None, should_abort=None,
                     **sampling) -> Tuple[List[int], int]:
        """Token ids in, ids out. Returns (generated ids, stop reason: 0 max tokens, 1 eos, 2 callback)."""
        s = self._session()
        try:
            return s.generate(list(tokens), int(max_tokens), self._sampler(**_sampling_args(sampling)),
                              on_token, should_abort)
        finally:
            self._release(s)

    def generate(self, prompt: str, max_tokens: int = 128, temperature: Optional[float] = None,
                 top_k: Optional[int] = None, top_p: Optional[float] = None, min_p: Optional[float] = None,
                 repetition_penalty: Optional[float] = None, seed: int = 0, stop: Optional[Sequence[str]] = None,
                 stream: bool = False, greedy: Optional[bool] = None) -> Union[str, Iterator[str]]:
        """Continues `prompt` (encoded as <|startoftext|> + text, special surface forms not parsed).
        Sampling defaults come from the model's generation_config.json. Returns the text, or with
        stream=True an iterator of text pieces (whole UTF-8 characters). Stops at the model's eos ids and
        the tokenizer's stop ids, after max_tokens, or when the text produced contains one of `stop`
        (which is cut off, with everything after it)."""
        return self._run([], prompt.encode("utf-8"), 0, max_tokens, stop, stream,
                         dict(greedy=greedy, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                              repetition_penalty=repetition_penalty, seed=seed))

    def chat(self, messages: Sequence, max_tokens: int = 256, stream: bool = False, stop: Optional[Sequence[str]] = None,
             **sampling) -> Union[str, Iterator[str]]:
        """Replies to a conversation ([{"role": "system"|"user"|"assistant", "content": ...}, ...]) in the
        model's chat format; same options and return forms as generate()."""
        ids = self._need_tokenizer().chat(messages)
        return self._run(ids, b"", TOKENIZE_CONTINUE, max_tokens, stop, stream, sampling)

    # -- text generation: hy_generate_text (stop ids, stop strings, UTF-8 pieces) in the library --------
    def _run(self, prefix, prompt, flags, max_tokens, stop, stream, sampling):
        """Evaluates `prefix` ids (a chat prompt), then generates from the encoded `prompt`."""
        tok = self._need_tokenizer()
        stop = [s for s in (stop or []) if s]  # an empty stop string would match at once: ignored
        sampler = self._sampler(**_sampling_args(sampling))
        if not stream:
            s = self._session()
            try:
                if prefix:
                    s.eval(list(prefix))
                text, _, _ = s.generate_text(tok._t, prompt, flags, int(max_tokens), sampler, stop, None, None)
                return text
            finally:
                self._release(s)
        return self._stream(tok, prefix, prompt, flags, max_tokens, stop, sampler)

    def _stream(self, tok, prefix, prompt, flags, max_tokens, stop, sampler) -> Iterator[str]:
        pieces: "queue.Queue" = queue.Queue()
        cancel = threading.Event()
        done = object()
        failure: list = []

        def on_text(piece):
            pieces.put(piece)
            return not cancel.is_set()

        def work():
            s = self._session()
            try:
                if prefix:
                    s.eval(list(prefix), cancel.is_set)
                s.generate_text(tok._t, prompt, flags, int(max_tokens), sampler, stop, on_text, cancel.is_set)
            except BaseException as e:  # handed to the consumer
                failure.append(e)
            finally:
                self._release(s)
                pieces.put(done)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            while True:
                item = pieces.get()
                if item is done:
                    break
                yield item
            worker.join()
            if failure and not isinstance(failure[0], _native.AbortedError):
                raise failure[0]
        finally:
            cancel.set()
            worker.join()

    def close(self) -> None:
        with self._lock:
            for s in self._pool:
                s.close()
            self._pool.clear()
        self._m.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sampling_args(kw):
    allowed = {"greedy", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed"}
    unknown = set(kw) - allowed
    if unknown:
        raise TypeError(f"unknown sampling options: {sorted(unknown)}")
    out = {k: kw.get(k) for k in allowed}
    out["seed"] = kw.get("seed") or 0
    return out
