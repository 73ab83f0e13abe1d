"""Checkpoints an interrupted save left behind are set aside, so Composer's folder check passes."""

from __future__ import annotations

import os

import pytest

from tests.conftest import require_train_extra
from train.checkpoints import checkpoint_batch, resumable_batch, set_aside_unfinished, unfinished_checkpoints
from train.folder import RunFolder


def _folder(tmp_path, *batches: int, latest: int | None = None) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.checkpoints.mkdir(parents=True)
    for b in batches:
        (folder.checkpoints / f"ep0-ba{b}-rank0.pt").write_bytes(b"x")
    if latest is not None:
        os.symlink(f"ep0-ba{latest}-rank0.pt", folder.latest_checkpoint)
    return folder


def test_checkpoint_batch_reads_llmfoundry_default_name(tmp_path):
    assert checkpoint_batch(tmp_path / "ep3-ba1200-rank0.pt") == 1200
    assert checkpoint_batch(tmp_path / "latest-rank0.pt") is None
    assert checkpoint_batch(tmp_path / "ep3-ba1200-rank0.pt.tmp") is None


def test_later_than_latest_is_set_aside(tmp_path):
    folder = _folder(tmp_path, 100, 200, latest=100)
    assert resumable_batch(folder) == 100
    assert [p.name for p in unfinished_checkpoints(folder)] == ["ep0-ba200-rank0.pt"]
    moved = set_aside_unfinished(folder)
    assert [p.relative_to(folder.checkpoints).as_posix() for p in moved] == ["unfinished/ep0-ba200-rank0.pt"]
    assert (folder.checkpoints / "ep0-ba100-rank0.pt").is_file() and folder.latest_checkpoint.exists()
    assert set_aside_unfinished(folder) == []


def test_no_link_sets_aside_everything(tmp_path):
    folder = _folder(tmp_path, 100)
    assert resumable_batch(folder) == 0
    assert len(set_aside_unfinished(folder)) == 1
    dangling = _folder(tmp_path / "d", 300, latest=200)  # link to a file that is gone
    assert resumable_batch(dangling) == 0 and len(set_aside_unfinished(dangling)) == 1


def test_composer_folder_check_passes_only_after_set_aside(tmp_path):
    """The failure the set-aside prevents is Composer's own check, run at fit start."""
    require_train_extra()
    from composer.core import Timestamp
    from composer.utils import ensure_folder_has_no_conflicting_files

    folder = _folder(tmp_path, 10, 20, latest=10)
    resumed = Timestamp(batch=10)
    with pytest.raises(FileExistsError, match="may conflict"):
        ensure_folder_has_no_conflicting_files(folder.checkpoints, "ep{epoch}-ba{batch}-rank{rank}.pt", resumed)
    set_aside_unfinished(folder)
    ensure_folder_has_no_conflicting_files(folder.checkpoints, "ep{epoch}-ba{batch}-rank{rank}.pt", resumed)


def test_missing_folder_is_nothing_to_do(tmp_path):
    assert set_aside_unfinished(RunFolder(tmp_path / "never-trained")) == []
