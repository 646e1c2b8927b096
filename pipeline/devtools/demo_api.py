"""Serve a DummyJSON look-alike locally, for the offline demo and the benchmark.

`python -m pipeline.devtools.demo_api [--data DIR | --carts N --users N --products N] [--port 0]
[--latency S] [--rate-limit 100/10]` prints exactly one line, `serving http://127.0.0.1:PORT`,
then serves until SIGTERM/SIGINT. It is `fakeapi.serve`, so paging semantics are the ones the
tests pin down.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.devtools.datagen import generate
from pipeline.devtools.fakeapi import Dataset, parse_rate_limit, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.demo_api", description="Serve a DummyJSON-compatible API."
    )
    parser.add_argument("--data", type=Path, help="directory with {carts,products,users}.jsonl")
    parser.add_argument("--carts", type=int, default=60, help="generated carts (without --data)")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument(
        "--rate-limit", type=parse_rate_limit, metavar="N/SECONDS", help="e.g. 100/10"
    )
    args = parser.parse_args(argv)
    if args.data is not None:
        dataset = Dataset.load(args.data)
    else:
        dataset = Dataset.from_records(generate(args.carts, args.users, args.products, args.seed))
    serve(dataset, args.host, args.port, args.latency, args.rate_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
