"""A plain luigi run's metrics: luigi's own exit code, written only when it claimed an hour.

The end-to-end runs (a real ``luigi`` process) are in tests/e2e/test_metrics.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import luigi
import pytest
from luigi.retcodes import run_with_retcodes
from luigi.setup_logging import InterfaceLogging
from prometheus_client.parser import text_string_to_metric_families

from pipeline import logs, plain_metrics

HOUR = datetime(2026, 11, 25, 17)


class PlainFine(luigi.Task):
    done = False

    def complete(self) -> bool:
        return PlainFine.done

    def run(self) -> None:
        PlainFine.done = True


class PlainFails(luigi.Task):
    def complete(self) -> bool:
        return False

    def run(self) -> None:
        raise RuntimeError("boom")


class PlainAbsent(luigi.ExternalTask):
    def complete(self) -> bool:
        return False


class PlainNeedsAbsent(luigi.Task):
    def requires(self) -> PlainAbsent:
        return PlainAbsent()

    def complete(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("task", "code"), [(PlainFine, 0), (PlainFails, 30), (PlainNeedsAbsent, 20)]
)
def test_the_exit_code_is_the_one_luigi_exits_with(
    task: type[luigi.Task], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """luigi.cfg's [retcode]: task_failed 30, missing_data 20."""
    monkeypatch.setattr(InterfaceLogging, "_configured", True)  # keep pytest's logging as it is
    luigi.task_register.Register.clear_instance_cache()
    PlainFine.done = False
    with pytest.raises(SystemExit) as exited:
        run_with_retcodes(["--module", __name__, task.__name__, "--local-scheduler", "--no-lock"])
    assert exited.value.code == code
    PlainFine.done = False
    result = luigi.build([task()], local_scheduler=True, no_lock=True, detailed_summary=True)
    assert plain_metrics.exit_code(result.worker) == code


def prom(folder: Path) -> dict[str, float]:
    text = (folder / "etl_pipeline.prom").read_text()
    return {
        s.name + "".join(f",{k}={v}" for k, v in sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def luigi_run(
    tmp_path: Path, raised: BaseException | None
) -> tuple[Callable[[], None], list[Path]]:
    """A stand-in for luigi's run that claims ``HOUR`` as plain luigi would, then ends."""

    def run() -> None:
        plain_metrics.claimed(tmp_path, HOUR)
        logs_started.append(tmp_path / "logs" / "run.log")
        if raised is not None:
            raise raised

    logs_started: list[Path] = []
    return run, logs_started


@pytest.mark.parametrize(
    ("raised", "code", "success", "result"),
    [
        (SystemExit(30), 30, 0, "failed"),
        (KeyboardInterrupt(), 130, 0, "interrupted"),
        (luigi.interface.PidLockAlreadyTakenExit(), 10, 0, "failed"),
        (RuntimeError("luigi broke"), 40, 0, "failed"),
    ],
)
def test_a_run_that_claimed_an_hour_writes_how_it_ended(
    raised: BaseException,
    code: int,
    success: int,
    result: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, started = luigi_run(tmp_path, raised)
    monkeypatch.setattr(logs, "plain_run_log", lambda: started[-1] if started else None)
    with pytest.raises(type(raised)):
        plain_metrics._with_metrics(run)()
    found = prom(tmp_path / "logs")
    assert found["etl_pipeline_last_run_exit_code"] == code
    assert found["etl_pipeline_last_run_success"] == success
    assert found[f"etl_pipeline_runs_total,result={result}"] == 1
    assert (
        found["etl_pipeline_run_hour_timestamp_seconds"]
        == datetime(2026, 11, 25, 17, tzinfo=UTC).timestamp()
    )


def test_no_metrics_without_a_plain_run_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """luigid, luigi.build and ``python -m pipeline`` (which writes its own) have none."""
    run, _ = luigi_run(tmp_path, SystemExit(30))
    monkeypatch.setattr(logs, "plain_run_log", lambda: None)
    with pytest.raises(SystemExit):
        plain_metrics._with_metrics(run)()
    assert not (tmp_path / "logs").exists()
