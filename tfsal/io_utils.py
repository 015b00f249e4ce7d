"""Atomic file and directory writes.

Files that other processes read (checkpoints, exported models, TFRecord shards,
reports) are written next to their destination under a temporary name and renamed
into place, so a reader never sees a half-written file and a crash or a full disk
leaves the previous version intact.
"""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _default_mode(is_directory: bool) -> int:
    # mkstemp/mkdtemp create private (0600/0700) entries; published files must be
    # readable by other users (a TF Serving process, a reader on another account)
    # as if they had been created with open()/mkdir() under the current umask.
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if is_directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary file path that is renamed to ``destination`` on success.

    The temporary file lives in the destination's folder, so the final rename is
    atomic on POSIX file systems. On any exception the temporary file is removed and
    ``destination`` is left as it was.

    Args:
        destination: the file to write.

    Yields:
        The path to write to.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    os.close(handle)
    temporary = Path(temporary)
    os.chmod(temporary, _default_mode(is_directory=False))
    try:
        yield temporary
        os.replace(temporary, destination)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextlib.contextmanager
def atomic_directory(destination: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary folder that is renamed to ``destination`` on success.

    Used for SavedModel exports: TF Serving polls the model base path and must
    never load a version folder that is still being written. ``destination`` must
    not exist yet.

    Args:
        destination: the folder to create.

    Yields:
        The folder to write into.

    Raises:
        FileExistsError: if ``destination`` already exists.
    """
    destination = Path(destination)
    if destination.exists():
        raise FileExistsError(
            f"{destination} already exists; choose a new version or remove it first."
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    )
    os.chmod(temporary, _default_mode(is_directory=True))
    try:
        yield temporary
        os.rename(temporary, destination)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)


def atomic_write_text(destination: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``destination`` atomically (UTF-8)."""
    with atomic_path(destination) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_can_create_in(folder: Path, path: Path, what: str) -> None:
    # A throw-away file is the only test that holds for root, read-only mounts and
    # network file systems alike (os.access answers yes to root everywhere).
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"{what} {path} cannot be written: {folder} does not accept new files "
            f"({error.strerror or error}). Choose another location."
        ) from None


def check_writable_folder(path: str | os.PathLike, what: str = "Output folder") -> None:
    """Checks, writing nothing, that ``path`` is or can become a writable folder.

    Args:
        path: the folder (it need not exist yet).
        what: how the error names it, e.g. ``"--out"``.

    Raises:
        ValueError: if ``path`` or one of its parents is a file, or the nearest
            existing folder does not accept new files.
    """
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is inside {existing}, a file"
        raise ValueError(f"{what} {path} {where}, not a folder. Choose a folder.")
    _check_can_create_in(existing, path, what)


def check_writable_file(path: str | os.PathLike, what: str = "Output file") -> None:
    """Checks, writing nothing, that an atomic write to the file ``path`` can succeed.

    Args:
        path: the file (it need not exist yet; its folders are created on writing).
        what: how the error names it, e.g. ``"--json"``.

    Raises:
        ValueError: if ``path`` is a folder, a parent is a file, or the nearest
            existing folder does not accept new files.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file name.")
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        raise ValueError(f"{what} {path} is inside {existing}, a file, not a folder.")
    _check_can_create_in(existing, path, what)
