"""pipeline.clock: the one place the pipeline reads the time, pinned by PIPELINE_NOW."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline import clock, config, config_check
from tests.support import NOW


def test_the_suite_runs_at_the_pinned_time() -> None:
    assert clock.now() == datetime(2026, 11, 25, 19, 30, tzinfo=UTC)
    assert clock.now().isoformat() == NOW
    assert clock.current_hour() == datetime(2026, 11, 25, 19)


def test_pinned_time_is_converted_to_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.NOW_ENV, "2027-01-01T01:59:59.999+02:00")
    assert clock.now() == datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert clock.current_hour() == datetime(2026, 12, 31, 23)
    monkeypatch.setenv(clock.NOW_ENV, "2027-01-01T00:00:00Z")
    assert clock.current_hour() == datetime(2027, 1, 1, 0)


def test_unset_or_empty_is_the_machines_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in (None, "", "  "):
        if value is None:
            monkeypatch.delenv(clock.NOW_ENV)
        else:
            monkeypatch.setenv(clock.NOW_ENV, value)
        before = datetime.now(UTC)
        got = clock.now()
        assert before <= got <= datetime.now(UTC) and got.tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-11-25T19:30:00", "tomorrow", "2026-13-01T00:00Z"])
def test_a_time_without_offset_or_no_time_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(clock.NOW_ENV, text)
    with pytest.raises(clock.ClockError, match=rf"^PIPELINE_NOW='{text}' is not a time"):
        clock.now()


def test_a_bad_pinned_time_is_a_settings_problem_like_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(clock.NOW_ENV, "tomorrow")
    with pytest.raises(config.ConfigError) as err:
        config_check.check_settings(datetime(2026, 11, 25, 17))
    assert "  PIPELINE_NOW='tomorrow' is not a time with a UTC offset" in str(err.value)


def test_the_future_is_measured_from_the_pinned_time() -> None:
    """The last hour a run may write: the pinned hour, plus [run] clock_skew_minutes (5)."""
    last = config.run().last_hour()
    assert last == clock.current_hour()
    assert config_check.hour_problem(last) is None
    assert config_check.hour_problem(last + timedelta(hours=1)) is not None
