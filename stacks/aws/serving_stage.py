"""A CDK Stage per environment: the unit CodePipeline promotes dev -> staging -> prod."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from twinserve.spec import DeploymentSpec

from .serving_stack import ServingStack


class ServingStage(cdk.Stage):
    def __init__(self, scope: Construct, id: str, *, spec: DeploymentSpec, env_name: str, spec_dir: Path) -> None:
        aws = spec.environment(env_name).aws
        # Unset account/region keep the stacks environment-agnostic for synth; `cdk deploy` then
        # uses the CLI's credentials (CDK_DEFAULT_ACCOUNT/REGION).
        super().__init__(scope, id, env=cdk.Environment(account=aws.account, region=aws.region))
        self.serving = ServingStack(
            self, "Serving", spec=spec, env_name=env_name, spec_dir=spec_dir,
            termination_protection=env_name == "prod",
            description=f"twinserve {spec.name} ({env_name}): SageMaker serving of model {spec.model.name}",
        )
