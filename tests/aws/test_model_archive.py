"""The model folder is packed the way SageMaker unpacks it, reproducibly."""

from __future__ import annotations

import tarfile

import pytest

from twinserve.aws.model_archive import pack_model_dir


def test_archive_holds_the_folder_at_its_root_and_is_reproducible(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "model.onnx").write_bytes(b"onnx")
    (model / "sub" / "labels.txt").write_text("a\nb\n")
    first = pack_model_dir(model, tmp_path / "out1")
    second = pack_model_dir(model, tmp_path / "out2")
    assert first.name == "model.tar.gz"
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert sorted(tar.getnames()) == ["model.onnx", "sub/labels.txt"]
        assert tar.extractfile("sub/labels.txt").read() == b"a\nb\n"
        assert {m.mtime for m in tar.getmembers()} == {0}


def test_a_changed_model_gets_a_new_archive(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.onnx").write_bytes(b"v1")
    first = pack_model_dir(model, tmp_path / "out")
    (model / "model.onnx").write_bytes(b"v2")
    second = pack_model_dir(model, tmp_path / "out")
    assert first != second and first.read_bytes() != second.read_bytes()


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder .* does not exist"):
        pack_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        pack_model_dir(tmp_path / "empty")
