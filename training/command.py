"""How every command of ``training`` ends: its exit code and its one line of error.

Bad input (a setting out of range, a missing file, a run folder from elsewhere) is
reported as one ``error: ...`` line on stderr and exit code 2, the code argparse
uses for bad arguments; the package raises ``ValueError`` (``CheckpointError``
among them) or ``FileNotFoundError`` for it, with a message that says what to do.
Ctrl-C stops a command with one line and exit code 130 (128 + SIGINT), as shells
expect, instead of a traceback through TensorFlow. Any other exception is a bug and
keeps its traceback.
"""

import sys
from collections.abc import Callable

# Exceptions that mean "the input was wrong", not "the code is wrong".
USER_ERRORS = (ValueError, FileNotFoundError)
# Exit codes: argparse's for bad input; the shells' for a command stopped by SIGINT.
BAD_INPUT = 2
INTERRUPTED = 130


def run_command(body: Callable[[], object], interrupted: str = "interrupted.") -> int:
    """Runs a command's body and returns the process exit code.

    Args:
        body: the command's work, after its arguments are parsed.
        interrupted: the line printed when Ctrl-C stops the body, e.g. how to resume.

    Returns:
        0 when ``body`` returns, ``BAD_INPUT`` for one of ``USER_ERRORS``,
        ``INTERRUPTED`` for ``KeyboardInterrupt``.
    """
    try:
        body()
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return INTERRUPTED
    return 0
