"""``beyond``: command-line entry point. Each subcommand has --help and --json.

Errors in user input print one line ``beyond: error: ...`` and exit with code 2.
Heavy imports happen inside the subcommand that needs them, so ``beyond optimize`` starts fast.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

from scaling.errors import InputError

_SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


def quantity(text: str) -> float:
    """'2e12', '2T', '1.5B', '70' -> float. Suffixes K, M, B (=G), T, P."""
    m = re.fullmatch(r"\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*([KMBGTP]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 2e12, 2T, 1.5B)")
    value = float(m.group(1)) * _SUFFIXES.get(m.group(2), 1.0)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="beyond", description=__doc__.splitlines()[0].strip("`"),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true",
                        help="on an error, also print the full traceback that the one-line message hides")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    from beyond import (
        commands_check,
        commands_data,
        commands_demo,
        commands_eval,
        commands_export,
        commands_optimize,
        commands_plan,
        commands_scaling,
        commands_sweep,
        commands_train,
    )

    commands_optimize.register(sub)
    commands_scaling.register(sub)
    commands_train.register(sub)
    commands_sweep.register(sub)
    commands_eval.register(sub)
    commands_eval.register_report(sub)
    commands_plan.register(sub)
    commands_demo.register(sub)
    commands_check.register(sub)
    commands_export.register(sub)
    commands_data.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except InputError as exc:
        if args.verbose:
            _print_traceback(exc)
        sys.stderr.write(f"beyond: error: {exc}\n")
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("beyond: interrupted\n")
        return 130


def _print_traceback(exc: BaseException) -> None:
    """The traceback of what went wrong: the exception a one-line error replaced (``raise
    InputError(...) from None`` keeps it as ``__context__``), else the error's own."""
    import traceback

    cause = exc.__cause__ or exc.__context__ or exc
    traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
