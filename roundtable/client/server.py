"""What one server offers: its models (asked once), the model to use, its window, its tokenizer."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ..errors import ServerError
from .retry import Retrier
from .transport import PROBE_TIMEOUT_S, Transport, TransportError
from .wire import token_count

# Where servers offer a tokenizer (vLLM and llama.cpp at /tokenize, llama-cpp-python at
# /extras/tokenize/count, which answers a count rather than every token, and at
# /extras/tokenize); one body carries the field name each of them reads.
TOKENIZE_PATHS = ("/tokenize", "/extras/tokenize/count", "/extras/tokenize")
_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)", re.MULTILINE)
# Ollama's runtime window when a model sets no num_ctx (its default on small GPUs and on
# CPUs; the model's own context_length is only what it was trained for). Folding early
# is safe; Ollama silently truncating a longer prompt is not.
OLLAMA_DEFAULT_NUM_CTX = 4096


MAX_COUNTS = 4096  # token counts kept per endpoint (texts that repeat: prompts, lines)
MAX_COUNTED_CHARS = 20_000  # longer texts (whole prompts) are counted anew each time

T = TypeVar("T")


class Fact(Generic[T]):
    """One thing a server says, asked once. Who asks while it is being asked waits for that
    answer; each fact has its own lock, so nobody waits on another fact's probe, and a known
    fact is read without one. A failure is kept and raised again, not asked again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: tuple[T] | None = None
        self._error: Exception | None = None

    @property
    def known(self) -> bool:
        """Whether it was asked (and answered, or failed)."""
        return self._answer is not None or self._error is not None

    @property
    def value(self) -> T | None:
        """The answer (None until there is one)."""
        return self._answer[0] if self._answer is not None else None

    def get(self, ask: Callable[[], T]) -> T:
        """The answer, asking for it with ask() if nobody has; the failure if that failed."""
        if not self.known:
            with self._lock:
                if not self.known:
                    try:
                        self._answer = (ask(),)
                    except Exception as exc:  # the same outcome for every later asker
                        self._error = exc
        if self._error is not None:
            raise self._error
        assert self._answer is not None
        return self._answer[0]


def _text_key(model: str | None, text: str) -> tuple[str | None, bytes]:
    # A digest, not the text: 4096 kept counts of long texts would hold ~80 MB of text.
    return model, hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


class ServerFacts:
    """What one endpoint said, shareable by every client of it (a study's worker threads):
    its listing, window, /props and tokenizer route, each asked once, and (with
    `keep_counts`) the token counts its tokenizer gave, by text."""

    def __init__(self, *, keep_counts: bool = False) -> None:
        self.models: Fact[list[dict[str, Any]]] = Fact()
        self.window: Fact[int | None] = Fact()
        self.props: Fact[dict[str, Any] | None] = Fact()
        self.tokenizer: Fact[str | None] = Fact()  # the path that answered
        self.keep_counts = keep_counts
        self._counts: dict[tuple[str | None, bytes], int] = {}
        self._asking: dict[tuple[str | None, bytes], threading.Event] = {}
        self._counts_lock = threading.Lock()

    def counted(self, model: str | None, text: str, ask: Callable[[str], int | None]) -> int | None:
        """ask(text), or the count it gave before for the same text and model (when counts
        are kept). A text another client is asking about right now is waited for, not
        asked twice: runs that start together count the same opening lines."""
        if not self.keep_counts or len(text) > MAX_COUNTED_CHARS:
            return ask(text)
        key = _text_key(model, text)
        with self._counts_lock:
            if key in self._counts:
                return self._counts[key]  # the same text, the same tokenizer: the same count
            asking = self._asking.get(key)
            if asking is None:
                self._asking[key] = mine = threading.Event()
        if asking is not None:
            asking.wait(PROBE_TIMEOUT_S)
            known = self._counts.get(key)
            return known if known is not None else ask(text)
        try:
            count = ask(text)
            if count is not None:
                self.remember(model, text, count)
            return count
        finally:
            with self._counts_lock:
                del self._asking[key]
            mine.set()

    def remember(self, model: str | None, text: str, count: int) -> None:
        """Keep a count the tokenizer gave (when counts are kept; the oldest goes when full)."""
        if not self.keep_counts or len(text) > MAX_COUNTED_CHARS:
            return
        key = _text_key(model, text)
        with self._counts_lock:
            if key not in self._counts and len(self._counts) >= MAX_COUNTS:
                del self._counts[next(iter(self._counts))]
            self._counts[key] = count


class SharedFacts:
    """One ServerFacts per endpoint (URL, model, key variable), for clients made apart (each
    worker thread of a study has its own) that should ask each server once; they keep token
    counts too, since runs of one table count the same prompts and moderator lines."""

    def __init__(self) -> None:
        self._facts: dict[tuple[str, str | None, str], ServerFacts] = {}
        self._lock = threading.Lock()

    def of(self, url: str, model: str | None, key_env: str) -> ServerFacts:
        """The facts of one endpoint (made on first use)."""
        with self._lock:
            key = (url.rstrip("/"), model, key_env)
            return self._facts.setdefault(key, ServerFacts(keep_counts=True))


class ServerInfo:
    """Facts about one endpoint, each asked for once and kept (in `facts`, which clients of
    the same endpoint may share)."""

    def __init__(
        self,
        transport: Transport,
        retrier: Retrier,
        model: str | None,
        facts: ServerFacts | None = None,
    ) -> None:
        self._transport = transport
        self._retrier = retrier
        self.model = model
        self.facts = facts or ServerFacts()

    @property
    def tokenizer(self) -> str | None:
        """The tokenizer path that answered (None: none yet, or none at all)."""
        return self.facts.tokenizer.value

    def models(self) -> list[dict[str, Any]]:
        """The server's model listing, asked once (retrying what may pass); a listing that
        failed fails the same way for every later client, without asking again."""
        return self.facts.models.get(lambda: self._retrier.run(self._transport.list_models)[0])

    def resolve_model(self) -> str:
        """The configured model, or the first one the server lists."""
        if self.model:
            return self.model
        listing = self.models()
        if not listing:
            raise ServerError(
                f"{self._retrier.endpoint.where}: the server lists no models; set --model",
                resumable=False,
            )
        self.model = str(listing[0]["id"])
        return self.model

    def context_window(self) -> int | None:
        """The model's context size where the server tells it; None where it does not."""
        # llama-cpp-python (checked in 0.3.x's server/app.py) reports its n_ctx nowhere:
        # /v1/models lists only ids, and its routes are /v1/* and /extras/* (tokenize,
        # detokenize), no /props. Its window comes from --context-window, or is read
        # from its first "exceed context window of N" / "maximum context length" error.
        return self.facts.window.get(
            lambda: self._from_listing() or self._from_props() or self._from_ollama()
        )

    def _from_listing(self) -> int | None:
        # vLLM (and the dummy server): max_model_len on each /v1/models entry.
        try:
            listing = self.models()
        except ServerError:
            return None
        wanted = self.resolve_model() if listing else None
        for entry in listing:
            if entry.get("id") == wanted and _positive(entry.get("max_model_len")):
                return _positive(entry.get("max_model_len"))
        return None

    def props(self) -> dict[str, Any] | None:
        """llama.cpp's GET /props, asked once; None where the server has no such route."""
        return self.facts.props.get(self._ask_props)

    def _ask_props(self) -> dict[str, Any] | None:
        try:
            answer = self._transport.get_root("/props")
        except TransportError:
            return None
        return answer if isinstance(answer, dict) else None

    @property
    def family(self) -> str:
        """What serves this endpoint, from what it showed: llama.cpp, llama-cpp-python or
        unknown (decides whether llama.cpp's own sampling keys are worth sending)."""
        if self.props() is not None:
            return "llama.cpp"  # only llama-server answers /props
        if not self.facts.tokenizer.known:
            self.count_tokens("roundtable")  # finds the tokenizer route, once
        if self.tokenizer is not None and self.tokenizer.startswith("/extras/"):
            return "llama-cpp-python"  # its tokenizer routes live under /extras
        return "unknown"

    def _from_props(self) -> int | None:
        # llama.cpp's llama-server: GET /props; the per-slot size is the one a request gets.
        props = self.props()
        if props is None:
            return None
        slot = props.get("default_generation_settings")
        per_slot = _positive(slot.get("n_ctx")) if isinstance(slot, dict) else None
        return per_slot or _positive(props.get("n_ctx"))

    def _from_ollama(self) -> int | None:
        # Ollama: POST /api/show. A num_ctx parameter is what it runs with; otherwise its
        # default, unless the model was trained for less.
        if not self.model:
            return None
        try:
            shown = self._transport.post_root("/api/show", {"model": self.model})
        except TransportError:
            return None
        if not isinstance(shown, dict):
            return None
        match = _NUM_CTX.search(str(shown.get("parameters") or ""))
        if match:
            return int(match.group(1))
        info = shown.get("model_info")
        if not isinstance(info, dict):
            return None
        trained = _positive(info.get(f"{info.get('general.architecture')}.context_length"))
        return min(trained, OLLAMA_DEFAULT_NUM_CTX) if trained else None

    def count_tokens(self, text: str) -> int | None:
        """Tokens in text by this server's own tokenizer, or None if it offers none."""
        # The route is searched for once, however many clients ask, with the first text:
        # the client that searched gets that text's count from the search itself.
        first: list[int] = []
        path = self.facts.tokenizer.get(lambda: self._find_tokenizer(text, first))
        if first:
            return first[0]
        if path is None:
            return None
        return self.facts.counted(self.model, text, lambda t: self._ask_count(path, t))

    def _ask_count(self, path: str, text: str) -> int | None:
        try:
            return token_count(self._transport.post_root(path, self._body(text)))
        except TransportError:
            return None

    def _body(self, text: str) -> dict[str, Any]:
        # One body carries the field name each server reads.
        return {"prompt": text, "content": text, "input": text, "model": self.model or ""}

    def _find_tokenizer(self, text: str, first: list[int]) -> str | None:
        # The path that counts text (its count put in `first`), or None if none does.
        for path in TOKENIZE_PATHS:
            try:
                count = token_count(self._transport.post_root(path, self._body(text)))
            except TransportError:
                continue
            if count is not None:
                first.append(count)
                self.facts.remember(self.model, text, count)
                return path
        return None


def _positive(value: Any) -> int | None:
    """value if it is a positive integer (a window size), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return int(value) if ok else None
