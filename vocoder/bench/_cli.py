"""``vocoder-bench`` (also ``python -m vocoder.bench``): the performance table of the whole framework.

    vocoder-bench                          # everything, at the sizes the targets are stated for
    vocoder-bench --only lpcnet,iaf        # a subset
    vocoder-bench --json > bench.json      # one JSON document on stdout (progress goes to stderr)
    vocoder-bench --quick                  # tiny sizes: a smoke run in well under a minute

Benchmarks: ``features`` (feature preparation × real time and peak RSS), ``lpcnet`` (LPCNet synthesis
RTF on one core, torch-loop RTF, training samples/s and peak RSS), ``iaf`` (IAF student and WaveNet
teacher synthesis RTF; training samples/s and peak RSS of the WaveNet teacher, the IAF student and its
distillation), ``mlpg`` (banded vs dense MLPG forward + backward). Each runs in a fresh process.

Exit status: 0 when every selected benchmark ran (targets missed or not), 1 when one failed, 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path
from typing import NoReturn

PROG = "vocoder-bench"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``vocoder-bench: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``vocoder-bench``."""
    parser = _Parser(
        prog=PROG,
        description="Run the vocoder benchmarks and print one performance table (or --json).",
        epilog="The numbers of --quick runs are not comparable with the targets.",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated subset of: features, lpcnet, iaf, mlpg (default: all)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of the table"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny models, short audio, few repeats (smoke run; not the targets' sizes)",
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="torch threads of the multi-threaded parts (default: 2, 1 with --quick)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="corpus of the feature benchmark (default: ../shared/data/kathleen_arctic next to "
        "the checkout, else the embedded sample)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    return parser


def _run_worker(name: str, params_text: str) -> int:
    """Run one benchmark worker; its result is the last line of stdout (JSON)."""
    from vocoder.bench._suite import worker_function

    try:
        function = worker_function(name)
    except KeyError:
        print(f"{PROG}: error: unknown worker {name!r}", file=sys.stderr)
        return 2
    try:
        result = function(json.loads(params_text))
    except Exception as exc:  # the parent shows the last stderr line: make it the reason
        traceback.print_exc()
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{type(exc).__name__}: {message}" if message else type(exc).__name__, file=sys.stderr)
        return 1
    sys.stdout.flush()
    print(json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    if args.worker:
        return _run_worker(args.worker, args.params)
    from vocoder.bench._suite import parse_only, run_suite

    try:
        names = parse_only(args.only)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.root is not None and "features" in names and not args.root.is_dir():
        print(f"{PROG}: error: --root: {args.root} is not a directory", file=sys.stderr)
        return 2
    suite = run_suite(names, quick=args.quick, threads=args.threads, root=args.root)
    if args.json:
        print(json.dumps(suite.to_json(), indent=2))
    else:
        print("\n".join(suite.table_lines()))
    return 1 if suite.errors else 0


if __name__ == "__main__":
    sys.exit(main())
