"""Builds the sample model: iris -> scikit-learn LogisticRegression -> ONNX.

No download: scikit-learn ships the iris data. scikit-learn and skl2onnx are needed here only;
the serving image runs the result with onnxruntime alone.

Output (default ``build/sample-model``)::

    model/model.onnx        the folder Azure ML registers as a model version
    model/metadata.json     input name, feature count and class labels (read by the default handler)
    model.tar.gz            the same files at the archive root, as SageMaker unpacks into /opt/ml/model

Run: python model_containers/sample_model/build_sample_model.py [--out DIR]
The build is deterministic (fixed seed, fixed tar metadata), so the artifact hash only changes
when the model does.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tarfile
from pathlib import Path

CLASS_LABELS = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def build(out: Path) -> Path:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    import numpy as np

    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500, random_state=0).fit(x.astype(np.float32), y)
    onx = to_onnx(clf, x[:1].astype(np.float32), options={id(clf): {"zipmap": False}},
                  target_opset=17)
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "model.onnx": onx.SerializeToString(),
        "metadata.json": json.dumps({
            "name": "iris",
            "input_name": onx.graph.input[0].name,
            "features": FEATURES,
            "class_labels": CLASS_LABELS,
        }, indent=2, sort_keys=True).encode(),
    }
    for name, data in files.items():
        (model_dir / name).write_bytes(data)
    _write_reproducible_tar(out / "model.tar.gz", files)
    return out


def _write_reproducible_tar(path: Path, files: dict[str, bytes]) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/sample-model"),
                        help="output folder (default: build/sample-model)")
    args = parser.parse_args()
    out = build(args.out)
    print(f"sample model written to {out}/model and {out}/model.tar.gz")


if __name__ == "__main__":
    main()
