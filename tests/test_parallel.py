"""Work split over two processes gives what one process gives, whatever the child does."""

from __future__ import annotations

import os

import pytest

from taxmatch import parallel
from taxmatch.parallel import in_two_processes

pytestmark = pytest.mark.skipif(not parallel.can_fork(), reason="needs os.fork and two cores")


def squares(numbers: list[int]) -> list[int]:
    return [number * number for number in numbers]


def test_both_halves_come_back_in_order() -> None:
    here, there = in_two_processes(squares, [1, 2, 3], [4, 5])
    assert (here, there) == ([1, 4, 9], [16, 25])


def test_an_answer_larger_than_a_pipe_buffer_comes_back_whole() -> None:
    numbers = list(range(200_000))
    _, there = in_two_processes(squares, [], numbers)
    assert there == squares(numbers)


def test_the_half_runs_in_another_process() -> None:
    here, there = in_two_processes(lambda _: os.getpid(), None, None)
    assert here == os.getpid() != there


def test_a_failing_child_half_is_computed_here(caplog: pytest.LogCaptureFixture) -> None:
    parent = os.getpid()

    def fails_elsewhere(numbers: list[int]) -> list[int]:
        if os.getpid() != parent:
            raise RuntimeError("only in the child")
        return squares(numbers)

    assert in_two_processes(fails_elsewhere, [2], [3]) == ([4], [9])
    assert "second process failed" in caplog.text


def test_a_failure_here_is_raised_and_the_child_is_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails_here(numbers: list[int]) -> list[int]:
        if not numbers:
            raise ValueError("here")
        return squares(numbers)

    # The forked child by its pid: the test process may have children of its own (the test
    # session's Spark JVM), which are no business of this test.
    forked: list[int] = []
    real_fork = os.fork

    def recording_fork() -> int:
        child = real_fork()
        if child:
            forked.append(child)
        return child

    monkeypatch.setattr(os, "fork", recording_fork)
    with pytest.raises(ValueError, match="here"):
        in_two_processes(fails_here, [], list(range(100_000)))  # the child's answer fills the pipe
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)  # the child was reaped, not left behind


def test_without_fork_both_halves_run_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "can_fork", lambda: False)
    here, there = in_two_processes(lambda _: os.getpid(), None, None)
    assert here == there == os.getpid()
