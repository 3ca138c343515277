"""A CDK Stage per environment: the unit a pipeline promotes dev -> staging -> prod.

It holds two stacks:
  Registry  long-lived things every release reuses: the model registry (ModelPackageGroup) and an
            ECR repository for images built outside CDK (container.image_uri).
  Serving   the model artifacts bucket, KMS key, SageMaker model/endpoint, autoscaling, alarms,
            dashboard, budget and batch transform. Its image asset (container.build) is published to
            the environment's CDK bootstrap container-assets repository, which `cdk bootstrap` creates
            before any stage exists: a pipeline publishes every asset before it deploys any stack, so
            a repository created by the stage itself would not exist yet on the first run.
Production gets termination protection on both, and RETAIN on data (see ServingStack).
A secondary region of ``aws.regions`` (stacks/aws/placement.py) gets a stage with the Serving stack
only: the model registry and the repository stay in the primary.
Every resource carries the environment's tags (stacks/tags.py); the budget counts the resources
with its cost-allocation tag.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from constructs import Construct
from twinserve.spec import DeploymentSpec

from ..environment_policy import EnvironmentPolicy
from ..tags import environment_tags
from .fargate_serving_stack import FargateServingStack
from .lambda_serving_stack import LambdaServingStack
from .placement import PRIMARY, RegionPlacement
from .registry_stack import RegistryStack
from .serving_stack import ServingStack

PLATFORM_TITLES = {"sagemaker": "SageMaker", "ecs_fargate": "ECS Fargate", "lambda": "Lambda"}


class ServingStage(cdk.Stage):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: DeploymentSpec,
        env_name: str,
        spec_dir: Path,
        placement: RegionPlacement = PRIMARY,
    ) -> None:
        aws = spec.environment(env_name).aws
        self.placement = placement
        region = aws.primary_region if placement.primary else placement.region
        # Unset account/region keep the stacks environment-agnostic for synth; `cdk deploy` then
        # uses the CLI's credentials (CDK_DEFAULT_ACCOUNT/REGION).
        super().__init__(scope, id, env=cdk.Environment(account=aws.account, region=region))
        protected = EnvironmentPolicy(env_name).termination_protection
        what = f"twinserve {spec.name} ({env_name}{'' if placement.primary else f', {placement.region}'})"
        self.registry = (
            RegistryStack(
                self,
                "Registry",
                spec=spec,
                env_name=env_name,
                termination_protection=protected,
                description=f"{what}: ECR repository and model registry of model {spec.model.name}",
            )
            if placement.primary
            else None
        )
        """The primary's only (``None`` in a secondary region)."""
        platform = aws.platform
        serving_stack = {"ecs_fargate": FargateServingStack, "lambda": LambdaServingStack}.get(platform, ServingStack)
        self.serving = serving_stack(
            self,
            "Serving",
            spec=spec,
            env_name=env_name,
            spec_dir=spec_dir,
            placement=placement,
            termination_protection=protected,
            description=f"{what}: {PLATFORM_TITLES[platform]} serving of model {spec.model.name}",
        )
        for key, value in environment_tags(spec, env_name).items():
            cdk.Tags.of(self).add(key, value)
