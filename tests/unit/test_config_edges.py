"""Every option's allowed range, tested at its edges: the last good value and the first bad one.

The edges are read from what each option promises (``Allowed.text``, which the settings table of
docs/settings.md repeats), not from the code that checks them, and each value goes the way a
user's does: on the command line, through luigi's parsing, into
``config_check.settings_problems``. A range whose check is off by one (``>= 1`` accepting 0)
fails here, whichever option it is.
"""

from __future__ import annotations

import math
import re
from typing import Any

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser

from pipeline import config, config_check
from tests.support import documented_settings

#: Options whose values are not numbers: (good, bad) pairs at their edge, by ``Allowed.text``.
OTHER_EDGES: dict[str, tuple[list[str], list[str]]] = {
    config.HTTP_URL.text: (["http://h", "https://h:1/x"], ["ftp://h", "http://", "h"]),
    config.NOT_EMPTY.text: (["x"], ["", " "]),
    config.COUNTS.text: (['{"a": 0}', "{}"], ['{"a": -1}', '{"a": 0.5}', '{"": 1}']),
    config.ONE_OF_WARN_FAIL.text: (["warn", "fail"], ["", "Warn", "error"]),
    config.NO_URL_OR_HTTP_URL.text: (["", "http://h:9091"], ["h:9091", "ftp://h", "http://"]),
    config.ANY_TEXT.text: (["", "x"], []),
}


def _step(param: luigi.Parameter, value: float, direction: float) -> float:
    """The next value the option can hold past ``value``: 1 for whole numbers, else the next
    float."""
    if isinstance(param, luigi.IntParameter):
        return value + (1 if direction > 0 else -1)
    return math.nextafter(value, direction)


def edges(param: luigi.Parameter) -> tuple[list[Any], list[Any]]:
    """(last good values, first bad values) of a numeric option, from its promise."""
    text = param.allowed.text
    if m := re.fullmatch(r">= (\S+)", text):
        low = float(m[1])
        return [low], [_step(param, low, -math.inf)]
    if m := re.fullmatch(r"> (\S+)", text):
        low = float(m[1])
        return [_step(param, low, math.inf)], [low]
    if m := re.fullmatch(r"(\S+) to (\S+)", text):
        low, high = float(m[1]), float(m[2])
        return [low, high], [_step(param, low, -math.inf), _step(param, high, math.inf)]
    raise AssertionError(f"no edges known for {text!r}: add them to this test")


def cases() -> list[Any]:
    found = []
    for cls in config.SECTIONS:
        section = cls.get_task_family()
        for option, param in cls.get_params():
            text = param.allowed.text
            good, bad = OTHER_EDGES[text] if text in OTHER_EDGES else edges(param)
            for value, ok in [(v, True) for v in good] + [(v, False) for v in bad]:
                shown = repr(value) if isinstance(value, float) else str(value)
                if isinstance(value, float) and value.is_integer():
                    shown = str(int(value))
                found.append(
                    pytest.param(section, option, shown, ok, id=f"{section}.{option}={shown}")
                )
    return found


@pytest.mark.parametrize(("section", "option", "value", "ok"), cases())
def test_an_option_accepts_its_last_good_value_and_refuses_the_first_bad_one(
    section: str, option: str, value: str, ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls in config.SECTIONS:  # an environment override would win over the command line
        for _, param in cls.get_params():
            if param.env:
                monkeypatch.delenv(param.env, raising=False)
    flag = f"--{section}-{option.replace('_', '-')}"
    with CmdlineParser.global_instance(["Insights", f"{flag}={value}"]):
        problems = [p.setting for p in config_check.settings_problems()]
    assert problems == ([] if ok else [f"[{section}] {option}"])


def test_every_option_the_docs_list_is_tested_at_its_edges() -> None:
    """The options tested here are the ones the settings table (docs/settings.md) promises, so
    an option added to the docs or the code alone is noticed (test_config checks the two agree)."""
    tested = {(p.values[0], p.values[1]) for p in cases()}
    assert tested == set(documented_settings())
