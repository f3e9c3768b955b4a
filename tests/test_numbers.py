"""The one notation for a number and its 95% interval (sinkbench.record.numbers), on hand-made values."""

from __future__ import annotations

from sinkbench.record.numbers import MISSING, entry_text, estimate, interval, number
from sinkbench.record.types import Estimate


def test_a_number_takes_its_decimals_and_none_from_a_thousand_up():
    assert number(0.58449) == "0.584" and number(0.5845, 1) == "0.6" and number(12.25, 1) == "12.2"  # round half even
    assert number(8266.366) == "8266" and number(-1234.5, 3) == "-1234"  # no decimals, no thousands separator
    assert number(None) == MISSING


def test_a_change_carries_its_sign_and_never_reads_minus_zero():
    assert number(0.012, signed=True) == "+0.012" and number(-0.031, signed=True) == "-0.031"
    assert number(-0.0004) == "0.000" and number(-0.0004, signed=True) == "+0.000"


def test_an_interval_is_bracketed_and_empty_without_both_bounds():
    assert interval(0.551, 0.617) == "[0.551, 0.617]"
    assert interval(-0.031, 0.012, signed=True) == "[-0.031, +0.012]"
    assert interval(None, 0.5) == "" and interval(0.5, None) == ""
    assert interval(512, 4096, 0) == "[512, 4096]"


def test_an_estimate_is_its_value_then_its_interval():
    assert estimate(0.584, 0.551, 0.617) == "0.584 [0.551, 0.617]"
    assert estimate(0.584, None, None) == "0.584"  # no interval: the value alone
    assert estimate(None, 0.1, 0.2) == MISSING  # no value: no interval either
    entry = Estimate(value=0.0, stderr=None, ci_low=-0.004, ci_high=0.035, method="m", n=10, note=None)
    assert entry_text(entry) == "0.000 [-0.004, 0.035]"
