"""Runs test scripts as processes together: a local multi-worker cluster and its twins.

The distributed tests start one Python process per worker of a
``tf.distribute.MultiWorkerMirroredStrategy`` on 127.0.0.1 (``TF_CONFIG`` per
process), sometimes next to a single-process run to compare with. Output goes to
files, not pipes: a worker blocked on a full pipe would stall its peers inside a
collective. When a process fails or the runs time out, the test fails with every
process's stderr, since the worker that reports an error is often not the one that
caused it (a crashed worker shows up as "Socket closed" in its peer).
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent

# Characters of each process's stderr shown when a run fails.
STDERR_TAIL = 4000


@dataclasses.dataclass(frozen=True)
class Run:
    """One process to start.

    Attributes:
        module: the module to run with ``python -m``.
        out: its output folder, passed as its only argument.
        tf_config: its ``TF_CONFIG``, or ``None`` to run outside any cluster.
    """

    module: str
    out: Path
    tf_config: dict | None = None


def free_ports(count: int) -> list[int]:
    """Returns ``count`` TCP ports free on 127.0.0.1 at the time of the call."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def worker_configs(count: int) -> list[dict]:
    """Returns the ``TF_CONFIG`` of each worker of a local ``count``-worker cluster."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        for index in range(count)
    ]


def run_together(runs: list[Run], log_dir: Path, timeout: float = 600) -> list[str]:
    """Starts every run at once, waits for all, and returns each one's stdout.

    Args:
        runs: the processes to start.
        log_dir: where each process's stdout and stderr files go.
        timeout: seconds to wait for all of them together.

    Returns:
        The stdout of each run, in the order of ``runs``.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    logs, processes = [], []
    try:
        for number, run in enumerate(runs):
            stdout, stderr = log_dir / f"{number}.stdout", log_dir / f"{number}.stderr"
            logs.append((stdout, stderr))
            processes.append(_start(run, stdout, stderr))
        deadline = time.monotonic() + timeout
        timed_out = False
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    if timed_out or any(process.returncode for process in processes):
        reason = f"timed out after {timeout:.0f} s" if timed_out else "a process failed"
        pytest.fail(_report(reason, runs, processes, logs), pytrace=False)
    return [stdout.read_text() for stdout, _ in logs]


def _start(run: Run, stdout: Path, stderr: Path) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    if run.tf_config is not None:
        env["TF_CONFIG"] = json.dumps(run.tf_config)
    with open(stdout, "w") as out, open(stderr, "w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", run.module, str(run.out)],
            cwd=REPOSITORY,
            env=env,
            stdout=out,
            stderr=err,
            text=True,
        )


def _report(reason, runs, processes, logs) -> str:
    parts = [f"{len(runs)} processes run together: {reason}."]
    for run, process, (stdout, stderr) in zip(runs, processes, logs, strict=True):
        task = run.tf_config["task"] if run.tf_config else "no cluster"
        parts += [
            f"--- {run.module} ({task}), exit code {process.returncode}; stdout:",
            stdout.read_text()[-STDERR_TAIL:],
            "--- stderr:",
            stderr.read_text()[-STDERR_TAIL:],
        ]
    return "\n".join(parts)
