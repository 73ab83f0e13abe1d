"""Run tables: read the paper's ``trainingresults.csv`` format, any CSV with named columns, or
our own run-record JSON files, into validated arrays of (params N, tokens D, loss)."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.errors import InputError
from scaling.law import TRAIN_FLOPS_PER_PARAM_TOKEN

# Columns of the paper's released trainingresults.csv.
# The runs table: the paper's trainingresults.csv columns first (read by `beyond fit` as is), then
# its Gauntlet columns, then ours. `beyond sweep collect` writes it; read_runs reads it.
PAPER_COLUMNS = {"params": "Parameters", "tokens": "Tokens", "loss": "Smoothed Loss", "name": "Model Name"}
VAL_LOSS_COLUMN = "Val Loss"  # ours: the held-out loss at the last batch (train/validation.py)
RUNS_TABLE_PAPER_COLUMNS = ("Model Name", "Parameters", "Tokens/Params", "Tokens", "Batch Size", "Smoothed Loss")
GAUNTLET_AVERAGES = ("world_knowledge", "reading_comprehension", "language_understanding", "commonsense_reasoning",
                     "symbolic_problem_solving", "core_average")  # column eval_gauntlet/<name>
RUNS_TABLE_EXTRA_COLUMNS = ("Run", "FLOPs", "Wall Time (s)", "Resumes", "Gauntlet Partial", VAL_LOSS_COLUMN)


def runs_table_header() -> tuple[str, ...]:
    """The runs table's columns, in order."""
    return (RUNS_TABLE_PAPER_COLUMNS + tuple(f"eval_gauntlet/{c}" for c in GAUNTLET_AVERAGES)
            + RUNS_TABLE_EXTRA_COLUMNS)
# Keys of our run-record JSON (train/ writes these).
RECORD_KEYS = {"params": "params", "tokens": "tokens", "loss": "smoothed_loss"}
# --loss-col on run records: the runs-table column names, or a record key itself
RECORD_LOSS_KEYS = {PAPER_COLUMNS["loss"]: "smoothed_loss", VAL_LOSS_COLUMN: "val_loss"}
RECORD_NOMINAL_KEY = "tokens_per_param_requested"  # the ratio the run was planned at
NOMINAL_COLUMN = "Tokens/Params"  # the paper's CSV (and our runs table): the planned (nominal) ratio
MIN_RUNS = 6  # five coefficients need more runs than that to say anything
# Without a nominal ratio, D/N within this relative tolerance of a cut-off counts as that ratio:
# runs are rounded up to whole batches (the paper's 100 tokens/param runs sit at 100.0003-100.0024,
# a tiny CPU model's at up to ~0.2% above), while the paper's ratios differ by at least x1.25.
NOMINAL_RTOL = 0.01
EXACT_RTOL = 1e-9  # nominal ratios within this (relative) of a bound count as equal to it


@dataclass(frozen=True)
class RunTable:
    """Validated runs: N params, D training tokens, final (smoothed) loss, and a label each."""

    params: np.ndarray
    tokens: np.ndarray
    loss: np.ndarray
    labels: list[str]
    source: str
    nominal: np.ndarray | None = None  # planned tokens/param per run (NaN where unknown), if any

    @property
    def tokens_per_param(self) -> np.ndarray:
        """The trained ratio D/N (tokens per parameter), as the runs actually ran."""
        return self.tokens / self.params

    @property
    def nominal_tokens_per_param(self) -> np.ndarray:
        """The planned ratio of each run (its record's requested ratio, or the runs table's
        Tokens/Params), D/N where none is known. Filters and groupings use this."""
        actual = self.tokens_per_param
        if self.nominal is None:
            return actual
        return np.where(np.isfinite(self.nominal), self.nominal, actual)

    def ratio_tolerance(self) -> np.ndarray:
        """Per run, how close (relative) to a bound its ratio counts as equal to it: EXACT_RTOL for a
        nominal ratio, NOMINAL_RTOL for a bare D/N (rounded up to whole batches)."""
        known = np.zeros(self.loss.size, dtype=bool) if self.nominal is None else np.isfinite(self.nominal)
        return np.where(known, EXACT_RTOL, NOMINAL_RTOL)

    def ratio_at_most(self, max_ratio: float) -> np.ndarray:
        """Mask: runs planned at <= max_ratio tokens/param (within ``ratio_tolerance``)."""
        return self.nominal_tokens_per_param <= max_ratio * (1 + self.ratio_tolerance())

    def select(self, mask: np.ndarray) -> RunTable:
        idx = np.flatnonzero(mask)
        return RunTable(self.params[idx], self.tokens[idx], self.loss[idx],
                        [self.labels[i] for i in idx], self.source,
                        None if self.nominal is None else self.nominal[idx])

    def filter_tokens_per_param(self, max_ratio: float | None) -> RunTable:
        """Runs planned at <= max_ratio tokens/param (``ratio_at_most``)."""
        if max_ratio is None:
            return self
        if not (math.isfinite(max_ratio) and max_ratio > 0):
            raise InputError(f"--max-tokens-per-param must be > 0, got {max_ratio}")
        return self.select(self.ratio_at_most(max_ratio))

    def drop_highest_loss(self, k: int) -> RunTable:
        """Drop the k runs of highest loss (Epoch drops 5 on the Chinchilla reconstruction)."""
        if k < 0:
            raise InputError(f"--drop-highest-loss must be >= 0, got {k}")
        if k == 0:
            return self
        keep = np.ones(self.loss.size, dtype=bool)
        keep[np.argsort(self.loss, kind="stable")[self.loss.size - k :]] = False
        return self.select(keep)

    def require(self, n: int = MIN_RUNS) -> RunTable:
        if self.loss.size < n:
            raise InputError(f"{self.source}: {self.loss.size} runs left, need at least {n} to fit 5 coefficients")
        return self


def read_runs(
    path: str | Path,
    *,
    params_col: str = PAPER_COLUMNS["params"],
    tokens_col: str | None = PAPER_COLUMNS["tokens"],
    flops_col: str | None = None,
    loss_col: str = PAPER_COLUMNS["loss"],
) -> RunTable:
    """Read a CSV run table (or run-record JSON file/folder). D = FLOPs / (6 N) with ``flops_col``."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".json":
        return _read_records(path, RECORD_LOSS_KEYS.get(loss_col, loss_col))
    if not path.is_file():
        raise InputError(f"run table {path}: no such file")
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"run table {path}: cannot read as CSV ({exc})") from None
    if not header:
        raise InputError(f"run table {path}: empty file (no header row)")
    wanted = [params_col, loss_col, flops_col if flops_col else tokens_col]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise InputError(f"run table {path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})")
    params = _column(rows, params_col, path)
    loss = _column(rows, loss_col, path)
    if flops_col:
        tokens = _column(rows, flops_col, path) / (TRAIN_FLOPS_PER_PARAM_TOKEN * params)
    else:
        tokens = _column(rows, tokens_col, path)
    label_col = PAPER_COLUMNS["name"] if PAPER_COLUMNS["name"] in header else None
    labels = [(r[label_col] if label_col else f"row{i + 2}") for i, r in enumerate(rows)]
    nominal = _optional_column(rows, NOMINAL_COLUMN) if NOMINAL_COLUMN in header else None
    return RunTable(params, tokens, loss, labels, str(path), nominal)


def _optional_column(rows: list[dict], name: str) -> np.ndarray:
    """A column of positive numbers where present (NaN for blank or unusable cells)."""
    out = []
    for row in rows:
        try:
            v = float(row.get(name) or "nan")
        except ValueError:
            v = math.nan
        out.append(v if math.isfinite(v) and v > 0 else math.nan)
    return np.array(out)


def _column(rows: list[dict], name: str, path: Path) -> np.ndarray:
    values = []
    for i, row in enumerate(rows):
        raw = row.get(name)
        try:
            v = float(raw)
        except (TypeError, ValueError):
            raise InputError(f"run table {path}: row {i + 2}, column {name!r}: {raw!r} is not a number") from None
        if not math.isfinite(v) or v <= 0:
            raise InputError(f"run table {path}: row {i + 2}, column {name!r}: {raw!r} must be a finite number > 0")
        values.append(v)
    if not values:
        raise InputError(f"run table {path}: no data rows")
    return np.array(values)


def _read_records(path: Path, loss_key: str = RECORD_KEYS["loss"]) -> RunTable:
    """Run records: one JSON object per file (a folder of them, or of run folders each holding a
    ``record.json`` as ``beyond train`` writes) or a JSON list in one file. ``loss_key``: the
    record's loss to fit (``smoothed_loss``, or ``val_loss``)."""
    if path.is_dir():
        files = sorted(path.glob("*.json")) + sorted(path.glob("*/record.json"))
        if not files:
            raise InputError(f"run records {path}: folder has no .json files and no */record.json")
        records = [(_load_json(f), str(f.relative_to(path))) for f in files]
    elif path.is_file():
        data = _load_json(path)
        items = data if isinstance(data, list) else [data]
        records = [(r, f"{path.name}[{i}]") for i, r in enumerate(items)]
    else:
        raise InputError(f"run records {path}: no such file or folder")
    cols: dict[str, list[float]] = {k: [] for k in RECORD_KEYS}
    labels, nominal = [], []
    for rec, where in records:
        if not isinstance(rec, dict):
            raise InputError(f"run record {where}: expected a JSON object")
        for key, field in (RECORD_KEYS | {"loss": loss_key}).items():
            v = rec.get(field)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise InputError(f"run record {where}: {field!r} must be a number > 0, got {v!r}")
            cols[key].append(float(v))
        labels.append(str(rec.get("run_name", where)))
        planned = rec.get(RECORD_NOMINAL_KEY)
        ok = isinstance(planned, (int, float)) and math.isfinite(planned) and planned > 0
        nominal.append(float(planned) if ok else math.nan)
    return RunTable(np.array(cols["params"]), np.array(cols["tokens"]), np.array(cols["loss"]), labels, str(path),
                    np.array(nominal))


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"run record {path}: not valid JSON ({exc})") from None
