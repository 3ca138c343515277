"""`twinserve synth`: the AWS cloud assembly and the Azure resource plans of every environment.

AWS:   the pinned CDK CLI runs the CDK app of ``cdk.json`` once (one jsii runtime for all stages)
       and writes ``cdk.out/``.
Azure: the Pulumi program of ``Pulumi.yaml`` runs once per environment under the recording mocks
       of :mod:`twinserve.pulumi_plan` (no Pulumi CLI exists on the build machines) and writes
       ``pulumi.out/<env>.json``.
The CDK subprocess and the Pulumi plans run at the same time: they share nothing.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .pulumi_plan import PlannedResource, plan_program
from .spec import DeploymentSpec, aws_stage_ids, load_spec, spec_label
from .spec.rules import AZURE_BATCH_DOCKERFILE

# jsii prints a banner on every start with Node 20 (end of life); it is noise in synth output.
QUIET_JSII = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
}


@dataclass
class Project:
    """A twinserve project folder: cdk.json, Pulumi.yaml and Pulumi.<env>.yaml beside each other."""

    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "cdk.json").is_file() and (folder / "Pulumi.yaml").is_file():
                return cls(folder)
        raise FileNotFoundError(f"no twinserve project (cdk.json + Pulumi.yaml) in {here} or above")

    @property
    def pulumi_project(self) -> dict:
        return yaml.safe_load((self.root / "Pulumi.yaml").read_text())

    def pulumi_config(self, stack: str) -> dict:
        path = self.root / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: it holds the stack's Azure-only settings (azure-native:location)"
            )
        return (yaml.safe_load(path.read_text()) or {}).get("config", {})

    def cdk_cli(self) -> list[str]:
        local = self.root / "node_modules" / ".bin" / "cdk"
        if local.exists():
            return [str(local)]
        if shutil.which("cdk"):
            return ["cdk"]
        raise FileNotFoundError("the CDK CLI is not installed: run `make setup` (npm ci installs the pinned version)")


def start_cdk_synth(
    project: Project, spec_paths: list[Path], outdir: Path, only_env: str | None = None, *, pipeline: bool = True
) -> subprocess.Popen:
    """One CDK CLI run (one jsii runtime) for every spec: the app takes a comma-separated list.
    ``pipeline=False`` leaves the promotion pipeline out (a plan compares serving stacks only, and a
    spec copied out of the repository has no project root for the pipeline to build from)."""
    cmd = [
        *project.cdk_cli(),
        "synth",
        "--quiet",
        "--output",
        str(outdir),
        "-c",
        "spec=" + ",".join(str(p) for p in spec_paths),
    ]
    if only_env:
        cmd += ["-c", f"env={only_env}"]
    if not pipeline:
        cmd += ["-c", "pipeline=false"]
    return subprocess.Popen(
        cmd,
        cwd=project.root,
        env={**os.environ, **QUIET_JSII},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def plan_azure_environment(
    project: Project, env_name: str, spec_path: Path, config_overrides: dict[str, str] | None = None
) -> list[PlannedResource]:
    """Run the project's Pulumi program as stack ``env_name`` under mocks, with the stack's
    ``Pulumi.<env>.yaml`` config (``config_overrides`` win, e.g. a fixed date in tests)."""
    pulumi_yaml = project.pulumi_project
    main = project.root / pulumi_yaml.get("main", ".")
    entry = main / "__main__.py" if main.is_dir() else main
    config = dict(project.pulumi_config(env_name))
    config["twinserve:spec"] = str(spec_path)
    config.update(config_overrides or {})
    return plan_program(
        lambda: runpy.run_path(str(entry), run_name="__main__"),
        project=pulumi_yaml["name"],
        stack=env_name,
        config=config,
    )


def write_plan(path: Path, project_name: str, env_name: str, planned: list[PlannedResource]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"project": project_name, "stack": env_name, "resources": [r.as_dict() for r in planned]}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def count_cdk_resources(outdir: Path, stage_id: str) -> int:
    """Resources of one stage (folder ``assembly-<stage id>``) in a cloud assembly."""
    return sum(
        len(json.loads(t.read_text()).get("Resources", {}))
        for t in (outdir / f"assembly-{stage_id}").glob("*.template.json")
    )


def check_artifacts(spec: DeploymentSpec, spec_dir: Path) -> None:
    """Files the spec points at must exist before anything is synthesized."""
    if spec.model.artifact.path:
        path = (spec_dir / spec.model.artifact.path).resolve()
        if not path.is_dir():
            raise FileNotFoundError(
                f"model.artifact.path: {path} does not exist (build the sample model with `make sample-model`)"
            )
    if spec.container.build:
        context = (spec_dir / spec.container.build).resolve()
        if not (context / "Dockerfile").is_file():
            raise FileNotFoundError(f"container.build: no Dockerfile in {context}")
        azure = any("azure" in env.targets for env in map(spec.environment, spec.environments))
        if azure and not (context / AZURE_BATCH_DOCKERFILE).is_file():
            raise FileNotFoundError(
                f"container.build: no {AZURE_BATCH_DOCKERFILE} in {context} (Azure ML batch deployments run the "
                "serving image plus azureml-core and azureml-dataset-runtime[fuse]; see docs/container.md)"
            )


def synth(
    project: Project, spec_paths: list[Path], *, cdk_out: Path, pulumi_out: Path, only_env: str | None = None
) -> dict[tuple[str, str, str], int]:
    """Synthesize both clouds for every spec; returns {(deployment, env, cloud): resource count}.

    With one spec, plans go to ``pulumi_out/<env>.json``; with several (``make examples``) to
    ``pulumi_out/<spec label>/<env>.json``, and CDK stage ids are prefixed with the label, as the
    CDK app does. Raises on any failure, before anything is written when a spec is invalid.
    """

    several = len(spec_paths) > 1
    specs = {path: load_spec(path) for path in spec_paths}  # every spec valid before any work
    for path, spec in specs.items():
        if only_env:
            spec.environment(only_env)
        check_artifacts(spec, path.parent)

    wants_aws = any("aws" in env.targets for spec in specs.values() for env in spec.environments.values())
    cdk = start_cdk_synth(project, spec_paths, cdk_out, only_env) if wants_aws else None
    summary: dict[tuple[str, str, str], int] = {}
    try:
        if pulumi_out.exists():
            shutil.rmtree(pulumi_out)
        for path, spec in specs.items():
            label = spec_label(path) if several else spec.name
            for env_name, env in spec.environments.items():
                if only_env not in (None, env_name) or "azure" not in env.targets:
                    continue
                planned = plan_azure_environment(project, env_name, path)
                out = pulumi_out / label / f"{env_name}.json" if several else pulumi_out / f"{env_name}.json"
                write_plan(out, project.pulumi_project["name"], env_name, planned)
                summary[(label, env_name, "azure")] = sum(1 for r in planned if r.custom)
    finally:
        output = cdk.communicate()[0] if cdk else ""
    if cdk and cdk.returncode != 0:
        raise RuntimeError(f"cdk synth failed (exit {cdk.returncode}):\n{output}")
    for path, spec in specs.items():
        label = spec_label(path) if several else spec.name
        prefix = f"{label}-" if several else ""
        for env_name, env in spec.environments.items():
            if only_env in (None, env_name) and "aws" in env.targets:
                # every region's stage (aws.regions)
                summary[(label, env_name, "aws")] = sum(
                    count_cdk_resources(cdk_out, stage) for stage in aws_stage_ids(spec, env_name, prefix)
                )
        pipeline = cdk_out / f"{prefix}{spec.name}-pipeline.template.json"
        if spec.pipeline is not None and only_env is None and pipeline.is_file():
            summary[(label, PIPELINE_ROW, "aws")] = len(json.loads(pipeline.read_text()).get("Resources", {}))
    return summary


PIPELINE_ROW = "pipeline"
"""The summary row of a spec's promotion pipeline stack (`<name>-pipeline`, both clouds' promotion)."""


def format_summary(summary: dict[tuple[str, str, str], int]) -> str:
    order = ("dev", "staging", "prod", PIPELINE_ROW)
    rows = sorted({(label, env) for label, env, _ in summary}, key=lambda r: (r[0], order.index(r[1])))
    width = max([len("deployment"), *(len(label) for label, _ in rows)])
    lines = [f"{'deployment':<{width}} {'environment':<12} {'aws':>14} {'azure':>14}"]
    for label, env_name in rows:
        cells = []
        for cloud in ("aws", "azure"):
            count = summary.get((label, env_name, cloud))
            cells.append(f"{count:>4} resources" if count is not None else "-")
        lines.append(f"{label:<{width}} {env_name:<12} {cells[0]:>14} {cells[1]:>14}")
    return "\n".join(lines)
