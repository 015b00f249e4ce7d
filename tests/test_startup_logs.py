import os
import subprocess
import sys

import pytest

from tfsal import startup_logs

NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796117441.493518   26515 port.cc:153] oneDNN custom operations are on.\n",
    b"I0000 00:00:1796117441.493812   26515 cudart_stub.cc:31] Could not find cuda drivers\n",
    b"E0000 00:00:1796117451.236338   26515 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n",
]
KEPT = [
    b"E0000 00:00:1796117451.236338   26515 saved_model.cc:52] could not read the model\n",
    b"error: Unknown model 'nonexistent'.\n",
    b"Traceback (most recent call last):\n",
]


def _run(*command, **env):
    environment = {k: v for k, v in os.environ.items() if k != startup_logs.LOG_LEVEL_VARIABLE}
    environment.update(env)
    return subprocess.run(
        [sys.executable, *command], capture_output=True, env=environment, timeout=600
    )


def _noise_in(stderr: bytes) -> list[bytes]:
    return [line for line in stderr.splitlines(True) if startup_logs.is_startup_noise(line)]


def test_start_up_notices_are_recognised_and_everything_else_is_kept():
    assert all(startup_logs.is_startup_noise(line) for line in NOISE)
    assert not any(startup_logs.is_startup_noise(line) for line in KEPT)


def test_filtered_stderr_drops_notices_written_below_python_and_keeps_the_rest():
    script = (
        "import os\n"
        "from tfsal.startup_logs import filtered_stderr\n"
        "with filtered_stderr():\n"
        f"    for line in {NOISE + KEPT!r}:\n"
        "        os.write(2, line)\n"
    )
    result = _run("-c", script)
    assert result.returncode == 0
    assert result.stderr == b"".join(KEPT)


def test_help_prints_no_tensorflow_notices():
    result = _run("-m", "training.fit", "--help")
    assert result.returncode == 0 and b"--model" in result.stdout
    assert _noise_in(result.stderr) == [] and result.stderr == b""


@pytest.mark.slow
def test_a_command_that_imports_tensorflow_prints_only_its_own_error():
    result = _run("-m", "training.fit", "--model", "nonexistent", "--out", "unused")
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Unknown model 'nonexistent'"), lines


@pytest.mark.slow
@pytest.mark.parametrize("command", ["training.evaluate", "serving.predict"])
def test_other_commands_print_no_tensorflow_notices(command):
    result = _run("-m", command, "--help")
    assert result.returncode == 0, result.stderr
    assert _noise_in(result.stderr) == [] and result.stderr == b""


def test_a_level_the_user_set_is_left_alone():
    script = (
        "import os, sys\n"
        "from tfsal import startup_logs\n"
        "startup_logs.quiet_startup_logs()\n"
        "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], len(sys.meta_path))\n"
    )
    baseline = _run("-c", "import sys; print(len(sys.meta_path))").stdout.split()[0]
    result = _run("-c", script, TF_CPP_MIN_LOG_LEVEL="0")
    assert result.stdout.split() == [b"0", baseline]
