"""Chinese word segmentation with jieba (pinned; its dictionary ships in the wheel, nothing is downloaded).

One private ``jieba.Tokenizer`` per process, with the lexicon's phrases added so that 臭鸡蛋 or 喘不上气
come out as one word. jieba caches its prefix dictionary in the system temp directory on first use.
"""
from __future__ import annotations

import logging
import threading
from functools import lru_cache
from typing import Iterable

import jieba

jieba.setLogLevel(logging.WARNING)
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_extra: frozenset[str] = frozenset()


def configure(words: Iterable[str]) -> None:
    """Add domain words to the segmenter (idempotent; call before the first ``words``)."""
    global _extra, _tokenizer
    new = frozenset(words) | _extra
    if new == _extra:
        return
    with _lock:
        _extra = new
        _tokenizer = None
        _cut.cache_clear()


def _get() -> jieba.Tokenizer:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            tk = jieba.Tokenizer()
            tk.initialize()
            for w in sorted(_extra):
                tk.add_word(w, freq=2000)
            _tokenizer = tk
        return _tokenizer


@lru_cache(maxsize=20000)
def _cut(text: str) -> tuple[str, ...]:
    return tuple(w for w in _get().lcut(text, HMM=True) if w.strip() and any(ch.isalnum() for ch in w))


def words(text: str) -> list[str]:
    """The words of ``text`` (punctuation dropped)."""
    return list(_cut(text))
