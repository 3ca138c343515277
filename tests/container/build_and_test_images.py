"""`make image-test`: build every CPU image variant and run the container contract tests against each
built image, then print each image's size. Made for machines like CI's: no Docker engine and no
registry, so podman builds with chroot isolation FROM a stand-in for python:3.11-slim-bookworm
assembled with debootstrap (Debian 12's python3 is 3.11, the official image's minor; real builds use
the official base) and a stand-in for the Lambda Web Adapter image (one file; the pinned one
elsewhere), and the tests start servers with `buildah run` (podman run cannot run here).

Idempotent: the stand-in's root file system is cached under build/image-test/ (keyed by its recipe)
and podman's layer cache makes an unchanged Dockerfile a no-op. Needs root and podman, buildah and
debootstrap (apt-get install -y podman buildah debootstrap; done here when missing).

    python tests/container/build_and_test_images.py [--variants core formats torch] [--keep-going]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twinserve_serving import image_variants

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = REPO_ROOT / "model_containers"
WORK = REPO_ROOT / "build" / "image-test"
BASE_IMAGE = "localhost/python:3.11-slim-bookworm"  # what the Dockerfiles' FROM resolves to here
DEBOOTSTRAP = ["--variant=minbase", "--include=python3,python3-pip,python3-venv,ca-certificates", "bookworm"]
# The Lambda Web Adapter's public image is out of reach too: the CPU Dockerfiles take it as a build
# argument (LAMBDA_ADAPTER_IMAGE, pinned by default), and these builds pass a stand-in with one file.
ADAPTER_STANDIN = "localhost/aws-lambda-adapter:stand-in"
ADAPTER_BUILD_ARG = ["--build-arg", f"LAMBDA_ADAPTER_IMAGE={ADAPTER_STANDIN}"]
LOCAL_WHEELS = Path("/opt/wheels")  # this machine's torch CPU wheel (PyTorch's wheel host is out of reach)
TESTS = [
    "tests/container/test_contract.py",
    "tests/container/test_formats.py",
    "-k",
    "not twinserve_batch and not pickle_is_refused",
]  # those two run the host's `twinserve batch`


# every CPU variant (the GPU ones need a GPU host; they are linted by test_image.py)
VARIANTS = {name: image_variants.VARIANTS[name] for name in image_variants.CPU_VARIANTS}


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def ensure_tools() -> None:
    missing = [tool for tool in ("podman", "buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", "podman", "buildah", "debootstrap"], stdout=subprocess.DEVNULL)


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``URIs:`` or one-line ``deb URL suite ...``)."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.*"))]:
        if source.is_file():
            for line in source.read_text().splitlines():
                words = line.split()
                if words[:1] in (["URIs:"], ["deb"]):
                    url = next((w for w in words if w.startswith(("http://", "https://"))), "")
                    if url.rstrip("/").endswith("/debian"):
                        return url
    return "http://deb.debian.org/debian"


def ensure_base() -> None:
    """The stand-in base image, rebuilt only when its recipe (or this machine's CA bundle) changes."""
    ca_bundle = Path(ssl.get_default_verify_paths().openssl_cafile)
    recipe = hashlib.sha256(repr((DEBOOTSTRAP, ca_bundle.read_bytes())).encode()).hexdigest()[:16]
    rootfs, stamp = WORK / "rootfs", WORK / "base.stamp"
    has_image = subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode == 0
    if has_image and stamp.is_file() and stamp.read_text() == recipe:
        return
    if not (rootfs.is_dir() and stamp.is_file() and stamp.read_text() == recipe):
        shutil.rmtree(rootfs, ignore_errors=True)
        WORK.mkdir(parents=True, exist_ok=True)
        run(["debootstrap", *DEBOOTSTRAP, str(rootfs), debian_mirror()], stdout=subprocess.DEVNULL)
        # what the official image has and Debian's python3 lacks: pip allowed system-wide, `python`
        # and `pip` on PATH, and a CA bundle pip inside the build can use to reach the package index
        (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        (rootfs / "usr/local/bin/python").unlink(missing_ok=True)
        (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3")
        (rootfs / "usr/local/bin/pip").write_text('#!/bin/sh\nexec python3 -m pip "$@"\n')
        (rootfs / "usr/local/bin/pip").chmod(0o755)
        shutil.copy(ca_bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    run(["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, stdout=subprocess.DEVNULL)
    if tar.wait() != 0:
        raise RuntimeError("tar of the stand-in root file system failed")
    stamp.write_text(recipe)


def ensure_adapter_standin() -> None:
    """An image holding one executable /lambda-adapter, for the Dockerfiles' adapter stage. The built
    images' copy of it (path, mode) is checked; the adapter itself only runs on Lambda."""
    if subprocess.run(["podman", "image", "exists", ADAPTER_STANDIN]).returncode == 0:
        return
    folder = WORK / "adapter-standin"
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "lambda-adapter"
    binary.write_text("#!/bin/sh\necho 'stand-in for the Lambda Web Adapter (make image-test)' >&2\nexit 1\n")
    binary.chmod(0o755)
    tar = subprocess.Popen(["tar", "-C", str(folder), "-c", "lambda-adapter"], stdout=subprocess.PIPE)
    run(["podman", "import", "-", ADAPTER_STANDIN], stdin=tar.stdout, stdout=subprocess.DEVNULL)
    if tar.wait() != 0:
        raise RuntimeError("tar of the adapter stand-in failed")


def adapter_check(tag: str) -> list[str]:
    """The image carries an executable extension where Lambda starts extensions."""
    container = run(["buildah", "from", "--pull=never", tag], capture_output=True, text=True).stdout.strip()
    try:
        found = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", container, "--",
             "test", "-x", image_variants.LAMBDA_ADAPTER_PATH],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
    if found.returncode != 0:
        return [f"{tag}: no executable {image_variants.LAMBDA_ADAPTER_PATH} {found.stdout}{found.stderr}"]
    return []


def build(variant: image_variants.ImageVariant) -> tuple[str, float]:
    tag = f"localhost/twinserve-{variant.name}"
    extra: list[str] = ADAPTER_BUILD_ARG if variant.runs_on_lambda else []
    if variant.name == "torch" and any(LOCAL_WHEELS.glob("torch-*+cpu-cp311-*.whl")):
        extra = [*extra, "--build-arg", "TORCH_FIND_LINKS=/wheels", "-v", f"{LOCAL_WHEELS}:/wheels:ro"]
    log = WORK / f"{variant.name}.build.log"
    started = time.monotonic()
    with open(log, "w") as out:  # --format docker keeps HEALTHCHECK, which OCI images drop
        built = subprocess.run(
            [
                "podman",
                "build",
                "--isolation=chroot",
                "--network=host",
                "--format",
                "docker",
                *extra,
                "-t",
                tag,
                "-f",
                str(CONTAINERS / variant.dockerfile),
                str(CONTAINERS),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if built.returncode != 0:
        print(log.read_text()[-4000:], file=sys.stderr)
        raise RuntimeError(f"building {variant.dockerfile} failed (exit {built.returncode}); log: {log}")
    return tag, time.monotonic() - started


def image_size_mb(tag: str) -> float:
    size = run(["podman", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True, text=True).stdout
    return int(size.strip()) / 1e6


def contract_tests(tag: str, variant: str) -> int:
    env = {**os.environ, "TWINSERVE_TEST_IMAGE": tag, "TWINSERVE_TEST_IMAGE_VARIANT": variant}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=REPO_ROOT, env=env
    ).returncode


def model_image_checks() -> list[str]:
    """model_image/Dockerfile on the formats image: an MLflow model's requirements install (mlflow became
    mlflow-skinny), and a requirement conflicting with the server's pins fails the build naming it."""
    failures = []
    sys.path.insert(0, str(CONTAINERS / "sample_model"))
    from build_sample_model import build_format

    with tempfile.TemporaryDirectory(prefix="twinserve-model-image-") as scratch:
        model = build_format("mlflow", Path(scratch) / "mlflow")
        command = [
            "podman",
            "build",
            "--isolation=chroot",
            "--network=host",
            "--format",
            "docker",
            "--build-arg",
            "BASE_IMAGE=localhost/twinserve-formats",
            "-f",
            str(CONTAINERS / "model_image/Dockerfile"),
        ]
        good = subprocess.run(
            [*command, "-t", "localhost/twinserve-model-iris", str(model)], capture_output=True, text=True
        )
        if good.returncode != 0 or "mlflow-skinny==" not in good.stdout:
            failures.append(
                f"model_image/Dockerfile on the MLflow sample failed:\n{good.stdout[-2000:]}{good.stderr[-2000:]}"
            )
        (model / "requirements.txt").write_text("mlflow==3.17.2\nnumpy<2\n")
        bad = subprocess.run(
            [*command, "-t", "localhost/twinserve-model-bad", str(model)], capture_output=True, text=True
        )
        if bad.returncode == 0 or "'numpy<2' conflicts with the server's numpy==" not in bad.stdout + bad.stderr:
            failures.append(f"model_image/Dockerfile accepted numpy<2:\n{bad.stdout[-2000:]}{bad.stderr[-2000:]}")
    return failures


def staged_context_checks() -> list[str]:
    """The image `twinserve synth` ships for examples/*/mlflow-model.yaml: its staged build context
    (the formats Dockerfile + the model's requirements step) builds, and the model's requirements are
    in it with mlflow renamed. Both clouds build exactly this context."""
    sys.path.insert(0, str(REPO_ROOT))
    from stacks.model_image import resolve_model_image
    from twinserve.spec import load_spec

    spec_path = REPO_ROOT / "examples" / "aws" / "mlflow-model.yaml"
    spec = load_spec(spec_path)
    if not (spec_path.parent / spec.model.artifact.path).is_dir():
        run([sys.executable, str(CONTAINERS / "sample_model/build_sample_model.py"), "--format", "mlflow",
             "--out", str(REPO_ROOT / "build/sample-models/mlflow")])  # fmt: skip
    image = resolve_model_image(spec, spec.environment("dev"), spec_path.parent, env_path="environments.dev")
    context = image.context
    built = subprocess.run(
        ["podman", "build", "--isolation=chroot", "--network=host", "--format", "docker", *ADAPTER_BUILD_ARG,
         "-t", "localhost/twinserve-model-mlflow", "-f", str(context.directory / context.dockerfile),
         str(context.directory)],
        capture_output=True, text=True,
    )  # fmt: skip
    if built.returncode != 0:
        return [
            f"the staged context {context.directory} failed to build:\n{built.stdout[-2000:]}{built.stderr[-2000:]}"
        ]
    # podman run cannot start containers here (cgroups): buildah runs the image chroot-isolated
    container = run(
        ["buildah", "from", "--pull=never", "localhost/twinserve-model-mlflow"], capture_output=True, text=True
    ).stdout.strip()
    try:
        shown = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", container, "--", "python", "-c",
             "import importlib.metadata as m; print(m.version('mlflow-skinny'), m.version('numpy'))"],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
    expected = " ".join(r.split("==")[1] for r in image.context.model_requirements if r.startswith("mlflow-skinny=="))
    if shown.returncode != 0 or not shown.stdout.startswith(expected):
        return [f"the staged image lacks the model's mlflow-skinny {expected}: {shown.stdout}{shown.stderr}"]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--keep-going", action="store_true", help="test the other variants after a failure")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("image-test needs root (debootstrap, podman's chroot isolation)", file=sys.stderr)
        return 2
    started = time.monotonic()
    ensure_tools()
    ensure_base()
    ensure_adapter_standin()
    rows, failed = [], []
    for name in args.variants:
        tag, build_s = build(VARIANTS[name])
        tested = time.monotonic()
        problems = adapter_check(tag)
        for problem in problems:
            print(problem, file=sys.stderr)
        code = contract_tests(tag, name) or (1 if problems else 0)
        rows.append(
            (name, tag, image_size_mb(tag), build_s, time.monotonic() - tested, "passed" if code == 0 else "FAILED")
        )
        if code != 0:
            failed.append(name)
            if not args.keep_going:
                break
    if "formats" in args.variants and not failed:
        checked = time.monotonic()
        problems = model_image_checks()
        for problem in problems:
            print(problem, file=sys.stderr)
        size = image_size_mb("localhost/twinserve-model-iris") if not problems else 0.0
        rows.append(
            (
                "model (model_image/Dockerfile, MLflow sample)",
                "localhost/twinserve-model-iris",
                size,
                time.monotonic() - checked,
                0.0,
                "FAILED" if problems else "passed (and numpy<2 refused)",
            )
        )
        failed += ["model"] if problems else []
        checked = time.monotonic()
        problems = staged_context_checks()
        for problem in problems:
            print(problem, file=sys.stderr)
        rows.append(
            (
                "model (staged context of examples/*/mlflow-model.yaml)",
                "localhost/twinserve-model-mlflow",
                image_size_mb("localhost/twinserve-model-mlflow") if not problems else 0.0,
                time.monotonic() - checked,
                0.0,
                "FAILED" if problems else "passed",
            )
        )
        failed += ["staged"] if problems else []
    print("\n| image | tag | size MB | build s | tests s | contract tests |\n|---|---|---:|---:|---:|---|")
    for name, tag, size, build_s, test_s, result in rows:
        print(f"| {name} | {tag} | {size:.0f} | {build_s:.0f} | {test_s:.0f} | {result} |")
    print(
        f"\nimage-test: {time.monotonic() - started:.0f} s in all; stand-in base {BASE_IMAGE} (debootstrap, Debian 12)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
