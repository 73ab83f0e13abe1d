"""Preflight checks for a training run on the node where they run (``beyond check``).

Each check gives a ``CheckResult`` with a status: ``ok``, ``problem`` (the run would fail or
silently go wrong), ``info`` (a fact, not judged) or ``not_checked`` (what could not be checked
here, and why). ``run_checks`` runs them all; ``cheap_checks`` skips what is slow (downloads,
and on a Slurm/mcli login node the torch import), for ``beyond sweep launch`` to call first.
Library code: it does not import the ``beyond`` CLI package.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ioutil import one_line
from scaling.errors import InputError

OK, PROBLEM, INFO, NOT_CHECKED = "ok", "problem", "info", "not_checked"
FLASH_ATTN_ALIBI = "2.4.2"  # llm-foundry's check_alibi_support: ALiBi with attn_impl flash needs this
FLASH_ATTN_V2 = "2.0.1"  # llm-foundry's MPT needs flash-attn v2 for attn_impl flash
# Checkpoint bytes per parameter: fp32 weights + the optimizer's fp32 state tensors per parameter.
# decoupled_lionw keeps exp_avg only (1 moment), Adam-family two, SGD one (momentum).
FP32_BYTES = 4
OPTIMIZER_STATES = {"lion": 1, "adam": 2, "sgd": 1}
UNKNOWN_OPTIMIZER_STATES = 2  # conservative: Adam-like
GPU_PRECISIONS = ("amp_bf16", "amp_fp16", "amp_fp8")


@dataclass(frozen=True)
class CheckResult:
    """One line of ``beyond check``: ``name``, ``status`` (ok|problem|info|not_checked), ``detail``."""

    name: str
    status: str
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NodeFacts:
    """What this node offers for training. ``gpus``: one model name per visible GPU."""

    torch: str | None = None
    cuda: str | None = None  # the CUDA version torch was built for
    nccl: str | None = None
    gpus: tuple[str, ...] = ()
    bf16: bool | None = None
    flash_attn: str | None = None  # installed flash-attn version, if any
    error: str | None = None  # why torch could not be asked


def node_facts() -> NodeFacts:
    """Ask torch (imported here, a few seconds) about CUDA, NCCL and the GPUs of this node."""
    flash = _package_version("flash-attn") or _package_version("flash_attn")
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - missing or broken install: say so
        return NodeFacts(flash_attn=flash, error=f"{type(exc).__name__}: {one_line(exc)}")
    gpus: tuple[str, ...] = ()
    nccl = bf16 = None
    try:
        if torch.cuda.is_available():
            gpus = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            bf16 = bool(torch.cuda.is_bf16_supported())
            nccl = ".".join(map(str, torch.cuda.nccl.version())) if torch.distributed.is_nccl_available() else None
    except Exception as exc:  # noqa: BLE001 - a broken driver is a fact to report
        return NodeFacts(torch.__version__, torch.version.cuda, None, (), None, flash,
                         f"CUDA error: {type(exc).__name__}: {one_line(exc)}")
    return NodeFacts(torch.__version__, torch.version.cuda, nccl, gpus, bf16, flash)


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _version_at_least(have: str, need: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(have) >= Version(need)
    except InvalidVersion:
        return False


# --- the run ------------------------------------------------------------------------------------


def load_run(run: str) -> tuple[dict, str]:
    """A run folder with config.yaml, an llm-foundry train YAML or a zoo model name -> (resolved
    config, label). Raises InputError for anything else."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from train.config import load_yaml
    from train.zoo import model_yaml

    path = Path(run)
    if path.is_dir():
        if not (path / "config.yaml").is_file():
            raise InputError(f"run folder {run} has no config.yaml (write one with `beyond train ... --dry-run`)")
        yaml_path, label = path / "config.yaml", str(path)
    elif path.suffix in (".yaml", ".yml"):
        yaml_path, label = model_yaml(run), str(path)
    elif os.sep in run or path.exists():
        raise InputError(f"not a run folder, YAML or zoo model: {run}")
    else:
        yaml_path = model_yaml(run)
        label = yaml_path.stem
    cfg = load_yaml(yaml_path)
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"cannot resolve {yaml_path}: {one_line(exc)}") from None
    if not isinstance(config.get("model"), dict):
        raise InputError(f"{yaml_path} has no model section")
    return config, label


def run_tokens_of(config: dict) -> int | None:
    """Training tokens of a config: max_duration ``<n>ba`` x global_train_batch_size x max_seq_len,
    ``<n>sp`` x max_seq_len or ``<n>tok``; None when it is not set in those units."""
    m = re.fullmatch(r"\s*(\d+)\s*(ba|sp|tok)\s*", str(config.get("max_duration") or ""))
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    try:
        seq = int(config["max_seq_len"])
        return n if unit == "tok" else n * seq if unit == "sp" else n * int(config["global_train_batch_size"]) * seq
    except (KeyError, TypeError, ValueError):
        return None


def data_of(config: dict | None) -> str | None:
    """The config's training data: train_loader.dataset.remote, else .local (None if unset)."""
    dataset = ((config or {}).get("train_loader") or {}).get("dataset") or {}
    return dataset.get("remote") or dataset.get("local") or None


# --- the checks ---------------------------------------------------------------------------------


def cheap_checks(config: dict | None, backend: str | None, run_tokens: int | None) -> list[CheckResult]:
    """The checks that take under a second or two: no download, and no torch import when the
    run goes to Slurm or mcli (this node's GPUs are not the run's)."""
    return run_checks(config, run_tokens=run_tokens, backend=backend, cheap=True)


def run_checks(
    config: dict | None = None,
    *,
    data: str | None = None,
    run_tokens: int | None = None,
    backend: str | None = None,
    gpus: int | None = None,
    cheap: bool = False,
    facts: NodeFacts | None = None,
) -> list[CheckResult]:
    """All preflight checks for ``config`` (a resolved llm-foundry train config, or None for the
    node alone). ``data``: overrides the config's dataset; ``run_tokens``: tokens the run trains
    on (default: from max_duration); ``backend``: local|slurm|mcli or None (then Slurm/mcli are
    reported, not judged); ``gpus``: GPUs expected on this node; ``facts``: for tests."""
    if backend is not None:
        from train.backends import get_backend

        get_backend(backend)  # InputError naming the known backends
    if gpus is not None and gpus < 0:
        raise InputError(f"--gpus must be >= 0, got {gpus}")
    if run_tokens is not None and run_tokens <= 0:
        raise InputError(f"run tokens must be positive, got {run_tokens}")
    remote_nodes = _trains_elsewhere(backend)
    if run_tokens is None and config is not None:
        run_tokens = run_tokens_of(config)
    data = data or data_of(config)
    results = [_run_info(config, run_tokens)]
    if facts is None and not (cheap and remote_nodes):
        facts = node_facts()
    if facts is None:
        results.append(CheckResult("gpu", NOT_CHECKED, f"skipped (cheap): the run's GPUs are on the {backend} "
                                   "nodes; run `beyond check` on one of them"))
    else:
        results += _gpu_checks(facts, config, backend, gpus)
    results.append(_disk_check(config))
    results += _data_checks(data, config, run_tokens, cheap)
    results += _credential_checks(config, data, backend)
    results += _backend_checks(backend, cheap)
    return results


def _run_info(config: dict | None, run_tokens: int | None) -> CheckResult:
    if config is None:
        return CheckResult("run", INFO, "no run given: checking this node only")
    parts = []
    params = _params(config)
    if params is not None:
        parts.append(f"{params:,} params")
    parts.append(f"max_seq_len {config.get('max_seq_len')}, global batch {config.get('global_train_batch_size')}")
    if run_tokens is not None:
        parts.append(f"{run_tokens:,} run tokens")
    else:
        parts.append("run tokens unknown (max_duration is not in batches: pass --tokens)")
    return CheckResult("run", INFO, "; ".join(parts))


def _params(config: dict) -> int | None:
    from train.zoo import params_of

    try:
        return params_of(config.get("model") or {})
    except InputError:
        return None


def _gpu_needs(config: dict | None) -> list[str]:
    """Why ``config`` can only train on a GPU (empty: it can run on a CPU)."""
    if config is None:
        return []
    reasons = []
    impl = ((config.get("model") or {}).get("attn_config") or {}).get("attn_impl")
    if impl in ("flash", "triton"):
        reasons.append(f"attn_impl: {impl}")
    if str(config.get("precision")) in GPU_PRECISIONS:
        reasons.append(f"precision: {config['precision']}")
    if config.get("fsdp_config"):
        reasons.append("fsdp_config")
    return reasons


def _gpu_checks(facts: NodeFacts, config: dict | None, backend: str | None, gpus: int | None) -> list[CheckResult]:
    remote_nodes = _trains_elsewhere(backend)
    judged = PROBLEM if not remote_nodes else INFO
    where = "this node" if not remote_nodes else f"this node (the run goes to {backend}, whose nodes are not checked from here)"
    if facts.torch is None:
        status = PROBLEM if config is not None and not remote_nodes else INFO
        return [CheckResult("torch", status, f"torch cannot be imported ({facts.error}): install the [train] extra "
                            "(bash scripts/setup.sh)")]
    out = [CheckResult("torch", INFO, f"torch {facts.torch}, built for CUDA {facts.cuda or 'none (CPU build)'}")]
    needs = _gpu_needs(config)
    if not facts.gpus:
        note = ("no GPU: CUDA/NCCL/bf16/flash-attn checks not applicable, training would run on CPU"
                + (f" ({facts.error})" if facts.error else ""))
        if needs and not remote_nodes:
            out.append(CheckResult("gpu", PROBLEM, f"{note}, but the config needs a GPU ({', '.join(needs)}); "
                                   "run on a GPU node or use --backend slurm|mcli"))
        elif gpus and not remote_nodes:
            out.append(CheckResult("gpu", PROBLEM, f"{note}, but --gpus {gpus} expects {gpus}"))
        else:
            out.append(CheckResult("gpu", NOT_CHECKED, f"{note} here; the run's {backend} nodes are not checked "
                                   "from here" if remote_nodes else note))
        return out
    names = sorted(set(facts.gpus))
    summary = f"{len(facts.gpus)} x {' / '.join(names)} on {where}"
    if gpus is not None and len(facts.gpus) < gpus:
        out.append(CheckResult("gpu", judged, f"{summary}, but --gpus expects {gpus}"))
    else:
        out.append(CheckResult("gpu", OK if not remote_nodes else INFO, summary))
    out.append(CheckResult("cuda", INFO, f"CUDA {facts.cuda}, NCCL {facts.nccl or 'not available'}"))
    precision = str((config or {}).get("precision"))
    if facts.bf16:
        out.append(CheckResult("bf16", OK if not remote_nodes else INFO, "bf16 supported"))
    elif precision == "amp_bf16":
        out.append(CheckResult("bf16", judged, "precision amp_bf16 but this GPU has no bf16: "
                               "--set precision=amp_fp16 (and fsdp_config.mixed_precision=DEFAULT)"))
    else:
        out.append(CheckResult("bf16", INFO, "no bf16 on this GPU"))
    out.append(_flash_check(facts, config, judged))
    return out


def _flash_check(facts: NodeFacts, config: dict | None, judged: str) -> CheckResult:
    attn = ((config or {}).get("model") or {}).get("attn_config") or {}
    have = facts.flash_attn
    if attn.get("attn_impl") != "flash":
        return CheckResult("flash-attn", INFO, f"flash-attn {have or 'not installed'}"
                           + (f"; the config uses attn_impl: {attn['attn_impl']}" if attn.get("attn_impl") else ""))
    need = FLASH_ATTN_ALIBI if attn.get("alibi") else FLASH_ATTN_V2
    why = "ALiBi with attn_impl: flash" if attn.get("alibi") else "attn_impl: flash"
    if have and _version_at_least(have, need):
        return CheckResult("flash-attn", OK, f"flash-attn {have} (>= {need}, which {why} needs)")
    return CheckResult("flash-attn", judged, f"flash-attn {have or 'not installed'}, but {why} needs >= {need}: "
                       f"pip install 'flash-attn>={need}' --no-build-isolation, or train with "
                       "--set model.attn_config.attn_impl=torch (slower; llm-foundry does not fall back by itself)")


# --- disk ---------------------------------------------------------------------------------------


def checkpoint_bytes(params: int, optimizer: str | None) -> int:
    """Bytes of one Composer checkpoint: params x 4 bytes (fp32 weights) x (1 + optimizer state
    tensors per parameter); decoupled_lionw keeps one (exp_avg), so 8 bytes/param."""
    return params * FP32_BYTES * (1 + _optimizer_states(optimizer))


def _optimizer_states(optimizer: str | None) -> int:
    name = (optimizer or "").lower()
    return next((n for key, n in OPTIMIZER_STATES.items() if key in name), UNKNOWN_OPTIMIZER_STATES)


def _checkpoints_on_disk(config: dict) -> tuple[int, str]:
    """Peak number of checkpoints on local disk, and how it was found. Composer writes a new
    checkpoint before removing the oldest of ``save_num_checkpoints_to_keep``."""
    keep = int(config.get("save_num_checkpoints_to_keep", -1))
    if keep > 0:
        return keep + 1, f"{keep} kept + 1 being written"
    if keep == 0:
        return 1, "1 written before upload"
    interval = re.fullmatch(r"\s*(\d+)\s*ba\s*", str(config.get("save_interval") or ""))
    total = re.fullmatch(r"\s*(\d+)\s*ba\s*", str(config.get("max_duration") or ""))
    if interval and total and int(interval.group(1)) > 0:
        n = math.ceil(int(total.group(1)) / int(interval.group(1)))
        return max(n, 1), f"all {max(n, 1)} kept (save_num_checkpoints_to_keep -1)"
    return 1, "all kept, count unknown: judged for 1"


def _disk_check(config: dict | None) -> CheckResult:
    if config is None:
        return CheckResult("disk", NOT_CHECKED, "no run given: no checkpoint size to judge free disk against")
    params = _params(config)
    if params is None:
        return CheckResult("disk", NOT_CHECKED, "cannot count the model's params (not an mpt_causal_lm model section)")
    from train.config import is_remote

    save = config.get("save_folder")
    optimizer = (config.get("optimizer") or {}).get("name")
    one = checkpoint_bytes(params, optimizer)
    count, how = _checkpoints_on_disk(config)
    need = one * count
    where = Path.cwd() if save is None or is_remote(str(save)) else Path(str(save))
    where = _existing_ancestor(where.resolve())
    free = shutil.disk_usage(where).free
    per = FP32_BYTES * (1 + _optimizer_states(optimizer))
    detail = (f"{_gb(free)} free at {where}; checkpoints need {_gb(need)} ({how}; {params:,} params x "
              f"{per} bytes: fp32 weights + {_optimizer_states(optimizer)} fp32 optimizer state"
              f"{' (decoupled_lionw keeps exp_avg only)' if 'lion' in (optimizer or '').lower() else ''})")
    if save is None:
        detail += "; no save_folder set: `beyond train` writes runs/<run>/checkpoints under the current folder"
    elif is_remote(str(save)):
        detail += "; a remote save folder is written locally first"
    return CheckResult("disk", OK if free >= need else PROBLEM, detail)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


# --- data ---------------------------------------------------------------------------------------


def _data_checks(data: str | None, config: dict | None, run_tokens: int | None, cheap: bool) -> list[CheckResult]:
    from train.config import is_remote
    from train.corpus import DEFAULT_CORPUS

    if data is None:
        return [CheckResult("data", NOT_CHECKED, "no data given (--data, or the config's train_loader.dataset)")]
    if data == DEFAULT_CORPUS:
        return [CheckResult("data", INFO, "stdlib: this Python's standard-library sources, tokenised by "
                            "`beyond train` (CPU smoke data); tokens not counted")]
    remote = is_remote(data)
    if not remote:
        path = Path(data)
        if not path.exists():
            return [CheckResult("data", PROBLEM, f"data not found: {data}")]
        if path.is_file() or not ((path / "train" / "index.json").is_file() or (path / "index.json").is_file()):
            return [CheckResult("data", INFO, f"{data} is text, tokenised by `beyond train` at run time; "
                                "tokens not counted")]
    elif cheap:
        return [CheckResult("data", NOT_CHECKED, f"skipped (cheap): {data} is remote, counting it downloads its index")]
    from train.dataset_size import dataset_tokens, stored_seq_len

    seq = (config or {}).get("max_seq_len")
    try:
        size = dataset_tokens(data, max_seq_len=int(seq) if seq else None)
    except InputError as exc:
        return [CheckResult("data", PROBLEM, f"data not readable: {exc}")]
    held = f"{data} holds {size.tokens:,} tokens ({size.sequences:,} sequences x {size.seq_len})"
    out = []
    stored = stored_seq_len(data)
    if seq and stored and stored != int(seq):
        out.append(CheckResult("data (sequence length)", PROBLEM, f"{data} holds {stored}-token samples but the run's "
                               f"max_seq_len is {seq}: prepare the data for {seq} or --set max_seq_len={stored}"))
    if run_tokens is None:
        out.append(CheckResult("data", INFO, f"{held}; run tokens unknown (pass --tokens): not compared"))
    elif size.tokens < run_tokens:
        out.append(CheckResult("data", PROBLEM, f"{held} but the run needs {run_tokens:,} tokens: it would repeat "
                               f"the data ({run_tokens / max(size.tokens, 1):,.2f} epochs)"))
    else:
        out.append(CheckResult("data", OK, f"{held} >= {run_tokens:,} run tokens"))
    if remote and size.bytes:
        out.append(_cache_check(config, size.bytes))
    return out


def _cache_check(config: dict | None, nbytes: int) -> CheckResult:
    """Free disk for the streaming cache of a remote dataset (streaming keeps every shard it read)."""
    local = (((config or {}).get("train_loader") or {}).get("dataset") or {}).get("local")
    where = _existing_ancestor(Path(local or tempfile.gettempdir()).resolve())
    free = shutil.disk_usage(where).free
    detail = f"{_gb(free)} free at {where}; the streaming cache of the remote data fills up to {_gb(nbytes)}"
    return CheckResult("disk (data cache)", OK if free >= nbytes else PROBLEM, detail)


# --- credentials --------------------------------------------------------------------------------


def credentials_for(uri: str) -> tuple[bool | None, str]:
    """(found, what) for the object store of ``uri``: True/False for s3, gs and oci, None for
    schemes this check does not know. Reads the environment and home config files only."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else uri.split(":", 1)[0].lower()
    env = os.environ
    home = Path.home()
    if scheme == "s3":
        shared = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", home / ".aws" / "credentials"))
        for ok, what in ((env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"), "AWS_ACCESS_KEY_ID"),
                         (env.get("AWS_PROFILE"), f"AWS_PROFILE={env.get('AWS_PROFILE')}"),
                         (env.get("AWS_WEB_IDENTITY_TOKEN_FILE"), "AWS_WEB_IDENTITY_TOKEN_FILE"),
                         (shared.is_file(), str(shared))):
            if ok:
                return True, what
        return False, ("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or "
                       "write ~/.aws/credentials (an instance role is not visible to this check)")
    if scheme == "gs":
        app = env.get("GOOGLE_APPLICATION_CREDENTIALS")
        if app and Path(app).is_file():
            return True, f"GOOGLE_APPLICATION_CREDENTIALS={app}"
        if env.get("GCS_KEY") and env.get("GCS_SECRET"):
            return True, "GCS_KEY/GCS_SECRET"
        why = f"GOOGLE_APPLICATION_CREDENTIALS={app} is not a file" if app else "no GCS credentials"
        return False, f"{why}: set GOOGLE_APPLICATION_CREDENTIALS to a key file, or GCS_KEY and GCS_SECRET"
    if scheme == "oci":
        config = home / ".oci" / "config"
        return (True, str(config)) if config.is_file() else (False, "no OCI config: write ~/.oci/config (`oci setup config`)")
    return None, f"{scheme}:// credentials are not checked"


def _credential_checks(config: dict | None, data: str | None, backend: str | None) -> list[CheckResult]:
    from train.config import is_remote

    uris = []
    save = (config or {}).get("save_folder")
    if save and is_remote(str(save)):
        uris.append(("save folder", str(save)))
    if data and is_remote(data):
        uris.append(("data", data))
    if not uris:
        return [CheckResult("credentials", INFO, "no remote save folder or data: no object-store credentials needed")]
    out = []
    for what, uri in uris:
        name = f"credentials ({what})"
        if backend == "mcli":
            out.append(CheckResult(name, INFO, f"{uri}: on the MosaicML platform credentials come from mcli secrets "
                                   "(`mcli get secrets`), not this shell: not checked"))
            continue
        found, detail = credentials_for(uri)
        status = INFO if found is None else OK if found else PROBLEM
        out.append(CheckResult(name, status, f"{uri}: {detail}"))
    return out


# --- backends -----------------------------------------------------------------------------------


def slurm_reachable() -> tuple[bool, str]:
    """(True, partitions) when ``sinfo`` and ``squeue`` are on PATH and answer within 20 s."""
    for tool in ("sinfo", "squeue"):
        if shutil.which(tool) is None:
            return False, f"{tool} not on PATH"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20)
        queue = subprocess.run(["squeue", "-h", "-u", str(os.getuid())], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"sinfo/squeue did not answer ({type(exc).__name__})"
    for tool, p in (("sinfo", proc), ("squeue", queue)):
        if p.returncode != 0:
            first = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[0]
            return False, f"{tool} failed: {first}"
    parts = sorted({p.strip() for p in proc.stdout.split() if p.strip()})
    return True, f"sinfo and squeue answer; partitions: {', '.join(parts) or 'none listed'}"


def mcli_reachable() -> tuple[bool, str]:
    """(True, what) when mcli is importable and an API key is configured (MOSAICML_API_KEY or
    mcli's config file). The key is not tried against the platform."""
    import importlib.util

    if importlib.util.find_spec("mcli") is None:
        return False, "mcli not installed (pip install mosaicml-cli)"
    if os.environ.get("MOSAICML_API_KEY"):
        return True, "mcli installed, MOSAICML_API_KEY set (not tried against the platform)"
    try:
        from mcli.config import MCLI_CONFIG_PATH, MCLIConfig

        key = MCLIConfig.load_config().api_key
    except Exception as exc:  # noqa: BLE001 - a broken mcli config is one line
        return False, f"cannot read mcli's config: {type(exc).__name__}"
    if key:
        return True, f"mcli installed, API key in {MCLI_CONFIG_PATH} (not tried against the platform)"
    return False, "mcli installed but no API key: `mcli set api-key ...` or set MOSAICML_API_KEY"


def _backend_checks(backend: str | None, cheap: bool = False) -> list[CheckResult]:
    if backend == "local":
        return [CheckResult("backend", OK, "local: trains on this node")]
    if backend == "slurm":
        ok, detail = slurm_reachable()
        return [CheckResult("backend", OK if ok else PROBLEM, f"slurm: {detail}")]
    if backend == "mcli":
        ok, detail = mcli_reachable()
        return [CheckResult("backend", OK if ok else PROBLEM, f"mcli: {detail}")]
    if cheap:
        return [CheckResult("backend", NOT_CHECKED, "no --backend given: Slurm and mcli not probed (cheap)")]
    slurm, mcli = slurm_reachable()[1], mcli_reachable()[1]
    return [CheckResult("backend", INFO, f"no --backend given: slurm: {slurm}; mcli: {mcli}")]


def problems(results: list[CheckResult]) -> list[str]:
    """One line per problem: ``name: detail``."""
    return [f"{r.name}: {r.detail}" for r in results if r.status == PROBLEM]


def _trains_elsewhere(backend: str | None) -> bool:
    """True when the backend trains on other nodes (Slurm, mcli): this node's GPUs are not the run's."""
    if backend is None:
        return False
    from train.backends import get_backend

    return not get_backend(backend).trains_here
