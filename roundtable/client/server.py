"""What one server offers: its models (asked once), the model to use, its window, its tokenizer."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ServerError
from .retry import Retrier
from .transport import Transport, TransportError
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


class ServerInfo:
    """Facts about one endpoint, each asked for once and kept for the run."""

    def __init__(self, transport: Transport, retrier: Retrier, model: str | None) -> None:
        self._transport = transport
        self._retrier = retrier
        self.model = model
        self._models: list[dict[str, Any]] | None = None
        self._window: int | None = None
        self._window_checked = False
        self.tokenizer: str | None = None  # the path that answered
        self._tokenizer_checked = False
        self._props: dict[str, Any] | None = None  # GET /props, once asked
        self._props_checked = False

    def models(self) -> list[dict[str, Any]]:
        """The server's model listing, asked once (retrying what may pass)."""
        if self._models is None:
            self._models = self._retrier.run(self._transport.list_models)[0]
        return self._models

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
        if not self._window_checked:
            self._window_checked = True
            self._window = self._from_listing() or self._from_props() or self._from_ollama()
            # llama-cpp-python (checked in 0.3.x's server/app.py) reports its n_ctx nowhere:
            # /v1/models lists only ids, and its routes are /v1/* and /extras/* (tokenize,
            # detokenize), no /props. Its window comes from --context-window, or is read
            # from its first "exceed context window of N" / "maximum context length" error.
        return self._window

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
        if not self._props_checked:
            self._props_checked = True
            try:
                answer = self._transport.get_root("/props")
            except TransportError:
                answer = None
            self._props = answer if isinstance(answer, dict) else None
        return self._props

    @property
    def family(self) -> str:
        """What serves this endpoint, from what it showed: llama.cpp, llama-cpp-python or
        unknown (decides whether llama.cpp's own sampling keys are worth sending)."""
        if self.props() is not None:
            return "llama.cpp"  # only llama-server answers /props
        if not self._tokenizer_checked:
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
        if self._tokenizer_checked and self.tokenizer is None:
            return None
        body = {"prompt": text, "content": text, "input": text, "model": self.model or ""}
        paths = [self.tokenizer] if self.tokenizer else list(TOKENIZE_PATHS)
        for path in paths:
            try:
                count = token_count(self._transport.post_root(path, body))
            except TransportError:
                continue
            if count is not None:
                self.tokenizer, self._tokenizer_checked = path, True
                return count
        if not self._tokenizer_checked:
            self._tokenizer_checked = True
        return None


def _positive(value: Any) -> int | None:
    """value if it is a positive integer (a window size), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return int(value) if ok else None
