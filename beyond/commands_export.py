"""``beyond export``: a trained run as a Hugging Face folder (llm-foundry's conversion path)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ioutil import dumps, human


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="write a trained run as a Hugging Face folder (transformers, trust_remote_code)",
        description="Convert RUN_DIR's Composer checkpoint (default RUN_DIR/checkpoints/latest-rank0.pt) into a "
        "Hugging Face folder at --out, through llm-foundry's own conversion path: config.json with auto_map, "
        "safetensors weights, the MPT modelling code (no llm-foundry needed to load it) and the run's tokenizer. "
        "Load it with transformers.AutoModelForCausalLM.from_pretrained(OUT, trust_remote_code=True), offline. "
        "The folder is written atomically. See docs/export.md.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run folder (config.yaml and checkpoints/)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder to write (must be missing or empty unless --force)")
    p.add_argument("--checkpoint", type=Path, metavar="PATH",
                   help="another Composer checkpoint file of the run (default: checkpoints/latest-rank0.pt)")
    p.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="weight precision of the folder (default fp32, as trained on CPU)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from ioutil import stdout_to_stderr
    from train.export import check_inputs, export_run

    # bad input is one line before llm-foundry is imported; library chatter goes to stderr
    check_inputs(args.run_dir, args.out, checkpoint=args.checkpoint, dtype=args.dtype, force=args.force)
    with stdout_to_stderr():
        result = export_run(args.run_dir, args.out, checkpoint=args.checkpoint, dtype=args.dtype, force=args.force)
    if args.json:
        sys.stdout.write(dumps(result.as_dict()) + "\n")
    else:
        at = f" at batch {result.batch:,}" if result.batch is not None else ""
        sys.stdout.write(f"exported {result.checkpoint}{at}: {result.params:,} params ({human(result.params)}), "
                         f"{result.dtype}, {len(result.files)} files -> {result.out}\n")
    return 0
