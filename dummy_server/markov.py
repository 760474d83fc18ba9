"""Markov-chain text generation and the dummy server's word tokenizer."""

from __future__ import annotations

import bisect
import functools
import re
import zlib
from collections.abc import Sequence
from importlib import resources
from random import Random
from typing import Any

import markovify

# A "token" is a run of non-space characters: simple, predictable, and the same
# rule is used for usage counts, max_tokens, /tokenize and the context window.
_TOKEN_RE = re.compile(r"\S+")
_PIECE_RE = re.compile(r"\s*\S+")
_VOCAB_SIZE = 32000
_STATE_SIZE = 2
_MAX_SENTENCE_WORDS = 60
_BEGIN = (markovify.chain.BEGIN,) * _STATE_SIZE
_END = markovify.chain.END

Chain = dict[tuple[str, ...], dict[str, int]]


def tokenize(text: str) -> list[str]:
    """Split text into the server's tokens (whitespace-separated words)."""
    return _TOKEN_RE.findall(text)


def pieces(text: str) -> list[str]:
    """Split text into tokens that keep their leading whitespace (for streaming).

    Joined, the pieces give back the text exactly: trailing whitespace (left by a
    stop sequence) rides on the last piece.
    """
    parts: list[str] = _PIECE_RE.findall(text)
    tail = text[len(text.rstrip()) :]
    if tail:
        if parts:
            parts[-1] += tail
        else:
            parts = [tail]
    return parts


def token_ids(tokens: Sequence[str]) -> list[int]:
    """Stable integer ids for tokens (a hash into a fixed vocabulary)."""
    return [zlib.crc32(t.encode("utf-8")) % _VOCAB_SIZE for t in tokens]


def message_text(content: Any) -> str:
    """The text of a message's content: a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def render_chat(messages: Sequence[dict[str, Any]]) -> str:
    """The prompt the dummy 'model' reads: a ChatML-like rendering of the messages."""
    out = [f"<|{m['role']}|>\n{message_text(m.get('content'))}\n<|end|>\n" for m in messages]
    out.append("<|assistant|>\n")
    return "".join(out)


def _parse(text: str) -> list[list[str]]:
    sentences: list[list[str]] = []
    # Paragraphs first: transcripts give each speaker a paragraph, and a name tag
    # should start a sentence rather than sit in the middle of one. Single line
    # breaks inside a paragraph are just wrapped text.
    for paragraph in re.split(r"\n\s*\n", text):
        for sentence in markovify.split_into_sentences(" ".join(paragraph.split())):
            words = tokenize(sentence)
            if words:
                sentences.append(words)
    return sentences


@functools.lru_cache(maxsize=2048)
def _chain_for(text: str) -> Chain:
    # Transcripts are resent on every turn, so each message's chain is cached.
    parsed = _parse(text)
    if not parsed:
        return {}
    return markovify.Chain(parsed, _STATE_SIZE).model  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=1)
def builtin_corpus() -> str:
    """The small built-in corpus that lets empty prompts still produce sentences."""
    return resources.files("dummy_server").joinpath("corpus.txt").read_text(encoding="utf-8")


class MarkovGenerator:
    """Generates replies from the request's own text plus a built-in corpus."""

    def __init__(
        self, corpus: str | None = None, corpus_weight: int = 4, message_weight: int = 1
    ) -> None:
        self._base = _chain_for(builtin_corpus() if corpus is None else corpus)
        self._corpus_weight = corpus_weight
        self._message_weight = message_weight

    def _sources(self, texts: Sequence[str]) -> list[tuple[Chain, int]]:
        sources = [(self._base, self._corpus_weight)]
        sources += [(_chain_for(t), self._message_weight) for t in texts if t.strip()]
        return sources

    @staticmethod
    def _options(sources: list[tuple[Chain, int]], state: tuple[str, ...]) -> dict[str, int]:
        merged: dict[str, int] = {}
        for chain, weight in sources:
            follow = chain.get(state)
            if follow:
                for word, count in follow.items():
                    merged[word] = merged.get(word, 0) + count * weight
        return merged

    @staticmethod
    def _choose(options: dict[str, int], rng: Random, temperature: float) -> str:
        words = list(options)
        if temperature <= 0:
            # Greedy: the most frequent continuation; ties go to the first seen.
            best = max(options.values())
            return next(w for w in words if options[w] == best)
        inv = 1.0 / temperature
        cumulative: list[float] = []
        total = 0.0
        for w in words:
            total += options[w] ** inv
            cumulative.append(total)
        index = bisect.bisect_right(cumulative, rng.random() * total)
        return words[min(index, len(words) - 1)]

    def sentence(
        self, sources: list[tuple[Chain, int]], rng: Random, temperature: float
    ) -> list[str]:
        """Walk the merged chain once from its start to an end (or a length cap)."""
        state = _BEGIN
        words: list[str] = []
        while len(words) < _MAX_SENTENCE_WORDS:
            options = self._options(sources, state)
            if not options:
                break
            word = self._choose(options, rng, temperature)
            if word == _END:
                break
            words.append(word)
            state = state[1:] + (word,)
        return words

    def generate(
        self,
        texts: Sequence[str],
        rng: Random,
        temperature: float,
        max_words: int | None,
        ramble: bool = False,
    ) -> str:
        """A reply of a few sentences (or, rambling, until max_words) from the given texts."""
        sources = self._sources(texts)
        n_sentences = rng.randint(2, 5)
        limit = max_words if max_words is not None else 10_000
        out: list[str] = []
        n_words = 0
        produced = 0
        while n_words < limit and (ramble or produced < n_sentences):
            words = self.sentence(sources, rng, temperature)
            produced += 1
            if not words:
                if produced > 50:
                    break
                continue
            # A sentence that opens with a name tag ("Alice:") continues the
            # transcript as someone else, as small real models do: new line.
            sep = "\n" if out and words[0].endswith(":") else " "
            out.append((sep if out else "") + " ".join(words))
            n_words += len(words)
        return "".join(out)
