"""Verdicts: each qualitative claim of TARGETS.md tested by a rule stated in its function's docstring.

A verdict is ``"supports"``, ``"contradicts"`` or ``"inconclusive"`` together with the numbers it used,
so that printed conclusions follow the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from snnbp.problem_analysis.history import least_squares_slope

Outcome = Literal["supports", "contradicts", "inconclusive"]


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """Three significant digits (``nan`` stays ``nan``); deterministic text for nbval."""
    return "nan" if not math.isfinite(value) else f"{value:.3g}"


def _span(values: Sequence[float]) -> str:
    if len(values) == 1:
        return format_value(values[0])
    return f"{format_value(values[0])} (epoch 1) to {format_value(values[-1])} (epoch {len(values)})"


#: How a verdict reads in a sentence.
OUTCOME_PHRASES: dict[str, str] = {
    "supports": "the data **support** the claim",
    "contradicts": "the data **contradict** the claim",
    "inconclusive": "the data are **inconclusive**",
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test of a claim, with the numbers behind it.

    Attributes:
        claim: the claim as TARGETS.md states it (shortened).
        test: what was measured.
        outcome: ``"supports"``, ``"contradicts"`` or ``"inconclusive"``.
        evidence: the numbers, rounded.
    """

    claim: str
    test: str
    outcome: Outcome
    evidence: str

    def markdown(self) -> str:
        """One paragraph: claim, test, outcome, evidence."""
        return f"**{self.claim}** ({self.test}): {OUTCOME_PHRASES[self.outcome]}. {self.evidence}"


def materially_below(a: float, b: float, *, margin: float, atol: float) -> bool:
    """``a`` is below ``b`` by at least the factor ``margin`` and by more than ``atol``.

    ``a < b``, ``a * margin <= b`` and ``b - a > atol`` (fractions are non-negative, so a 0
    against a positive value passes the ratio test).
    """
    return a < b and a * margin <= b and b - a > atol


def lower_verdict(
    claim: str,
    test: str,
    quantity: str,
    lower: Sequence[float],
    higher: Sequence[float],
    *,
    margin: float = 2.0,
    atol: float = 0.0,
    names: tuple[str, str] = ("ReL-PSP", "alpha-PSP"),
) -> Verdict:
    """Claim: ``lower`` (non-negative) is below ``higher``, per epoch or as one value each.

    Each pair of the epochs both have (``nan`` pairs skipped) is *below*, *above* or *similar*
    (:func:`materially_below`: a factor ``margin`` and a difference over ``atol``). Rule:
    **supports** when at least one pair is below and none is above; **contradicts** when at
    least one is above and none below; **inconclusive** otherwise (mixed, all similar, or no
    finite pair).
    """
    pairs = [(a, b) for a, b in zip(lower, higher) if math.isfinite(a) and math.isfinite(b)]
    below = sum(materially_below(a, b, margin=margin, atol=atol) for a, b in pairs)
    above = sum(materially_below(b, a, margin=margin, atol=atol) for a, b in pairs)
    outcome: Outcome = "inconclusive"
    if below and not above:
        outcome = "supports"
    elif above and not below:
        outcome = "contradicts"
    n = min(len(lower), len(higher))
    evidence = f"{quantity}: {names[0]} {_span(list(lower)[:n])}, {names[1]} {_span(list(higher)[:n])}"
    rule = f"a factor {format_value(margin)}" + (f" and more than {format_value(atol)}" if atol > 0 else "")
    if n > 1:
        evidence += f"; {names[0]} lower by {rule} in {below}, higher in {above}, similar in {len(pairs) - below - above} of {len(pairs)} epochs"
    else:
        evidence += f" (a difference counts when it is {rule})"
    return Verdict(claim, test, outcome, evidence + ".")


def growth_verdict(claim: str, test: str, quantity: str, values: Sequence[float], *, atol: float = 0.0) -> Verdict:
    """Claim: ``values`` grow with the epochs.

    Rule: with the least-squares slope per epoch (:func:`least_squares_slope`) and the fitted
    change over the run ``slope * (n - 1)``: **supports** when the change exceeds ``atol``,
    **contradicts** when it is below ``-atol``, **inconclusive** otherwise (or with fewer than two
    epochs).
    """
    slope = least_squares_slope(values)
    change = slope * (sum(math.isfinite(v) for v in values) - 1) if math.isfinite(slope) else math.nan
    outcome: Outcome = "inconclusive"
    if math.isfinite(change) and change > atol:
        outcome = "supports"
    elif math.isfinite(change) and change < -atol:
        outcome = "contradicts"
    evidence = (
        f"{quantity}: {_span(list(values))}; least-squares slope {format_value(slope)} per epoch, "
        f"fitted change {format_value(change)} over the run (counts when beyond {format_value(atol)})."
    )
    return Verdict(claim, test, outcome, evidence)


def majority_verdict(claim: str, test: str, quantity: str, value: float, bound: float = 0.5) -> Verdict:
    """Claim: ``value`` (a fraction) exceeds ``bound`` ("mostly").

    Rule: **supports** when ``value > bound``, **contradicts** when ``value < bound``,
    **inconclusive** when equal or ``nan``.
    """
    outcome: Outcome = "inconclusive"
    if math.isfinite(value) and value > bound:
        outcome = "supports"
    elif math.isfinite(value) and value < bound:
        outcome = "contradicts"
    return Verdict(claim, test, outcome, f"{quantity}: {format_value(value)} (bound {format_value(bound)}).")


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    """A markdown table: claim, test, verdict, evidence (``|`` inside a cell escaped)."""
    lines = ["| claim | test | verdict | evidence |", "|---|---|---|---|"]
    for v in verdicts:
        cells = [text.replace("|", "\\|").replace("\n", " ") for text in (v.claim, v.test, v.evidence)]
        lines.append(f"| {cells[0]} | {cells[1]} | **{v.outcome}** | {cells[2]} |")
    return "\n".join(lines)
