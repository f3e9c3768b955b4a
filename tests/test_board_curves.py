"""What the board's charts draw, on hand-made cases with known answers: intervals of means, the stress curves
read out of a record, and the chart's log axis with the 0-token prefix set one step left of the smallest length."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from board_helpers import record
from sinkbench.board import curves, svg
from sinkbench.board.curves import Point
from sinkbench.record.types import Outcome, Record


def typed(**options) -> Record:
    return Record.from_json(record(**options))


def test_stress_curves_read_the_sweep_on_its_own_tasks():
    r = typed()
    sweep = curves.sweep_tasks(r)
    assert sorted(sweep) == ["sinkbench_arc_easy_quick", "sinkbench_lambada_quick"]
    points = curves.prefix_curve(r)
    assert [p.x for p in points] == [0, 256, 1024, 4096]
    baseline = r.conditions[0]
    assert all(n < baseline.outcomes[t].n for t, (_, n) in sweep.items())  # the sweep scores fewer documents
    # The baseline on the sweep's tasks and documents only (the first n of each), as length robustness reads it.
    expected = sum(sum(baseline.outcomes[t].metrics["acc"][:n]) / n for t, (_, n) in sweep.items()) / 2
    assert points[0].value == pytest.approx(expected) and points[0].low < expected < points[0].high
    for point, condition in zip(points[1:], curves.prefix_sweep(r)[1:]):
        assert point.value == pytest.approx(sum(condition.scores[t]["acc"].value for t in sweep) / 2)
    alpha = curves.attention_curve(r)
    first = [r.conditions[0].outcomes[t].alpha[:n] for t, (_, n) in sweep.items()]
    assert alpha[0].value == pytest.approx(sum(sum(a) / len(a) for a in first) / 2)
    assert [p.value for p in alpha] == sorted((p.value for p in alpha), reverse=True)  # the sink fades with a prefix


def test_retrieval_and_depth_points():
    r = typed()
    passkey = curves.retrieval_points(r, "passkey")
    scores = r.conditions[0].scores
    assert [(p.x, p.value) for p in passkey] == [(n, scores[f"sinkbench_passkey_quick_{n}"]["acc"].value)
                                                 for n in (512, 1024, 2048, 4096)]
    assert all(p.low is not None and p.low <= p.value <= p.high for p in passkey)  # Wilson intervals
    assert [p.x for p in curves.depth_curve(r)] == [0.0, 0.25, 0.5, 0.75]  # layer / number of layers
    no_bos = curves.attention_curve(typed(adds_bos=False), "text_start")
    assert [p.x for p in no_bos] == [256, 1024, 4096]  # nothing in front of the text at prefix 0


def test_log_axis_sets_zero_one_step_left():
    chart = svg.Chart("t", "x", "y", [0, 256, 1024, 4096], [0, 1], log_x=True)
    step = chart.x(1024) - chart.x(256)
    assert chart.x(256) - chart.x(0) == pytest.approx(step)  # 256 -> 1024 is the step: 0 sits at "64"
    assert chart.x(4096) - chart.x(1024) == pytest.approx(step)
    assert chart.y(2.0) == chart.y(1.0)  # an interval past the axis stops at it


def test_a_series_draws_its_error_bars_and_names_itself():
    chart = svg.Chart("t", "x", "y", [0, 10], [0, 1], decimals=0)
    chart.series([Point(0, 0.5, 0.4, 0.6), Point(10, 0.7)], "#000", "model <x> @ r1", row=3)
    tree = ET.fromstring(chart.to_string())
    [group] = [g for g in tree.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "s"]
    assert group.get("data-r") == "3" and group.find("{http://www.w3.org/2000/svg}title").text == "model <x> @ r1"
    line, dots = group.findall("{http://www.w3.org/2000/svg}path")
    assert line.get("d").count("M") == 2 and "V" in line.get("d")  # the line, and one bar: the second point has none
    assert dots.get("d").count("h0") == 2


def test_length_sweep_draws_no_bar_from_too_few_texts_and_cuts_a_bar_to_zero_and_one():
    r = typed()
    points = r.profile.length_sweep.points
    points[-1].per_text.alpha_mean = [0.02, 0.30]  # two texts (the real SmolLM2 record at T=4096): no bar
    last = curves.length_sweep(r)[-1]
    assert (last.value, last.low, last.high) == (pytest.approx(0.16), None, None)
    # Eight texts, 0 x 7 and 0.8: mean 0.1, se 0.1, t(0.975, 7 df) 2.364624: [-0.136, 0.336], cut to [0, 0.336].
    points[-1].per_text.alpha_mean = [0.0] * 7 + [0.8]
    last = curves.length_sweep(r)[-1]
    assert (last.value, last.low, last.high) == (pytest.approx(0.1), 0.0, pytest.approx(0.336462, abs=1e-6))


def test_attention_curve_refuses_a_bar_when_a_task_has_too_few_documents():
    r = typed()
    alpha = curves.attention_curve(r)
    assert all(p.low is not None for p in alpha)
    sweep = curves.sweep_tasks(r)
    task = sorted(sweep)[0]
    for condition in curves.prefix_sweep(r):  # every condition of the sweep scored only 7 documents of one task
        whole = condition.outcomes[task].to_json()
        condition.outcomes[task] = Outcome.from_json({k: 7 if k == "n" else v[:7] for k, v in whole.items()})
    assert all(p.low is None and p.high is None for p in curves.attention_curve(r))
