"""Streaming: what the pipeline writes does not depend on where the batches of carts are cut, nor
on the order of the carts in the raw file (an unordered file is sorted first)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.devtools.datagen import generate
from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from pipeline.storage import formats
from tests.support import PARTITION, REPO, comparable, luigi_command, pipeline_env

pytestmark = pytest.mark.slow

#: ``luigi`` with the batch sizes of the streaming code set from the command line.
RUN = """
import sys
from luigi.cmdline import luigi_run
from pipeline.storage.formats import csv, jsonl
jsonl.BATCH_CARTS, csv.CSV_CHUNK_ROWS = int(sys.argv[1]), int(sys.argv[2])
luigi_run(sys.argv[3:])
"""
#: Tolerated: the line of a product missing from the catalogue. (The extract refuses a cart id
#: twice; the unit tests of ``formats.cart_batches`` keep duplicates in one batch.)
THRESHOLDS = '{"line_product_exists": 1}'


def records() -> dict[str, list[dict[str, Any]]]:
    """60 generated carts, one with a line of an unknown product."""
    data = {name: list(rows) for name, rows in generate(60, 20, 10, seed=3).items()}
    line = data["carts"][30]["products"][0]
    data["carts"][30]["products"][0] = {**line, "id": 999}
    return data


SORTING = "carts.jsonl is not in cart-id order: sorting it first"


def run(
    tmp_path: Path, name: str, data: dict[str, list[dict[str, Any]]], batch: int, sorts: bool
) -> Path:
    """The pipeline on ``data`` with batches of ``batch`` carts; whether it had to sort them."""
    root = tmp_path / name
    luigi = luigi_command(PARTITION, tmp_path / "pids", "--quality-max-bad-rows", THRESHOLDS)
    with DummyJSONServer(Dataset.from_records(data)) as server:
        proc = subprocess.run(
            [sys.executable, "-c", RUN, str(batch), "3", *luigi[1:]],
            cwd=REPO,
            env=pipeline_env(server.url, root),
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (log,) = (root / "logs").glob("run-*.log")
    assert (SORTING in log.read_text()) == sorts
    return root / PARTITION


def outputs(part: Path) -> dict[str, Any]:
    """Everything written downstream of the raw files; the exact lines as values, not bytes
    (the file is laid out in the batches it was written in)."""
    out = {
        name: value
        for name, value in comparable(part).items()
        if not name.startswith(("jsons/", "_stats/Extract-", "_exact/"))
    }
    for name in ("_exact/cart_lines.arrow", "_exact/users.arrow"):
        out[name] = formats.read_exact(part / name)
    return out


def test_outputs_are_the_same_whatever_the_batches_and_the_order_of_the_carts(
    tmp_path: Path,
) -> None:
    data = records()
    whole = outputs(run(tmp_path, "whole", data, batch=1_000_000, sorts=False))
    cut = outputs(run(tmp_path, "cut", data, batch=4, sorts=False))
    shuffled = {**data, "carts": random.Random(5).sample(data["carts"], len(data["carts"]))}
    unordered = outputs(run(tmp_path, "unordered", shuffled, batch=4, sorts=True))

    assert whole.keys() == cut.keys() == unordered.keys()
    for name in whole:
        if name.endswith(".arrow"):
            assert whole[name].equals(cut[name]) and whole[name].equals(unordered[name]), name
        else:
            assert whole[name] == cut[name] == unordered[name], name
    lines = whole["cleaned/cleaned_carts.csv"].decode().splitlines()
    assert len(lines) - 1 == len(whole["_exact/cart_lines.arrow"]) > 100
    cart_ids = [int(line.split(",")[0]) for line in lines[1:]]
    assert cart_ids == sorted(cart_ids) and set(cart_ids) == set(range(1, 61))
    orphan = whole["rejected/line_product_exists.csv"].decode().splitlines()
    assert [row.split(",")[:3] for row in orphan[1:]] == [["31", lines_user(lines, 31), "999"]]


def lines_user(lines: list[str], cart_id: int) -> str:
    return next(line.split(",")[1] for line in lines if line.startswith(f"{cart_id},"))
