"""The Registry stack of an environment: ECR repository and model package group (retained in prod)."""

from __future__ import annotations

import aws_cdk as cdk

from constructs import Construct
from twinserve.aws import ImageRepository, ImageRepositoryProps, ModelRegistry, ModelRegistryProps
from twinserve.spec import DeploymentSpec

from ..environment_policy import EnvironmentPolicy


def image_repository_name(spec: DeploymentSpec, env_name: str) -> str:
    return f"twinserve/{spec.name}-{env_name}"


def model_package_group_name(spec: DeploymentSpec, env_name: str) -> str:
    return f"{spec.name}-{env_name}"


class RegistryStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, spec: DeploymentSpec, env_name: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.image_repository = ImageRepository(
            self,
            "ImageRepository",
            ImageRepositoryProps(
                repository_name=image_repository_name(spec, env_name), retain=EnvironmentPolicy(env_name).keep_data
            ),
        )
        if spec.container.build:
            self.image_repository.allow_cdk_asset_publishing()
        # The registry is the record of approved versions: retained in every environment.
        self.model_registry = ModelRegistry(
            self,
            "ModelRegistry",
            ModelRegistryProps(
                group_name=model_package_group_name(spec, env_name),
                description=f"Versions of model {spec.model.name} served by twinserve deployment {spec.name} "
                f"({env_name})",
                retain=True,
            ),
        )
        cdk.CfnOutput(self, "ImageRepositoryUri", value=self.image_repository.repository.repository_uri)
        cdk.CfnOutput(self, "ModelPackageGroupName", value=self.model_registry.group_name)
