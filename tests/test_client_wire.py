from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from roundtable.client.wire import Events, Lines, message_of, token_count


def byte_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines fed chunk by chunk, as the transport and the pump feed them."""
    lines = Lines()
    for chunk in chunks:
        yield from lines.feed(chunk)
    yield from lines.close()


def sse_events(lines: Iterable[str]) -> Iterator[str]:
    """Events fed line by line, and the one a stream ends without a blank line after."""
    events = Events()
    for line in lines:
        if (event := events.line(line)) is not None:
            yield event
    if (last := events.close()) is not None:
        yield last


def test_sse_events_join_data_lines_and_skip_comments_and_other_fields():
    lines = [": ping", "", "event: message", 'data: {"a":', 'data: 1}', "", "id: 3",
             "data:[DONE]", ""]  # fmt: skip
    assert list(sse_events(lines)) == ['{"a":\n1}', "[DONE]"]
    assert list(sse_events(["data: tail-without-blank-line"])) == ["tail-without-blank-line"]


STREAM = 'data: {"t": "caf\u00e9 \u263a"}\r\n\r\ndata: two\n\n: ping\rdata: [DONE]\n\n'.encode()
LINES = ['data: {"t": "caf\u00e9 \u263a"}', "", "data: two", "", ": ping", "data: [DONE]", ""]


@pytest.mark.parametrize(
    "chunks",
    [
        [STREAM],
        [STREAM[i : i + 1] for i in range(len(STREAM))],
        *([STREAM[:i], STREAM[i:]] for i in range(1, len(STREAM))),
    ],
    ids=lambda chunks: f"{len(chunks)}-chunks-{len(chunks[0])}",
)
def test_byte_lines_are_whole_however_the_stream_is_cut(chunks):
    # Cut inside a multi-byte character or between \r and \n: the same lines.
    assert list(byte_lines(chunks)) == LINES
    assert list(sse_events(byte_lines(chunks))) == ['{"t": "caf\u00e9 \u263a"}', "two", "[DONE]"]


def test_byte_lines_keep_a_last_line_without_its_end():
    assert list(byte_lines([b"data: a\n", b"data: b"])) == ["data: a", "data: b"]
    assert list(byte_lines([b"a\r"])) == ["a"] and list(byte_lines([])) == []


@pytest.mark.parametrize(
    "body,expected",
    [
        ({"error": {"message": "vLLM >= 0.10.1", "type": "x"}}, "vLLM >= 0.10.1"),
        ({"object": "error", "message": "older vLLM"}, "older vLLM"),
        ({"error": "TGI style", "error_type": "template_error"}, "TGI style"),
        ({"detail": "Not Found"}, "Not Found"),
        ("plain text", "plain text"),
        ({}, None),
    ],
    ids=["openai", "vllm-flat", "tgi", "fastapi", "text", "empty"],
)
def test_error_messages_from_every_server_shape(body, expected):
    assert message_of(body) == expected


def test_token_count_shapes():
    assert token_count({"count": 4, "tokens": [1]}) == 4
    assert token_count({"tokens": [1, 2, 3]}) == 3
    assert token_count({"detail": "Not Found"}) is None and token_count([1]) is None
