import os
import stat

import pytest

from tfsal.io_utils import (
    atomic_directory,
    atomic_path,
    atomic_write_text,
    check_writable_file,
    check_writable_folder,
)


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "checkpoint.bin"
    target.write_text("previous")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as temporary:
        temporary.write_text("half written")
        raise OSError("disk full")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.bin"]
    with atomic_path(target) as temporary:
        temporary.write_text("new")
    assert target.read_text() == "new"


def test_published_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with atomic_directory(tmp_path / "export" / "1") as folder:
            (folder / "saved_model.pb").write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "export" / "1").stat().st_mode) == 0o755


def test_atomic_directory_refuses_an_existing_version_and_cleans_up(tmp_path):
    (tmp_path / "1").mkdir()
    with pytest.raises(FileExistsError, match="already exists"), atomic_directory(tmp_path / "1"):
        pass
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "2") as folder:
        (folder / "partial").write_text("x")
        raise RuntimeError("export failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]


def test_writable_checks_write_nothing_and_name_the_problem(tmp_path):
    check_writable_folder(tmp_path / "new" / "run")
    check_writable_file(tmp_path / "new" / "results.json")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_writable_folder(tmp_path / "file", "--out")
    with pytest.raises(ValueError, match="is inside .*file, a file"):
        check_writable_file(tmp_path / "file" / "x.json", "--json")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        check_writable_file(tmp_path, "--csv")
    with pytest.raises(ValueError, match="cannot be written"):
        check_writable_folder("/sys/tfsal-run")
