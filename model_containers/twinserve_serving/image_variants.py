"""The image variants model_containers/ builds, and which one serves a model format.

Each variant is one Dockerfile in the same build context (Azure ML builds a context by Dockerfile
path and cannot choose a build target), installing one requirements file. The core image stays
small: frameworks live in the variants that need them. Every variant serves ONNX.

Read by the stacks to pick the image a spec's model needs, by ``make image-test`` to build the CPU
variants, and by the tests that lint the Dockerfiles; the server itself never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

LAMBDA_ADAPTER_IMAGE = (
    "public.ecr.aws/awsguru/aws-lambda-adapter:1.1.0"
    "@sha256:17cfd08eff1dfea3f6a9a1e9c65fdac80aa4919b6085e746615530f43f57d2f1"
)
"""The AWS Lambda Web Adapter every CPU variant copies into /opt/extensions (the Dockerfiles' build
argument default; tests/container/test_image.py checks each one against this). Release 1.1.0 (the
newest found, 2026-07); the digest is the multi-arch index's as several independent public
Dockerfiles pin it - it could not be read from the registry on the build machines (no registry
access), so the first build that pulls it verifies it. Its settings: lambda_settings.py."""
LAMBDA_ADAPTER_PATH = "/opt/extensions/lambda-adapter"


@dataclass(frozen=True)
class ImageVariant:
    name: str
    dockerfile: str
    """File name in model_containers/."""
    requirements: str
    """The requirements file the Dockerfile installs."""
    formats: tuple[str, ...]
    """Model formats (formats.FORMAT_NAMES) its default handler can load."""
    gpu: bool
    """Built with CUDA 12 libraries (onnxruntime-gpu; torch's CUDA build): for NVIDIA GPU hosts only."""

    @property
    def runs_on_lambda(self) -> bool:
        """Carries the Lambda Web Adapter (every CPU variant; Lambda has no GPU)."""
        return not self.gpu


_TABULAR = ("mlflow", "sklearn", "xgboost", "lightgbm")
VARIANTS: dict[str, ImageVariant] = {
    v.name: v
    for v in (
        ImageVariant("core", "Dockerfile", "requirements.txt", ("onnx",), gpu=False),
        ImageVariant("formats", "Dockerfile.formats", "requirements-formats.txt", ("onnx", *_TABULAR), gpu=False),
        ImageVariant("torch", "Dockerfile.torch", "requirements-torch.txt", ("onnx", "torch"), gpu=False),
        ImageVariant("gpu", "Dockerfile.gpu", "requirements-gpu.txt", ("onnx",), gpu=True),
        ImageVariant("torch-gpu", "Dockerfile.torch-gpu", "requirements-torch-gpu.txt", ("onnx", "torch"), gpu=True),
    )
}
CPU_VARIANTS = tuple(name for name, v in VARIANTS.items() if not v.gpu)


def variant_for(model_format: str, gpu: bool) -> ImageVariant:
    """The smallest variant that serves ``model_format`` on a CPU or GPU host.

    Raises ValueError when no variant does (the tabular frameworks have no GPU build here)."""
    for variant in VARIANTS.values():  # smallest first
        if variant.gpu == gpu and model_format in variant.formats:
            return variant
    served = sorted({f for v in VARIANTS.values() if v.gpu == gpu for f in v.formats})
    host = "GPU" if gpu else "CPU"
    raise ValueError(f"no {host} image serves {model_format} models; {host} images serve {', '.join(served)}")


def gpu_build_of(variant_name: str) -> ImageVariant | None:
    """The GPU variant that serves every format CPU variant ``variant_name`` serves, if any."""
    cpu = VARIANTS[variant_name]
    return next((v for v in VARIANTS.values() if v.gpu and set(cpu.formats) <= set(v.formats)), None)
