"""Run the API under uvicorn: ``python -m taxmatch.api.server --home DIR [--host H] [--port P]``.

``--port 0`` binds an ephemeral port; the bound address is printed (one line,
``taxmatch API listening on http://HOST:PORT``) before the database is opened, and
/healthz answers once startup is complete. Used by `taxmatch serve` and the tests.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Callable

import uvicorn

from taxmatch.api import running
from taxmatch.api.app import create_app
from taxmatch.api.guard import ConnectionLimits, RepeatSummary, connection_cap, guarded_protocol, raise_open_file_limit
from taxmatch.api.limits import ApiLimits
from taxmatch.api.service import Service, skip_absent_pandas
from taxmatch.settings import Workspace


class _NoTracebackValues(logging.Filter):
    """Logs an exception by type and place only: a traceback's messages may quote request values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            frame = error.__traceback__
            while frame is not None and frame.tb_next is not None:
                frame = frame.tb_next
            where = f" at {frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame is not None else ""
            record.msg = f"{record.getMessage()}: {type(error).__name__}{where}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


# Loggers whose messages can repeat once per connection or per accept (an attacker sets the
# pace): the first of each kind is shown, the rest counted (RepeatSummary).
_REPEATING_LOGGERS = ("uvicorn.error", "uvicorn", "asyncio", "taxmatch.api.guard")


def configure_logging() -> None:
    """Access lines (JSON) and server messages to stderr; nothing else of uvicorn's (its access log is off)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_NoTracebackValues())
    for name in ("taxmatch.api.access", "taxmatch", *_REPEATING_LOGGERS):
        log = logging.getLogger(name)
        log.setLevel(logging.INFO if name.startswith("taxmatch") else logging.WARNING)
        if not any(isinstance(existing, logging.StreamHandler) for existing in log.handlers):
            log.addHandler(handler)
        if name in _REPEATING_LOGGERS and not any(isinstance(known, RepeatSummary) for known in log.filters):
            log.addFilter(RepeatSummary())
        log.propagate = False


def connection_limits(limits: ApiLimits) -> ConnectionLimits:
    """The guard's limits, the connection cap kept below the (raised) open-file limit."""
    return ConnectionLimits(
        header_timeout_seconds=limits.header_timeout_seconds,
        body_timeout_seconds=limits.body_timeout_seconds,
        body_min_bytes_per_second=limits.body_min_bytes_per_second,
        keep_alive_seconds=limits.keep_alive_seconds,
        max_connections=connection_cap(limits.max_connections, raise_open_file_limit()),
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without it
    # every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening now, not when uvicorn starts: the address is announced before the database is
        # opened and the app started, and a client that connects in between must wait in the
        # backlog, not be refused (a test's first /healthz was, on a loaded machine).
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _exit_after_stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def local_url(host: str, port: int) -> str:
    """How a process on this machine reaches the server (a wildcard address is reached on loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run_server(
    workspace: Workspace,
    host: str = "127.0.0.1",
    port: int = 8080,
    announce: Callable[[str], None] = print,
    limits: ApiLimits | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop gracefully; an unfinished batch resumes next time)."""
    configure_logging()
    skip_absent_pandas()
    limits = limits or ApiLimits.from_environment()
    sock = bind(host, port)
    try:
        service = Service(
            workspace,
            checkpoint_lookups=limits.ledger_checkpoint_lookups,
            checkpoint_seconds=limits.ledger_checkpoint_seconds,
            lookup_threads=limits.lookup_threads,
        )
    except BaseException:
        sock.close()
        raise
    bound_host, bound_port = sock.getsockname()[:2]
    operator_token = running.new_operator_token()
    app = create_app(workspace, limits, service, operator_token)
    guard = connection_limits(limits)
    config = uvicorn.Config(
        app,
        access_log=False,
        log_config=None,
        log_level="warning",
        lifespan="on",
        http=guarded_protocol(guard),
        timeout_keep_alive=guard.keep_alive_seconds,
        # A request head larger than this is a 400 (h11's default, stated).
        h11_max_incomplete_event_size=16 * 1024,
    )
    server = uvicorn.Server(config)
    announce(f"taxmatch API listening on http://{bound_host}:{bound_port} (workspace {workspace.home})")
    running.remove_snapshots(workspace)
    running.announce(workspace, local_url(bound_host, bound_port), operator_token)
    # uvicorn stops gracefully on SIGTERM and then raises the signal again under the handler found at
    # start; the default one would end the process before the `finally` below withdraws server.json.
    previous = signal.signal(signal.SIGTERM, _exit_after_stop)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        running.withdraw(workspace, operator_token)
        sock.close()
        service.close()  # idempotent; covers a startup that failed before the lifespan took it
    if not server.started:
        raise RuntimeError("the API server did not start (see the messages above)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m taxmatch.api.server", description=__doc__)
    parser.add_argument("--home", help="workspace directory (default: $TAXMATCH_HOME, else ./taxmatch-home)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    arguments = parser.parse_args(argv)
    run_server(
        Workspace.resolve(arguments.home),
        arguments.host,
        arguments.port,
        announce=lambda line: print(line, flush=True),
    )


if __name__ == "__main__":
    main()
