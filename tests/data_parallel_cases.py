"""Tiny training runs for the data-parallel tests, and the program each ``torchrun`` rank executes.

``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/data_parallel_cases.py OUT``
trains every case of :data:`CASES` over the processes into ``OUT/<case>`` (one case also stopped
after its first epoch and resumed); ``tests/test_distributed.py`` trains the same cases in one
process and compares the weights.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from snnbp.config import RunParams, params_from_dict
from snnbp.data.base import DatasetInfo, LabelledSplit

INFO = DatasetInfo(name="tiny images", key="tiny", num_classes=3, input_shape=(6, 6), kind="image", is_standin=True)

HM2BP = {
    "layers": ["12"],
    "thresholds": [2.0, 2.0],
    "time_steps": 24,
    "desired": 8.0,
    "undesired": 2.0,
    "margin": 2.0,
    "lr": 0.01,
    "dtype": "float64",
}
CASES: dict[str, dict[str, Any]] = {
    "hm2bp_torch": {"method": "hm2bp", "notebook": "10_train_hm2bp.ipynb", "model": {**HM2BP, "engine": "torch"}},
    "hm2bp_event": {"method": "hm2bp", "notebook": "10_train_hm2bp.ipynb", "model": {**HM2BP, "engine": "event"}},
    "stdbp": {
        "method": "stdbp",
        "notebook": "20_train_stdbp.ipynb",
        "model": {"hidden": [10], "t_max": 5.0, "lr": 3e-3, "clip": 2.0, "t_silent": 10.0, "silent_penalty": 0.1},
    },
    "ann": {"method": "ann", "notebook": "04_train_ann.ipynb", "model": {"hidden": [10], "lr": 0.01}},
}
"""Each case's method, notebook and model; HM2-BP in float64 (STDBP and the ANN compute in float32)."""

RESUMED = "hm2bp_torch"
"""The case that is also trained in two starts (stopped after epoch 1, then resumed)."""


def params(case: str) -> RunParams:
    """The run params of ``case``: 3 epochs over 30 samples in batches of 7 (shards of 3 and 4; the
    last batch of 2 gives each of 2 processes one sample)."""
    return params_from_dict(
        {
            "name": case,
            "seed": 3,
            "data": {"dataset": "mnist"},
            "train": {"epochs": 3, "batch_size": 7, "num_threads": 1},
            **CASES[case],
        },
        case,
    )


def data() -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """30 training and 12 test images of 6 x 6 pixels, three classes told apart by which rows are bright."""
    generator = torch.Generator().manual_seed(11)
    labels = torch.randint(0, 3, (42,), generator=generator)
    images = torch.randint(0, 60, (42, 6, 6), generator=generator)
    for row in range(3):
        images[labels == row, 2 * row : 2 * row + 2] += 180
    images = images.to(torch.uint8)
    return LabelledSplit(images[:30], labels[:30]), LabelledSplit(images[30:], labels[30:]), INFO


def weights(learner_state: dict[str, Any]) -> list[torch.Tensor]:
    """The trained tensors of a learner's state, in a fixed order, whatever the method."""
    if "net" in learner_state:
        return [learner_state["net"][k] for k in sorted(learner_state["net"])]
    return [w for w in learner_state["weights"] if w is not None]


def main(out: Path) -> None:
    """Train every case over the process group ``torchrun`` started."""
    from snnbp import distributed
    from snnbp.train import fit

    parallel = distributed.from_environment("cpu")
    assert parallel is not None, "start with torchrun --nproc-per-node 2"
    try:
        for case in CASES:
            fit(params(case), out / case, progress=False, data=data(), parallel=parallel)
        fit(
            params(RESUMED),
            out / f"{RESUMED}_resumed",
            progress=False,
            data=data(),
            parallel=parallel,
            stop_after_epoch=1,
        )
        fit(params(RESUMED), out / f"{RESUMED}_resumed", progress=False, data=data(), parallel=parallel)
    finally:
        distributed.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
