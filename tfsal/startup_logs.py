"""Keeps TensorFlow's start-up log lines out of the command-line jobs' output.

Importing TensorFlow 2.21 on a CPU machine writes lines like these to stderr, before
anything the user asked for::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:17961.. 26515 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:17961.. 26515 cudart_stub.cc:31] Could not find cuda drivers on your machine, ...
    E0000 00:00:17961.. 26515 cuda_platform.cc:52] failed call to cuInit: ...

They come from Abseil logging called before ``absl::InitializeLog()``, which writes
every message to stderr whatever ``TF_CPP_MIN_LOG_LEVEL`` says (measured: the lines
appear with the variable at 1, 2 and 3; only TensorFlow's own ``cpu_feature_guard``
notice obeys it). So ``quiet_startup_logs`` does two things unless the user set
``TF_CPP_MIN_LOG_LEVEL`` (then they see everything TensorFlow prints):

- sets ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++ INFO and WARNING messages off);
- when ``tensorflow`` is first imported, runs that import and TensorFlow's device
  discovery (where ``cuInit`` fails on machines without a GPU) with stderr captured,
  then writes back every captured line except the informational ones above. An
  error during the import is written back in full.

The commands install it in their package's ``__init__``, the only code that runs
before a ``python -m training.JOB`` module imports TensorFlow; it imports nothing
heavy, so ``--help`` stays fast.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LOG_LEVEL = "2"

# Abseil's pre-initialisation notice, INFO/WARNING lines in Abseil's format
# ("I0000 00:00:1796117441.493518   26515 port.cc:153] ..."), and the one ERROR line
# that only says the machine has no GPU.
STARTUP_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\]"
    rb"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit)"
)


def is_startup_noise(line: bytes) -> bool:
    """Whether ``line`` (one stderr line) is one of TensorFlow's start-up notices."""
    return STARTUP_NOISE.match(line) is not None


@contextlib.contextmanager
def filtered_stderr():
    """Captures file descriptor 2 and writes back the lines that are not start-up noise.

    Works at the descriptor level because the notices come from C++, which
    ``sys.stderr`` never sees.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().splitlines(True) if not is_startup_noise(line)]
            if kept:
                os.write(2, b"".join(kept))


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader, and its device discovery, inside ``filtered_stderr``."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with filtered_stderr():
            self._loader.exec_module(module)
            # Device discovery prints the cuInit line; listing physical devices does not
            # start the runtime, so strategies and device settings can still follow.
            module.config.list_physical_devices()

    def __getattr__(self, name):
        return getattr(self._loader, name)  # resource readers and the like


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Hands out TensorFlow's module spec with ``_QuietLoader``, once."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_startup_logs() -> None:
    """Quiets TensorFlow's start-up lines for this process, unless the user set the level.

    Call it before TensorFlow is imported; afterwards (or twice) it does nothing more.
    """
    if LOG_LEVEL_VARIABLE in os.environ:
        return
    os.environ[LOG_LEVEL_VARIABLE] = QUIET_LOG_LEVEL
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
