"""The papers' numbers (TARGETS.md), joined with measured runs by ``snnbp table``.

Provenance codes: ``V`` verified from the official code's logs/configs or an abstract; ``R`` from
a published review of the paper; ``~`` recalled and unverified (a direction, not a fact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from snnbp.classes import base_dataset


@dataclass(frozen=True)
class PaperTarget:
    """One number a paper reports for a method, dataset and network."""

    method: str
    paper_dataset: str
    network: str
    paper_best: float | None
    paper_mean: str
    provenance: str


TARGETS = (
    PaperTarget("hm2bp", "MNIST", "784-800-10", 0.9893, "98.84 ± 0.02 %", "V (best, log) / ~ (mean)"),
    PaperTarget("hm2bp", "MNIST", "28x28-15C5-P2-40C5-P2-300-10", 0.9949, "99.42 ± 0.11 %", "V / ~"),
    PaperTarget("hm2bp", "N-MNIST", "2312-800-10", 0.9888, "98.84 ± 0.02 %", "V / ~"),
    PaperTarget("hm2bp", "EMNIST", "784-400-400-47", 0.8557, "~84.3 %", "R / ~"),
    PaperTarget("hm2bp", "TI46-Alpha", "78-800-800-26", 0.9098, "~89.4-90.6 %", "R / ~"),
    PaperTarget("stdbp", "MNIST", "784-400-10", 0.981, "", "~"),
    PaperTarget("stdbp", "MNIST", "784-800-10", 0.985, "", "~"),
    PaperTarget("stdbp", "MNIST", "CNN", 0.994, "", "~"),
    PaperTarget("stdbp", "Fashion-MNIST", "FC", 0.88, "", "~"),
    PaperTarget("stdbp", "Fashion-MNIST", "CNN", 0.90, "", "~"),
    PaperTarget("stdbp", "Caltech face/motorbike", "DoG + SNN", 0.99, "", "~"),
)


@dataclass(frozen=True)
class ChipFigure:
    """Energy and latency per classified MNIST image that a publication reports for one chip.

    A range (``low`` < ``high``) is what the source gives when the figure depends on the network or
    the operating point; ``None`` where the source gives no number.

    Attributes:
        chip: the chip (and, where it matters, its coding).
        energy_uj: ``(low, high)`` energy per image in µJ.
        latency_ms: ``(low, high)`` latency per image in ms, or None.
        source: where the numbers come from.
        provenance: ``V``, ``R``, ``~`` or ``derived`` (computed from numbers of the same source).
    """

    chip: str
    energy_uj: tuple[float, float]
    latency_ms: tuple[float, float] | None
    source: str
    provenance: str


RENNER_2024 = "Renner et al., Nat. Commun. 2024, Table 1"
"""The survey table of neuromorphic MNIST classifiers that the other chips' numbers come from."""
YOSO_PAPER = "ReL-PSP/STDBP paper, abstract"

OTHER_CHIPS = (
    ChipFigure("TrueNorth", (0.27, 108.0), (1.0, 1.0), RENNER_2024, "R"),
    ChipFigure("SpiNNaker", (3300.0, 3300.0), (11.0, 11.0), RENNER_2024, "R"),
    ChipFigure("Loihi", (2.5, 2470.0), None, RENNER_2024, "R"),
    ChipFigure("BrainScaleS-2 (TTFS)", (8.4, 8.4), (0.048, 0.048), RENNER_2024, "R"),
    ChipFigure("SPOON", (0.31, 0.31), (0.12, 0.12), RENNER_2024, "R"),
    ChipFigure("ODIN", (0.015, 0.015), None, RENNER_2024, "R"),
)
"""Published MNIST energy and latency per image of other neuromorphic chips (docs/TARGETS.md 3)."""

YOSO_PAPER_CHIP = ChipFigure("YOSO + STDBP (paper)", (35.83, 35.83), (47.71, 47.71), YOSO_PAPER, "derived")
"""0.751 mW x 47.71 ms (V, the abstract) = 35.8 µJ per image, assuming the power is the average over a
classification (derived)."""


@dataclass(frozen=True)
class ChipResult:
    """One published MNIST classifier on a neuromorphic chip: what it ran and what it cost per image.

    Attributes:
        chip: the chip.
        publication: who published the measurement (as the survey cites it).
        network: the network as the survey writes it.
        energy_uj: energy per classified image in µJ.
        latency_ms: latency per image in ms, or None where not given.
        accuracy: MNIST test accuracy in [0, 1].
        mode: ``"inference"`` (trained off chip) or the on-chip learning rule it used.
        source: where the row comes from.
        provenance: ``V`` (read from the source table).
    """

    chip: str
    publication: str
    network: str
    energy_uj: float
    latency_ms: float | None
    accuracy: float
    mode: str
    source: str = RENNER_2024
    provenance: str = "V"


CHIP_RESULTS = (
    ChipResult("TrueNorth", "Esser et al. 2015", "CNN (512 neurons)", 0.27, 1.0, 0.927, "inference"),
    ChipResult("TrueNorth", "Esser et al. 2015", "CNN (3840 neurons)", 108.0, 1.0, 0.994, "inference"),
    ChipResult("SpiNNaker", "Stromatias et al. 2015", "784-500-500-10", 3300.0, 11.0, 0.95, "inference"),
    ChipResult("Loihi", "Renner et al. 2024", "400-400-10", 2.5, 0.17, 0.963, "inference"),
    ChipResult("Loihi", "Lin et al. 2018", "1920-10", 12.8, None, 0.964, "inference"),
    ChipResult("Loihi", "Shrestha et al. 2021", "CNN-CNN-100-10", 2470.0, 10.0, 0.947, "inference"),
    ChipResult("BrainScaleS-2 (TTFS)", "Göltz et al. 2019", "256-246-10", 8.4, 0.048, 0.969, "inference"),
    ChipResult("SPOON", "Frenkel et al. 2020", "CNN-10", 0.313, 0.12, 0.975, "inference"),
    ChipResult("ODIN", "Frenkel et al. 2018", "256-10", 0.015, None, 0.845, "on-chip SDSP learning"),
)
"""Published MNIST results of the chips in :data:`OTHER_CHIPS`, one row per measurement, with the
network and the accuracy that go with each energy (Renner et al. 2024, Table 1: its inference rows,
and ODIN's row, which the table lists under on-chip learning). The ranges of :data:`OTHER_CHIPS`
span these rows (tested)."""

YOSO_PAPER_ACCURACY = 0.985
"""The ReL-PSP paper's MNIST accuracy of a 784-800-10 STDBP network (``~``: recalled, unverified;
:data:`TARGETS`). The paper does not say here which of its networks ran on YOSO; this is the
accuracy that the YOSO point is drawn at."""


# dataset key of a run -> the paper dataset it stands for
PAPER_DATASET = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "nmnist": "N-MNIST",
    "nmnist_subset": "N-MNIST",
    "nmnist_simulated": "N-MNIST",
    "emnist_bymerge_resplit": "EMNIST",
    "fsdd": "TI46-Alpha",
    "letters_synthetic": "TI46-Alpha",
    "caltech_face_motor": "Caltech face/motorbike",
}


def find_target(method: str, dataset_key: str, network: str) -> PaperTarget | None:
    """The paper number for this run: same method and paper dataset, the closest network."""
    paper_dataset = PAPER_DATASET.get(base_dataset(dataset_key))
    candidates = [t for t in TARGETS if t.method == method and t.paper_dataset == paper_dataset]
    exact = [t for t in candidates if t.network == network]
    if exact:
        return exact[0]
    kind = [t for t in candidates if is_convolutional(t.network) == is_convolutional(network)]
    return (kind or candidates or [None])[0]


def is_convolutional(network: str) -> bool:
    """True for a spiking CNN: a convolution token (``15C5``) or the word ``CNN`` ("FC" is not one)."""
    return bool(re.search(r"\d+C\d|CNN", network.upper()))
