"""Packs a model folder as the ``model.tar.gz`` SageMaker unpacks into ``/opt/ml/model``.

The archive is reproducible - entries sorted, owner, mode and times fixed, gzip without a
timestamp - so the CDK asset hash (and with it the template) changes only when the model does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import tempfile
from pathlib import Path


def pack_model_dir(model_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``<out_dir>/<content digest>/model.tar.gz`` holding the files of ``model_dir`` at the
    archive root, and return its path. An archive already there for the same content is reused."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist")
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"model folder {model_dir} holds no files")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(model_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    target = Path(out_dir or Path(tempfile.gettempdir()) / "twinserve-model-archives") / digest.hexdigest()[:16]
    archive = target / "model.tar.gz"
    if archive.is_file():
        return archive
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(model_dir).as_posix())
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    target.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    with open(partial, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    partial.replace(archive)  # atomic: a concurrent synth never sees half an archive
    return archive
