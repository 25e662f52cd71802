"""Validation hold-outs: the last samples overall, or stratified by class and evenly spaced (train.validation_stratified)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snnbp.config import ConfigError, params_from_dict, params_to_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.encoding.events import SparseRasters
from snnbp.train import fit, params_hash


def _sorted_split() -> LabelledSplit:
    """10 samples of class 0, 6 of class 1, 4 of class 2, stored class by class; input = the sample's index."""
    labels = torch.tensor([0] * 10 + [1] * 6 + [2] * 4)
    return LabelledSplit(torch.arange(20)[:, None], labels)


def test_the_plain_hold_out_takes_the_last_samples():
    train, held = _sorted_split().hold_out(5)
    assert held.labels.tolist() == [1, 2, 2, 2, 2] and len(train) == 15


def test_the_stratified_hold_out_takes_the_last_of_every_class_in_proportion():
    train, held = _sorted_split().hold_out(5, stratified=True)
    # quotas 2.5, 1.5, 1.0 -> 2, 1, 1 and one more for the largest remainder (a tie: class 0 first);
    # class 0 (samples 0-9, k = 3): positions floor(10 (j + 1) / 3) - 1 = 2, 5, 9
    assert held.inputs[:, 0].tolist() == [2, 5, 9, 15, 19]
    assert held.labels.tolist() == [0, 0, 0, 1, 2]
    assert train.inputs[:, 0].tolist() == [i for i in range(20) if i not in (2, 5, 9, 15, 19)]
    assert torch.equal(train.labels, _sorted_split().labels[train.inputs[:, 0]])
    assert _sorted_split().hold_out(10, stratified=True)[1].labels.bincount().tolist() == [5, 3, 2]


def test_the_stratified_hold_out_keeps_rasters_sparse_and_refuses_too_many():
    rasters = SparseRasters.from_dense(np.eye(6, dtype=bool)[:, None, :].repeat(2, axis=1))
    split = LabelledSplit(rasters, torch.tensor([0, 0, 0, 1, 1, 1]))
    train, held = split.hold_out(2, stratified=True)
    assert isinstance(held.inputs, SparseRasters) and held.labels.tolist() == [0, 1]
    assert held.inputs.to_dense([0, 1])[:, 0].to(torch.int64).argmax(dim=1).tolist() == [2, 5]
    assert len(split.hold_out(0, stratified=True)[1]) == 0
    with pytest.raises(ValueError, match="cannot hold out 6 of 6 samples"):
        split.hold_out(6, stratified=True)


def _params(train: dict):
    return params_from_dict(
        {
            "name": "toy",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 5,
            "data": {"dataset": "mnist"},
            "train": {"epochs": 1, "batch_size": 8, **train},
            "model": {"hidden": [7], "lr": 0.01},
        },
        "test",
    )


def test_params_keep_older_identities_and_refuse_stratified_without_a_count():
    resolved = params_to_dict(_params({"validation": 5}))
    older = json.loads(json.dumps(resolved))
    del older["train"]["validation_stratified"]  # a run recorded before the option existed
    assert params_hash(resolved) == params_hash(older)
    assert params_hash(params_to_dict(_params({"validation": 5, "validation_stratified": True}))) != params_hash(
        resolved
    )
    with pytest.raises(
        ConfigError, match="test: key 'train.validation_stratified' is true but 'train.validation' is unset"
    ):
        _params({"validation_stratified": True})


def test_fit_holds_out_the_stratified_split(tmp_path, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(20)  # stored class by class
    inputs = torch.randn(3, 6, generator=generator)[labels] * 3 + torch.randn(60, 6, generator=generator)
    data = (
        LabelledSplit(inputs, labels),
        LabelledSplit(inputs[:9], labels[:9]),
        DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(6,), kind="image"),
    )
    seen = []
    original = LabelledSplit.hold_out

    def spy(self, count, *, stratified=False):
        parts = original(self, count, stratified=stratified)
        seen.append(parts[1].labels.tolist())
        return parts

    monkeypatch.setattr(LabelledSplit, "hold_out", spy)
    result = fit(_params({"validation": 9, "validation_stratified": True}), tmp_path / "run", data=data, progress=False)
    assert seen[0] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert result.history[0]["train_samples"] == 51 and "validation_accuracy" in result.history[0]
