"""``twinserve plan``: what a spec change would do on each cloud, before anything is pushed - offline.

``cdk diff`` and ``pulumi preview`` need credentials and a deployed state. This compares two
*synthesized* versions instead: the spec at a git revision (what is deployed, say ``main``) and the
working copy, each synthesized as ``twinserve synth`` does (:mod:`.sides`), per environment and
cloud. It lists what would be created, updated in place, replaced or deleted (:mod:`.aws_diff`,
:mod:`.azure_diff`) and flags what SageMaker, CloudFormation, Azure or Pulumi would refuse and what
loses data, capacity or serving, each with the platform rule and what to do.

What it cannot know: the live state (drift, what autoscaling chose, whether a pinned model version was
ever uploaded), and what the clouds decide at run time. Facts it relies on are in
:mod:`twinserve.platform.aws` and :mod:`twinserve.platform.azure`, each with its source.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from ..platform import aws as aws_platform
from ..spec import ENVIRONMENT_NAMES, load_spec
from ..synth import Project
from .aws_diff import ENDPOINT, compare_stacks
from .azure_diff import compare_plans
from .model import ChangePlan, Section
from .revision import PlanInputError, read_base
from .sides import PIPELINE, Side, SideRequest, synthesize

__all__ = ["ChangePlan", "PlanInputError", "compare_sides", "make_plan"]


def make_plan(
    project: Project, revision: str, spec_path: Path, *, only_env: str | None = None, max_parallel: int = 2
) -> ChangePlan:
    """Plan the change from ``spec_path`` at ``revision`` to the working copy of ``spec_path``.

    Raises SpecError (either spec invalid), PlanInputError (revision, repository), KeyError (``only_env``
    in neither spec), FileNotFoundError (a folder the spec points at) or RuntimeError (a synth failed)."""
    started = time.perf_counter()
    aws_platform.cfn_resource_schema(ENDPOINT)  # cfn-lint's schemas are there, before minutes of synth
    spec_path = spec_path.resolve()
    working = load_spec(spec_path)
    with tempfile.TemporaryDirectory(prefix="twinserve-plan-") as scratch:
        base = read_base(revision, spec_path, Path(scratch), project.root)
        if only_env and only_env not in base.spec.environments and only_env not in working.environments:
            raise KeyError(f"environment {only_env!r} is in neither spec")
        requests = [
            SideRequest("base", base.spec, base.spec_path, only_env),
            SideRequest("new", working, spec_path, only_env),
        ]
        sides = synthesize(project, requests, Path(scratch), max_parallel=max_parallel)
    return ChangePlan(
        spec=_shown(spec_path),
        base=base.label,
        commit=base.commit,
        folders=[asdict(f) for f in base.folders],
        sections=compare_sides(
            sides[0],
            sides[1],
            pulumi_project=project.pulumi_project["name"],
            refresh_always=(project.pulumi_project.get("options") or {}).get("refresh") == "always",
        ),
        seconds=time.perf_counter() - started,
    )


def compare_sides(base: Side, new: Side, *, pulumi_project: str, refresh_always: bool = False) -> list[Section]:
    """Per environment (then the pipeline) and cloud: the changes from ``base`` to ``new``, for the
    environments both were synthesized for. ``refresh_always``: Pulumi.yaml sets ``options.refresh:
    always``, so every update reads the live state first."""
    sections = []
    for env_name in (*ENVIRONMENT_NAMES, PIPELINE):
        if any(side.request.only_env not in (None, env_name) for side in (base, new)):
            continue  # left out of a side's synthesis on purpose, not removed
        for cloud in ("aws", "azure"):
            before, after = getattr(base, cloud).get(env_name), getattr(new, cloud).get(env_name)
            if before is None and after is None:
                continue
            section = Section(new.spec.name, env_name, cloud, _target(cloud, env_name, after or before))
            if after is None:
                aws = f"`cdk destroy '{base.spec.name}-{env_name}/*'`"
                how = aws if cloud == "aws" else f"`pulumi destroy -s {env_name}`"
                section.notes.append(f"no longer synthesized for {cloud}: what is deployed stays until {how}")
            elif cloud == "aws":
                compare_stacks(section, before or {}, after)
            else:
                compare_plans(
                    section, before or [], after, stack=env_name, project=pulumi_project, refresh_always=refresh_always
                )
            sections.append(section)
    return sections


def _target(cloud: str, env_name: str, synthesized) -> str:
    if cloud == "aws":
        return "stacks " + ", ".join(sorted(synthesized))
    return f"stack {env_name}"


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
