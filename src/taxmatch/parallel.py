"""Pure-Python batch work on both cores: half in this process, half in a forked copy of it.

A batch's Python steps (validating requests, choosing each request's taxpayer) hold the GIL, so
threads cannot use the second core while they run; DuckDB, which can, is idle then. A forked
child starts with this process's memory (the requests, the scored pairs) without copying or
pickling them, computes its half and sends back only the answers, which are small.

Only the caller's pure function runs in the child: no DuckDB call, no logging, no output, and
`os._exit` so that nothing of the parent's (atexit handlers, buffered output, open
transactions) runs twice. If the child fails in any way, its half is computed here instead: the
answer is the same, only slower. Without `os.fork` (Windows) both halves run here.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

Part = TypeVar("Part")
Answer = TypeVar("Answer")
Ours = TypeVar("Ours")
Theirs = TypeVar("Theirs")

# Below this much work the fork (a few ms for a 1.5 GB process) and the pickled answer cost more
# than half the work saves; callers compare their item counts against it.
MIN_ITEMS_TO_SPLIT = 20_000


def can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= 2


def in_two_processes(function: Callable[[Part], Answer], here: Part, there: Part) -> tuple[Answer, Answer]:
    """`(function(here), function(there))`, the second computed in a forked child.

    `function` must be pure Python over data already in memory, and its answer picklable.
    """
    return here_and_forked(lambda: function(here), lambda: function(there))


def here_and_forked(here: Callable[[], Ours], forked: Callable[[], Theirs]) -> tuple[Ours, Theirs]:
    """`(here(), forked())`, the second computed in a forked child while this process runs the first.

    `here` may do anything (use the database, write files); `forked` must be pure Python over
    data already in memory, and its answer picklable.
    """
    if not can_fork():
        return here(), forked()
    read_end, write_end = os.pipe()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a process with threads (DuckDB's, a progress
            # display's) may deadlock the child if it takes a lock one of them held. The child
            # here takes none: it runs `forked` and leaves by os._exit.
            warnings.filterwarnings(
                "ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning
            )
            child = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return here(), forked()
    if child == 0:  # pragma: no cover - runs in the child, which leaves by os._exit
        os.close(read_end)
        status = 1
        try:
            payload = pickle.dumps(forked(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as sink:
                sink.write(payload)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    # Closed before waiting, whatever happens here: a child blocked on a full pipe then fails
    # its write and exits instead of waiting forever.
    source = os.fdopen(read_end, "rb")
    try:
        ours = here()
        payload = source.read()
    finally:
        source.close()
        _, wait_status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(wait_status) != 0 or not payload:
        logger.warning("the second process failed (exit %s); computing its part here", wait_status)
        return ours, forked()
    theirs: Theirs = pickle.loads(payload)
    return ours, theirs
