"""Synthesizing the two sides of a plan the way ``twinserve synth`` does, side by side.

Each side gets its own CDK CLI run (:func:`twinserve.synth.start_cdk_synth`) into its own ``cdk.out``:
one run for both specs would prefix the stage ids with the spec labels (stacks/aws/app.py), and the
stage id leaks into generated physical names (an ``AWS::ApplicationAutoScaling::ScalingPolicy``'s
``PolicyName``, the model upload's ``aws-cdk:cr-owned`` bucket tag), which would show as changes
that no deployment makes. The CDK runs are subprocesses, at most ``max_parallel`` at a time (2 cores);
the Azure plans run in this process meanwhile (:func:`twinserve.synth.plan_azure_environment`, the
recording mocks are process-global, so one at a time).

File assets in the Azure plans are recorded by path; here they are replaced by a digest of the
file's bytes, so the two sides compare by content wherever their folders live.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec import DeploymentSpec
from ..synth import Project, check_artifacts, plan_azure_environment, start_cdk_synth

PIPELINE = "pipeline"
"""The section name of a spec's promotion pipeline stack (it belongs to no environment)."""


@dataclass(frozen=True)
class StackTemplate:
    """One synthesized CloudFormation stack."""

    stack_name: str
    """The CloudFormation stack name (``iris-dev-Serving``): what ``cdk deploy`` updates."""
    display_name: str
    """The CDK path (``iris-dev/Serving``)."""
    template: dict
    """The template as synthesized."""
    images: frozenset[str]
    """Hashes of the Docker image assets the stack publishes."""


@dataclass(frozen=True)
class SideRequest:
    """One spec to synthesize."""

    name: str
    """``base`` or ``new`` (any label; it names the scratch folders)."""
    spec: DeploymentSpec
    """The validated spec."""
    spec_path: Path
    """Its file (relative paths in it are relative to this file)."""
    only_env: str | None = None
    """Synthesize only this environment (None: every environment)."""

    def environments(self, cloud: str) -> list[str]:
        """The environments to synthesize for ``cloud``."""
        return [
            name
            for name, env in self.spec.environments.items()
            if self.only_env in (None, name) and cloud in env.targets
        ]


@dataclass
class Side:
    """What one spec synthesizes to, per environment."""

    request: SideRequest
    """What was synthesized."""
    aws: dict[str, dict[str, StackTemplate]] = field(default_factory=dict)
    """environment (or ``pipeline``) -> stack name -> template."""
    azure: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """environment -> planned resources (``PlannedResource.as_dict``, assets by digest)."""

    @property
    def spec(self) -> DeploymentSpec:
        return self.request.spec


def synthesize(
    project: Project,
    requests: list[SideRequest],
    scratch: Path,
    *,
    max_parallel: int = 2,
) -> list[Side]:
    """Synthesize every request: CDK subprocesses (``max_parallel`` at a time) while the Azure plans
    run here. Raises FileNotFoundError (a folder the spec points at is missing) or RuntimeError (a
    synth failed), after every started CDK process has ended."""
    for request in requests:
        check_artifacts(request.spec, request.spec_path.parent)
    sides = [Side(request) for request in requests]
    queued = [(side, scratch / f"cdk.out-{side.request.name}") for side in sides if side.request.environments("aws")]
    running: list[tuple[Side, Path, subprocess.Popen]] = []
    finished: list[tuple[Side, Path, int, str]] = []

    def pump(wait: bool = False) -> None:
        for job in list(running):
            if job[2].poll() is not None or wait:
                output = job[2].communicate()[0]
                running.remove(job)
                finished.append((job[0], job[1], job[2].returncode, output))
        while queued and len(running) < max_parallel:
            side, outdir = queued.pop(0)
            request = side.request
            running.append(
                (side, outdir, start_cdk_synth(project, [request.spec_path], outdir, request.only_env, pipeline=False))
            )

    try:
        pump()
        for side in sides:
            for env_name in side.request.environments("azure"):
                side.azure[env_name] = _plan_by_content(project, env_name, side.request.spec_path)
                pump()
    except BaseException:
        queued.clear()  # let the running CDK processes end, start no more
        raise
    finally:
        while running or queued:
            pump(wait=True)
    for side, outdir, returncode, output in finished:
        if returncode != 0:
            raise RuntimeError(f"cdk synth of the {side.request.name} spec failed (exit {returncode}):\n{output}")
        side.aws = _load_assembly(outdir, side.request)
    return sides


def _plan_by_content(project: Project, env_name: str, spec_path: Path) -> list[dict[str, Any]]:
    return [_assets_by_content(r.as_dict()) for r in plan_azure_environment(project, env_name, spec_path)]


def _assets_by_content(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$asset"} or set(value) == {"$archive"}:
            path = Path(next(iter(value.values())))
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else f"missing:{path}"
            return {"$asset-sha256": digest}
        return {k: _assets_by_content(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_assets_by_content(v) for v in value]
    return value


def _load_assembly(outdir: Path, request: SideRequest) -> dict[str, dict[str, StackTemplate]]:
    """Stacks per environment: each environment's Stage is the nested assembly ``assembly-<name>-<env>``;
    the pipeline stack, when the spec has one, sits at the top level."""
    found: dict[str, dict[str, StackTemplate]] = {}
    for env_name in request.environments("aws"):
        found[env_name] = _stacks(outdir / f"assembly-{request.spec.name}-{env_name}")
    top = _stacks(outdir)
    if top:
        found[PIPELINE] = top
    return found


def _stacks(folder: Path) -> dict[str, StackTemplate]:
    manifest = json.loads((folder / "manifest.json").read_text())
    stacks = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        assets_file = folder / f"{artifact_id}.assets.json"
        assets = json.loads(assets_file.read_text()) if assets_file.is_file() else {}
        name = props.get("stackName", artifact_id)
        stacks[name] = StackTemplate(
            stack_name=name,
            display_name=artifact.get("displayName", artifact_id),
            template=json.loads((folder / props["templateFile"]).read_text()),
            images=frozenset(assets.get("dockerImages", {})),
        )
    return stacks
