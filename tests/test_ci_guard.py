"""Under CI (REQUIRE_* = 1) a skipped test fails the run, and a named data folder that is missing
stops it before any test runs."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO

CONFTEST = "from tests.conftest import pytest_sessionfinish, pytest_sessionstart  # noqa: F401\n"
SKIPS = "import pytest\n\ndef test_passes():\n    pass\n\ndef test_skips():\n    pytest.skip('no data')\n"


def _pytest(tmp_path, **env) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_example.py").write_text(SKIPS)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REQUIRE_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           str(tmp_path)], cwd=REPO, env={**clean, "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=120)


def test_a_skip_passes_outside_ci(tmp_path):
    assert _pytest(tmp_path).returncode == 0


def test_a_skip_fails_under_ci(tmp_path):
    proc = _pytest(tmp_path, REQUIRE_SLURM="1")
    assert proc.returncode == 1 and "1 test(s) skipped although REQUIRE_SLURM=1" in proc.stdout


def test_a_missing_data_folder_stops_ci(tmp_path):
    proc = _pytest(tmp_path, REQUIRE_REFERENCE_DATA="1", REFERENCE_DATA_DIR=str(tmp_path / "nope"),
                   GAUNTLET_DATA_DIR=str(tmp_path))
    assert proc.returncode != 0 and "REFERENCE_DATA_DIR" in proc.stdout + proc.stderr
