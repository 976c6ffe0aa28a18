"""Helpers shared by the benchmarks: run CLI steps as measured subprocesses, manage a throwaway
workspace, generate or reuse a synthetic data set.

Every step runs in its own process so that wall time and peak RSS are those of the step alone;
`os.wait4` gives the child's own rusage, which `getrusage(RUSAGE_CHILDREN)` (a running maximum
over every child ever waited for) cannot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taxmatch.synth import DEFAULT_NOISE

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-25"
DEFAULT_SEED = 7
AGENCY = "BENCHMARK"
STDERR_TAIL_LINES = 30


class StepFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class StepResult:
    name: str
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    # User + system CPU of the step and the children it waited for: what survives a busy machine.
    cpu_seconds: float = 0.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def taxmatch_command() -> list[str]:
    # The console script next to this interpreter is the one installed from this checkout.
    script = Path(sys.executable).parent / "taxmatch"
    if script.exists():
        return [str(script)]
    found = shutil.which("taxmatch")
    if found:
        return [found]
    return [sys.executable, "-c", "from taxmatch.cli import main; main()"]


def run_step(name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> StepResult:
    """Run one step to completion; raise StepFailed with the tail of its stderr if it fails."""
    log(f"[{name}] {' '.join(argv)}")
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, env=env, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        # Tell Popen the child is reaped, or it would try to wait for it again.
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
        command = " ".join(argv)
        raise StepFailed(f"step {name!r} exited with {process.returncode}: {command}\n--- stderr tail ---\n{tail}")
    # Linux reports ru_maxrss in KiB.
    peak_mb = usage.ru_maxrss / 1024
    cpu_seconds = usage.ru_utime + usage.ru_stime
    log(f"[{name}] {seconds:.1f}s, {cpu_seconds:.1f}s CPU, peak RSS {peak_mb:,.0f} MB")
    return StepResult(name, seconds, peak_mb, stdout, stderr, cpu_seconds)


@dataclass(frozen=True)
class Workspace:
    root: Path
    home: Path
    env: dict[str, str]

    def taxmatch(self, *args: str) -> list[str]:
        return [*taxmatch_command(), "--home", str(self.home), *args]


@contextmanager
def workspace(keep: bool, prefix: str) -> Iterator[Workspace]:
    """A temporary home and key file, so that nothing is written to ~/.config or the real workspace."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ)
    env["TAXMATCH_KEY_FILE"] = str(root / "db.key")
    env.pop("TAXMATCH_DB_KEY", None)
    env.pop("TAXMATCH_HOME", None)
    # Progress bars would only add noise to the captured stderr.
    env["TERM"] = "dumb"
    env.setdefault("COLUMNS", "120")
    try:
        yield Workspace(root, root / "home", env)
    finally:
        if keep:
            log(f"kept workspace {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def ensure_data(
    space: Workspace, data: Path | None, people: int, requests: int, seed: int, noise: str = DEFAULT_NOISE
) -> tuple[Path, dict[str, Any], StepResult | None]:
    """Reuse `data` if it holds a generated set, else generate one (into `data` if given)."""
    target = data if data is not None else space.root / "data"
    meta_path = target / "meta.json"
    if meta_path.is_file() and (target / "master.csv").is_file():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        log(f"reusing {target}: {meta.get('people')} people, {meta.get('requests')} requests, seed {meta.get('seed')}")
        if meta.get("as_of") != AS_OF:
            log(f"warning: {target} was generated for as-of {meta.get('as_of')}, not {AS_OF}")
        # The default model's meta.json has no `noise` key (its files are unchanged since before there was a choice).
        if meta.get("noise", DEFAULT_NOISE) != noise:
            raise StepFailed(f"{target} holds {meta.get('noise', DEFAULT_NOISE)!r} noise, not {noise!r}")
        return target, meta, None
    step = run_step(
        "synth",
        space.taxmatch(
            "synth",
            "--people",
            str(people),
            "--requests",
            str(requests),
            "--out",
            str(target),
            "--seed",
            str(seed),
            "--as-of",
            AS_OF,
            "--noise",
            noise,
        ),
        space.env,
    )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    return target, meta, step


def git_commit() -> str:
    """HEAD's short hash, marked `+dirty` when src/ has uncommitted changes (they are what ran).

    If PYTHONPATH points the steps at another copy of the package, HEAD says nothing about
    what ran, so that copy's location is reported instead.
    """
    spec = importlib.util.find_spec("taxmatch")
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    if origin is not None and not origin.is_relative_to(REPO / "src"):
        return f"outside-repo:{origin.parent.parent}"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def emit(result: dict[str, Any]) -> None:
    """The one JSON line on stdout."""
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def positive_int(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value <= 0:
        raise ValueError(text)
    return value


def server_env(workdir: Path) -> dict[str, str]:
    """The environment of a benchmark's server and CLI: keys under `workdir`, per-key limits lifted.

    The benchmarks measure the server, not the per-key request limits that would stop their clients.
    """
    env = {
        **os.environ,
        "TAXMATCH_KEY_FILE": str(workdir / "keys" / "db.key"),
        "XDG_CONFIG_HOME": str(workdir / "cfg"),
        "TAXMATCH_API_RATE_LIMIT_PER_MINUTE": "100000000",
        "TAXMATCH_API_VOLUME_LIMIT_PER_DAY": "100000000",
    }
    env.pop("TAXMATCH_HOME", None)
    return env


def stop_server(process: subprocess.Popen[str] | None) -> None:
    if process is not None:
        process.terminate()
        process.wait(60)
        if process.stdout is not None:
            process.stdout.close()
