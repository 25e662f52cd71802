"""snnbp.report: tolerance verdicts read the same inside the band and show the value outside it."""

from __future__ import annotations

import doctest
import math

import pytest

from snnbp import report
from snnbp.report import Tolerance, decimals, pinned_summary, tolerance_verdict, within


def test_docstring_examples():
    assert doctest.testmod(report).failed == 0


@pytest.mark.parametrize(
    ("tolerance", "places"), [(0.06, 2), (0.05, 2), (0.005, 3), (0.2, 1), (0.1, 1), (1.0, 0), (3.0, 0), (25.0, 0)]
)
def test_decimals_show_the_leading_digit_of_the_tolerance(tolerance, places):
    assert decimals(tolerance) == places


def test_values_on_either_side_of_the_reference_give_one_text():
    band = Tolerance(0.80, 0.06)
    texts = {tolerance_verdict("test accuracy", v, band) for v in (0.7980, 0.8020, 0.74, 0.86)}
    assert texts == {"test accuracy 0.80 ± 0.06: within tolerance of the smoke reference"}


@pytest.mark.parametrize("value", [0.7399, 0.8601, 0.1, math.nan, math.inf])
def test_a_value_outside_the_band_changes_the_text_and_shows_the_value(value):
    text = tolerance_verdict("test accuracy", value, Tolerance(0.80, 0.06))
    assert "OUTSIDE 0.80 ± 0.06 (the smoke reference)" in text and "within" not in text
    assert not within(value, Tolerance(0.80, 0.06))


def test_a_tolerance_must_be_positive_and_finite():
    for bad in (0.0, -0.1, math.nan, math.inf):
        with pytest.raises(ValueError):
            Tolerance(0.8, bad)
    with pytest.raises(ValueError):
        Tolerance.from_pair([0.8])


METRICS = {
    "method": "stdbp",
    "dataset": "MNIST",
    "network": "784-100-10",
    "epochs": 2,
    "test_accuracy": 0.798,
    "best_test_accuracy": 0.802,
    "best_epoch": 2,
}


def test_pinned_summary_replaces_only_the_toleranced_values():
    lines = pinned_summary(METRICS, {"test_accuracy": [0.80, 0.06]}).splitlines()
    assert lines[0] == "method: stdbp" and lines[3] == "epochs: 2"
    assert lines[4] == "test accuracy 0.80 ± 0.06: within tolerance of the smoke reference"
    assert lines[5] == "best_test_accuracy: 0.8020" and lines[6] == "best_epoch: 2"


def test_pinned_summary_without_tolerances_prints_the_digits_and_the_selection_keys():
    selected = METRICS | {
        "selected_epoch": 1,
        "validation_accuracy": 0.81,
        "final_test_accuracy": 0.79,
        "model_checkpoint": "best.pt",
    }
    lines = pinned_summary(selected, {}).splitlines()
    assert (
        "test_accuracy: 0.7980" in lines and "selected_epoch: 1" in lines and lines[-1] == "model_checkpoint: best.pt"
    )


def test_a_tolerance_for_a_value_that_is_not_shown_is_an_error():
    with pytest.raises(KeyError):
        pinned_summary(METRICS, {"loss": [0.5, 0.1]})
    with pytest.raises(KeyError):
        pinned_summary(METRICS, {"test_accuracy": [0.8, 0.06]}, keys=("method",))
