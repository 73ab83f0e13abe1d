"""The paper's facts, typed once from the paper's text, asserted on what the project ships and writes.

Every constant below is typed from Sardana et al. (ICML 2024, arXiv 2401.00448v2; the text is
`shared/paper/`), never read back from our YAMLs or code. The checks run on:

(a) every zoo YAML in ``yamls/models/`` (the six Table 4 sizes; the CPU models only keep the recipe),
(b) every run config that ``beyond sweep plan paper`` writes (the 47 runs of Sec. 3 / Table 4),
(c) the run config that ``beyond plan`` writes,
(d) the Appendix B / Sec. 6 cost constants of the cost model (and the CLI defaults that repeat them).

Each fact lives in a small checker (``check_recipe``, ``check_shape``, ``check_run`` ...); the
``test_checker_catches_*`` meta-tests mutate copies of the loaded artefacts one fact at a time and
require the checker to raise, so no checker is vacuous. The project is judged by mutation testing:
changing any single paper fact in the YAMLs or the code must make a test here fail.

Where the paper is silent or ambiguous, the comment says so and the test asserts what the project
documents (docs/model-zoo.md, docs/sweeps.md); such facts are marked "PROJECT-DOCUMENTED".
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import REPO, require_train_extra, run_cli

# =================================================================================================
# The paper's facts (typed from the paper; section cited on each)
# =================================================================================================

# Table 4 ("Model Training Configurations", Appendix C), one row per size:
# name: (Params as printed, d_model, n_heads, n_layers, learning rate, batch size, tokens/parameter)
TABLE4: dict[str, tuple[str, int, int, int, float, int, tuple[int, ...]]] = {
    "150M": ("151M", 768, 12, 12, 4.603e-4, 160, (10, 15, 20, 30, 50, 75, 100, 250, 500, 1000, 5000, 10000)),
    "370M": ("367M", 1024, 16, 24, 3.453e-4, 320, (10, 15, 20, 30, 50, 75, 100, 250, 500, 1000)),
    "750M": ("749M", 1536, 12, 24, 2.302e-4, 480, (10, 15, 20, 30, 50, 75, 100, 250, 500)),
    "1.3B": ("1.26B", 2048, 16, 24, 1.726e-4, 960, (10, 15, 20, 30, 50, 75, 100, 250)),
    "2.5B": ("2.46B", 2560, 20, 32, 1.381e-4, 960, (10, 15, 20, 50, 100, 250, 500)),
    "6B": ("6.05B", 4096, 32, 32, 8.632e-5, 960, (20,)),
}
# Table 4, footnote 3: "The 10,000 token/parameter 150M model was trained with batch size 960 due to
# compute issues." (The paper's trainingresults.csv says 160 for that row; the text wins, see
# docs/gauntlet.md "The CSV and Table 4 disagree on one batch size".)
BATCH_OVERRIDES = {("150M", 10000): 960}
# Sec. 3: "we train 47 models"
N_PAPER_RUNS = 47

# Appendix C, the recipe every model was trained with:
LION_BETAS = (0.9, 0.95)  # "the Lion optimizer (beta1 = 0.9, beta2 = 0.95)"
# "with weight decay equal to the learning rate". Ambiguous for a decoupled optimizer (Composer's
# DecoupledLionW scales the decay by lr / initial lr); the project documents weight_decay = lr in
# the llm-foundry config (docs/model-zoo.md), which is what we assert.
ALPHA_F = 0.1  # "cosine warmup (alpha_f = 0.1)"
# "with a duration equal to 3 times the number of model parameters": the unit is not stated; the
# project documents tokens (warmup = 3 N tokens, rounded to whole batches: docs/model-zoo.md).
WARMUP_TOKENS_PER_PARAM = 3
CLIPPING_TYPE, CLIPPING_THRESHOLD = "norm", 1.0  # "norm gradient clipping (threshold = 1)"
MAX_SEQ_LEN = 4096  # "A maximum sequence length of 4096 tokens was used."
# "All models were trained with ALiBi, Grouped Query Attention": the paper gives no KV-head count.
# PROJECT-DOCUMENTED: kv_n_heads = n_heads / 4, the only grouping (with vocab 100,352) that
# reproduces Table 4's Params column (docs/model-zoo.md). ALiBi means no learned position embeddings.
GQA_GROUP = 4
# "For all experimental results in this work, we use the smoothed final training loss over the
# last ten batches"
SMOOTHING_BATCHES = 10
# Batch size: Table 4 gives a bare number; PROJECT-DOCUMENTED as sequences of max_seq_len tokens
# (the YAML comments and docs/model-zoo.md: max_duration = ceil(ratio x N / (batch x seq)) batches).

# Sec. 2 (Eq. 2-3): "6N per training token and 2N per inference token"
TRAIN_FLOPS_PER_TOKEN_PER_PARAM, INFERENCE_FLOPS_PER_TOKEN_PER_PARAM = 6, 2
# Appendix A: "A=406.4, B=410.7, E=1.69, alpha=0.336, and beta=0.283" (the Chinchilla set used)
CHINCHILLA = {"A": 406.4, "B": 410.7, "E": 1.69, "alpha": 0.336, "beta": 0.283}
# Table 1 (Sec. 5), fits on the paper's runs: data subset -> (alpha, beta, A, B, E)
TABLE1 = {
    "sardana-le100": (0.08, 0.13, 7.199, 25.97, 0.17),
    "sardana-le250": (0.13, 0.16, 14.23, 39.54, 0.98),
    "sardana-le500": (0.13, 0.16, 17.07, 35.80, 0.95),
    "sardana-all": (0.18, 0.24, 33.66, 138.9, 1.45),
}

# Appendix B.3 ("GPU Details"): "an A100-40GB costs USD $1.10/hr and an A100-80GB costs $1.50/hr
# on Lambda Labs ... Both variants have a peak performance of 3.12e14 dense FP16/BF16 operations and
# 6.24e14 INT8 operations per second"
A100_PRICE = {"a100-40": 1.10, "a100-80": 1.50}
A100_PEAK_BF16 = A100_PEAK_FP16 = 3.12e14
A100_PEAK_INT8 = 6.24e14
# Sec. 6 (Fig. 6 caption) and Appendix B.2: "training with 50% MFU, inference input with 50% MFU,
# generation with 1% MFU. Inference requests have 70 input tokens and 215 output tokens each ...
# training occurs on A100-80GB and inference occurs on A100-40GB accelerators after INT8
# quantization". Training precision is not stated: bf16 (the dense FP16/BF16 peak of B.3) is what
# the project documents.
TRAIN_MFU, PREFILL_MFU, GENERATION_MFU = 0.5, 0.5, 0.01
INPUT_TOKENS, OUTPUT_TOKENS = 70, 215
TRAIN_GPU, INFERENCE_GPU, INFERENCE_DTYPE, TRAIN_DTYPE = "a100-80", "a100-40", "int8", "bf16"

# NOT IN THE PAPER: the H100 row of the cost model. Peak dense rates from NVIDIA's H100 SXM
# datasheet (989.4 TFLOP/s BF16/FP16, 1,979 TOPS FP8/INT8 without sparsity); the $2.00/h price is
# PROJECT-DOCUMENTED ("H100 from the authors' calculator", scaling/optimal.py).
H100_PEAK_BF16, H100_PEAK_INT8, H100_PRICE = 9.894e14, 1.979e15, 2.00

# PROJECT-DOCUMENTED naming: Table 4 name -> zoo file stem (docs/model-zoo.md)
ZOO = {"150M": "mpt-150m", "370M": "mpt-370m", "750M": "mpt-750m", "1.3B": "mpt-1.3b", "2.5B": "mpt-2.5b",
       "6B": "mpt-6b"}
SIZE_OF = {stem: size for size, stem in ZOO.items()}
CPU_MODELS = ("mpt-tiny", "mpt-mini")  # not the paper's: only the recipe is asserted on them

MODELS_DIR = REPO / "yamls" / "models"
MISSING = object()


# =================================================================================================
# Small helpers
# =================================================================================================

def get(cfg, dotted: str):
    """cfg["a"]["b"]... or MISSING (never raises: a missing key must be an AssertionError)."""
    node = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return MISSING
        node = node[key]
    return node


def printed_params(params: float, printed: str) -> str:
    """``params`` written the way Table 4 writes ``printed`` (same unit, same decimals)."""
    unit = printed[-1]
    decimals = len(printed[:-1].split(".")[1]) if "." in printed else 0
    return f"{params / {'M': 1e6, 'B': 1e9}[unit]:.{decimals}f}{unit}"


def parse_printed(printed: str) -> float:
    return float(printed[:-1]) * {"M": 1e6, "B": 1e9}[printed[-1]]


def batches(value) -> int | None:
    m = re.fullmatch(r"(\d+)ba", str(value))
    return int(m.group(1)) if m else None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def table4_batch_of(size: str, ratio: float | None = None) -> int:
    return BATCH_OVERRIDES.get((size, ratio), TABLE4[size][5])


def table4_learning_rate(params: float) -> float:
    """Table 4's learning rate at ``params``, log-log interpolated between its rows (extrapolated
    from the end rows). The interpolation is PROJECT-DOCUMENTED (scaling/shape.py, `beyond plan`);
    the rows are the paper's."""
    rows = sorted((parse_printed(r[0]), r[4]) for r in TABLE4.values())
    xs, ys = [math.log(p) for p, _ in rows], [math.log(lr) for _, lr in rows]
    x = math.log(params)
    i = next((k for k in range(len(xs) - 1) if x <= xs[k + 1]), len(xs) - 2)
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return math.exp(ys[i] + t * (ys[i + 1] - ys[i]))


def table4_batch_nearest(params: float) -> int:
    """Batch size of the Table 4 row nearest in log params (PROJECT-DOCUMENTED rule of `beyond plan`)."""
    row = min(TABLE4.values(), key=lambda r: abs(math.log(parse_printed(r[0]) / params)))
    return row[5]


# =================================================================================================
# Checkers: each raises AssertionError when one fact differs from the paper
# =================================================================================================

def check_recipe(cfg: dict) -> None:
    """Appendix C's recipe (every model, the CPU ones included): MPT, ALiBi, GQA (n_heads/4 KV heads),
    Lion (0.9, 0.95) with weight decay = learning rate, cosine warmup alpha_f 0.1, norm clipping at 1."""
    assert get(cfg, "model.name") == "mpt_causal_lm", "MPT-style model"
    assert get(cfg, "optimizer.name") == "decoupled_lionw", "Lion optimizer"
    betas = get(cfg, "optimizer.betas")
    assert isinstance(betas, (list, tuple)) and tuple(betas) == LION_BETAS, f"Lion betas {betas}"
    lr = get(cfg, "optimizer.lr")
    assert is_number(lr) and lr > 0, f"learning rate {lr}"
    assert get(cfg, "optimizer.weight_decay") == lr, "weight decay equal to the learning rate"
    assert get(cfg, "scheduler.name") == "cosine_with_warmup", "cosine schedule with warmup"
    assert get(cfg, "scheduler.alpha_f") == ALPHA_F, "alpha_f"
    assert get(cfg, "algorithms.gradient_clipping.clipping_type") == CLIPPING_TYPE, "norm gradient clipping"
    assert get(cfg, "algorithms.gradient_clipping.clipping_threshold") == CLIPPING_THRESHOLD, "clipping threshold"
    assert get(cfg, "model.attn_config.alibi") is True, "ALiBi"
    assert get(cfg, "model.learned_pos_emb") is False, "ALiBi: no learned position embeddings"
    assert get(cfg, "model.attn_config.attn_type") == "grouped_query_attention", "grouped-query attention"
    kv, heads = get(cfg, "model.attn_config.kv_n_heads"), get(cfg, "model.n_heads")
    assert isinstance(kv, int) and isinstance(heads, int) and kv * GQA_GROUP == heads, f"GQA kv {kv} of {heads}"


def check_seq_len(cfg: dict) -> None:
    """Appendix C: maximum sequence length 4096 (model, data and the batch arithmetic)."""
    assert get(cfg, "max_seq_len") == MAX_SEQ_LEN, "max_seq_len"
    assert get(cfg, "model.max_seq_len") == MAX_SEQ_LEN, "model.max_seq_len"
    assert get(cfg, "train_loader.dataset.max_seq_len") == MAX_SEQ_LEN, "dataset max_seq_len"


def check_shape(cfg: dict, size: str, batch: int | None = None) -> None:
    """Table 4's row for ``size``: d_model, n_heads, n_layers, learning rate, batch size."""
    _printed, d_model, n_heads, n_layers, lr, default_batch, _ratios = TABLE4[size]
    assert get(cfg, "model.d_model") == d_model, f"{size} d_model"
    assert get(cfg, "model.n_heads") == n_heads, f"{size} n_heads"
    assert get(cfg, "model.n_layers") == n_layers, f"{size} n_layers"
    got_lr = get(cfg, "optimizer.lr")
    assert is_number(got_lr) and got_lr == pytest.approx(lr, rel=1e-12), f"{size} learning rate {got_lr}"
    assert get(cfg, "global_train_batch_size") == (default_batch if batch is None else batch), f"{size} batch size"


def check_params(params, size: str) -> None:
    """The computed N rounds to Table 4's printed Params (same unit and decimals)."""
    printed = TABLE4[size][0]
    assert is_number(params) and printed_params(params, printed) == printed, f"{size}: {params} is not {printed}"


def check_zoo_model(cfg: dict, size: str, params) -> None:
    """(a) A Table 4 zoo YAML: recipe, sequence length, shape, Params; warmup/duration left to `beyond train`."""
    check_recipe(cfg)
    check_seq_len(cfg)
    check_shape(cfg, size)
    check_params(params, size)
    assert get(cfg, "variables.paper_params") == TABLE4[size][0], "paper_params note"


def check_run(cfg: dict, size: str, ratio: float, params) -> None:
    """(b) One run of the paper grid: Table 4 row (with the footnote's batch), the recipe, and the
    run length / warmup in batches: max_duration = ceil(ratio N / (batch x 4096)) and
    t_warmup = round(3 N / (batch x 4096)); N is the computed params, checked against Table 4."""
    check_recipe(cfg)
    check_seq_len(cfg)
    batch = table4_batch_of(size, ratio)
    check_shape(cfg, size, batch)
    check_params(params, size)
    record = get(cfg, "callbacks.run_record")
    assert isinstance(record, dict), "run_record callback"
    assert record.get("params") == params, "run record params"
    assert record.get("window", SMOOTHING_BATCHES) == SMOOTHING_BATCHES, "smoothed over the last ten batches"
    assert get(record, "run_info.tokens_per_param_requested") == ratio, "tokens/param"
    assert get(record, "run_info.allow_repeat") is False, "single epoch (Sec. 3: data is not repeated)"
    batch_tokens = batch * MAX_SEQ_LEN
    want_batches = math.ceil(Fraction(str(ratio)) * params / batch_tokens)
    assert batches(get(cfg, "max_duration")) == want_batches, f"max_duration {get(cfg, 'max_duration')}"
    want_warmup = round(Fraction(WARMUP_TOKENS_PER_PARAM * params, batch_tokens))
    assert batches(get(cfg, "scheduler.t_warmup")) == want_warmup, f"t_warmup {get(cfg, 'scheduler.t_warmup')}"


def check_estimates(row: dict, params, tokens) -> None:
    """Plan estimates at the paper's training settings (App. B.3, Sec. 6): 6ND FLOPs on A100-80GB,
    3.12e14 bf16 peak at 50% MFU, $1.50 per GPU-hour."""
    flops = TRAIN_FLOPS_PER_TOKEN_PER_PARAM * params * tokens
    assert row.get("flops") == pytest.approx(flops, rel=1e-9), "6ND training FLOPs"
    gpu_hours = flops / (A100_PEAK_BF16 * TRAIN_MFU * 3600)
    assert row.get("gpu_hours") == pytest.approx(gpu_hours, rel=1e-9), "GPU-hours at 3.12e14 x 50% MFU"
    assert row.get("dollars") == pytest.approx(gpu_hours * A100_PRICE["a100-80"], rel=1e-9), "$1.50/GPU-hour"


def check_grid(pairs: list[tuple[str, float]]) -> None:
    """(b) The sweep is Table 4's grid: 47 (size, tokens/param) runs, each once."""
    want = Counter((size, float(r)) for size, row in TABLE4.items() for r in row[6])
    assert sum(want.values()) == N_PAPER_RUNS  # the table itself adds up to Sec. 3's 47
    assert Counter(pairs) == want, f"grid differs: {sorted((Counter(pairs) - want) + (want - Counter(pairs)))}"


def check_planned(cfg: dict, planned: dict) -> None:
    """(c) The run `beyond plan` writes: the recipe, 4096 tokens, GQA n_heads/4, warmup 3N tokens,
    duration in whole batches, Table 4's learning rate (interpolated) and batch size (nearest row)."""
    check_recipe(cfg)
    check_seq_len(cfg)
    params = planned.get("params")
    assert is_number(params) and params > 0
    assert get(cfg, "callbacks.run_record.params") == params, "run record params"
    batch = get(cfg, "global_train_batch_size")
    assert batch == table4_batch_nearest(params) == planned.get("batch_size"), f"batch size {batch}"
    lr = get(cfg, "optimizer.lr")
    assert is_number(lr) and lr == pytest.approx(table4_learning_rate(params), rel=1e-9), f"learning rate {lr}"
    assert planned.get("kv_n_heads") == get(cfg, "model.attn_config.kv_n_heads")
    batch_tokens = batch * MAX_SEQ_LEN
    want_warmup = round(Fraction(WARMUP_TOKENS_PER_PARAM * params, batch_tokens))
    assert batches(get(cfg, "scheduler.t_warmup")) == want_warmup, "warmup 3 x params tokens"
    ratio = get(cfg, "callbacks.run_record.run_info.tokens_per_param_requested")
    assert is_number(ratio) and ratio > 0
    n_batches = batches(get(cfg, "max_duration"))
    assert n_batches == math.ceil(Fraction(str(ratio)) * params / batch_tokens), "max_duration"
    assert planned.get("tokens") == n_batches * batch_tokens, "tokens = batches x batch x 4096"
    assert get(cfg, "callbacks.run_record.run_info.allow_repeat") is False, "single epoch"
    check_estimates(planned, params, planned["tokens"])


def check_cost_tables(peak: dict, price: dict) -> None:
    """(d) The GPU table: App. B.3's A100 prices and peaks (both variants alike), and the H100 row
    (NOT IN THE PAPER: NVIDIA datasheet / project-documented price)."""
    for gpu in ("a100-40", "a100-80"):
        rates = peak.get(gpu, {})
        assert rates.get("bf16") == A100_PEAK_BF16, f"{gpu} bf16 peak"
        assert rates.get("fp16") == A100_PEAK_FP16, f"{gpu} fp16 peak"
        assert rates.get("int8") == A100_PEAK_INT8, f"{gpu} int8 peak"
        assert price.get(gpu) == A100_PRICE[gpu], f"{gpu} price"
    h100 = peak.get("h100", {})
    assert is_number(h100.get("bf16")) and h100["bf16"] == pytest.approx(H100_PEAK_BF16, rel=1e-3), "H100 bf16"
    assert is_number(h100.get("int8")) and h100["int8"] == pytest.approx(H100_PEAK_INT8, rel=1e-3), "H100 int8"
    assert price.get("h100") == H100_PRICE, "H100 price (project-documented)"


def check_cost_defaults(settings, input_tokens, output_tokens) -> None:
    """(d) Eq. 6's default settings are Sec. 6 / App. B.2's, and the derived rates follow from B.3's numbers."""
    assert settings.train_gpu == TRAIN_GPU and settings.train_dtype == TRAIN_DTYPE
    assert settings.inference_gpu == INFERENCE_GPU and settings.inference_dtype == INFERENCE_DTYPE
    assert settings.train_mfu == TRAIN_MFU and settings.prefill_mfu == PREFILL_MFU
    assert settings.generation_mfu == GENERATION_MFU
    assert settings.train_price == A100_PRICE[TRAIN_GPU] and settings.inference_price == A100_PRICE[INFERENCE_GPU]
    k_tr = A100_PRICE["a100-80"] / (3600 * A100_PEAK_BF16 * TRAIN_MFU)
    assert settings.dollars_per_train_flop == pytest.approx(k_tr, rel=1e-12), "dollars per training FLOP"
    k_inf = A100_PRICE["a100-40"] / (3600 * A100_PEAK_INT8)
    assert settings.dollars_per_inference_op == pytest.approx(k_inf, rel=1e-12), "dollars per INT8 op"
    assert input_tokens == INPUT_TOKENS and output_tokens == OUTPUT_TOKENS, "70 input / 215 output tokens"


def check_cli_cost_defaults(ns: dict) -> None:
    """(d) `beyond optimize cost` defaults are the paper's settings."""
    assert ns.get("train_gpu") == TRAIN_GPU and ns.get("train_dtype") == TRAIN_DTYPE
    assert ns.get("inference_gpu") == INFERENCE_GPU and ns.get("inference_dtype") == INFERENCE_DTYPE
    assert ns.get("train_mfu") == TRAIN_MFU and ns.get("prefill_mfu") == PREFILL_MFU
    assert ns.get("generation_mfu") == GENERATION_MFU
    assert ns.get("input_tokens") == INPUT_TOKENS and ns.get("output_tokens") == OUTPUT_TOKENS
    assert ns.get("train_price") is None and ns.get("inference_price") is None, "prices default to App. B.3's"


def check_cli_training_defaults(ns: dict) -> None:
    """`beyond sweep plan` / `beyond plan` estimate at the paper's training settings."""
    assert ns.get("gpu") == TRAIN_GPU and ns.get("mfu") == TRAIN_MFU and ns.get("price") is None


def check_coefficients(named: dict) -> None:
    """Appendix A's Chinchilla set and Table 1's four fits."""
    c = named.get("chinchilla")
    assert c is not None and {k: getattr(c, k) for k in CHINCHILLA} == CHINCHILLA, "Appendix A coefficients"
    for name, (alpha, beta, a, b, e) in TABLE1.items():
        c = named.get(name)
        assert c is not None and (c.alpha, c.beta, c.A, c.B, c.E) == (alpha, beta, a, b, e), f"Table 1 {name}"


# =================================================================================================
# (a) the zoo YAMLs
# =================================================================================================

def _zoo_params(cfg: dict):
    """The project's N of a zoo model section; None (which check_params rejects) if it has none."""
    from scaling.errors import InputError
    from train.zoo import params_of

    try:
        return params_of(cfg.get("model") or {})
    except InputError:
        return None


def test_zoo_holds_table4_and_cpu_models():
    stems = sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))
    assert set(ZOO.values()) <= set(stems)
    assert set(stems) - set(ZOO.values()) <= set(CPU_MODELS), "an unexpected zoo model"


@pytest.mark.parametrize("size", list(TABLE4))
def test_zoo_yaml_is_table4_row(size):
    cfg = load(MODELS_DIR / f"{ZOO[size]}.yaml")
    check_zoo_model(cfg, size, _zoo_params(cfg))


@pytest.mark.parametrize("stem", CPU_MODELS)
def test_cpu_models_keep_the_recipe(stem):
    path = MODELS_DIR / f"{stem}.yaml"
    if not path.is_file():
        pytest.skip(f"{stem} is not in the zoo")
    cfg = load(path)
    check_recipe(cfg)
    assert get(cfg, "variables.paper_params") is None  # not a paper model


def test_zoo_lookup_tables_are_table4():
    """train.zoo's name and Params tables (`beyond plan` picks its template YAML with them)."""
    from train.zoo import PAPER_PARAMS, PAPER_SIZES, model_yaml

    assert PAPER_SIZES == ZOO
    assert PAPER_PARAMS == {size: parse_printed(row[0]) for size, row in TABLE4.items()}
    for size, stem in ZOO.items():
        assert model_yaml(size) == MODELS_DIR / f"{stem}.yaml"


def test_plan_shape_table_is_table4():
    """scaling.shape's Table 4 copy: the learning rate and batch size `beyond plan` gives at each row."""
    from scaling.shape import batch_size, learning_rate

    for size, (printed, *_rest, lr, batch, _ratios) in TABLE4.items():
        n = parse_printed(printed)
        assert learning_rate(n) == pytest.approx(lr, rel=1e-9), size
        assert batch_size(n) == batch, size


# =================================================================================================
# (b) the paper sweep: 47 generated run configs
# =================================================================================================

@pytest.fixture(scope="module")
def paper_sweep(tmp_path_factory) -> dict:
    require_train_extra()
    out = tmp_path_factory.mktemp("paper-facts-sweep")
    proc = run_cli("sweep", "plan", "paper", "--data", "s3://my-bucket/mds", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = json.loads(proc.stdout)
    configs = {row["run"]: load(out / row["run"] / "config.yaml") for row in plan["runs"]}
    return {"plan": plan, "configs": configs, "dir": out}


def _run_size(row: dict) -> str:
    return SIZE_OF[row["model"]]


def test_sweep_grid_is_table4(paper_sweep):
    rows = paper_sweep["plan"]["runs"]
    check_grid([(_run_size(r), float(r["tokens_per_param"])) for r in rows])
    assert paper_sweep["plan"]["total"]["runs"] == N_PAPER_RUNS
    written = sorted(p.parent.name for p in paper_sweep["dir"].glob("*/config.yaml"))
    assert written == sorted(r["run"] for r in rows)


def test_sweep_run_configs_are_paper_runs(paper_sweep):
    for row in paper_sweep["plan"]["runs"]:
        cfg = paper_sweep["configs"][row["run"]]
        size, ratio = _run_size(row), float(row["tokens_per_param"])
        check_run(cfg, size, ratio, row["params"])
        # the plan row agrees with its config
        assert row["global_batch_size"] == table4_batch_of(size, ratio) and row["max_seq_len"] == MAX_SEQ_LEN
        assert row["batches"] == batches(cfg["max_duration"])
        assert row["tokens"] == row["batches"] * row["global_batch_size"] * MAX_SEQ_LEN
        check_estimates(row, row["params"], row["tokens"])


def test_footnote_run_uses_batch_960(paper_sweep):
    (row,) = [r for r in paper_sweep["plan"]["runs"] if (_run_size(r), r["tokens_per_param"]) == ("150M", 10000)]
    cfg = paper_sweep["configs"][row["run"]]
    assert cfg["global_train_batch_size"] == BATCH_OVERRIDES[("150M", 10000)]
    # its warmup is still 3 N tokens, counted in 960-sequence batches
    assert batches(cfg["scheduler"]["t_warmup"]) == round(3 * row["params"] / (960 * MAX_SEQ_LEN))


def test_sweep_plan_csv_matches(paper_sweep):
    import csv

    rows = list(csv.DictReader((paper_sweep["dir"] / "plan.csv").open()))
    assert len(rows) == N_PAPER_RUNS
    for r in rows:
        size = SIZE_OF[r["model"]]
        check_params(int(r["params"]), size)
        assert int(r["global_batch_size"]) == table4_batch_of(size, float(r["tokens_per_param"]))
        assert int(r["max_seq_len"]) == MAX_SEQ_LEN


# =================================================================================================
# (c) `beyond plan`
# =================================================================================================

@pytest.fixture(scope="module")
def planned(tmp_path_factory) -> dict:
    require_train_extra()
    out = tmp_path_factory.mktemp("paper-facts-plan")
    proc = run_cli("plan", "--like-params", "13B", "--inference-tokens", "2T", "--coefficients", "sardana-all",
                   "--data", "s3://bucket/mds", "--out", str(out), "--backend", "slurm", "--partition", "a100", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    return {"result": result, "config": load(Path(result["run_config"])), "model": load(Path(result["model_yaml"]))}


def test_planned_run_has_paper_recipe(planned):
    check_planned(planned["config"], planned["result"]["planned"])


def test_planned_model_yaml_has_paper_recipe(planned):
    check_recipe(planned["model"])
    check_seq_len(planned["model"])


# =================================================================================================
# (d) the cost model's constants (Appendix B.2/B.3, Sec. 6), and Sec. 2 / App. A / Table 1
# =================================================================================================

def test_gpu_table_is_appendix_b3():
    from scaling.optimal import PEAK_FLOPS, PRICE_PER_HOUR

    check_cost_tables(PEAK_FLOPS, PRICE_PER_HOUR)


def test_cost_settings_default_to_sec6():
    from scaling.optimal import (
        PAPER_INPUT_TOKENS,
        PAPER_OUTPUT_TOKENS,
        CostSettings,
        InferenceDemand,
        train_token_equivalent,
    )

    settings = CostSettings()
    check_cost_defaults(settings, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)
    # one request's training-token equivalent, from the paper's numbers alone (docs/paper-tables.md: 3,967.3)
    q = (A100_PRICE["a100-40"] / A100_PEAK_INT8) / (A100_PRICE["a100-80"] / (A100_PEAK_BF16 * TRAIN_MFU)) * (
        INPUT_TOKENS / PREFILL_MFU + OUTPUT_TOKENS / GENERATION_MFU)
    got = train_token_equivalent(settings, InferenceDemand(1.0, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS))
    assert float(got) == pytest.approx(q, rel=1e-12)


def test_cli_defaults_are_the_papers():
    from beyond.cli import build_parser

    parser = build_parser()
    check_cli_cost_defaults(vars(parser.parse_args(["optimize", "cost", "--like-params", "7B", "--requests", "1B"])))
    check_cli_training_defaults(vars(parser.parse_args(["sweep", "plan", "paper"])))
    plan_ns = vars(parser.parse_args(["plan", "--like-params", "7B", "--inference-tokens", "1T", "--data", "x"]))
    check_cli_training_defaults(plan_ns)
    assert plan_ns["input_tokens"] == INPUT_TOKENS and plan_ns["output_tokens"] == OUTPUT_TOKENS


def test_sweep_hardware_defaults_are_the_papers():
    from train.sweep import Hardware

    hw = Hardware()
    assert hw.gpu == TRAIN_GPU and hw.dtype == TRAIN_DTYPE and hw.mfu == TRAIN_MFU
    assert hw.flops_per_gpu_hour == pytest.approx(A100_PEAK_BF16 * TRAIN_MFU * 3600, rel=1e-12)
    assert hw.dollars_per_gpu_hour == A100_PRICE["a100-80"]


def test_flops_per_token_are_sec2():
    from scaling.law import INFERENCE_FLOPS_PER_PARAM_TOKEN, TRAIN_FLOPS_PER_PARAM_TOKEN, training_flops
    from scaling.optimal import total_flops

    assert TRAIN_FLOPS_PER_PARAM_TOKEN == TRAIN_FLOPS_PER_TOKEN_PER_PARAM
    assert INFERENCE_FLOPS_PER_PARAM_TOKEN == INFERENCE_FLOPS_PER_TOKEN_PER_PARAM
    assert float(training_flops(7e9, 1e12)) == pytest.approx(6 * 7e9 * 1e12, rel=1e-15)
    assert float(total_flops(7e9, 1e12, 2e12)) == pytest.approx(6 * 7e9 * 1e12 + 2 * 7e9 * 2e12, rel=1e-15)


def test_coefficient_sets_are_appendix_a_and_table1():
    from scaling.coefficients import NAMED_SETS

    check_coefficients(NAMED_SETS)


def test_loss_smoothing_window_is_ten():
    require_train_extra()
    import inspect

    from train.callback import RunRecordCallback

    assert inspect.signature(RunRecordCallback.__init__).parameters["window"].default == SMOOTHING_BATCHES


# =================================================================================================
# Meta-tests: every checker fails on a one-fact mutation of a real artefact
# =================================================================================================

def _set(path: str, value):
    def mutate(cfg):
        *parents, leaf = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        node[leaf] = value(node[leaf]) if callable(value) else value
    return mutate


def _delete(path: str):
    def mutate(cfg):
        *parents, leaf = path.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        del node[leaf]
    return mutate


def _both(*mutations):
    def mutate(cfg):
        for m in mutations:
            m(cfg)
    return mutate


def _ba(delta: int):
    return lambda v: f"{batches(v) + delta}ba"


RECIPE_MUTATIONS = {
    "lion beta1": _set("optimizer.betas", [0.95, 0.95]),
    "lion beta2": _set("optimizer.betas", [0.9, 0.99]),
    "adamw instead of lion": _set("optimizer.name", "decoupled_adamw"),
    "weight decay != lr": _set("optimizer.weight_decay", lambda v: v * 10),
    "weight decay 0": _set("optimizer.weight_decay", 0.0),
    "lr alone": _set("optimizer.lr", lambda v: v * 2),
    "alpha_f": _set("scheduler.alpha_f", 0.0),
    "linear schedule": _set("scheduler.name", "linear_decay_with_warmup"),
    "clipping threshold": _set("algorithms.gradient_clipping.clipping_threshold", 0.5),
    "clipping type": _set("algorithms.gradient_clipping.clipping_type", "adaptive"),
    "no clipping": _delete("algorithms.gradient_clipping"),
    "alibi off": _set("model.attn_config.alibi", False),
    "learned positions": _set("model.learned_pos_emb", True),
    "multi-head attention": _set("model.attn_config.attn_type", "multihead_attention"),
    "kv heads": _set("model.attn_config.kv_n_heads", lambda v: v * 2),
    "not mpt": _set("model.name", "hf_causal_lm"),
}
SEQ_MUTATIONS = {
    "max_seq_len": _set("max_seq_len", 2048),
    "model max_seq_len": _set("model.max_seq_len", 2048),
    "data max_seq_len": _set("train_loader.dataset.max_seq_len", 8192),
}
SHAPE_MUTATIONS = {
    "d_model": _set("model.d_model", lambda v: v + 128),
    # heads and KV heads doubled together, so GQA n_heads/4 and d_model % n_heads still hold
    "n_heads (and kv)": _both(_set("model.n_heads", lambda v: v * 2), _set("model.attn_config.kv_n_heads", lambda v: v * 2)),
    "n_layers": _set("model.n_layers", lambda v: v + 1),
    "lr and wd together": _both(_set("optimizer.lr", 1e-4), _set("optimizer.weight_decay", 1e-4)),
    "batch size": _set("global_train_batch_size", lambda v: v // 2),
}
RUN_MUTATIONS = {
    "warmup +1 batch": _set("scheduler.t_warmup", _ba(1)),
    "warmup -1 batch": _set("scheduler.t_warmup", _ba(-1)),
    "duration +1 batch": _set("max_duration", _ba(1)),
    "duration -1 batch": _set("max_duration", _ba(-1)),
    "record params": _set("callbacks.run_record.params", lambda v: v + 1),
    "smoothing window": _set("callbacks.run_record.window", 5),
    "repeat data": _set("callbacks.run_record.run_info.allow_repeat", True),
    "ratio": _set("callbacks.run_record.run_info.tokens_per_param_requested", lambda v: v * 2),
}


def _expect_fail(check, cfg, mutate, *args):
    mutated = copy.deepcopy(cfg)
    mutate(mutated)
    with pytest.raises(AssertionError):
        check(mutated, *args)


@pytest.mark.parametrize("name", list(RECIPE_MUTATIONS) + list(SEQ_MUTATIONS) + list(SHAPE_MUTATIONS))
def test_checker_catches_zoo_mutation(name):
    size = "1.3B"
    cfg = load(MODELS_DIR / f"{ZOO[size]}.yaml")
    check_zoo_model(cfg, size, _zoo_params(cfg))  # the unmutated artefact passes
    mutate = {**RECIPE_MUTATIONS, **SEQ_MUTATIONS, **SHAPE_MUTATIONS}[name]

    def check(c):  # params are recomputed from the mutated model, as the zoo test does
        check_zoo_model(c, size, _zoo_params(c))
    _expect_fail(check, cfg, mutate)


def test_checker_catches_zoo_params_and_note():
    cfg = load(MODELS_DIR / "mpt-750m.yaml")
    n = _zoo_params(cfg)
    with pytest.raises(AssertionError):
        check_zoo_model(cfg, "750M", n * 1.002)  # 748.8M -> 750M: Table 4 prints 749M
    _expect_fail(lambda c: check_zoo_model(c, "750M", n), cfg, _set("variables.paper_params", "750M"))
    _expect_fail(lambda c: check_zoo_model(c, "750M", _zoo_params(c)), cfg, _set("model.vocab_size", 50432))


@pytest.mark.parametrize("name", list(RECIPE_MUTATIONS))
def test_checker_catches_cpu_recipe_mutation(name):
    cfg = load(MODELS_DIR / "mpt-tiny.yaml")
    check_recipe(cfg)
    _expect_fail(check_recipe, cfg, RECIPE_MUTATIONS[name])


@pytest.mark.parametrize("name", list(RECIPE_MUTATIONS) + list(SEQ_MUTATIONS) + list(SHAPE_MUTATIONS)
                         + list(RUN_MUTATIONS) + ["footnote batch 160"])
def test_checker_catches_run_mutation(paper_sweep, name):
    mutations = {**RECIPE_MUTATIONS, **SEQ_MUTATIONS, **SHAPE_MUTATIONS, **RUN_MUTATIONS,
                 "footnote batch 160": _set("global_train_batch_size", 160)}
    for row in paper_sweep["plan"]["runs"]:
        if row["run"] not in ("mpt-150m-r10000", "mpt-2.5b-r50"):
            continue
        cfg = paper_sweep["configs"][row["run"]]
        args = (_run_size(row), float(row["tokens_per_param"]), row["params"])
        check_run(cfg, *args)
        if name == "footnote batch 160" and row["run"] != "mpt-150m-r10000":
            continue
        _expect_fail(check_run, cfg, mutations[name], *args)


def test_checker_catches_params_off_table4(paper_sweep):
    row = next(r for r in paper_sweep["plan"]["runs"] if r["run"] == "mpt-6b-r20")
    cfg = copy.deepcopy(paper_sweep["configs"]["mpt-6b-r20"])
    check_run(cfg, "6B", 20.0, row["params"])
    wrong = int(row["params"] * 1.01)
    cfg["callbacks"]["run_record"]["params"] = wrong
    with pytest.raises(AssertionError):
        check_run(cfg, "6B", 20.0, wrong)  # 6.11B is not Table 4's 6.05B
    with pytest.raises(AssertionError):
        check_estimates(row, row["params"] * 1.01, row["tokens"])


def test_checker_catches_grid_mutations(paper_sweep):
    pairs = [(_run_size(r), float(r["tokens_per_param"])) for r in paper_sweep["plan"]["runs"]]
    check_grid(pairs)
    for mutated in (
        pairs[:-1],  # a run dropped
        pairs + [("6B", 50.0)],  # a run added
        [("150M", 4000.0) if p == ("150M", 5000.0) else p for p in pairs],  # a ratio changed
        [("370M", 10000.0) if p == ("150M", 10000.0) else p for p in pairs],  # a run moved to another size
        pairs + [pairs[0]],  # a run duplicated
    ):
        with pytest.raises(AssertionError):
            check_grid(mutated)


PLAN_MUTATIONS = {
    **RECIPE_MUTATIONS, **SEQ_MUTATIONS,
    "lr and wd together": _both(_set("optimizer.lr", lambda v: v * 1.1), _set("optimizer.weight_decay", lambda v: v * 1.1)),
    "batch size": _set("global_train_batch_size", 480),
    "warmup +1 batch": _set("scheduler.t_warmup", _ba(1)),
    "warmup x2": _set("scheduler.t_warmup", lambda v: f"{2 * batches(v)}ba"),
    "duration +1 batch": _set("max_duration", _ba(1)),
    "repeat data": _set("callbacks.run_record.run_info.allow_repeat", True),
}


@pytest.mark.parametrize("name", list(PLAN_MUTATIONS))
def test_checker_catches_plan_mutation(planned, name):
    cfg, info = planned["config"], planned["result"]["planned"]
    check_planned(cfg, info)
    _expect_fail(lambda c: check_planned(c, info), cfg, PLAN_MUTATIONS[name])


def test_checker_catches_plan_estimate_mutations(planned):
    info = planned["result"]["planned"]
    for key, factor in (("gpu_hours", 1.01), ("dollars", 1.5 / 1.1), ("flops", 1.01), ("batch_size", 0.5)):
        bad = dict(info, **{key: info[key] * factor})
        with pytest.raises(AssertionError):
            check_planned(planned["config"], bad)


def test_checker_catches_cost_mutations():
    from scaling.coefficients import NAMED_SETS
    from scaling.optimal import PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS, PEAK_FLOPS, PRICE_PER_HOUR, CostSettings

    check_cost_tables(PEAK_FLOPS, PRICE_PER_HOUR)
    for gpu, dtype, value in (("a100-40", "bf16", 3.0e14), ("a100-80", "bf16", 3.0e14), ("a100-40", "int8", 1.248e15),
                              ("a100-80", "int8", 6.0e14), ("a100-80", "fp16", 1.56e14), ("h100", "bf16", 3.12e14),
                              ("h100", "int8", 9.89e14)):
        peak = copy.deepcopy(PEAK_FLOPS)
        peak[gpu][dtype] = value
        with pytest.raises(AssertionError):
            check_cost_tables(peak, PRICE_PER_HOUR)
    for gpu, value in (("a100-40", 1.50), ("a100-80", 1.10), ("h100", 2.5)):
        with pytest.raises(AssertionError):
            check_cost_tables(PEAK_FLOPS, {**PRICE_PER_HOUR, gpu: value})

    base = CostSettings()
    check_cost_defaults(base, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)
    for change in ({"train_mfu": 0.4}, {"prefill_mfu": 0.4}, {"generation_mfu": 0.02}, {"train_gpu": "a100-40"},
                   {"inference_gpu": "a100-80"}, {"inference_dtype": "bf16"}, {"train_dtype": "fp16"},
                   {"train_price_per_hour": 2.0}, {"inference_price_per_hour": 0.9865}):
        with pytest.raises(AssertionError):
            check_cost_defaults(dataclasses.replace(base, **change), PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)
    for tokens in ((69.0, 215.0), (70.0, 214.0)):
        with pytest.raises(AssertionError):
            check_cost_defaults(base, *tokens)

    from beyond.cli import build_parser

    ns = vars(build_parser().parse_args(["optimize", "cost", "--like-params", "7B", "--requests", "1B"]))
    for key, value in (("train_mfu", 0.4), ("prefill_mfu", 0.6), ("generation_mfu", 0.02), ("input_tokens", 71.0),
                       ("output_tokens", 200.0), ("train_gpu", "h100"), ("inference_gpu", "a100-80"),
                       ("inference_dtype", "fp8"), ("train_price", 1.0)):
        with pytest.raises(AssertionError):
            check_cli_cost_defaults({**ns, key: value})
    for key, value in (("gpu", "h100"), ("mfu", 0.4), ("price", 2.0)):
        with pytest.raises(AssertionError):
            check_cli_training_defaults({"gpu": TRAIN_GPU, "mfu": TRAIN_MFU, "price": None, key: value})

    check_coefficients(NAMED_SETS)
    for name, key, value in (("chinchilla", "alpha", 0.34), ("chinchilla", "A", 406.0), ("sardana-all", "B", 139.0),
                             ("sardana-le100", "E", 0.18), ("sardana-le500", "beta", 0.15)):
        sets = dict(NAMED_SETS)
        sets[name] = dataclasses.replace(sets[name], **{key: value})
        with pytest.raises(AssertionError):
            check_coefficients(sets)
