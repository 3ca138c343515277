"""Model formats the default handler serves with no user code, and how the model folder is read.

Every format is one module here with ``load(path, metadata, config) -> Model``; a Model has a
``signature`` (payload.Signature) and ``predict(batch) -> Outputs``. The framework is imported
inside ``load``, so the core image (numpy + onnxruntime) imports only what the model needs.

Detection (``TWINSERVE_MODEL_FORMAT`` narrows it to one format): the model folder and up to two
folders below it (Azure ML mounts the registered folder inside ``AZUREML_MODEL_DIR``) are searched
for the files in FORMATS. An ``MLmodel`` file wins (an MLflow folder also holds a model.pkl and JSON
examples), then a file named ``model.<suffix>`` in the model folder itself (so ``model.onnx`` is
served beside a preprocessing pickle, as before); otherwise the files found must be one file of
one format.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import logs

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..payload import Signature


class ModelFormatError(Exception):
    """The model folder holds no servable model, several, or one this image cannot load."""


@dataclass(frozen=True)
class Format:
    name: str
    names: tuple[str, ...]  # file names matched exactly
    suffixes: tuple[str, ...]  # or file suffixes
    package: str  # what to install when the import fails
    starts: dict[str, bytes] = field(default_factory=dict)  # suffix -> how such a file starts, where ambiguous

    def matches(self, path: Path) -> bool:
        if path.name in self.names:
            return True
        suffix = path.suffix.lower()
        if suffix not in self.suffixes:
            return False
        prefix = self.starts.get(suffix)
        if prefix is None:
            return True
        with open(path, "rb") as fh:
            return fh.read(len(prefix)) == prefix

    @property
    def image(self) -> str:
        """The (CPU) image variant that carries the package."""
        from ..image_variants import variant_for

        return variant_for(self.name, gpu=False).name

    @property
    def patterns(self) -> str:
        return ", ".join([*self.names, *(f"*{s}" for s in self.suffixes)])


FORMATS = (
    Format("mlflow", ("MLmodel",), (), "mlflow-skinny"),
    Format("onnx", (), (".onnx",), "onnxruntime"),
    Format("sklearn", (), (".skops", ".joblib", ".pkl", ".pickle"), "scikit-learn and skops"),
    # XGBoost's JSON model starts with the learner object; UBJSON (".ubj") is its binary twin
    Format("xgboost", (), (".ubj", ".json"), "xgboost-cpu", {".json": b'{"learner"'}),
    Format("lightgbm", (), (".txt", ".lgb"), "lightgbm", {".txt": b"tree\n", ".lgb": b"tree\n"}),
    Format("torch", (), (".pt", ".pt2"), "torch"),
)
FORMAT_NAMES = tuple(f.name for f in FORMATS)
_BY_NAME = {f.name: f for f in FORMATS}


@dataclass
class Outputs:
    """A prediction: one or more named outputs, each with one entry per row."""

    columns: dict[str, Any]  # name -> array or list, one entry per row
    named: bool = False  # JSON rows as {name: value}; else the single output's values
    class_labels: list[str] | None = field(default=None)  # maps integer class outputs to names


def detect(model_dir: Path, forced: str | None = None) -> tuple[Format, Path]:
    """The format and model file in ``model_dir`` (see the module docstring for the rules)."""
    formats = (_BY_NAME[forced],) if forced else FORMATS
    found = [(fmt, path) for path in _files(model_dir) for fmt in formats if fmt.matches(path)]
    mlflow = [(fmt, path) for fmt, path in found if fmt.name == "mlflow"]
    if mlflow:
        found = mlflow
    if not found:
        if forced:
            raise ModelFormatError(
                f"TWINSERVE_MODEL_FORMAT={forced} but no {forced} model file "
                f"({_BY_NAME[forced].patterns}) in {model_dir} or two levels below"
            )
        raise ModelFormatError(
            f"no .onnx model found in {model_dir}, nor a model of another format (looked two "
            "levels deep for " + "; ".join(f"{f.patterns} ({f.name})" for f in FORMATS) + ")"
        )
    at_root = [(f, p) for f, p in found if p.parent == model_dir and p.stem == "model"]
    if len(at_root) == 1:
        return at_root[0]
    kinds = sorted({fmt.name for fmt, _ in found})
    if len(kinds) > 1:
        listed = ", ".join(f"{path.relative_to(model_dir)} ({fmt.name})" for fmt, path in found)
        raise ModelFormatError(
            f"model files of several formats in {model_dir}: {listed}; keep one, or set "
            f"TWINSERVE_MODEL_FORMAT to one of {', '.join(kinds)}"
        )
    if len(found) == 1:
        return found[0]
    fmt = found[0][0]
    listed = ", ".join(str(path.relative_to(model_dir)) for _, path in found)
    example = f"model{fmt.suffixes[0]}" if fmt.suffixes else fmt.names[0]
    raise ModelFormatError(
        f"{len(found)} {fmt.name} model files in {model_dir}; keep one or name it {example}: {listed}"
    )


def _files(model_dir: Path) -> list[Path]:
    """Files in the folder and two levels below, nearest first; the handler's code/ folder is not a model."""
    levels = [sorted(model_dir.glob(pattern)) for pattern in ("*", "*/*", "*/*/*")]
    return [p for level in levels for p in level if p.is_file() and "code" not in p.relative_to(model_dir).parts[:-1]]


def load(model_dir: Path, config: ServerConfig) -> Any:
    """Detect the format, import its module and load the model file."""
    fmt, path = detect(model_dir, config.model_format)
    logs.info(
        "model_format_detected", model_format=fmt.name, model_file=str(path), forced=config.model_format is not None
    )
    module = importlib.import_module(f"{__name__}.{fmt.name}")
    metadata_path = path.parent / "metadata.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    try:
        return module.load(path, metadata, config)
    except ImportError as exc:
        raise ModelFormatError(
            f"{path.relative_to(model_dir)} is a {fmt.name} model, but this image lacks "
            f"{fmt.package} ({exc}); use the twinserve-{fmt.image} image"
        ) from exc


def metadata_signature(metadata: dict[str, Any], dtype: Any) -> Signature:
    """The Signature metadata.json describes (``features``); for models that carry no names."""
    from ..payload import Signature  # payload imports numpy, which config (importing this) must not

    names = tuple(metadata["features"]) if metadata.get("features") else None
    return Signature(names=names, width=len(names) if names else None, dtype=dtype)
