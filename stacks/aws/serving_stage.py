"""A CDK Stage per environment: the unit a pipeline promotes dev -> staging -> prod.

It holds two stacks:
  Registry  long-lived things every release reuses: the ECR repository the inference image is
            pushed to, and the model registry (ModelPackageGroup). Deployed first.
  Serving   the model artifacts bucket, KMS key, SageMaker model/endpoint, autoscaling, alarms,
            dashboard, budget and batch transform. Its image asset is published into Registry's
            repository (CDK publishes a stack's assets after the stacks it depends on).
Production gets termination protection on both, and RETAIN on data (see ServingStack).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from constructs import Construct
from twinserve.spec import DeploymentSpec

from ..environment_policy import EnvironmentPolicy
from .registry_stack import RegistryStack, image_repository_name
from .serving_stack import ServingStack


class ServingStage(cdk.Stage):
    def __init__(self, scope: Construct, id: str, *, spec: DeploymentSpec, env_name: str, spec_dir: Path) -> None:
        aws = spec.environment(env_name).aws
        # Unset account/region keep the stacks environment-agnostic for synth; `cdk deploy` then
        # uses the CLI's credentials (CDK_DEFAULT_ACCOUNT/REGION).
        super().__init__(scope, id, env=cdk.Environment(account=aws.account, region=aws.region))
        protected = EnvironmentPolicy(env_name).termination_protection
        what = f"twinserve {spec.name} ({env_name})"
        self.registry = RegistryStack(
            self,
            "Registry",
            spec=spec,
            env_name=env_name,
            termination_protection=protected,
            description=f"{what}: ECR repository and model registry of model {spec.model.name}",
        )
        synthesizer = None
        if spec.container.build:
            synthesizer = cdk.DefaultStackSynthesizer(
                image_assets_repository_name=image_repository_name(spec, env_name)
            )
        self.serving = ServingStack(
            self,
            "Serving",
            spec=spec,
            env_name=env_name,
            spec_dir=spec_dir,
            termination_protection=protected,
            synthesizer=synthesizer,
            description=f"{what}: SageMaker serving of model {spec.model.name}",
        )
        self.serving.add_stack_dependency(self.registry, "the image asset is pushed to the Registry stack's repository")
        for key, value in {
            "twinserve:deployment": spec.name,
            "twinserve:environment": env_name,
            "twinserve:model": spec.model.name,
        }.items():
            cdk.Tags.of(self).add(key, value)
