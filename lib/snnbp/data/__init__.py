"""Datasets: one module per family, all returning :class:`LabelledSplit` pairs."""

from snnbp.data.base import DatasetInfo, LabelledSplit, MissingDatasetError

__all__ = ["DatasetInfo", "LabelledSplit", "MissingDatasetError"]
