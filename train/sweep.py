"""Sweep specs (``yamls/sweeps/*.yaml``: model sizes x tokens/param ratios) and their plans.

A plan writes one resolved llm-foundry YAML per run (``<out>/<run>/config.yaml``, runnable as is by
``beyond train`` or llm-foundry) and a plan table (``<out>/plan.csv``): params, tokens, training
FLOPs (6·N·D), GPU-hours, wall-clock hours and dollars at a given GPU type, count, MFU and price.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from ioutil import write_atomic
from scaling.errors import InputError
from scaling.law import training_flops
from scaling.optimal import PEAK_FLOPS, CostSettings
from scaling.runs import GAUNTLET_AVERAGES, runs_table_header
from train.config import RunPlan, build_run, load_yaml
from train.folder import RunFolder
from train.zoo import model_yaml

RUN_COLUMNS = ("run", "model", "params", "tokens_per_param", "tokens", "global_batch_size", "max_seq_len",
               "batches", "flops", "gpu_hours", "wall_hours", "dollars", "run_dir")


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a zoo model (or YAML), a ratio and its own overrides."""

    name: str
    model: str
    tokens_per_param: float
    overrides: tuple[str, ...] = ()


@dataclass
class SweepSpec:
    """A parsed sweep spec. ``out`` holds one folder per run, named after the run."""

    name: str
    path: Path
    out: Path
    data: str | None
    seed: int
    runs: list[SweepRun] = field(default_factory=list)
    loggers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hardware:
    """Throughput assumptions for the estimates: GPUs per run, and the training side of the cost
    model (``scaling.optimal.CostSettings``: GPU type, dtype, MFU, $/GPU-hour), which validates them."""

    gpu: str = "a100-80"
    gpus: int = 8
    mfu: float = 0.5
    price: float | None = None
    dtype: str = "bf16"

    def __post_init__(self):
        if self.gpus < 1:
            raise InputError(f"GPUs per run must be at least 1, got {self.gpus}")
        self.settings  # noqa: B018 - validates GPU, dtype, MFU and price once, here

    @property
    def settings(self) -> CostSettings:
        return CostSettings(train_gpu=self.gpu, train_dtype=self.dtype, train_mfu=self.mfu,
                            train_price_per_hour=self.price)

    @property
    def flops_per_gpu_hour(self) -> float:
        return PEAK_FLOPS[self.gpu][self.dtype] * self.mfu * 3600.0

    @property
    def dollars_per_gpu_hour(self) -> float:
        return self.settings.train_price


def run_name(model: str, ratio: float) -> str:
    """``mpt-150m-r10``: model stem and ratio (``%g``)."""
    return f"{model_label(model)}-r{ratio:g}"


def model_label(model: str) -> str:
    """``mpt-1.3b`` for a zoo name, the file stem for a YAML path."""
    name = Path(model).name
    return Path(name).stem if Path(name).suffix in (".yaml", ".yml") else name


def load_spec(path: str | Path, out: str | Path | None = None, data: str | None = None) -> SweepSpec:
    """Read and check a sweep spec: known models, ratios > 0, no duplicate runs."""
    path = Path(path)
    cfg = OmegaConf.to_container(load_yaml(path), resolve=True)
    unknown = set(cfg) - {"name", "data", "out", "seed", "set", "grid", "loggers"}
    if unknown:
        raise InputError(f"sweep {path}: unknown keys {', '.join(sorted(unknown))}")
    name = str(cfg.get("name") or path.stem)
    common = _overrides(cfg.get("set"), f"sweep {path}: set")
    seed = cfg.get("seed", 17)
    if not isinstance(seed, int):
        raise InputError(f"sweep {path}: seed must be an integer")
    grid = cfg.get("grid")
    if not isinstance(grid, list) or not grid:
        raise InputError(f"sweep {path}: grid must be a non-empty list of {{model, tokens_per_param}}")
    runs: list[SweepRun] = []
    seen: dict[str, SweepRun] = {}
    for i, entry in enumerate(grid):
        where = f"sweep {path}: grid[{i}]"
        if not isinstance(entry, dict) or "model" not in entry or "tokens_per_param" not in entry:
            raise InputError(f"{where} needs model and tokens_per_param")
        model = str(entry["model"])
        model_yaml(model)  # unknown size -> one clear error
        label = str(entry.get("label") or model_label(model))
        ratios = entry["tokens_per_param"]
        ratios = ratios if isinstance(ratios, list) else [ratios]
        extra = _overrides(entry.get("set"), f"{where}: set")
        for ratio in ratios:
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (ratio > 0 and math.isfinite(ratio)):
                raise InputError(f"{where}: tokens_per_param must be positive numbers, got {ratio!r}")
            run = SweepRun(f"{label}-r{ratio:g}", model, float(ratio), tuple(common + extra))
            if run.name in seen:
                raise InputError(f"{where}: duplicate run {run.name}")
            seen[run.name] = run
            runs.append(run)
    loggers = cfg.get("loggers") or {}
    if not isinstance(loggers, dict):
        raise InputError(f"sweep {path}: loggers must be a mapping of llm-foundry loggers (e.g. {{wandb: {{project: p}}}})")
    out_dir = Path(out) if out is not None else Path(cfg.get("out") or Path("sweeps") / name)
    return SweepSpec(name, path, out_dir, data if data is not None else cfg.get("data"), seed, runs, loggers)


def _overrides(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise InputError(f"{where} must be a list of KEY=VALUE strings")
    return list(value)


def check_writable(folder: Path) -> None:
    """Create ``folder`` and make sure files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write to output folder {folder}: {exc.strerror or exc}") from None


def plan_sweep(spec: SweepSpec, hardware: Hardware, progress=None, allow_repeat: bool = False,
               world_size: int = 1) -> list[dict]:
    """Resolve every run (writing ``<out>/<run>/config.yaml``) and return the plan rows. Runs that
    need more tokens than the data holds are refused unless ``allow_repeat``; ``world_size``:
    processes per run (for llm-foundry's batch arithmetic)."""
    if spec.data is None:
        raise InputError(f"sweep {spec.name} has no data: set data: in {spec.path} or pass --data")
    check_writable(spec.out)
    plans: list[tuple[SweepRun, RunPlan]] = []
    for run in spec.runs:
        plan = build_run(run.model, spec.out / run.name, tokens_per_param=run.tokens_per_param, data=spec.data,
                         cache_dir=spec.out / ".cache", run_name=run.name, loggers=spec.loggers,
                         model_name=run.name.rsplit("-r", 1)[0], allow_repeat=allow_repeat, world_size=world_size,
                         overrides=[f"variables.global_seed={spec.seed}", *run.overrides])
        plans.append((run, plan))
        if progress is not None:
            progress(1)
    rows = [_row(run, plan, hardware) for run, plan in plans]
    for _run, plan in plans:  # write configs only once every run resolved: no half-written plan
        write_atomic(RunFolder(plan.run_dir).config, OmegaConf.to_yaml(plan.config))
    write_atomic(spec.out / "plan.csv", plan_csv(rows))
    return rows


def _row(run: SweepRun, plan: RunPlan, hw: Hardware) -> dict:
    cfg = plan.config
    flops = float(training_flops(plan.params, plan.tokens))
    gpu_hours = flops / hw.flops_per_gpu_hour
    return {
        "run": run.name, "model": run.name.rsplit("-r", 1)[0], "params": plan.params,
        "tokens_per_param": run.tokens_per_param, "tokens": plan.tokens,
        "global_batch_size": int(cfg.global_train_batch_size), "max_seq_len": int(cfg.max_seq_len),
        "batches": plan.batches, "flops": flops, "gpu_hours": gpu_hours, "wall_hours": gpu_hours / hw.gpus,
        "dollars": gpu_hours * hw.dollars_per_gpu_hour, "run_dir": str(plan.run_dir),
    }


def plan_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=RUN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def totals(rows: list[dict]) -> dict:
    """Sums over the plan: runs, tokens, FLOPs, GPU-hours, dollars."""
    return {"runs": len(rows), **{k: float(sum(r[k] for r in rows)) for k in ("tokens", "flops", "gpu_hours", "dollars")}}


def collect(spec: SweepSpec) -> tuple[str, int]:
    """The runs table of the finished runs (one row per run of the spec, in spec order), with the
    paper's trainingresults.csv columns first; returns (CSV text, number of runs missing)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(runs_table_header())
    missing = 0
    for run in spec.runs:
        folder = RunFolder(spec.out / run.name)
        if not folder.record.is_file():
            missing += 1
            continue
        try:
            rec = json.loads(folder.record.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"run record {folder.record} is unreadable: {exc}") from None
        evaluated = folder.read_eval()  # eval's own file, joined in here
        # Tokens/Params is the planned (nominal) ratio, as in the paper's CSV; D/N is Tokens / Parameters
        nominal = rec.get("tokens_per_param_requested") or run.tokens_per_param
        writer.writerow([rec.get("model", model_label(run.model)), rec["params"], f"{nominal:g}",
                         rec["tokens"], rec.get("global_train_batch_size", ""), repr(float(rec["smoothed_loss"])),
                         *_gauntlet_cells(evaluated),
                         run.name, rec.get("flops", ""), rec.get("wall_time_s", ""), rec.get("resumes", ""),
                         _gauntlet_partial(evaluated), _number(rec.get("val_loss"))])
    return buf.getvalue(), missing


def _number(value) -> str:
    """A cell for a float that may be missing (blank)."""
    return "" if value is None else repr(float(value))


def _gauntlet_cells(evaluated: dict | None) -> list:
    """Category and core averages from eval's results (blank where not evaluated)."""
    g = evaluated or {}
    cats, avgs = g.get("categories", {}), g.get("averages", {})
    cells = []
    for name in GAUNTLET_AVERAGES:
        entry = avgs.get(name) if name in avgs else cats.get(name)
        value = (entry or {}).get("average")
        cells.append("" if value is None else repr(float(value)))
    return cells


def _gauntlet_partial(evaluated: dict | None):
    g = evaluated
    if not g:
        return ""
    return any(v.get("partial") for v in list(g.get("categories", {}).values()) + list(g.get("averages", {}).values()))


# --- IsoFLOP sweeps (Chinchilla's Approach 2) ---------------------------------------------------


def model_params(model: str, overrides: tuple[str, ...] = ()) -> int:
    """N (params) of a zoo model or YAML with the run's overrides applied (they may change the shape)."""
    from omegaconf.errors import OmegaConfBaseException

    from train.zoo import params_of

    cfg = load_yaml(model_yaml(model))
    model_overrides = [o for o in overrides if o.startswith("model.")]
    try:
        if model_overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(model_overrides))
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"{model}: bad override ({exc})") from None
    return params_of(container["model"])


def isoflop_spec(spec: SweepSpec, budgets: list[float]) -> tuple[SweepSpec, str, list[str]]:
    """The IsoFLOP sweep of ``spec``'s model sizes: every model at every FLOP budget C, trained on
    D = C / (6 N) tokens (tokens/param = C / (6 N^2)). Returns the new spec, its YAML text (a plain
    sweep spec that `sweep launch|status|collect` read back) and one line per run left out because
    its tokens would fall within the 3 x N warmup."""
    from train.config import WARMUP_TOKENS_PER_PARAM

    entries: dict[str, dict] = {}
    skipped: list[str] = []
    runs: list[SweepRun] = []
    for run in spec.runs:
        label = run.name.rsplit("-r", 1)[0]
        if label in entries:
            continue
        n = model_params(run.model, run.overrides)
        entry = {"model": run.model, "label": label, "params": n, "ratios": [], "set": list(run.overrides)}
        for budget in sorted(budgets):
            ratio = float(f"{budget / (6.0 * n * n):.6g}")
            if ratio <= WARMUP_TOKENS_PER_PARAM:
                skipped.append(f"{label} at {budget:.3g} FLOPs: {ratio:.3g} tokens/param is within the warmup "
                               f"({WARMUP_TOKENS_PER_PARAM:g} x N tokens)")
                continue
            entry["ratios"].append(ratio)
            runs.append(SweepRun(f"{label}-r{ratio:g}", run.model, ratio, run.overrides))
        entries[label] = entry
    if not runs:
        raise InputError(f"isoflop: no run of sweep {spec.name} fits the budgets (each needs C > 18 N^2 FLOPs, "
                         "more than its 3 x N warmup tokens): use larger budgets or smaller models")
    name = f"{spec.name}-isoflop"
    lines = [f"# IsoFLOP sweep written by `beyond sweep plan --isoflop` from {spec.path}",
             f"# budgets (FLOPs): {', '.join(f'{b:g}' for b in sorted(budgets))}",
             f"# fit: beyond fit <out>/runs.csv --approach both --budgets {','.join(f'{b:g}' for b in sorted(budgets))}",
             f"name: {name}", f"data: {json.dumps(spec.data)}", f"out: {json.dumps(str(spec.out))}",
             f"seed: {spec.seed}"]
    if spec.loggers:
        lines.append(f"loggers: {json.dumps(spec.loggers)}")
    lines.append("grid:")
    for e in entries.values():
        if e["ratios"]:
            lines.append(f"  - {{model: {json.dumps(e['model'])}, label: {json.dumps(e['label'])}, "
                         f"tokens_per_param: {json.dumps(e['ratios'])}, set: {json.dumps(e['set'])}}}"
                         f"  # {e['params']:,} params")
    iso = SweepSpec(name, spec.out / "isoflop.yaml", spec.out, spec.data, spec.seed, runs, spec.loggers)
    return iso, "\n".join(lines) + "\n", skipped
