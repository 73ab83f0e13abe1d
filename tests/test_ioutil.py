"""ioutil: atomic writes leave no partial file and give results the usual file mode."""

from __future__ import annotations

import os
import stat

import pytest

from ioutil import dumps, one_line, save_figure_atomic, write_atomic


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_has_the_mode_open_would_give(tmp_path, umask_022):
    path = tmp_path / "sub" / "fit.json"
    write_atomic(path, "{}")
    assert path.read_text() == "{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0o600
    assert [p.name for p in path.parent.iterdir()] == ["fit.json"]


def test_atomic_figure_has_the_mode_open_would_give(tmp_path, umask_022):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    path = tmp_path / "fig.png"
    save_figure_atomic(fig, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.json"
    with pytest.raises(TypeError):
        write_atomic(path, 3)  # not text: the write fails inside
    assert list(tmp_path.iterdir()) == []


def test_dumps_rejects_nan_and_one_line_takes_the_first_line():
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(KeyError()) == "KeyError"
