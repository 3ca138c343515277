"""A model's own Python requirements, made safe to install into the serving image.

Where they come from (first found): ``requirements.txt`` beside the handler (``code/requirements.txt``
in the model folder, SageMaker's convention, or beside TWINSERVE_HANDLER's file), then the MLflow
model's ``python_env.yaml`` dependencies or ``requirements.txt`` beside its ``MLmodel``.

What is changed: ``mlflow`` becomes ``mlflow-skinny`` at the same version (MLflow writes full
``mlflow`` into every model's requirements; pyfunc needs only the skinny build, ~850 MB less). What
is kept: the server's own packages (SERVER_PACKAGES) at the image's versions, through a constraints
file; a requirement that excludes them fails here, naming the package, before pip runs.

    python -m twinserve_serving.model_requirements show MODEL_DIR        # what would be installed
    python -m twinserve_serving.model_requirements write MODEL_DIR OUT   # OUT/requirements.txt, constraints.txt
    python -m twinserve_serving.model_requirements install OUT           # pip install what write wrote

model_image/Dockerfile runs ``write`` in a throwaway stage that holds the whole model folder, and
``install`` in the image, which so never holds the weights.

At start instead (TWINSERVE_INSTALL_REQUIREMENTS=true, like SageMaker's framework containers):
``install_at_start`` installs into a temporary folder appended to sys.path, so the image's own
packages still win; a failure (no network, a bad pin) fails the model load, so health stays 503
with the reason. Baking them in at build time is the reliable way: endpoints under network
isolation have no package index.

Exit codes: 0 done (or nothing to install), 1 pip failed (its message names the package),
2 a requirement is malformed or conflicts with the server's pins.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# the default handler's core, never moved by a model (onnxruntime-gpu: the GPU images' onnxruntime)
SERVER_PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu")
START_TIME_TARGET = Path(tempfile.gettempdir()) / "twinserve-packages"  # writable by the non-root user
RENAMED = {"mlflow": "mlflow-skinny"}


class RequirementError(ValueError):
    """A model requirement that cannot be installed beside the server."""


@dataclass
class Plan:
    source: Path | None  # the file the requirements came from; None: the model has none
    requirements: list[str]  # rewritten, one per line
    constraints: list[str]  # the server's pins
    notes: list[str]  # what was changed, and warnings


def find_source(model_dir: Path, handler: str | None = None) -> Path | None:
    candidates = []
    if handler and handler.endswith(".py"):
        candidates.append(Path(handler).parent / "requirements.txt")
    candidates.append(model_dir / "code" / "requirements.txt")
    mlmodel = _mlmodel(model_dir)
    if mlmodel is not None:
        candidates += [mlmodel.parent / "python_env.yaml", mlmodel.parent / "requirements.txt"]
    return next((c for c in candidates if c.is_file()), None)


def _mlmodel(model_dir: Path) -> Path | None:
    from .formats import ModelFormatError, detect

    try:
        return detect(model_dir, "mlflow")[1]
    except ModelFormatError:
        return None


def plan(model_dir: Path, handler: str | None = None, installed: dict[str, str] | None = None) -> Plan:
    """The rewritten requirements and the constraints; raises RequirementError naming the line."""
    installed = installed if installed is not None else _installed(SERVER_PACKAGES)
    constraints = [f"{name}=={version}" for name, version in installed.items()]
    source = find_source(model_dir, handler)
    if source is None:
        return Plan(None, [], constraints, [])
    notes: list[str] = []
    lines = _python_env_lines(source, notes) if source.name == "python_env.yaml" else _read_lines(source)
    requirements = [rewrite(line, where, installed, notes) for line, where in lines]
    return Plan(source, [r for r in requirements if r], constraints, notes)


def rewrite(line: str, where: str, installed: dict[str, str], notes: list[str]) -> str | None:
    """One requirement line: renamed if MLflow, checked against the server's pins; None to drop it."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(line)
    except InvalidRequirement as exc:
        raise RequirementError(f"{where}: {line!r} is not a requirement ({exc})") from None
    if requirement.marker is not None and not requirement.marker.evaluate():
        notes.append(f"{where}: {line} does not apply here (marker)")
        return None
    name = canonicalize_name(requirement.name)
    if name in RENAMED:
        notes.append(f"{where}: {requirement.name} -> {RENAMED[name]} (same version)")
        requirement.name = RENAMED[name]
    pinned = installed.get(name)
    if pinned is not None and not requirement.specifier.contains(pinned, prereleases=True):
        raise RequirementError(
            f"{where}: {line!r} conflicts with the server's {name}=={pinned}; "
            f"the image keeps its own {', '.join(SERVER_PACKAGES)} (drop or widen the pin)"
        )
    return str(requirement)


def _read_lines(path: Path, seen: frozenset[Path] = frozenset()) -> list[tuple[str, str]]:
    """(requirement, "file:line") pairs; ``-r other.txt`` is followed, other pip options refused."""
    if path.resolve() in seen:
        raise RequirementError(f"{path}: included twice (-r loop)")
    lines = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.split(" #", 1)[0].strip()
        where = f"{path.name}:{number}"
        if not text or text.startswith("#"):
            continue
        if text.startswith(("-r ", "--requirement ")):
            lines += _read_lines(path.parent / text.split(None, 1)[1], seen | {path.resolve()})
        elif text.startswith("-"):
            raise RequirementError(
                f"{where}: pip option {text!r} is not supported in model requirements; "
                "list plain requirements (name, version, extras, markers)"
            )
        else:
            lines.append((text, where))
    return lines


def _python_env_lines(path: Path, notes: list[str]) -> list[tuple[str, str]]:
    """MLflow's python_env.yaml: ``python: X.Y.Z`` and a ``dependencies:`` list (read without PyYAML,
    which the core image lacks; MLflow writes this fixed shape)."""
    lines, in_dependencies = [], False
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        text = raw.strip()
        if not raw.startswith((" ", "-")):
            in_dependencies = text == "dependencies:"
            if text.startswith("python:"):
                version = text.split(":", 1)[1].strip().strip("'\"")
                running = f"{sys.version_info.major}.{sys.version_info.minor}"
                if not (version == running or version.startswith(running + ".")):
                    notes.append(f"warning: {path.name} says Python {version}; the image runs {running}")
            continue
        if in_dependencies and text.startswith("- "):
            item = text[2:].strip().strip("'\"")
            if item.startswith("-r "):
                lines += _read_lines(path.parent / item.split(None, 1)[1])
            else:
                lines.append((item, f"{path.name}:{number}"))
    return lines


def _installed(names: tuple[str, ...]) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write(plan_: Plan, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "requirements.txt").write_text("".join(f"{line}\n" for line in plan_.requirements))
    (out / "constraints.txt").write_text("".join(f"{line}\n" for line in plan_.constraints))


def read(out: Path) -> Plan:
    """The plan ``write`` left in ``out``. Without a constraints.txt (a build context staged by
    twinserve's stacks, which checked the requirements against the image's pins at synth time) the
    constraints are the server packages installed here, so the image keeps its own versions."""

    def lines(name: str) -> list[str]:
        return [line for line in (out / name).read_text().splitlines() if line.strip()]

    constraints = (
        lines("constraints.txt")
        if (out / "constraints.txt").is_file()
        else [f"{name}=={version}" for name, version in _installed(SERVER_PACKAGES).items()]
    )
    return Plan(out / "requirements.txt", lines("requirements.txt"), constraints, [])


def install(
    plan_: Plan, target: Path | None = None, pip_args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess | None:
    """pip install the plan (into ``target`` when given, for a non-root start-time install)."""
    if not plan_.requirements:
        return None
    with tempfile.TemporaryDirectory(prefix="twinserve-requirements-") as scratch:
        write(plan_, Path(scratch))
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "-r",
            str(Path(scratch) / "requirements.txt"),
            "-c",
            str(Path(scratch) / "constraints.txt"),
            *pip_args,
        ]
        if target is not None:
            command += ["--target", str(target)]
        return subprocess.run(command, capture_output=target is not None, text=True)


def install_at_start(model_dir: Path, handler: str | None = None) -> None:
    """The opt-in start-time install; raises RuntimeError (health shows it) when it fails."""
    from . import logs

    result = plan(model_dir, handler)  # a RequirementError propagates as is: it names the line
    if result.source is None:
        logs.info("requirements_none", model_dir=str(model_dir))
        return
    # fail within seconds without a network instead of pip's minutes of retries
    completed = install(result, START_TIME_TARGET, ("--retries", "1", "--timeout", "10"))
    if completed is not None and completed.returncode != 0:
        output = (completed.stderr or completed.stdout or "").strip().splitlines()
        reason = next((line for line in reversed(output) if line.startswith("ERROR")), output[-1] if output else "")
        logs.error(
            "requirements_install_failed",
            source=str(result.source),
            requirements=result.requirements,
            pip_exit_code=completed.returncode,
            pip_output="\n".join(output[-20:]),
        )
        raise RuntimeError(
            f"installing the model's requirements from {result.source} failed: {reason} "
            "(TWINSERVE_INSTALL_REQUIREMENTS=true; bake them into the image instead: model_image/Dockerfile)"
        )
    sys.path.append(str(START_TIME_TARGET))
    logs.info(
        "requirements_installed",
        source=str(result.source),
        requirements=result.requirements,
        target=str(START_TIME_TARGET),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twinserve_serving.model_requirements", description=__doc__.split("\n\n")[0]
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for name in ("show", "write"):
        action = actions.add_parser(name)
        action.add_argument("model_dir", type=Path)
        action.add_argument("--handler", help="the handler file, whose folder may hold requirements.txt")
        if name == "write":
            action.add_argument("out", type=Path)
    actions.add_parser("install").add_argument("out", type=Path, help="a folder `write` wrote")
    args = parser.parse_args(argv)
    if args.action == "install":
        completed = install(read(args.out))
        if completed is not None and completed.returncode != 0:
            print(
                f"model requirements: pip could not install them (exit {completed.returncode}); "
                "its message above names the package",
                file=sys.stderr,
            )
            return 1
        return 0
    try:
        result = plan(args.model_dir, args.handler)
    except RequirementError as exc:
        print(f"model requirements: {exc}", file=sys.stderr)
        return 2
    if result.source is None:
        print(f"model requirements: none in {args.model_dir}")
    else:
        print(f"model requirements from {result.source}:", *result.requirements, sep="\n  ")
        print("constraints (the server's own):", *result.constraints, sep="\n  ")
        for note in result.notes:
            print(f"  {note}")
    if args.action == "write":
        write(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
