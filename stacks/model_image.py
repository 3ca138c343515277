"""Which image serves the spec's model in one environment, read from the model folder at synth time.

Both clouds call :func:`resolve_model_image` and so build the same image from the same context:

  model.format (auto: detected from model.artifact.path) + container.image_variant + compute.gpu
      -> the image variant (twinserve_serving/image_variants.py)
  the model's own requirements (code/requirements.txt, MLflow python_env.yaml / requirements.txt)
      + model.requirements -> rewritten and checked against the variant's server pins
      (twinserve_serving/model_requirements.py), baked in by a staged build context
      (twinserve/image_context.py)
  model.format (stated) / trust_pickle / trust_skops -> the container's TWINSERVE_* variables

Everything the container would refuse at start (no model file, a pickle nobody trusted, a skops file
with unknown types, a requirement that moves numpy) is refused here instead, before anything is
created, as a :class:`~twinserve.spec.SpecError` at the field to change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from twinserve.image_context import ImageContext, pinned_versions, stage_image_context
from twinserve.spec import DeploymentSpec, EnvironmentSpec, SpecError, SpecIssue
from twinserve_serving import formats, model_requirements
from twinserve_serving.image_variants import VARIANTS, ImageVariant, gpu_build_of, variant_for

STAGING_DIR_VARIABLE = "TWINSERVE_BUILD_DIR"
DEFAULT_STAGING_DIR = Path("build") / "image-contexts"
"""Staged build contexts go to $TWINSERVE_BUILD_DIR/image-contexts, by default build/image-contexts
under the folder `cdk`/`pulumi` run in (the project root)."""

_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


@dataclass(frozen=True)
class ModelImage:
    """The image of one environment."""

    model_format: str | None
    """Detected or stated; None when nothing can be read (an s3_uri artifact with format auto)."""
    variant: ImageVariant | None
    """None with container.image_uri (a pre-built image is used as is)."""
    context: ImageContext | None
    """Where to build it from (container.build only)."""
    environment: dict[str, str] = field(default_factory=dict)
    """What the container is told about the model (TWINSERVE_MODEL_FORMAT, TWINSERVE_TRUST_*)."""


def staging_dir() -> Path:
    root = os.environ.get(STAGING_DIR_VARIABLE)
    return Path(root) / "image-contexts" if root else DEFAULT_STAGING_DIR


def resolve_model_image(
    spec: DeploymentSpec, env: EnvironmentSpec, spec_dir: Path, *, env_path: str, out_root: Path | None = None
) -> ModelImage:
    """The model format, image variant, build context and container settings of one environment.

    ``env_path`` (``environments.<name>``) prefixes the errors of environment fields."""
    model, container = spec.model, spec.container
    model_dir = (spec_dir / model.artifact.path).resolve() if model.artifact.path else None
    label = str(model_dir or spec_dir)
    model_format = _model_format(spec, model_dir, label)
    environment = _container_settings(spec, model_dir, model_format, label)
    if container.build is None:
        return ModelImage(model_format, None, None, environment)
    variant = _variant(spec, env, model_format, env_path, label)
    requirements = _requirements(spec, model_dir, variant, (spec_dir / container.build).resolve(), label)
    context = stage_image_context(
        (spec_dir / container.build).resolve(), variant, requirements, out_root or staging_dir()
    )
    return ModelImage(model_format, variant, context, environment)


def _fail(label: str, path: str, value, message: str):
    raise SpecError(label, [SpecIssue(path, value, message)])


def _model_format(spec: DeploymentSpec, model_dir: Path | None, label: str) -> str | None:
    stated = spec.model.format
    if model_dir is None:
        return None if stated == "auto" else stated
    if not model_dir.is_dir():
        _fail(
            label,
            "model.artifact.path",
            spec.model.artifact.path,
            f"{model_dir} does not exist (the sample model is built by `make synth`, or "
            "`python model_containers/sample_model/build_sample_model.py --out build/sample-model`)",
        )
    try:
        detected, _ = formats.detect(model_dir, None if stated == "auto" else stated)
    except formats.ModelFormatError as exc:
        path = "model.format" if stated != "auto" else "model.artifact.path"
        _fail(label, path, stated if stated != "auto" else spec.model.artifact.path, str(exc))
    return detected.name


def _container_settings(
    spec: DeploymentSpec, model_dir: Path | None, model_format: str | None, label: str
) -> dict[str, str]:
    model = spec.model
    environment: dict[str, str] = {}
    if model.format != "auto":
        environment["TWINSERVE_MODEL_FORMAT"] = model.format
    if model.trust_pickle:
        environment["TWINSERVE_TRUST_PICKLE"] = "true"
    if model.trust_skops:
        environment["TWINSERVE_TRUST_SKOPS"] = "true"
    if model_dir is None or model_format != "sklearn":
        return environment
    _, model_file = formats.detect(model_dir, "sklearn")
    if model_file.suffix.lower() in _PICKLE_SUFFIXES and not model.trust_pickle:
        _fail(
            label,
            "model.trust_pickle",
            False,
            f"{model_file.name} is a pickle, and loading it runs whatever code it holds: set "
            "model.trust_pickle: true only for a file you trust, or save the model with skops (*.skops)",
        )
    if model_file.suffix.lower() == ".skops" and not model.trust_skops:
        untrusted = _untrusted_skops_types(model_file)
        if untrusted:
            _fail(
                label,
                "model.trust_skops",
                False,
                f"{model_file.name} holds types skops does not trust by default ({', '.join(untrusted)}); "
                "set model.trust_skops: true if you trust them",
            )
    return environment


def _untrusted_skops_types(model_file: Path) -> list[str]:
    try:
        import skops.io  # noqa: PLC0415 - optional here: the container checks again at start
    except ImportError:
        return []
    return list(skops.io.get_untrusted_types(file=model_file))


def _variant(
    spec: DeploymentSpec, env: EnvironmentSpec, model_format: str | None, env_path: str, label: str
) -> ImageVariant:
    gpu, wanted = env.compute.gpu, spec.container.image_variant
    if wanted == "auto":
        try:
            return variant_for(model_format or "onnx", gpu)
        except ValueError as exc:
            _fail(label, f"{env_path}.compute.gpu", gpu, f"{exc} (the model is {model_format})")
    cpu = VARIANTS[wanted]
    if model_format is not None and model_format not in cpu.formats:
        _fail(
            label,
            "container.image_variant",
            wanted,
            f"the {wanted} image serves {', '.join(cpu.formats)}, not this {model_format} model; use "
            f"{variant_for(model_format, False).name} or auto",
        )
    if not gpu:
        return cpu
    built = gpu_build_of(wanted)
    if built is None:
        _fail(label, f"{env_path}.compute.gpu", True, f"the {wanted} image has no GPU build")
    return built


def _requirements(
    spec: DeploymentSpec, model_dir: Path | None, variant: ImageVariant, context: Path, label: str
) -> list[str]:
    """The model folder's requirements and model.requirements, rewritten (mlflow -> mlflow-skinny) and
    checked against the variant's pins of the server packages."""
    installed = {
        name: version
        for name, version in pinned_versions(context / variant.requirements).items()
        if name in model_requirements.SERVER_PACKAGES
    }
    found: list[str] = []
    if model_dir is not None:
        try:
            found = model_requirements.plan(model_dir, installed=installed).requirements
        except model_requirements.RequirementError as exc:
            _fail(label, "model.artifact.path", spec.model.artifact.path, f"model requirements: {exc}")
    notes: list[str] = []
    extra = []
    for i, line in enumerate(spec.model.requirements):
        try:
            rewritten = model_requirements.rewrite(line, f"model.requirements[{i}]", installed, notes)
        except model_requirements.RequirementError as exc:
            _fail(label, f"model.requirements.{i}", line, str(exc))
        if rewritten:
            extra.append(rewritten)
    return [*found, *(r for r in extra if r not in found)]
