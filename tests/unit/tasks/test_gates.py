"""Each quality gate stops the run by itself, fast and in this process: the hour's raw data as
the extracts wrote it, with one fault, run through luigi's own command line
(``run_with_retcodes``, as ``luigi`` and ``python -m pipeline`` run it) up to the task that
holds the gate. The run exits with [retcode] task_failed (30), the console names that check
alone, and the rows are in ``rejected/<check>.csv``. (The slow end-to-end tests,
tests/e2e/test_quality_gates.py, check the messages and rejected rows of a whole run.)

Duplicate and null ids are written here straight into the raw files: coming from the API they
are stopped even earlier, by the extract's contract; the gates are the second line.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from luigi.retcodes import run_with_retcodes
from luigi.setup_logging import InterfaceLogging

from pipeline.devtools.fakeapi import Dataset, DummyJSONServer
from tests.support import FIXTURES, PARTITION

Records = list[dict[str, Any]]
TASK_FAILED = 30


def luigi(task: str, caplog: pytest.LogCaptureFixture) -> tuple[int, list[str]]:
    """Exit code of ``luigi --module pipeline <task> --date-hour PARTITION --local-scheduler``,
    and what it put on the console."""
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as ended:
        run_with_retcodes(["--module", "pipeline", task, "--local-scheduler", "--no-lock",
                           "--date-hour", PARTITION])  # fmt: skip
    said = [str(r.console_text) for r in caplog.records if hasattr(r, "console_text")]
    caplog.clear()
    return int(ended.value.code or 0), said


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A partition holding the three extracts of the fixture data (raw files and stats)."""
    data = tmp_path_factory.mktemp("extracted")
    with pytest.MonkeyPatch.context() as patch, DummyJSONServer(Dataset.load(FIXTURES)) as api:
        patch.setenv("PIPELINE_DATA_DIR", str(data))
        patch.setenv("PIPELINE_API_URL", api.url)
        patch.setattr(InterfaceLogging, "_configured", True)  # leave pytest's logging alone
        for task in ("ExtractCarts", "ExtractUsers", "ExtractProducts"):
            with pytest.raises(SystemExit) as ended:
                run_with_retcodes(["--module", "pipeline", task, "--local-scheduler", "--no-lock",
                                   "--date-hour", PARTITION])  # fmt: skip
            assert ended.value.code == 0, task
    yield data / PARTITION


def with_fault(raw: Path, fault: Callable[[Records], None]) -> None:
    records = [orjson.loads(line) for line in raw.read_bytes().splitlines()]
    fault(records)
    raw.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def line(records: Records) -> dict[str, Any]:
    return records[1]["products"][0]  # cart 2's first line


CASES: dict[str, tuple[str, Callable[[Records], None], str]] = {
    # check: (the raw file given the fault, the fault, what the console says after "failed: ")
    "line_product_exists": (  # an orphan cart line: its product is not in the catalogue
        "carts", lambda r: line(r).update(id=999),
        "check line_product_exists: 1 offending row(s), e.g. cart_id 2",
    ),
    "cart_user_exists": (
        "carts", lambda r: r[5].update(userId=77),
        "check cart_user_exists: 1 offending row(s), e.g. cart_id 6",
    ),
    "line_total_matches": (
        "carts", lambda r: line(r).update(total=1.0),
        "check line_total_matches: 1 offending row(s), e.g. cart_id 2",
    ),
    "cart_total_matches": (
        "carts", lambda r: r[2].update(total=1.0),
        "check cart_total_matches: 1 offending row(s), e.g. cart_id 3",
    ),
    "cart_ids_unique": (  # two carts of one id: their lines add up to neither's total either
        "carts", lambda r: r[4].update(id=1),
        "check cart_ids_unique: 2 offending row(s), e.g. cart_id 1; "
        "check cart_total_matches: 2 offending row(s), e.g. cart_id 1",
    ),
    "user_ids_unique": (
        "users", lambda r: r[1].update(id=1),
        "check user_ids_unique: 2 offending row(s), e.g. user_id 1",
    ),
    "product_ids_unique": (
        "products", lambda r: r[1].update(id=r[0]["id"]),
        "check product_ids_unique: 2 offending row(s), e.g. product_id 3",
    ),
}  # fmt: skip
GATE = {"carts": "CleanCarts", "users": "CleanUsers", "products": "CleanProducts"}
#: What the gate's task writes when it passes: none of it when it fails.
OUTPUTS = {
    "carts": ["cleaned/cleaned_carts.csv", "_exact/cart_lines.arrow", "_stats/CleanCarts.json"],
    "users": ["cleaned/cleaned_users.csv", "_exact/users.arrow", "_stats/CleanUsers.json"],
    "products": ["cleaned/cleaned_products.csv", "cleaned/product_catalogue.csv",
                 "_stats/CleanProducts.json"],
}  # fmt: skip


@pytest.mark.parametrize("check", list(CASES))
def test_each_gate_fails_the_run_by_itself_with_exit_30(
    check: str,
    extracted: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, fault, message = CASES[check]
    part = tmp_path / PARTITION
    shutil.copytree(extracted, part)
    with_fault(part / "jsons" / f"{endpoint}.jsonl", fault)
    monkeypatch.setenv("PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PIPELINE_API_URL", "http://127.0.0.1:9")  # never asked: extracts done
    monkeypatch.setattr(InterfaceLogging, "_configured", True)
    code, said = luigi(GATE[endpoint], caplog)
    assert code == TASK_FAILED, said
    failed = [text.splitlines()[0] for text in said if " failed: " in text]
    assert failed == [f"{GATE[endpoint]} failed: {message}"]
    with_rows = {}  # each check's offending rows, in rejected/<check>.csv
    for path in (part / "rejected").iterdir():
        with path.open(newline="") as fh:
            with_rows[path.stem] = len(list(csv.DictReader(fh)))
    assert with_rows == {c: int(n) for c, n in re.findall(r"check (\w+): (\d+) offending", message)}
    assert not [name for name in OUTPUTS[endpoint] if (part / name).exists()]
