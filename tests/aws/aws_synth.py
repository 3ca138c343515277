"""Helpers of the AWS tests (imported by conftest.py and the test modules).

One synthesis of every AWS deployment the tests look at: each environment of
deploy/twinserve.yaml and each example under examples/aws, in ONE App (one jsii runtime, one
synth), with cdk-nag's AwsSolutions pack attached the way ``cdk synth -c nag=true`` does.

Everything else (snapshots, assertions, cfn-lint, cdk-nag) reads the session's :class:`Synth`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")

REPO = Path(__file__).resolve().parents[2]
DEPLOY_SPEC = REPO / "deploy" / "twinserve.yaml"
EXAMPLES = sorted((REPO / "examples" / "aws").glob("*.yaml")) + sorted(
    (REPO / "examples" / "two-clouds").glob("*.yaml")
)
"""The AWS examples, then the ones for both clouds (examples/two-clouds)."""
STACKS = ("Registry", "Serving")
LINT_REGIONS = ["us-east-1", "eu-west-1"]


def deployments() -> list[tuple[Path, str, str]]:
    """(spec file, environment, stage id) of every AWS stage the tests synthesize (no jsii needed)."""
    from twinserve.spec import aws_stage_ids, load_spec

    found = []
    for path in [DEPLOY_SPEC, *EXAMPLES]:
        spec = load_spec(path)
        for env_name, env in spec.environments.items():
            if "aws" in env.targets:
                found += [(path, env_name, stage) for stage in aws_stage_ids(spec, env_name)]
    return found


def sagemaker_deployments() -> list[tuple[Path, str, str]]:
    """The :func:`deployments` served by SageMaker (``aws.platform: sagemaker``, the default)."""
    from twinserve.spec import load_spec

    return [d for d in deployments() if load_spec(d[0]).environment(d[1]).aws.platform == "sagemaker"]


def pipeline_cases() -> list[str]:
    """Ids of the pipeline stacks (``<name>-pipeline``) of the specs with a ``pipeline`` section."""
    from twinserve.spec import load_spec

    return [f"{spec.name}-pipeline" for spec in map(load_spec, [DEPLOY_SPEC, *EXAMPLES]) if spec.pipeline]


def stack_cases() -> list[str]:
    """Test ids ``<stage>/<stack>`` of every synthesized stack."""
    from twinserve.spec import load_spec

    cases = []
    for path, env_name, stage in deployments():
        secondary = stage != f"{load_spec(path).name}-{env_name}"  # a disaster-recovery region: Serving only
        cases += [f"{stage}/{stack}" for stack in STACKS if not (secondary and stack == "Registry")]
    return cases


@dataclass
class Synth:
    outdir: Path
    stages: dict = field(default_factory=dict)
    """stage id -> ServingStage"""
    pipelines: dict = field(default_factory=dict)
    """pipeline stack id -> PipelineStack"""
    error: str | None = None
    """The synth error, if any (cdk-nag findings make synth fail after the templates are written)."""

    def template(self, case: str) -> dict:
        stage_id, stack = case.split("/")
        artifact = getattr(self.stages[stage_id], stack.lower()).artifact_id
        return json.loads((self.outdir / f"assembly-{stage_id}" / f"{artifact}.template.json").read_text())

    def pipeline_template(self, stack_id: str) -> dict:
        artifact = self.pipelines[stack_id].artifact_id
        return json.loads((self.outdir / f"{artifact}.template.json").read_text())

    def stack(self, case: str):
        stage_id, stack = case.split("/")
        return getattr(self.stages[stage_id], stack.lower())

    @property
    def validation_report(self) -> dict:
        return json.loads((self.outdir / "validation-report.json").read_text())


_HASH = re.compile(r"[0-9a-f]{64}")
_VERSION_ID = re.compile(r"CurrentVersion([0-9A-F]{8})[0-9a-f]{32}")


def normalise(template: dict) -> dict:
    """A template with what drifts between machines and commits replaced by placeholders: asset
    hashes (S3 keys of the model archive, image tags; they change whenever model_containers/ or the
    model bytes change), and the suffix of a Lambda function's ``CurrentVersion`` logical id, a hash of
    the function's properties, the image's asset hash included (every other property of the function is in
    the snapshot as it is). Other logical ids derive from construct paths and are stable."""
    text = _VERSION_ID.sub(r"CurrentVersion\1<version-hash>", json.dumps(template, sort_keys=True))
    return json.loads(_HASH.sub("<asset-hash>", text))
