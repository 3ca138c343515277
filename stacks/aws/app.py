"""The CDK app (cdk.json -> ``app``): one Stage per environment of the spec, all synthesized in one
process so the jsii runtime starts once.

Context (``cdk synth -c key=value``):
  spec   path of the deployment spec (default: deploy/twinserve.yaml). Several paths separated by
         commas synthesize several deployments in one assembly (``make examples``); their stage ids
         are then prefixed with ``spec_label`` (folder-stem).
  env    synthesize only this environment (default: every environment whose targets include aws)
  nag    "true" runs cdk-nag's AwsSolutions pack during synth (the tests always do); findings fail synth

Environment: TWINSERVE_DEPLOY_INPUTS, set by the pipeline's Build step, names the model version the
execution promotes (stacks/deploy_inputs.py).

A spec with a ``pipeline`` section also gets the stack ``<name>-pipeline`` (the promotion pipeline,
stacks/aws/pipeline_stack.py) beside its stages, unless ``env`` narrows the synth to one environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

from twinserve.spec import DeploymentSpec, SpecError, load_spec, spec_label

from ..deploy_inputs import apply_deploy_inputs, load_deploy_inputs
from .pipeline_stack import PipelineStack, pipeline_stack_id
from .placement import PRIMARY, secondary_placements, stage_id
from .serving_stage import ServingStage

DEFAULT_SPEC = "deploy/twinserve.yaml"


def add_deployment(
    app: cdk.App, spec: DeploymentSpec, spec_dir: Path, *, only_env: str | None = None, prefix: str = ""
) -> list[ServingStage]:
    """Add a Stage per AWS-targeted environment of ``spec`` to ``app``, and one per secondary region of
    its ``aws.regions`` after it."""
    if only_env is not None:
        spec.environment(only_env)  # raises a clear error for an unknown environment
    stages = []
    for env_name, env in spec.environments.items():
        if only_env not in (None, env_name) or "aws" not in env.targets:
            continue
        for placement in [PRIMARY, *secondary_placements(spec, env_name)]:
            stage = ServingStage(
                app,
                stage_id(spec, env_name, placement, prefix),
                spec=spec,
                env_name=env_name,
                spec_dir=spec_dir,
                placement=placement,
            )
            stages.append(stage)
    return stages


def add_pipeline(app: cdk.App, spec: DeploymentSpec, spec_path: Path, *, prefix: str = "") -> PipelineStack | None:
    """Add the promotion pipeline of ``spec`` (read from ``spec_path``) to ``app`` when it has one."""
    if spec.pipeline is None:
        return None
    return PipelineStack(
        app,
        pipeline_stack_id(spec, prefix),
        spec=spec,
        spec_path=repository_path(spec_path),
        spec_dir=spec_path.parent,
        prefix=prefix,
        description=f"twinserve {spec.name}: promotion pipeline dev -> staging -> prod",
    )


def repository_path(spec_path: Path) -> str:
    """The spec file relative to the project root (the folder with cdk.json), where the pipeline's
    build runs `cdk synth`."""
    here = spec_path.resolve()
    for folder in here.parents:
        if (folder / "cdk.json").is_file():
            return here.relative_to(folder).as_posix()
    raise FileNotFoundError(f"{spec_path}: no cdk.json in its folder or above; the pipeline synthesizes from there")


def main() -> None:
    app = cdk.App()
    if str(app.node.try_get_context("nag")).lower() == "true":
        from cdk_nag import AwsSolutionsChecks  # noqa: PLC0415 - only when asked

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    spec_paths = [Path(p) for p in str(app.node.try_get_context("spec") or DEFAULT_SPEC).split(",")]
    try:
        for spec_path in spec_paths:
            prefix = f"{spec_label(spec_path)}-" if len(spec_paths) > 1 else ""
            # a pipeline execution's model version (stacks/deploy_inputs.py), else the spec as written
            spec = apply_deploy_inputs(load_spec(spec_path), load_deploy_inputs())
            only_env = app.node.try_get_context("env")
            add_deployment(app, spec, spec_path.parent, only_env=only_env, prefix=prefix)
            # -c pipeline=false: serving stacks only (what `twinserve plan` compares)
            if only_env is None and str(app.node.try_get_context("pipeline")).lower() != "false":
                add_pipeline(app, spec, spec_path, prefix=prefix)
    except (SpecError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app.synth()


if __name__ == "__main__":
    main()
