"""The Docker build context of one model's serving image: the same bits for both clouds.

The CDK image asset (SageMaker) and the Azure ML environment build take a folder and a Dockerfile
path, no build target or base image from another build. So a model that needs more than the stock
core image gets a *staged* context, written once per content under ``out_root``:

* the server's context (``model_containers/``, as its ``.dockerignore`` filters it);
* ``Dockerfile``: the image variant's Dockerfile, plus, when the model has requirements of its own,
  a step that installs ``model-requirements/requirements.txt`` (already rewritten and checked
  against the variant's numpy/onnxruntime pins by ``twinserve_serving.model_requirements``; in the
  image the installed server packages are the constraints, so nothing moves them);
* ``Dockerfile.azureml-batch`` + ``requirements-azureml-batch.txt``: the same variant with Azure ML's
  batch runtime packages, derived from the stock core pair (its pins win where both name a package,
  numpy: azureml-dataset-runtime requires numpy<2.3.3) and the same model-requirements step.

The stock core image with no model requirements is the source folder as is. The folder name carries
a hash of every file, so concurrent synths (CDK and Pulumi, several specs) never write into each
other's context and an unchanged model gives the same asset hash and ML environment version.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from twinserve_serving.image_variants import VARIANTS, ImageVariant

DOCKERFILE = "Dockerfile"
BATCH_DOCKERFILE = "Dockerfile.azureml-batch"
BATCH_REQUIREMENTS = "requirements-azureml-batch.txt"
MODEL_REQUIREMENTS_DIR = "model-requirements"

_MODEL_REQUIREMENTS_STEP = f"""
# The model's own requirements, installed at build time so the endpoint installs nothing at start
# (network isolation has no package index). twinserve checked them against this image's pins.
USER 0
COPY {MODEL_REQUIREMENTS_DIR} /tmp/{MODEL_REQUIREMENTS_DIR}
RUN python -m twinserve_serving.model_requirements install /tmp/{MODEL_REQUIREMENTS_DIR} \\
    && rm -rf /tmp/{MODEL_REQUIREMENTS_DIR}
USER 10001
"""


def build_context_files(context: Path) -> list[Path]:
    """Files of a Docker build context, honouring the simple patterns of its ``.dockerignore``
    (``**/name``, ``*.ext``, ``folder``; negations are not supported and rejected)."""
    patterns: list[str] = []
    ignore_file = context / ".dockerignore"
    if ignore_file.is_file():
        for line in ignore_file.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("!"):
                raise ValueError(f"{ignore_file}: negated pattern {line!r} is not supported by twinserve's uploader")
            patterns.append(line.rstrip("/"))

    def ignored(rel: str) -> bool:
        parts = rel.split("/")
        for pattern in patterns:
            if pattern.startswith("**/"):
                if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                    return True
            elif any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
                return True
        return False

    return sorted(p for p in context.rglob("*") if p.is_file() and not ignored(p.relative_to(context).as_posix()))


def pinned_versions(requirements_file: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line (canonical names; comments skipped)."""
    pins: dict[str, str] = {}
    for line in requirements_file.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        if exact:
            pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


@dataclass(frozen=True)
class ImageContext:
    """Where an image is built from: ``directory`` with ``Dockerfile`` (serving) and
    ``Dockerfile.azureml-batch`` (Azure ML batch) in it."""

    directory: Path
    """The build context folder."""
    variant: ImageVariant
    """The image variant its Dockerfile builds."""
    model_requirements: tuple[str, ...] = ()
    """The model's requirements baked in (already rewritten and checked)."""
    staged: bool = False
    """False: the source folder itself (the stock core image)."""
    dockerfile: str = DOCKERFILE
    """The serving image's Dockerfile, relative to ``directory``."""
    batch_dockerfile: str = BATCH_DOCKERFILE
    """The Azure ML batch image's Dockerfile, relative to ``directory``."""


def stage_image_context(
    source: Path, variant: ImageVariant, model_requirements: Sequence[str], out_root: Path
) -> ImageContext:
    """The build context of ``variant`` with ``model_requirements`` baked in (see the module docstring)."""
    requirements = tuple(model_requirements)
    if variant.name == "core" and not requirements:
        return ImageContext(source, variant)
    for name in (variant.dockerfile, variant.requirements, BATCH_DOCKERFILE, BATCH_REQUIREMENTS):
        if not (source / name).is_file():
            raise FileNotFoundError(f"container.build: {source} has no {name} (image variant {variant.name})")
    files = {path.relative_to(source).as_posix(): path.read_bytes() for path in build_context_files(source)}
    step = _MODEL_REQUIREMENTS_STEP if requirements else ""
    header = f"# Generated by twinserve (image_context.py) from {variant.dockerfile}"
    files[DOCKERFILE] = (
        f"{header}{' and the model requirements' if requirements else ''}.\n"
        + (source / variant.dockerfile).read_text()
        + step
    ).encode()
    files[BATCH_DOCKERFILE] = (
        f"{header} with Azure ML's batch runtime ({BATCH_REQUIREMENTS}, the {BATCH_DOCKERFILE} system packages).\n"
        + _batch_dockerfile(source, variant)
        + step
    ).encode()
    files[BATCH_REQUIREMENTS] = _batch_requirements(source, variant).encode()
    if requirements:
        files[f"{MODEL_REQUIREMENTS_DIR}/requirements.txt"] = "".join(f"{r}\n" for r in requirements).encode()
    digest = hashlib.sha256()
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel] + b"\0")
    target = out_root / f"{variant.name}-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        out_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out_root))
        for rel, content in files.items():
            (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
            (scratch / rel).write_bytes(content)
        try:
            os.rename(scratch, target)  # atomic: a reader sees all files or none
        except OSError:  # another synth staged the same content first
            shutil.rmtree(scratch, ignore_errors=True)
    return ImageContext(target, variant, requirements, staged=True)


def _batch_dockerfile(source: Path, variant: ImageVariant) -> str:
    """The variant's Dockerfile, installing the batch requirements and the stock batch image's system
    packages (its ``RUN apt-get`` step, FUSE for the batch runtime's mounts)."""
    stock = (source / BATCH_DOCKERFILE).read_text()
    apt = re.search(r"^RUN apt-get update\b(?:.*\\\n)*.*\n", stock, re.MULTILINE)
    if apt is None:
        raise ValueError(f"{source / BATCH_DOCKERFILE}: no `RUN apt-get update ...` step to carry over")
    text = (source / variant.dockerfile).read_text()
    if variant.requirements != BATCH_REQUIREMENTS:
        text = re.sub(rf"(?<![\w.-]){re.escape(variant.requirements)}\b", BATCH_REQUIREMENTS, text)
    text = re.sub(r'(org\.opencontainers\.image\.title="[^"]+)"', r'\1-azureml-batch"', text)
    workdir = re.search(r"^WORKDIR ", text, re.MULTILINE)
    if workdir is None:
        raise ValueError(f"{source / variant.dockerfile}: no WORKDIR step to place the batch packages before")
    return text[: workdir.start()] + apt.group(0) + text[workdir.start() :]


def _batch_requirements(source: Path, variant: ImageVariant) -> str:
    """The variant's requirements with the stock batch file's pins applied: a package both name takes
    the batch pin (numpy), and the batch runtime packages are added."""
    core = set(pinned_versions(source / VARIANTS["core"].requirements))
    batch_lines = _requirement_lines(source / BATCH_REQUIREMENTS)
    overrides = {name: line for name, line in batch_lines.items() if name in core}
    additions = [line for name, line in batch_lines.items() if name not in core]
    lines = [overrides.get(name, line) for name, line in _requirement_lines(source / variant.requirements).items()]
    header = (
        f"# Generated by twinserve (image_context.py): {variant.requirements} with the pins and packages of the\n"
        f"# stock {BATCH_REQUIREMENTS} (Azure ML's batch runtime).\n"
    )
    return header + "".join(f"{line}\n" for line in [*lines, *additions])


def _requirement_lines(path: Path) -> dict[str, str]:
    lines: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        text = raw.split("#", 1)[0].strip()
        if text:
            lines[canonicalize_name(Requirement(text).name)] = text
    return lines


MODEL_DIR_IN_CONTEXT = "model"
BAKED_MODEL_PATH = "/opt/ml/model"
"""Where a baked-in model lies in the image: SageMaker's model folder, the server's default."""
_BAKED_MODEL_STEP = f"""
# The model, baked in: ECS Fargate and Lambda have no model mount (SageMaker and Azure ML mount it).
COPY --chown=10001:10001 {MODEL_DIR_IN_CONTEXT} {BAKED_MODEL_PATH}
"""


def stage_model_image_context(context: ImageContext, model_dir: Path, out_root: Path) -> Path:
    """A build context of ``context``'s serving image with ``model_dir`` copied to /opt/ml/model: the same
    server layers plus one layer of model files, for platforms that cannot mount a model (ECS Fargate,
    Lambda). Written once per content under ``out_root`` (``model-<hash>``), like staged contexts."""
    files = {path.relative_to(context.directory).as_posix(): path for path in build_context_files(context.directory)}
    files.pop(BATCH_DOCKERFILE, None)
    model_files = {
        f"{MODEL_DIR_IN_CONTEXT}/{path.relative_to(model_dir).as_posix()}": path
        for path in sorted(model_dir.rglob("*"))
        if path.is_file()
    }
    if not model_files:
        raise FileNotFoundError(f"model.artifact.path: {model_dir} holds no files to bake into the image")
    dockerfile = (
        f"# Generated by twinserve (image_context.py): {context.dockerfile} of {context.variant.name} and the model.\n"
        + (context.directory / context.dockerfile).read_text()
        + _BAKED_MODEL_STEP
    ).encode()
    digest = hashlib.sha256(DOCKERFILE.encode() + b"\0" + dockerfile + b"\0")
    for rel, path in sorted({**files, **model_files}.items()):
        if rel != DOCKERFILE:
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    target = out_root / f"model-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        out_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out_root))
        for rel, path in {**files, **model_files}.items():
            if rel == DOCKERFILE:
                continue
            (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, scratch / rel)
        (scratch / DOCKERFILE).write_bytes(dockerfile)
        try:
            os.rename(scratch, target)  # atomic, as for staged contexts
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


def stage_extended_image_context(
    base: Path, files: dict[str, Path], dockerfile_step: str, out_root: Path, name: str
) -> Path:
    """``base`` (a staged context, copied whole) plus ``files`` (context path -> source file) and
    ``dockerfile_step`` appended to its Dockerfile: an image that starts FROM the same layers, for a
    second use of one image (the AWS Batch job of ECS Fargate). Written once per content under
    ``out_root`` (``<name>-<hash>``), like staged contexts."""
    base_files = {p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*")) if p.is_file()}
    overlap = sorted(set(base_files) & set(files))
    if overlap:
        raise ValueError(f"extended image context: {overlap} already in {base}")
    dockerfile = ((base / DOCKERFILE).read_text() + dockerfile_step).encode()
    digest = hashlib.sha256(DOCKERFILE.encode() + b"\0" + dockerfile + b"\0")
    every = {**base_files, **files}
    every.pop(DOCKERFILE)
    for rel, path in sorted(every.items()):
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    target = out_root / f"{name}-{digest.hexdigest()[:16]}"
    if not target.is_dir():
        out_root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out_root))
        for rel, path in every.items():
            (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, scratch / rel)
        (scratch / DOCKERFILE).write_bytes(dockerfile)
        try:
            os.rename(scratch, target)  # atomic, as for staged contexts
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
    return target
