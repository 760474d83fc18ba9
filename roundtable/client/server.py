"""What one server offers: its models (asked once), the model to use, its window, its tokenizer."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

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


class ServerFacts:
    """What one endpoint said, shareable by every client of it (a study's worker threads):
    its listing, window, /props and tokenizer route, each asked once, and (with
    `keep_counts`) the token counts its tokenizer gave, by text."""

    def __init__(self, *, keep_counts: bool = False) -> None:
        # Held while a fact is asked, so concurrent clients ask once and wait for the answer.
        self.lock = threading.RLock()
        self.models: list[dict[str, Any]] | None = None
        self.window: int | None = None
        self.window_checked = False
        self.tokenizer: str | None = None  # the path that answered
        self.tokenizer_checked = False
        self.props: dict[str, Any] | None = None
        self.props_checked = False
        self.keep_counts = keep_counts
        self._counts: dict[tuple[str | None, str], int] = {}
        self._asking: dict[tuple[str | None, str], threading.Event] = {}
        self._counts_lock = threading.Lock()

    def counted(self, model: str | None, text: str, ask: Callable[[str], int | None]) -> int | None:
        """ask(text), or the count it gave before for the same text and model (when counts
        are kept). A text another client is asking about right now is waited for, not
        asked twice: runs that start together count the same opening lines."""
        if not self.keep_counts or len(text) > MAX_COUNTED_CHARS:
            return ask(text)
        key = (model, text)
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
        with self._counts_lock:
            if len(self._counts) >= MAX_COUNTS:
                del self._counts[next(iter(self._counts))]
            self._counts[(model, text)] = count


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
        return self.facts.tokenizer

    def models(self) -> list[dict[str, Any]]:
        """The server's model listing, asked once (retrying what may pass)."""
        facts = self.facts
        if facts.models is None:
            with facts.lock:
                if facts.models is None:
                    facts.models = self._retrier.run(self._transport.list_models)[0]
        return facts.models

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
        facts = self.facts
        with facts.lock:
            if not facts.window_checked:
                facts.window = self._from_listing() or self._from_props() or self._from_ollama()
                facts.window_checked = True
            # llama-cpp-python (checked in 0.3.x's server/app.py) reports its n_ctx nowhere:
            # /v1/models lists only ids, and its routes are /v1/* and /extras/* (tokenize,
            # detokenize), no /props. Its window comes from --context-window, or is read
            # from its first "exceed context window of N" / "maximum context length" error.
        return facts.window

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
        facts = self.facts
        with facts.lock:
            if not facts.props_checked:
                try:
                    answer = self._transport.get_root("/props")
                except TransportError:
                    answer = None
                facts.props = answer if isinstance(answer, dict) else None
                facts.props_checked = True
        return facts.props

    @property
    def family(self) -> str:
        """What serves this endpoint, from what it showed: llama.cpp, llama-cpp-python or
        unknown (decides whether llama.cpp's own sampling keys are worth sending)."""
        if self.props() is not None:
            return "llama.cpp"  # only llama-server answers /props
        if not self.facts.tokenizer_checked:
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
        facts = self.facts
        if facts.tokenizer is None:
            with facts.lock:  # the route is searched for once, however many clients ask
                if not facts.tokenizer_checked:
                    count = self._find_tokenizer(text)
                    facts.tokenizer_checked = True
                    return count
            if facts.tokenizer is None:
                return None
        return facts.counted(self.model, text, self._ask_count)

    def _ask_count(self, text: str) -> int | None:
        assert self.facts.tokenizer is not None
        try:
            return token_count(self._transport.post_root(self.facts.tokenizer, self._body(text)))
        except TransportError:
            return None

    def _body(self, text: str) -> dict[str, Any]:
        # One body carries the field name each server reads.
        return {"prompt": text, "content": text, "input": text, "model": self.model or ""}

    def _find_tokenizer(self, text: str) -> int | None:
        for path in TOKENIZE_PATHS:
            try:
                count = token_count(self._transport.post_root(path, self._body(text)))
            except TransportError:
                continue
            if count is not None:
                self.facts.tokenizer = path
                self.facts.remember(self.model, text, count)
                return count
        return None


def _positive(value: Any) -> int | None:
    """value if it is a positive integer (a window size), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return int(value) if ok else None
