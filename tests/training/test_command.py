import pytest

from tests.test_case import error_line
from training import command
from training.callbacks import CheckpointError


def _raise(error):
    def body():
        raise error

    return body


def test_a_finished_body_exits_0():
    ran = []
    assert command.run_command(lambda: ran.append(True)) == 0 and ran == [True]


@pytest.mark.parametrize(
    "error",
    [
        ValueError("epochs must be >= 1. Received: epochs=0"),
        FileNotFoundError("Config file x.yaml not found."),
        CheckpointError("run/best.npz is corrupt or unreadable"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_code_2(error, capsys):
    assert command.run_command(_raise(error)) == command.BAD_INPUT == 2
    assert error_line(capsys) == f"error: {error}"


def test_ctrl_c_is_one_line_and_exit_code_130(capsys):
    status = command.run_command(_raise(KeyboardInterrupt()), interrupted="stopped; resume.")
    assert status == command.INTERRUPTED == 130
    assert capsys.readouterr().err == "stopped; resume.\n"


def test_a_bug_keeps_its_traceback():
    with pytest.raises(TypeError, match="a bug"):
        command.run_command(_raise(TypeError("a bug")))
