"""``python -m serving.server``: TF Serving's flags, start-up lines, SIGTERM shutdown."""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from serving import server as server_module
from tests.serving.conftest import MODEL, b64, http, jpeg


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def wait_for_line(lines: queue.Queue, start: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line.startswith(start):
            return line
    raise AssertionError(f"no line starting with {start!r} within {timeout} s")


def available(url: str) -> bool:
    status, body = http(url)
    return status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.slow
def test_serves_and_stops_cleanly_on_sigterm(model_base):
    rest_port = free_port()
    command = [
        sys.executable,
        "-m",
        "serving.server",
        "--port",
        "0",
        "--rest_api_port",
        str(rest_port),
        "--model_name",
        MODEL,
        "--model_base_path",
        str(model_base),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ
    )
    lines = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        grpc_line = wait_for_line(lines, "Running gRPC ModelServer at 127.0.0.1:", 120)
        rest_line = wait_for_line(lines, "Exporting HTTP/REST API at:127.0.0.1:", 30)
        assert str(rest_port) in rest_line and int(grpc_line.split(":")[-1].split()[0]) > 0
        url = f"http://127.0.0.1:{rest_port}/v1/models/{MODEL}"
        # As TF Serving, the status answers 200 while loading: readiness is the state.
        deadline = time.monotonic() + 120
        while not available(url) and time.monotonic() < deadline:
            time.sleep(0.2)
        status, body = http(url + ":predict", {"instances": [b64(jpeg(8, 8))]})
        assert status == 200, body
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        wait_for_line(lines, "Server stopped.", 10)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", rest_port), timeout=5).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def test_binds_loopback_by_default():
    args = server_module.build_parser().parse_args(["--model_base_path", "/m"])
    assert args.host == "127.0.0.1" and args.port == 8500 and args.rest_api_port == 0


def test_bad_command_lines_exit_with_a_message(tmp_path, capsys):
    assert server_module.main(["--port", "0"]) == 2
    assert "--model_base_path" in capsys.readouterr().err
    assert server_module.main(["--model_config_file", str(tmp_path / "none.config")]) == 2
    assert "does not exist" in capsys.readouterr().err
