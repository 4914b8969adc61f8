"""The processes a benchmark runs and how they are measured.

The simulator runs as its own process on loopback; every shipper or baseline run is a child process
timed from spawn to exit, with its CPU time and peak RSS taken from the kernel's accounting of that
child (``os.wait4``), so nothing of the benchmark process itself is counted.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

REPO = Path(__file__).resolve().parent.parent
BASELINE_SH = REPO / "benchmarks" / "baseline.sh"
RUSAGE = REPO / "benchmarks" / "_rusage.py"

#: The simulator's default credentials (zoom_oplog_shipper/simulator/_cli.py).
SIM_ACCOUNT = "demo-account"
SIM_CLIENT_ID = "demo-client"
SIM_SECRET = "demo-secret"


class BenchmarkError(Exception):
    """A benchmark could not be run or its output is wrong; the message says what and how to fix."""


def shipper_command() -> list[str]:
    """The installed ``zoom-oplog-shipper`` console script (the user-facing entry point)."""
    script = Path(sys.executable).parent / "zoom-oplog-shipper"
    if script.exists():
        return [str(script)]
    found = shutil.which("zoom-oplog-shipper")
    if found:
        return [found]
    msg = (
        f"zoom-oplog-shipper is neither next to {sys.executable} nor on PATH; "
        f"install it with `{sys.executable} -m pip install -e {REPO}`"
    )
    raise BenchmarkError(msg)


def child_env(pycache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for child processes.

    Settings of the caller's own shipper (``ZOOM_*``) are dropped so they cannot leak in. Bytecode is
    cached under ``pycache`` (as an installed package has it) even when the caller sets
    PYTHONDONTWRITEBYTECODE, so start-up is not measured with every module compiled afresh.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOM_", "BASELINE_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if extra:
        env.update(extra)
    return env


def shipper_env(base_url: str, state_dir: Path, pycache: Path, **settings: str) -> dict[str, str]:
    """Environment for ``zoom-oplog-shipper run`` against the simulator at ``base_url``."""
    extra = {
        "ZOOM_ACCOUNT_ID": SIM_ACCOUNT,
        "ZOOM_CLIENT_ID": SIM_CLIENT_ID,
        "ZOOM_CLIENT_SECRET": SIM_SECRET,
        "ZOOM_API_URL": f"{base_url}/v2",
        "ZOOM_OAUTH_URL": f"{base_url}/oauth/token",
        "ZOOM_OPLOG_STATE_DIR": str(state_dir),
        "ZOOM_OPLOG_MAX_RPS": "0",
        "ZOOM_OPLOG_MAX_RUNTIME": "2h",
    }
    extra.update(settings)
    return child_env(pycache, extra)


@dataclass(frozen=True)
class ChildRun:
    """One finished child process."""

    returncode: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    stderr: str


def run_child(
    argv: Sequence[str],
    env: Mapping[str, str],
    stdout_path: Path | None,
    *,
    timeout: float,
) -> ChildRun:
    """Run ``argv`` with stdout to ``stdout_path`` (or /dev/null), measured by benchmarks/_rusage.py.

    Wall time runs from fork to exit; CPU time and peak RSS are the command's own (for a shell script,
    with the children it waited for), not inherited from this large process.
    """
    out: IO[bytes]
    with (
        open(stdout_path or os.devnull, "wb") as out,
        open(os.devnull, "rb") as stdin,
        _TempFile() as err,
        _TempFile() as report,
    ):
        wrapped = [sys.executable, "-I", str(RUSAGE), report.name, *argv]
        proc = subprocess.Popen(
            wrapped, env=dict(env), stdin=stdin, stdout=out, stderr=err.handle, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the command it runs
            proc.wait()
            msg = f"{' '.join(argv[:3])} ... did not finish within {timeout:.0f}s and was killed"
            raise BenchmarkError(msg) from None
        fields = report.text().split()
        text = err.text()
    if proc.returncode != 0 or len(fields) != 4:
        msg = f"benchmarks/_rusage.py failed ({proc.returncode}) running {' '.join(argv[:3])} ...: {text[-1000:]}"
        raise BenchmarkError(msg)
    return ChildRun(
        returncode=int(fields[3]),
        wall_s=float(fields[0]),
        cpu_s=float(fields[1]),
        max_rss_mb=int(fields[2]) / 1024,
        stderr=text,
    )


class _TempFile:
    """A named temporary file (a child's stderr: a pipe could fill up and block the child)."""

    def __enter__(self) -> _TempFile:
        self.handle = tempfile.NamedTemporaryFile(prefix="zoom-oplog-bench-")  # closed in __exit__
        self.name = self.handle.name
        return self

    def text(self) -> str:
        """Everything written to the file so far (by this or another process)."""
        with open(self.name, "rb") as again:
            return again.read().decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median and spread (min, max, and (max - min) / median) of repeated measurements."""
    if not values:
        msg = "summarize: no measurements"
        raise BenchmarkError(msg)
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "spread": (max(values) - min(values)) / median if median else 0.0,
        "n": len(values),
        "runs": list(values),
    }


class SimulatorProcess:
    """``zoom-oplog-shipper simulate`` as a separate process on 127.0.0.1, rate limits off."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path, *, start_timeout: float) -> None:
        argv = [*shipper_command(), "simulate", "--host", "127.0.0.1", "--port", "0", *args]
        self._log = open(log_path, "wb")  # noqa: SIM115  # closed in close()
        self.proc = subprocess.Popen(
            argv, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log
        )
        try:
            self.base_url = self._first_line(start_timeout)
        except BaseException:
            self.close()
            raise
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.close()
            msg = f"the simulator printed {self.base_url!r} instead of its base URL; see {log_path}"
            raise BenchmarkError(msg)
        self._clock_ticks = os.sysconf("SC_CLK_TCK")

    def _first_line(self, timeout: float) -> str:
        stdout = self.proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            msg = f"the simulator printed no base URL within {timeout:.0f}s"
            raise BenchmarkError(msg)
        line = stdout.readline().decode().strip()
        if not line:
            msg = f"the simulator exited (code {self.proc.poll()}) before printing its base URL"
            raise BenchmarkError(msg)
        return line

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        req = urllib.request.Request(self.base_url + path, data=body, method=method)
        with urllib.request.urlopen(req, timeout=120) as resp:
            data: bytes = resp.read()
        return data

    def stats(self) -> dict[str, Any]:
        """``GET /_sim/stats``."""
        value = orjson.loads(self._request("GET", "/_sim/stats"))
        if not isinstance(value, dict):
            msg = "/_sim/stats did not answer a JSON object"
            raise BenchmarkError(msg)
        return value

    def records(self) -> list[dict[str, Any]]:
        """Every record the simulator holds (``GET /_sim/records``)."""
        return [orjson.loads(line) for line in self._request("GET", "/_sim/records").splitlines() if line]

    def add_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        """``POST /_sim/records``: visible at once (their times are in the past)."""
        self._request("POST", "/_sim/records", b"".join(orjson.dumps(r) + b"\n" for r in records))

    def slow(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` from now on (0: none), with ``POST /_sim/faults``."""
        body = {"slow_rate": 1.0 if seconds > 0 else 0.0, "slow_seconds": seconds}
        self._request("POST", "/_sim/faults", orjson.dumps(body))

    def cpu_seconds(self) -> float:
        """User + system CPU the simulator has used so far (from /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._clock_ticks

    def close(self) -> None:
        """Stop the simulator (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def api_requests(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    """Token and operation-logs requests between two ``/_sim/stats`` answers."""
    token = int(after["token_requests"]) - int(before["token_requests"])
    logs = int(after["logs_requests"]) - int(before["logs_requests"])
    return {"token": token, "logs": logs, "total": token + logs}


def count_lines(path: Path) -> int:
    """Lines in a file, read in blocks (the 1M outputs are hundreds of MB)."""
    n = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            n += block.count(b"\n")
    return n
