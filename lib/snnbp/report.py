"""Printing values that depend on float rounding so that a notebook's pinned output compares equal.

A trained accuracy or a loss is not a deterministic function of the code and the seed alone: the
CPU's kernel set (AVX2 or AVX-512 reductions, ``ATEN_CPU_CAPABILITY``), the thread count and the
library versions change the last bits of every sum, and training amplifies them (the STDBP smoke
run ends at 0.7980 with AVX2 kernels and at 0.8020 with AVX-512 ones). ``pytest --nbval`` compares printed text,
so a cell whose output is pinned prints such a value as a **tolerance verdict** against a stated
reference instead of its digits::

    >>> tolerance_verdict("test accuracy", 0.802, Tolerance(0.80, 0.05))
    'test accuracy 0.80 ± 0.05: within tolerance of the smoke reference'
    >>> tolerance_verdict("test accuracy", 0.61, Tolerance(0.80, 0.05))
    'test accuracy 0.6100: OUTSIDE 0.80 ± 0.05 (the smoke reference)'

The verdict text is the same on every machine while the value stays within the tolerance, and
changes (so nbval fails) when it leaves it. The convention for notebooks:

* the reference and tolerance are literals of the ``parameters`` cell (``smoke_reference``, a dict
  ``metric -> [reference, tolerance]``), with a comment saying how the tolerance was chosen (for
  trained accuracies: about three standard deviations of the smoke run over seeds, so that rounding
  noise never trips it and a broken method does);
* they apply only to the smoke profile (the profile whose outputs are committed); other profiles
  print the measured digits (``pinned_summary(metrics, {})``, the lines of
  :func:`snnbp.runs.summary_lines`);
* the digits of the run on this machine may be shown too, in a separate cell tagged
  ``nbval-ignore-output``.

Pure functions only; nothing here reads files or the clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SMOKE_REFERENCE = "the smoke reference"


@dataclass(frozen=True)
class Tolerance:
    """A reference value with an absolute tolerance: ``|value - reference| <= tolerance`` passes.

    Attributes:
        reference: the expected value (e.g. the smoke run's test accuracy, rounded).
        tolerance: the allowed absolute deviation, > 0.
        source: what the reference is, as it reads in the verdict.
    """

    reference: float
    tolerance: float
    source: str = SMOKE_REFERENCE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reference) and math.isfinite(self.tolerance)) or self.tolerance <= 0:
            raise ValueError(
                f"Tolerance needs a finite reference and a positive finite tolerance, got "
                f"{self.reference!r} ± {self.tolerance!r}"
            )

    @classmethod
    def from_pair(cls, pair: Sequence[float], source: str = SMOKE_REFERENCE) -> Tolerance:
        """``[reference, tolerance]`` (the form a ``parameters`` cell holds) -> :class:`Tolerance`."""
        if len(pair) != 2:
            raise ValueError(f"expected [reference, tolerance], got {pair!r}")
        return cls(float(pair[0]), float(pair[1]), source)


def decimals(tolerance: float) -> int:
    """Decimals that show a tolerance's leading digit: 0.05 -> 2, 0.005 -> 3, 0.2 -> 1, 3 -> 0."""
    if not math.isfinite(tolerance) or tolerance <= 0:
        raise ValueError(f"tolerance must be positive and finite, got {tolerance!r}")
    return max(0, -math.floor(math.log10(tolerance) + 1e-12))


def within(value: float, tolerance: Tolerance) -> bool:
    """``|value - reference| <= tolerance`` (a NaN or infinite value is never within)."""
    value = float(value)
    return math.isfinite(value) and abs(value - tolerance.reference) <= tolerance.tolerance * (1 + 1e-12)


def tolerance_verdict(label: str, value: float, tolerance: Tolerance) -> str:
    """One line that reads the same on every machine while ``value`` is within the tolerance.

    Within: ``"<label> <reference> ± <tolerance>: within tolerance of <source>"``, the numbers
    rounded to the tolerance's leading digit. Outside: ``"<label> <value>: OUTSIDE <reference> ±
    <tolerance> (<source>)"`` with the measured value, so a failing comparison shows it.
    """
    places = decimals(tolerance.tolerance)
    band = f"{tolerance.reference:.{places}f} ± {tolerance.tolerance:.{places}f}"
    if within(value, tolerance):
        return f"{label} {band}: within tolerance of {tolerance.source}"
    return f"{label} {float(value):.{places + 2}f}: OUTSIDE {band} ({tolerance.source})"


RUN_KEYS = ("method", "dataset", "network", "epochs", "test_accuracy", "best_test_accuracy", "best_epoch")
"""What a training notebook's summary shows (as :func:`snnbp.runs.summary_lines`)."""
SELECTION_KEYS = ("selected_epoch", "validation_accuracy", "final_test_accuracy", "model_checkpoint")
"""Added when a validation split chose the run's model (``metrics["selected_epoch"]`` is set)."""


def pinned_summary(
    metrics: Mapping[str, Any],
    tolerances: Mapping[str, Sequence[float] | Tolerance],
    keys: Sequence[str] | None = None,
    *,
    source: str = SMOKE_REFERENCE,
) -> str:
    """A run summary safe to pin in nbval: ``key: value`` lines, with every key that has a tolerance
    printed as a :func:`tolerance_verdict` instead of its digits.

    Args:
        metrics: the run's metrics (e.g. ``FitResult.metrics``).
        tolerances: ``key -> Tolerance`` or ``key -> [reference, tolerance]``; empty: every value
            as measured (floats to four decimals), for profiles whose outputs are not pinned.
        keys: the keys to print, in order (default :data:`RUN_KEYS`, plus :data:`SELECTION_KEYS`
            when a validation split chose the model). Values without a tolerance must not depend
            on rounding (names, sizes, epoch counts).
        source: the reference's name for ``[reference, tolerance]`` pairs.

    Raises:
        KeyError: a key of ``tolerances`` that ``metrics`` lacks or ``keys`` does not show (a
            silent omission would always pass).
    """
    if keys is None:
        keys = RUN_KEYS + (SELECTION_KEYS if metrics.get("selected_epoch") is not None else ())
    resolved = {key: t if isinstance(t, Tolerance) else Tolerance.from_pair(t, source) for key, t in tolerances.items()}
    missing = [key for key in resolved if key not in metrics or key not in keys]
    if missing:
        raise KeyError(
            f"tolerances for {missing}, which the metrics lack or the summary does not show "
            f"(metrics: {sorted(metrics)}; shown: {list(keys)})"
        )
    lines = []
    for key in keys:
        value = metrics.get(key)
        if key in resolved:
            lines.append(tolerance_verdict(key.replace("_", " "), value, resolved[key]))
        elif isinstance(value, float):
            lines.append(f"{key}: {value:.4f}")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)
