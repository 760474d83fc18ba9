"""One thread that reads the streamed replies nobody watches (a study's), many at a time.

A thread woken for each token costs more CPU than the token's own work: at 30 tokens a
second per stream, 64 streams wake their threads 1,920 times a second, about 70 us of CPU
each on a small VM. The pump instead wakes once per `tick`, reads whatever every stream
got meanwhile, and hands each its bytes; the thread that asked sleeps until its reply has
ended. The cost: a stream's end is seen up to one tick late.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

READ_SIZE = 65536  # bytes asked of a socket at once (the transport's reads too)


@dataclass(eq=False)
class Job:
    """One stream in the pump: its socket, and what to do with what comes."""

    sock: socket.socket
    take: Callable[[bytes], bool]  # the body's bytes (b"": the close); False: stop reading
    timeout: float  # seconds without a byte before the stream counts as cut
    last: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Pump:
    """Reads registered sockets in one daemon thread, `tick` seconds apart."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self._selector = selectors.DefaultSelector()
        self._new: list[Job] = []
        self._jobs: set[Job] = set()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def run(self, sock: socket.socket, take: Callable[[bytes], bool], timeout: float) -> None:
        """Read `sock` until `take` returns False or the peer closes; raise what went wrong
        (an OSError, or whatever `take` raised) in the calling thread."""
        job = Job(sock, take, timeout)
        with self._wake:
            self._new.append(job)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="stream-pump", daemon=True)
                self._thread.start()
            self._wake.notify()
        while not job.done.wait(5.0):  # a wake-up costs CPU: 64 waiters, 64 a second
            if not (self._thread and self._thread.is_alive()):  # pragma: no cover
                raise ConnectionAbortedError("the stream pump stopped")
        if job.error is not None:
            raise job.error

    def _loop(self) -> None:
        while True:
            try:
                self._round()
            except Exception as exc:  # noqa: BLE001 - a bug here must not strand the waiters
                failed = ConnectionAbortedError(f"the stream pump failed: {exc!r}")
                for job in [*self._jobs, *self._take_new()]:
                    self._end(job, failed)

    def _take_new(self) -> list[Job]:
        with self._wake:
            new, self._new = self._new, []
        return new

    def _round(self) -> None:
        """Wait for streams; read what every ready one got; end the stalled ones."""
        with self._wake:
            while not self._new and not self._jobs:
                self._wake.wait()
            new, self._new = self._new, []
        for job in new:
            try:
                job.sock.setblocking(False)
                self._selector.register(job.sock, selectors.EVENT_READ, job)
            except (OSError, ValueError, KeyError) as exc:  # closed meanwhile
                self._end(job, ConnectionAbortedError(f"the stream's socket: {exc!r}"))
                continue
            self._jobs.add(job)
        ready = self._selector.select(timeout=self.tick)
        for key, _ in ready:
            self._read(key.data)
        now = time.monotonic()
        for job in [j for j in self._jobs if now - j.last > j.timeout]:
            self._end(job, TimeoutError("no data within the timeout"))
        if ready:
            time.sleep(self.tick)  # let every stream's next tokens gather

    def _read(self, job: Job) -> None:
        try:
            while True:
                try:
                    data = job.sock.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    return  # all there is, for now
                job.last = time.monotonic()
                if not job.take(data) or not data:
                    self._end(job, None)
                    return
                if isinstance(job.sock, ssl.SSLSocket) and job.sock.pending():
                    continue  # decrypted bytes the selector cannot see
                if len(data) < READ_SIZE:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            self._end(job, exc)

    def _end(self, job: Job, error: BaseException | None) -> None:
        if job in self._jobs:
            self._jobs.discard(job)
            try:
                self._selector.unregister(job.sock)
            except (KeyError, ValueError):  # pragma: no cover - closed under the selector
                pass
        job.error = error
        job.done.set()


_PUMPS: dict[float, Pump] = {}
_PUMPS_LOCK = threading.Lock()


def pump(tick: float) -> Pump:
    """The process's pump for this tick (made on first use)."""
    with _PUMPS_LOCK:
        if tick not in _PUMPS:
            _PUMPS[tick] = Pump(tick)
        return _PUMPS[tick]
