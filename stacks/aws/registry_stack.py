"""The Registry stack of an environment: the model package group and an ECR repository for images
built outside CDK, both retained in prod and emptied on delete elsewhere.

Their names are fixed (pipelines and clients refer to them), so after prod is destroyed the retained
ones would block a new `cdk deploy` with AlreadyExists: re-create prod with `cdk import` instead,
which adopts them by those names (docs/aws.md, "Destroy and re-create")."""

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
        keep = EnvironmentPolicy(env_name).keep_data
        self.image_repository = ImageRepository(
            self,
            "ImageRepository",
            ImageRepositoryProps(repository_name=image_repository_name(spec, env_name), retain=keep),
        )
        # The record of approved versions: kept with prod; elsewhere deleted with the stack, so a
        # destroyed dev or staging can be deployed again under the same name.
        self.model_registry = ModelRegistry(
            self,
            "ModelRegistry",
            ModelRegistryProps(
                group_name=model_package_group_name(spec, env_name),
                description=f"Versions of model {spec.model.name} served by twinserve deployment {spec.name} "
                f"({env_name})",
                retain=keep,
            ),
        )
        cdk.CfnOutput(self, "ImageRepositoryUri", value=self.image_repository.repository.repository_uri)
        cdk.CfnOutput(self, "ModelPackageGroupName", value=self.model_registry.group_name)
