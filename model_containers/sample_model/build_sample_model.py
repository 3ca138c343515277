"""Builds the sample model: iris -> scikit-learn LogisticRegression -> ONNX, or (``--format``) the
same iris data in another model format the default handler serves (see FORMAT_BUILDERS).

No download: scikit-learn ships the iris data. scikit-learn and skl2onnx (and, for ``--format``,
that format's framework) are needed here only; the serving image runs the result.

Output (default ``build/sample-model``)::

    model/model.onnx        the folder Azure ML registers as a model version
    model/metadata.json     input name, feature count and class labels (read by the default handler)
    model.tar.gz            the same files at the archive root, as SageMaker unpacks into /opt/ml/model

Run: python model_containers/sample_model/build_sample_model.py [--out DIR] [--format NAME]
The ONNX build is deterministic (fixed seed, fixed tar metadata), so the artifact hash only changes
when the model does; the other formats predict deterministically (fixed seeds, one thread) but
some embed a timestamp (MLmodel's utc_time_created).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tarfile
import warnings
from pathlib import Path

CLASS_LABELS = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def build(out: Path) -> Path:
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500, random_state=0).fit(x.astype(np.float32), y)
    onx = to_onnx(clf, x[:1].astype(np.float32), options={id(clf): {"zipmap": False}}, target_opset=17)
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "model.onnx": onx.SerializeToString(),
        "metadata.json": json.dumps(
            {
                "name": "iris",
                "input_name": onx.graph.input[0].name,
                "features": FEATURES,
                "class_labels": CLASS_LABELS,
            },
            indent=2,
            sort_keys=True,
        ).encode(),
    }
    for name, data in files.items():
        (model_dir / name).write_bytes(data)
    _write_reproducible_tar(out / "model.tar.gz", files)
    return out


def _iris_frame():
    """The iris features as a DataFrame with FEATURES as column names (so the model records them)."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = FEATURES
    return x, y


def _logistic_regression(x, y):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500, random_state=0).fit(x, y)


def _labelled_classifier():
    x, y = _iris_frame()
    return x, _logistic_regression(x, y.map(dict(enumerate(CLASS_LABELS))))  # predicts the label names


def _write_metadata(model_dir: Path, **fields) -> None:
    (model_dir / "metadata.json").write_text(json.dumps({"name": "iris", **fields}, indent=2, sort_keys=True))


def _mlflow(model_dir: Path) -> None:
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature

    x, clf = _labelled_classifier()
    # requirements pinned here, not inferred: inference would import-scan and pin full mlflow
    mlflow.sklearn.save_model(
        clf,
        str(model_dir),
        signature=infer_signature(x, clf.predict(x)),
        pip_requirements=[f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}"],
    )


def _skops(model_dir: Path) -> None:
    import skops.io

    model_dir.mkdir(parents=True)
    skops.io.dump(_labelled_classifier()[1], model_dir / "model.skops")


def _joblib(model_dir: Path) -> None:
    import joblib

    model_dir.mkdir(parents=True)
    joblib.dump(_labelled_classifier()[1], model_dir / "model.joblib")


def _xgboost(model_dir: Path) -> None:
    import xgboost

    x, y = _iris_frame()
    model_dir.mkdir(parents=True)
    xgboost.XGBClassifier(n_estimators=20, max_depth=2, random_state=0, n_jobs=1).fit(x, y).save_model(
        model_dir / "model.ubj"
    )
    _write_metadata(model_dir, class_labels=CLASS_LABELS)  # XGBoost keeps the class indices only


def _lightgbm(model_dir: Path) -> None:
    import lightgbm

    x, y = _iris_frame()
    model_dir.mkdir(parents=True)
    model = lightgbm.LGBMClassifier(n_estimators=20, random_state=0, n_jobs=1, deterministic=True, verbose=-1).fit(x, y)
    model.booster_.save_model(model_dir / "model.txt")


def _torch_module():
    """A linear layer carrying the logistic regression's weights: the same classifier, as torch."""
    import torch

    x, y = _iris_frame()
    clf = _logistic_regression(x, y)
    layer = torch.nn.Linear(len(FEATURES), len(CLASS_LABELS))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(clf.coef_, dtype=torch.float32))
        layer.bias.copy_(torch.tensor(clf.intercept_, dtype=torch.float32))
    return layer.eval()


def _torchscript(model_dir: Path) -> None:
    import torch

    model_dir.mkdir(parents=True)
    with warnings.catch_warnings():  # deprecated in favour of torch.export, yet what most .pt files in use are
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(_torch_module()).save(str(model_dir / "model.pt"))
    _write_metadata(model_dir, features=FEATURES, class_labels=CLASS_LABELS)


def _torch_export(model_dir: Path) -> None:
    import torch

    model_dir.mkdir(parents=True)
    batch = torch.export.Dim("batch")
    program = torch.export.export(_torch_module(), (torch.zeros(2, len(FEATURES)),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(model_dir / "model.pt2"))
    _write_metadata(model_dir, features=FEATURES, class_labels=CLASS_LABELS)


# --format NAME -> builder writing OUT/model/; the name is also the tests' id of the sample
FORMAT_BUILDERS = {
    "mlflow": _mlflow,
    "sklearn-skops": _skops,
    "sklearn-joblib": _joblib,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "torchscript": _torchscript,
    "torch-export": _torch_export,
}


def build_format(name: str, out: Path) -> Path:
    """The iris sample in the model format ``name`` (a FORMAT_BUILDERS key) at OUT/model."""
    model_dir = out / "model"
    if model_dir.exists():
        import shutil

        shutil.rmtree(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    FORMAT_BUILDERS[name](model_dir)
    return model_dir


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
    parser.add_argument(
        "--out", type=Path, default=Path("build/sample-model"), help="output folder (default: build/sample-model)"
    )
    parser.add_argument(
        "--format",
        choices=["onnx", *FORMAT_BUILDERS],
        default="onnx",
        help="model format (default onnx, which also writes model.tar.gz)",
    )
    args = parser.parse_args()
    if args.format != "onnx":
        print(f"{args.format} sample model written to {build_format(args.format, args.out)}")
        return
    out = build(args.out)
    print(f"sample model written to {out}/model and {out}/model.tar.gz")


if __name__ == "__main__":
    main()
