"""The connection guard in front of the application: read deadlines, a connection cap, quiet errors.

uvicorn 0.54 (h11) alone does not shed slow or idle clients: its only timer is the keep-alive
timeout, armed *after* a response. A connection that never finishes its request head (one
header byte every 4 s, "slowloris") or never sends a byte is held forever, and
``limit_concurrency`` answers 503 only once a request head is complete, so idle sockets still
take file descriptors until ``accept`` fails with EMFILE. `GuardedH11Protocol` is uvicorn's
own h11 protocol with what is missing, enforced per connection:

- **request head deadline**: the whole head must arrive within ``header_timeout_seconds`` of
  the connection (or of the first byte after a keep-alive pause); trickling bytes does not
  extend it. Past it, the connection is closed.
- **body deadline with a minimum rate**: a body must arrive within ``body_timeout_seconds``
  plus one second per ``body_min_bytes_per_second`` received (Apache mod_reqtimeout's rule),
  so a big batch upload on a slow link passes and a trickle does not. Time during which the
  server itself stopped reading (flow control) is not counted against the client.
- **keep-alive**: uvicorn's own timer (``timeout_keep_alive``) closes a connection idle after
  a response.
- **connection cap** below the open-file limit: at the cap, a new connection evicts the
  connection that has waited longest without a request in progress (never-used sockets
  first); if every connection is busy with a request, the new one is closed at once. Either
  way descriptors never run out, so ``accept`` keeps working and /healthz answers.

Errors that can repeat per connection (a timeout, the cap, accept errors, "Exception in ASGI
application") are logged the first time, then counted and summarized at most once a minute
per kind (`RepeatSummary`), never once per event.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger("taxmatch.api.guard")

# Descriptors left for everything but client sockets: the database file and its WAL, the
# key and policy files, batch outputs, the listening socket, the event loop's own.
RESERVED_FILE_DESCRIPTORS = 64
SUMMARY_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_seconds: float
    body_timeout_seconds: float
    body_min_bytes_per_second: int
    keep_alive_seconds: int
    max_connections: int


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (always allowed); return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int, open_file_limit: int) -> int:
    """The configured cap, lowered to stay below the open-file limit minus a reserve."""
    reserve = max(RESERVED_FILE_DESCRIPTORS, open_file_limit // 8)
    return max(1, min(configured, open_file_limit - reserve))


class RepeatSummary(logging.Filter):
    """Lets the first record of a kind through; counts the repeats and reports them once a minute.

    A kind is the logger, the message template and the exception type: 10,000 EMFILE errors
    are one kind, one line now and one summary line a minute while they last.
    """

    def __init__(self, interval_seconds: float = SUMMARY_INTERVAL_SECONDS) -> None:
        super().__init__()
        self.interval_seconds = interval_seconds
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str], tuple[float, int]] = {}  # kind -> (last shown, repeats since)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        kind = (record.name, str(record.msg), type(error).__name__ if error is not None else "")
        now = time.monotonic()
        with self._lock:
            shown = self._seen.get(kind)
            if shown is None:
                self._seen[kind] = (now, 0)
                first = True
                repeats = 0
            elif now - shown[0] >= self.interval_seconds:
                self._seen[kind] = (now, 0)
                first = False
                repeats = shown[1]
            else:
                self._seen[kind] = (shown[0], shown[1] + 1)
                return False
        if first:
            note = f" (repeats of this message are counted and reported at most every {self.interval_seconds:.0f} s)"
        else:
            note = f" ({repeats} more since the last report)"
        record.msg = f"{record.getMessage()}{note}"
        record.args = ()
        return True


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the deadlines and the cap of the module docstring."""

    guard_limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_kind = ""
        self._body_started = 0.0
        self._body_bytes = 0
        self._waiting_since = time.monotonic()
        self._requests_seen = 0

    # -- connection lifecycle ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.guard_limits.max_connections and not self._evict_one_idle():
            logger.warning(
                "connection cap of %d reached with every connection busy: closing new connections",
                self.guard_limits.max_connections,
            )
            transport.abort()
            return
        self._arm("header", self.guard_limits.header_timeout_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_state(len(data))

    def on_response_complete(self) -> None:
        self._requests_seen += 1
        self._waiting_since = time.monotonic()
        super().on_response_complete()
        self._follow_state(0)

    # -- deadlines --------------------------------------------------------------------------------

    def _follow_state(self, received: int) -> None:
        """Arm, keep or drop the deadline for what the connection is waiting for now."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            if self.timeout_keep_alive_task is not None:
                self._disarm()  # silence after a response: uvicorn's keep-alive timer closes it
            elif self._deadline_kind != "header":
                # The first byte of the next head after a keep-alive pause: the head deadline starts.
                self._arm("header", self.guard_limits.header_timeout_seconds)
        elif state is h11.SEND_BODY:
            if self._deadline_kind != "body":
                self._body_started = time.monotonic()
                self._body_bytes = 0
                self._arm("body", self.guard_limits.body_timeout_seconds)
            else:
                self._body_bytes += received
        else:  # the request is in (the application's time now), or the connection is ending
            self._disarm()

    def _arm(self, kind: str, seconds: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline_kind = kind
        self._deadline = self.loop.call_later(seconds, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = None
        self._deadline_kind = ""

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        limits = self.guard_limits
        if self._deadline_kind == "body":
            if self.flow.read_paused:  # the server stopped reading: not the client's delay
                self._arm("body", limits.body_timeout_seconds)
                return
            allowed = limits.body_timeout_seconds + self._body_bytes / limits.body_min_bytes_per_second
            elapsed = time.monotonic() - self._body_started
            if elapsed < allowed:
                self._arm("body", allowed - elapsed)
                return
            logger.warning(
                "closed a connection whose request body came slower than %d bytes/s after %.0f s",
                limits.body_min_bytes_per_second,
                limits.body_timeout_seconds,
            )
        else:
            logger.warning(
                "closed a connection that did not send a complete request head within %.0f s",
                limits.header_timeout_seconds,
            )
        self._deadline_kind = ""
        self.transport.close()

    # -- the cap ----------------------------------------------------------------------------------

    def _idle(self) -> bool:
        """No request of this connection is with the application (waiting for a head, or keep-alive)."""
        return (self.cycle is None or self.cycle.response_complete) and self.conn.their_state is h11.IDLE

    def _evict_one_idle(self) -> bool:
        """Close the connection that has waited longest without a request; False if there is none."""
        oldest: GuardedH11Protocol | None = None
        for connection in self.connections:
            if connection is self or not isinstance(connection, GuardedH11Protocol) or not connection._idle():
                continue
            if connection.transport.is_closing():
                continue
            rank = (connection._requests_seen > 0, connection._waiting_since)
            if oldest is None or rank < (oldest._requests_seen > 0, oldest._waiting_since):
                oldest = connection
        if oldest is None:
            return False
        logger.warning(
            "connection cap of %d reached: closing the connection idle the longest for each new one",
            self.guard_limits.max_connections,
        )
        oldest._disarm()
        oldest.transport.abort()
        oldest.connections.discard(oldest)  # its connection_lost comes on the next loop turn
        return True


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A `GuardedH11Protocol` class bound to ``limits`` (uvicorn instantiates the class per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard_limits": limits})
