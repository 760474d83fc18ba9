"""The HTTP transport on real loopback sockets: kept-alive connections, one per thread,
servers that drop idle connections, proxies from the environment, credentials in the URL."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from roundtable.client import transport
from roundtable.client.transport import ConnectionFailure, IncompleteStream, StatusError, Transport
from roundtable.client.wire import Body

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_body(words: list[str]) -> bytes:
    """A chunked SSE chat stream: one chunk per word, then the finish and [DONE]."""
    out = b""
    for w in words:
        delta = {"choices": [{"delta": {"content": w}, "finish_reason": None}]}
        out += _chunk(f"data: {json.dumps(delta)}\n\n".encode())
    last = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
    out += _chunk(f"data: {json.dumps(last)}\n\n".encode()) + _chunk(b"data: [DONE]\n\n")
    return out + b"0\r\n\r\n"


def answer(body: bytes, *, chunked: bool = False, status: int = 200, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body)}\r\n"
    head += "Connection: close\r\n" if close else ""
    return head.encode() + b"\r\n" + body


# The request (head and body) -> the answer: bytes, pieces sent `gap` seconds apart, or
# None to hang up without answering.
Handler = Callable[[bytes], "bytes | list[bytes] | None"]


@contextmanager
def raw_server(
    handle: Handler,
    *,
    requests_per_connection: int = 100,
    gap: float = 0.0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[dict]:
    """A loopback HTTP server written on bare sockets, so a test decides exactly when a
    connection closes. Yields its facts: port, connections accepted, requests seen."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    facts: dict = {"port": listener.getsockname()[1], "connections": 0, "requests": []}
    lock = threading.Lock()

    def read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def serve(conn: socket.socket) -> None:
        buf = b""
        if tls is not None:
            try:
                conn = tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        with conn:
            for _ in range(requests_per_connection):
                got = read_request(conn, buf)
                if got is None:
                    return
                request, buf = got
                with lock:
                    facts["requests"].append(request)
                reply = handle(request)
                if reply is None:
                    return  # close without answering
                try:
                    for piece in reply if isinstance(reply, list) else [reply]:
                        conn.sendall(piece)
                        time.sleep(gap)
                except OSError:
                    return  # the client hung up first

    def counted(conn: socket.socket) -> None:
        with lock:
            facts["connections"] += 1
        serve(conn)

    with serving(listener, counted):
        yield facts


@contextmanager
def serving(listener: socket.socket, serve: Callable[[socket.socket], None]) -> Iterator[None]:
    """Accept connections in a thread, each served in a thread of its own, until the end of
    the block (which closes the listener)."""

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        listener.close()


def url(facts: dict) -> str:
    return f"http://127.0.0.1:{facts['port']}/v1"


def json_answer(request: bytes) -> bytes:
    return answer(json.dumps({"count": 3}).encode())


def test_requests_share_one_kept_alive_connection():
    with raw_server(json_answer) as facts:
        t = Transport(url(facts), "k", 5)
        assert [t.post_root("/tokenize", {"content": "x"}) for _ in range(3)] == [{"count": 3}] * 3
        t.close()
    assert facts["connections"] == 1 and len(facts["requests"]) == 3


def test_a_connection_the_server_closed_while_idle_is_not_reused():
    # One request per connection and no "Connection: close": the server just hangs up.
    with raw_server(json_answer, requests_per_connection=1) as facts:
        t = Transport(url(facts), "k", 5)
        for _ in range(3):
            assert t.post_root("/tokenize", {"content": "x"}) == {"count": 3}
        t.close()
    assert facts["connections"] == 3


def test_a_server_that_drops_the_request_on_a_reused_connection_is_asked_once_more():
    seen: list[int] = []

    def handle(request: bytes) -> bytes | None:
        seen.append(1)
        return None if len(seen) == 2 else json_answer(request)  # the 2nd: hang up, silent

    with raw_server(handle) as facts:
        t = Transport(url(facts), "k", 5)
        assert t.post_root("/tokenize", {}) == {"count": 3}
        assert t.post_root("/tokenize", {}) == {"count": 3}  # asked again, new connection
        t.close()
    assert facts["connections"] == 2 and len(seen) == 3


def test_a_fresh_connection_that_drops_the_request_is_a_connect_failure():
    with raw_server(lambda request: None) as facts:
        t = Transport(url(facts), "k", 5)
        with pytest.raises(ConnectionFailure) as exc:
            t.post_root("/tokenize", {})
        t.close()
    assert exc.value.kind == "connect"
    assert len(facts["requests"]) == 1  # not resent: the server may have acted on it


def test_streamed_replies_reuse_the_connection_and_an_error_body_is_read():
    replies = [answer(sse_body(["Hel", "lo"]), chunked=True),
               answer(b'{"error": {"message": "busy"}}', status=503),
               answer(sse_body(["again"]), chunked=True)]  # fmt: skip
    with raw_server(lambda request: replies.pop(0)) as facts:
        t = Transport(url(facts), "k", 5)
        seen: list[str] = []
        reply = t.stream_chat(CHAT, seen.append)
        assert (reply.text, reply.finish_reason, seen) == ("Hello", "stop", ["Hel", "lo"])
        with pytest.raises(StatusError) as exc:
            t.stream_chat(CHAT, None)
        assert exc.value.status == 503 and exc.value.message == "busy"
        assert t.stream_chat(CHAT, None).text == "again"
        t.close()
    assert facts["connections"] == 1


def test_a_stream_stopped_by_the_reader_closes_its_connection():
    with raw_server(lambda r: chunk_pieces(["a", "b", "c"]), gap=0.03) as facts:
        t = Transport(url(facts), "k", 5)
        reply = t.stream_chat(CHAT, lambda delta: delta != "b")
        assert (reply.text, reply.finish_reason) == ("ab", "client_stop")
        assert t.stream_chat(CHAT, None).text == "abc"  # the unread rest is not mistaken
        t.close()
    assert facts["connections"] == 2


def test_a_stopped_stream_whose_body_came_whole_keeps_its_connection():
    # The reader stops at "b", but the whole body came in one read: nothing is left unread.
    with raw_server(lambda r: answer(sse_body(["a", "b", "c"]), chunked=True)) as facts:
        t = Transport(url(facts), "k", 5)
        reply = t.stream_chat(CHAT, lambda delta: delta != "b")
        assert (reply.text, reply.finish_reason) == ("ab", "client_stop")
        assert t.stream_chat(CHAT, None).text == "abc"
        t.close()
    assert facts["connections"] == 1


def test_a_stream_cut_mid_chunk_is_an_incomplete_stream():
    body = sse_body(["one", "two"])
    cut = answer(body, chunked=True)[: -len(body) // 2]
    with raw_server(lambda r: cut, requests_per_connection=1) as facts:  # then it hangs up
        t = Transport(url(facts), "k", 5)
        with pytest.raises(IncompleteStream):
            t.stream_chat(CHAT, None)
        t.close()


def test_each_thread_has_its_own_connection():
    # The server answers only once both requests are in: one shared connection would
    # deadlock (and time out) instead.
    both = threading.Barrier(2, timeout=5)

    def handle(request: bytes) -> bytes:
        both.wait()
        return answer(sse_body(["x"]), chunked=True)

    with raw_server(handle) as facts:
        t = Transport(url(facts), "k", 5)
        texts: list[str] = []
        threads = [threading.Thread(target=lambda: texts.append(t.stream_chat(CHAT, None).text))
                   for _ in range(2)]  # fmt: skip
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        t.close()
    assert texts == ["x", "x"] and facts["connections"] == 2


def test_the_api_key_is_a_bearer_token_and_url_credentials_are_basic_auth():
    with raw_server(json_answer) as facts:
        Transport(url(facts), "sk-1", 5).post_root("/tokenize", {})
        Transport(url(facts).replace("//", "//ann:s%40cret@"), "sk-1", 5).get_root("/props")
    first, second = facts["requests"]
    assert b"\r\nAuthorization: Bearer sk-1\r\n" in first
    assert first.startswith(b"POST /tokenize HTTP/1.1\r\n")
    basic = base64.b64encode(b"ann:s@cret")
    assert b"\r\nAuthorization: Basic " + basic + b"\r\n" in second and b"sk-1" not in second
    assert second.startswith(b"GET /props HTTP/1.1\r\n")


def test_an_http_proxy_from_the_environment_is_used_unless_no_proxy_names_the_host(monkeypatch):
    with raw_server(json_answer) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://u:p@127.0.0.1:{proxy['port']}")
        t = Transport("http://models.example:8000/v1", "k", 5)
        assert t.post_root("/tokenize", {}) == {"count": 3}
        t.close()
        request = proxy["requests"][-1]
        assert request.startswith(b"POST http://models.example:8000/tokenize HTTP/1.1\r\n")
        assert b"\r\nProxy-Authorization: Basic " + base64.b64encode(b"u:p") + b"\r\n" in request
        with raw_server(json_answer) as direct:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            Transport(url(direct), "k", 5).post_root("/tokenize", {})
            assert len(direct["requests"]) == 1 and len(proxy["requests"]) == 1


def test_a_model_listing_must_name_its_models():
    bodies = [{"data": [{"id": "a", "max_model_len": 8}]}, {"data": [{"name": "a"}]}, {"x": 1}]
    with raw_server(lambda r: answer(json.dumps(bodies.pop(0)).encode())) as facts:
        t = Transport(url(facts), "k", 5)
        assert t.list_models() == [{"id": "a", "max_model_len": 8}]
        for _ in range(2):
            with pytest.raises(ConnectionFailure) as exc:
                t.list_models()
            assert exc.value.kind == "garbled"
        t.close()


# -- streams read by the pump (studies: nobody watches them) ---------------------------


def chunk_pieces(words: list[str]) -> list[bytes]:
    """The head and each chunk of an SSE stream as separate pieces (one send each)."""
    body = sse_body(words)
    head = answer(b"", chunked=True)
    pieces, rest = [head], body
    while rest:
        size, _, after = rest.partition(b"\r\n")
        n = int(size, 16)
        pieces.append(rest[: len(size) + 2 + n + 2] if n else rest)
        rest = after[n + 2 :] if n else b""
    return pieces


def test_a_pumped_stream_is_read_whole_and_its_connection_kept():
    def handle(request: bytes) -> bytes | list[bytes]:
        return json_answer(request) if b"/tokenize" in request else chunk_pieces(["a", "b", "c"])

    with raw_server(handle, gap=0.01) as facts:
        t = Transport(url(facts), "k", 5)
        seen: list[str] = []
        first = t.stream_chat(CHAT, seen.append, gather=0.02)
        assert (first.text, first.finish_reason, "".join(seen)) == ("abc", "stop", "abc")
        assert t.stream_chat(CHAT, None, gather=0.02).text == "abc"
        assert t.post_root("/tokenize", {}) == {"count": 3}  # blocking reads again after it
        t.close()
    assert facts["connections"] == 1


def test_the_pump_hands_over_what_came_together_not_each_token():
    words = [f"w{i} " for i in range(12)]
    with raw_server(lambda r: chunk_pieces(words), gap=0.01) as facts:
        t = Transport(url(facts), "k", 5)
        seen: list[str] = []
        reply = t.stream_chat(CHAT, seen.append, gather=0.05)
        t.close()
    assert reply.text == "".join(words) == "".join(seen)
    assert len(seen) < len(words) / 2  # ~10 ms apart, read every 50 ms


def test_a_pumped_stream_stopped_by_the_reader_closes_its_connection():
    with raw_server(lambda r: chunk_pieces(["a", "b", "c", "d"]), gap=0.03) as facts:
        t = Transport(url(facts), "k", 5)
        reply = t.stream_chat(CHAT, lambda text: "b" not in text, gather=0.01)
        assert reply.finish_reason == "client_stop" and reply.text.startswith("ab")
        assert t.stream_chat(CHAT, None, gather=0.01).text == "abcd"
        t.close()
    assert facts["connections"] == 2


def test_a_pumped_stream_cut_or_stalled_is_an_incomplete_stream():
    pieces = chunk_pieces(["one", "two", "three"])
    with raw_server(lambda r: pieces[:3], requests_per_connection=1) as facts:  # hangs up
        t = Transport(url(facts), "k", 5)
        with pytest.raises(IncompleteStream) as exc:
            t.stream_chat(CHAT, None, gather=0.01)
        assert exc.value.partial == "onetwo"
        t.close()
    with raw_server(lambda r: pieces[:2], gap=30.0) as facts:  # then stalls
        t = Transport(url(facts), "k", 0.3)
        raised: list[BaseException] = []

        def ask() -> None:
            try:
                t.stream_chat(CHAT, None, gather=0.01)
            except BaseException as exc:  # noqa: BLE001 - looked at below
                raised.append(exc)

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(5)  # the 0.3 s timeout, not the server, ends it
        assert not asking.is_alive() and isinstance(raised[0], IncompleteStream)
        t.close()


def test_an_error_in_the_reader_is_raised_in_the_thread_that_asked():
    def boom(text: str) -> bool:
        raise RuntimeError("reader failed")

    with raw_server(lambda r: chunk_pieces(["a", "b"])) as facts:
        t = Transport(url(facts), "k", 5)
        with pytest.raises(RuntimeError, match="reader failed"):
            t.stream_chat(CHAT, boom, gather=0.01)
        assert t.stream_chat(CHAT, None, gather=0.01).text == "ab"  # the pump lives on
        t.close()


def test_one_pump_thread_reads_many_streams_at_once():
    words = [f"{i}" for i in range(8)]
    with raw_server(lambda r: chunk_pieces(words), gap=0.02) as facts:
        t = Transport(url(facts), "k", 5)
        texts: list[str] = []
        threads = [threading.Thread(target=lambda: texts.append(
            t.stream_chat(CHAT, None, gather=0.03).text)) for _ in range(16)]  # fmt: skip
        for th in threads:
            th.start()
        pumps = {th.name for th in threading.enumerate() if th.name == "stream-pump"}
        for th in threads:
            th.join()
        t.close()
    assert texts == ["".join(words)] * 16 and len(pumps) == 1


def _chunked(payload: bytes, sizes: list[int]) -> bytes:
    out, i = b"", 0
    for n in sizes:
        out += b"%x;ext=1\r\n%s\r\n" % (len(payload[i : i + n]), payload[i : i + n])
        i += n
    if i < len(payload):
        out += b"%X\r\n%s\r\n" % (len(payload) - i, payload[i:])
    return out + b"0\r\nX-Trailer: 1\r\n\r\n"


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=12),
       st.lists(st.integers(1, 50), max_size=30))  # fmt: skip
def test_a_chunked_body_decodes_however_its_bytes_arrive(payload, sizes, cuts):
    wire, got, body, i = _chunked(payload, sizes) + b"NEXT", b"", Body(True, None), 0
    for n in [*cuts, len(wire)]:
        got += body.feed(wire[i : i + n])
        i += n
        if body.done:
            break
    assert got == payload and body.done


def test_a_body_by_length_or_by_close_and_a_malformed_chunk():
    sized = Body(False, 5)
    assert sized.feed(b"abc") == b"abc" and not sized.done
    assert sized.feed(b"defg") == b"de" and sized.done
    until_close = Body(False, None)
    assert until_close.feed(b"anything") == b"anything" and not until_close.done
    for wire in (b"zz\r\nab\r\n", b"2\r\nabXY", b"-1\r\n"):
        with pytest.raises(ValueError):
            Body(True, None).feed(wire)


def tls_pair(monkeypatch) -> ssl.SSLContext:
    """A server context with a certificate from a throwaway CA the transport trusts."""
    ca = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)
    client_side = ssl.create_default_context()
    ca.configure_trust(client_side)
    monkeypatch.setattr(transport, "_TLS", [client_side])  # trust the test CA only
    return server_side


def test_streams_over_tls_in_the_thread_and_in_the_pump(monkeypatch):
    server_side = tls_pair(monkeypatch)
    words = [f"w{i} " * 40 for i in range(6)]  # records bigger than one read, some

    with raw_server(lambda r: chunk_pieces(words), gap=0.005, tls=server_side) as facts:
        t = Transport(url(facts).replace("http://", "https://"), "k", 5)
        assert t.stream_chat(CHAT, None).text == "".join(words)
        seen: list[str] = []
        assert t.stream_chat(CHAT, seen.append, gather=0.02).text == "".join(words)
        assert "".join(seen) == "".join(words)
        assert t.stream_chat(CHAT, None).text == "".join(words)
        t.close()
    assert facts["connections"] == 1


def test_a_tls_reply_in_one_record_larger_than_the_header_read_is_not_waited_for(monkeypatch):
    # http.client reads the headers 8 KB at a time; a 16 KB TLS record holding the whole
    # reply leaves the rest decrypted in the SSL object, where no selector sees it.
    server_side = tls_pair(monkeypatch)
    whole = b"".join(chunk_pieces([f"w{i} " * 40 for i in range(50)]))
    assert 8192 < len(whole) < 16384
    with raw_server(lambda r: whole, tls=server_side) as facts:
        t = Transport(url(facts).replace("http://", "https://"), "k", 3)
        started = time.monotonic()
        assert t.stream_chat(CHAT, None, gather=0.02).finish_reason == "stop"
        assert time.monotonic() - started < 1.5  # not the 3 s timeout
        t.close()


def test_an_empty_stream_body_is_not_waited_for():
    with raw_server(lambda r: answer(b"")) as facts:  # Content-Length: 0
        t = Transport(url(facts), "k", 3)
        started = time.monotonic()
        with pytest.raises(IncompleteStream):
            t.stream_chat(CHAT, None, gather=0.02)
        assert time.monotonic() - started < 1.5
        t.close()


@pytest.mark.parametrize("event", ['{"choices": [null]}', '{"choices": [{"delta": "x"}]}'])
def test_an_event_of_the_wrong_shape_is_an_incomplete_stream(event):
    body = _chunk(f"data: {event}\n\n".encode()) + b"0\r\n\r\n"
    with raw_server(lambda r: answer(body, chunked=True)) as facts:
        t = Transport(url(facts), "k", 3)
        for gather in (0.0, 0.02):
            with pytest.raises(IncompleteStream):
                t.stream_chat(CHAT, None, gather=gather)
        t.close()


def test_the_pump_outlives_a_failure_of_its_own(monkeypatch):
    from roundtable.client import pump as pump_module

    real, failed = pump_module.selectors.DefaultSelector.register, []

    def once(self, *args, **kwargs):  # a file number selectors still holds: KeyError
        if not failed:
            failed.append(1)
            raise KeyError("fd in use")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pump_module.selectors.DefaultSelector, "register", once)
    with raw_server(lambda r: chunk_pieces(["a", "b"]), gap=0.01) as facts:
        t = Transport(url(facts), "k", 3)
        with pytest.raises(IncompleteStream):
            t.stream_chat(CHAT, None, gather=0.02)
        assert [t.stream_chat(CHAT, None, gather=0.02).text for _ in range(2)] == ["ab", "ab"]
        t.close()
    assert failed == [1]


@pytest.mark.parametrize(
    "proxy,words",
    [("socks5://127.0.0.1:1080", "only HTTP proxies work"),
     ("http://127.0.0.1:notaport", "no valid port")],
)  # fmt: skip
def test_a_proxy_that_cannot_be_used_is_one_clear_failure(monkeypatch, proxy, words):
    monkeypatch.setenv("ALL_PROXY", proxy)
    t = Transport("http://models.example:8000/v1", "sk-secret", 3)
    with pytest.raises(ConnectionFailure) as exc:
        t.post_root("/tokenize", {})
    assert exc.value.kind == "connect" and words in exc.value.detail
    assert "sk-secret" not in str(exc.value)


def test_an_ipv6_host_is_bracketed_for_an_http_proxy(monkeypatch):
    with raw_server(json_answer) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy['port']}")
        Transport("http://[::1]:8000/v1", "k", 5).post_root("/tokenize", {})
    request = proxy["requests"][-1]
    assert request.startswith(b"POST http://[::1]:8000/tokenize HTTP/1.1\r\n")


@contextmanager
def connect_proxy(target_port: int | None) -> Iterator[dict]:
    """An HTTP proxy that answers CONNECT by relaying to 127.0.0.1:target_port (None: it
    refuses with 403). Yields its facts: port and the CONNECT requests it saw."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    facts: dict = {"port": listener.getsockname()[1], "requests": []}

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                return conn.close()
            head += data
        facts["requests"].append(head)
        if target_port is None:
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return conn.close()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
        pipe(upstream, conn)

    with serving(listener, serve):
        yield facts


def test_https_through_a_proxy_is_a_connect_tunnel(monkeypatch):
    server_side = tls_pair(monkeypatch)
    with raw_server(json_answer, tls=server_side) as facts:
        with connect_proxy(facts["port"]) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", f"http://u:p%40ss@127.0.0.1:{proxy['port']}")
            t = Transport(url(facts).replace("http://", "https://"), "k", 5)
            assert t.post_root("/tokenize", {}) == {"count": 3}
            assert t.post_root("/tokenize", {}) == {"count": 3}  # the same tunnel, kept
            t.close()
    assert len(proxy["requests"]) == 1
    connect = proxy["requests"][0]
    assert connect.startswith(f"CONNECT 127.0.0.1:{facts['port']} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic " + base64.b64encode(b"u:p@ss") in connect
    assert b"Proxy-Authorization" not in facts["requests"][0]  # not sent on to the server


def test_a_proxy_that_refuses_the_tunnel_is_named(monkeypatch):
    with connect_proxy(None) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy['port']}")
        t = Transport("https://models.example/v1", "sk-secret", 3)
        with pytest.raises(ConnectionFailure) as exc:
            t.post_root("/tokenize", {})
    assert exc.value.kind == "connect" and "refused the tunnel: 403" in exc.value.detail


def test_interim_answers_are_skipped_and_a_non_http_answer_is_garbled():
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + json_answer(b"")
    with raw_server(lambda r: interim) as facts:
        assert Transport(url(facts), "k", 3).post_root("/tokenize", {}) == {"count": 3}
    with raw_server(lambda r: b"SSH-2.0-OpenSSH_9.2\r\n\r\n") as facts:
        with pytest.raises(ConnectionFailure) as exc:
            Transport(url(facts), "k", 3).post_root("/tokenize", {})
    assert exc.value.kind == "garbled" and "status line" in exc.value.detail


def test_folded_and_repeated_headers_and_a_bad_length():
    folded = (b"HTTP/1.1 429 Busy\r\nRetry-After:\r\n 7\r\nX-A: 1\r\nX-A: 2\r\n"
              b"Content-Length: 2\r\n\r\n{}")  # fmt: skip
    with raw_server(lambda r: folded) as facts:
        with pytest.raises(StatusError) as exc:
            Transport(url(facts), "k", 3).post_root("/tokenize", {})
    assert exc.value.headers["retry-after"] == "7" and exc.value.headers["x-a"] == "1, 2"
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\n{}"
    with raw_server(lambda r: bad) as facts:
        with pytest.raises(ConnectionFailure) as exc2:
            Transport(url(facts), "k", 3).post_root("/tokenize", {})
    assert exc2.value.kind == "garbled"


def test_an_api_key_with_a_line_break_is_refused_before_anything_is_sent():
    with raw_server(json_answer) as facts:
        with pytest.raises(ConnectionFailure) as exc:
            Transport(url(facts), "sk-1\r\nX-Evil: 1", 3).post_root("/tokenize", {})
        assert facts["requests"] == []
    assert "sk-1" not in str(exc.value)


def _sse(*chunks: object, done: bool = True) -> bytes:
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    return ("".join(events) + ("data: [DONE]\n\n" if done else "")).encode()


_DELTAS = [{"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}
           for t in ("Hel", "lo, ", "wörld", " 😀")]  # fmt: skip
_PLAIN = _sse(*_DELTAS, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})  # fmt: skip
# What servers may also send: a comment, no space after "data:", CRLF line ends, an event
# over two data lines, an event that is not ended by a blank line at the close.
_ODD = (b": keep-alive\n\n" + _sse(*_DELTAS[:2], done=False).replace(b"data: ", b"data:")
        + _sse(_DELTAS[2], done=False).replace(b"\n", b"\r\n")
        + b'data: {"choices": [{"index": 0,\ndata: "delta": {"content": " 1"}}]}\n\n'
        + b'data: {"choices": [{"delta": {}, "finish_reason": "length"}]}')  # fmt: skip


def _read(parts: list[bytes], each: bool) -> transport.Reply:
    got: list[str] = []
    stream = transport._Stream(got.append, each=each)
    for part in parts:
        stream.take(part)
        stream.deliver()
    stream.end()
    reply = stream.reply()
    assert "".join(got) == reply.text
    return reply


@pytest.mark.parametrize("body", [_PLAIN, _ODD], ids=["plain", "odd"])
def test_a_pumped_read_gives_what_event_by_event_reading_gives_however_it_is_cut(body):
    whole = _read([body], each=True)
    assert whole.text in ("Hello, wörld 😀", "Hello, wörld 1") and whole.finish_reason
    for cut in range(len(body) + 1):
        for each in (True, False):
            reply = _read([body[:cut], body[cut:]], each)
            assert (reply.text, reply.finish_reason, reply.usage) == (
                whole.text, whole.finish_reason, whole.usage), (cut, each)  # fmt: skip


def test_whole_events_are_decoded_at_once_and_a_bad_one_still_fails():
    stream = transport._Stream(None, each=False)
    stream.events.line = None  # type: ignore[assignment]  # reading line by line would fail
    stream.take(_PLAIN)
    assert stream.reply() == transport.Reply("Hello, wörld 😀", "stop",
                                             {"prompt_tokens": 9, "completion_tokens": 4},
                                             stream.first)  # fmt: skip
    # An event holding two values, or no JSON: the line-by-line reading raises as it did.
    for bad in (b"data: 1, 2\n\n", b"data: {\n\n", b"data: \n\n"):
        with pytest.raises(ValueError):
            transport._Stream(None, each=False).take(_sse(_DELTAS[0], done=False) + bad)
    with pytest.raises(IncompleteStream):
        transport._Stream(None, each=False).take(_sse({"error": {"message": "boom"}}))
