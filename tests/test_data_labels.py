"""Labels outside a dataset's classes are refused at load time, naming the file and the value (small fake files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import write_caltech_tree, write_emnist_official, write_emnist_packed, write_fsdd_tree
from snnbp.data import caltech
from snnbp.data.base import DataIntegrityError, check_labels
from snnbp.data.emnist import load_emnist, read_emnist_packed
from snnbp.data.speech import Utterance, list_fsdd, list_synthetic_letters, utterances_to_split


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBP_DATA_DIR", str(tmp_path / "data_dir"))


def test_check_labels_names_the_file_the_value_and_its_index():
    check_labels(np.array([0, 9, 3]), 10, "f")
    with pytest.raises(DataIntegrityError, match=r"^f: label 10 at index 1 is outside 0..9 \(10 classes\)$"):
        check_labels(np.array([0, 10, -1]), 10, "f")
    with pytest.raises(DataIntegrityError, match=r"^b.wav: label -1 is outside 0..1 \(2 classes\)$"):
        check_labels([1, -1], 2, ["a.wav", "b.wav"])
    with pytest.raises(DataIntegrityError, match=r"^f: label 0 at index 0 is outside 1..26"):
        check_labels(np.array([0, 1]), 26, "f", first=1)


def _images(n: int) -> np.ndarray:
    return np.zeros((n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize(
    ("split", "bad", "allowed"), [("balanced", 47, "0..46"), ("letters", 0, "1..26"), ("letters", 27, "1..26")]
)
def test_emnist_labels_out_of_range_name_the_labels_file(tmp_path, split, bad, allowed):
    good = 1
    labels = {"train": np.array([good, good], dtype=np.uint8), "test": np.array([good, bad, good], dtype=np.uint8)}
    write_emnist_official(tmp_path, split, {"train": _images(2), "test": _images(3)}, labels)
    with pytest.raises(
        DataIntegrityError,
        match=rf"emnist-{split}-test-labels-idx1-ubyte.gz: label {bad} at index 1 "
        rf"is outside {allowed}",
    ):
        load_emnist(split, tmp_path)


def test_packed_emnist_labels_beyond_the_mapping_name_test_json(tmp_path):
    write_emnist_packed(tmp_path / "emnist-mnist", _images(4), np.array([0, 1, 3, 2]), "abc", per_sheet=4)
    with pytest.raises(
        DataIntegrityError, match=r"emnist-mnist/test.json: label 3 at index 2 is outside 0..2 \(3 classes\)"
    ):
        read_emnist_packed(tmp_path / "emnist-mnist")


def test_an_utterance_label_out_of_range_names_its_file_before_encoding(tmp_path):
    write_fsdd_tree(tmp_path / "fsdd", digits=(0, 1), speakers=("theo",), indices=(7,))
    train, _ = list_fsdd(tmp_path / "fsdd")
    assert [u.label for u in train] == [0, 1]
    utterances = [train[0], Utterance(train[1].path, 12)]
    with pytest.raises(DataIntegrityError, match=r"1_theo_7.wav: label 12 is outside 0..9"):
        utterances_to_split("fsdd-train", utterances, 50, False, num_classes=10)
    assert not (tmp_path / "data_dir").exists()  # refused before anything was encoded or cached


def test_a_synthetic_letter_that_is_no_letter_names_the_manifest_and_the_file(tmp_path):
    entries = [
        {"file": "v/a_00.wav", "letter": "a", "split": "train"},
        {"file": "v/x_01.wav", "letter": "?", "split": "test"},
    ]
    (tmp_path / "manifest.json").write_text(json.dumps({"utterances": entries}))
    with pytest.raises(DataIntegrityError, match=r"manifest.json: v/x_01.wav is labelled '\?', not one letter a..z"):
        list_synthetic_letters(tmp_path)


def test_a_caltech_image_of_an_unknown_class_names_its_file(tmp_path, monkeypatch):
    write_caltech_tree(tmp_path, {"LearningSet": 1, "TestingSet": 1})
    (tmp_path / "LearningSet" / "Other").mkdir()
    (tmp_path / "LearningSet" / "Other" / "image_0001.jpg").write_bytes(
        (tmp_path / "LearningSet" / "Face" / "image_0001.jpg").read_bytes()
    )
    monkeypatch.setattr(caltech, "CLASSES", ("Face", "Motor", "Other"))
    with pytest.raises(
        DataIntegrityError, match=r"LearningSet/Other/image_0001.jpg: label 2 is outside 0..1 \(2 classes\)"
    ):
        caltech.load_caltech_images(tmp_path, size=(20, 30))
