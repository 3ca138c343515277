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
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .pulumi_plan import PlannedResource, plan_program
from .spec import DeploymentSpec, load_spec

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
    def find(cls, start: Path | None = None) -> "Project":
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
            raise FileNotFoundError(f"{path} is missing: it holds the stack's Azure-only settings (azure-native:location)")
        return (yaml.safe_load(path.read_text()) or {}).get("config", {})

    def cdk_cli(self) -> list[str]:
        local = self.root / "node_modules" / ".bin" / "cdk"
        if local.exists():
            return [str(local)]
        if shutil.which("cdk"):
            return ["cdk"]
        raise FileNotFoundError("the CDK CLI is not installed: run `make setup` (npm ci installs the pinned version)")


def start_cdk_synth(project: Project, spec_path: Path, outdir: Path, only_env: str | None = None) -> subprocess.Popen:
    cmd = [*project.cdk_cli(), "synth", "--quiet", "--output", str(outdir), "-c", f"spec={spec_path}"]
    if only_env:
        cmd += ["-c", f"env={only_env}"]
    return subprocess.Popen(cmd, cwd=project.root, env={**os.environ, **QUIET_JSII},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def plan_azure_environment(project: Project, env_name: str, spec_path: Path) -> list[PlannedResource]:
    """Run the project's Pulumi program as stack ``env_name`` under mocks."""
    pulumi_yaml = project.pulumi_project
    main = project.root / pulumi_yaml.get("main", ".")
    entry = main / "__main__.py" if main.is_dir() else main
    config = dict(project.pulumi_config(env_name))
    config["twinserve:spec"] = str(spec_path)
    return plan_program(lambda: runpy.run_path(str(entry), run_name="__main__"),
                        project=pulumi_yaml["name"], stack=env_name, config=config)


def write_plan(path: Path, project_name: str, env_name: str, planned: list[PlannedResource]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"project": project_name, "stack": env_name, "resources": [r.as_dict() for r in planned]}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def count_cdk_resources(outdir: Path) -> dict[str, int]:
    """Resources per environment in a cloud assembly (stage folders are ``assembly-<name>-<env>``)."""
    counts: dict[str, int] = {}
    for template in sorted(outdir.glob("assembly-*/*.template.json")):
        env_name = template.parent.name.rsplit("-", 1)[-1]
        resources = json.loads(template.read_text()).get("Resources", {})
        counts[env_name] = counts.get(env_name, 0) + len(resources)
    return counts


def check_artifacts(spec: DeploymentSpec, spec_dir: Path) -> None:
    """Files the spec points at must exist before anything is synthesized."""
    if spec.model.artifact.path:
        path = (spec_dir / spec.model.artifact.path).resolve()
        if not path.is_dir():
            raise FileNotFoundError(
                f"model.artifact.path: {path} does not exist (build the sample model with `make sample-model`)")
        if "aws" in {t for e in spec.environments.values() for t in e.targets} and not (path.parent / "model.tar.gz").is_file():
            raise FileNotFoundError(f"model.artifact.path: {path.parent / 'model.tar.gz'} (SageMaker's archive) is missing")
    if spec.container.build:
        context = (spec_dir / spec.container.build).resolve()
        if not (context / "Dockerfile").is_file():
            raise FileNotFoundError(f"container.build: no Dockerfile in {context}")


def synth(project: Project, spec_path: Path, *, cdk_out: Path, pulumi_out: Path,
          only_env: str | None = None, log=print) -> dict[tuple[str, str], int]:
    """Synthesize both clouds; returns {(env, cloud): resource count}. Raises on any failure."""
    spec = load_spec(spec_path)
    if only_env:
        spec.environment(only_env)
    check_artifacts(spec, spec_path.parent)
    envs = [e for e in spec.environments if only_env in (None, e)]
    aws_envs = [e for e in envs if "aws" in spec.environments[e].targets]
    azure_envs = [e for e in envs if "azure" in spec.environments[e].targets]

    cdk = start_cdk_synth(project, spec_path, cdk_out, only_env) if aws_envs else None
    summary: dict[tuple[str, str], int] = {}
    try:
        if pulumi_out.exists():
            shutil.rmtree(pulumi_out)
        for env_name in azure_envs:
            planned = plan_azure_environment(project, env_name, spec_path)
            write_plan(pulumi_out / f"{env_name}.json", project.pulumi_project["name"], env_name, planned)
            summary[(env_name, "azure")] = sum(1 for r in planned if r.custom)
    finally:
        output = cdk.communicate()[0] if cdk else ""
    if cdk and cdk.returncode != 0:
        raise RuntimeError(f"cdk synth failed (exit {cdk.returncode}):\n{output}")
    for env_name, count in count_cdk_resources(cdk_out).items():
        if env_name in aws_envs:
            summary[(env_name, "aws")] = count
    return summary


def format_summary(summary: dict[tuple[str, str], int], envs: list[str]) -> str:
    lines = [f"{'environment':<12} {'aws':>14} {'azure':>14}"]
    for env_name in envs:
        cells = []
        for cloud in ("aws", "azure"):
            count = summary.get((env_name, cloud))
            cells.append(f"{count:>4} resources" if count is not None else f"{'-':>14}")
        lines.append(f"{env_name:<12} {cells[0]:>14} {cells[1]:>14}")
    return "\n".join(lines)
