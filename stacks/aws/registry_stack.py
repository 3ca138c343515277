"""The Registry stack of an environment: the model package group and an ECR repository for images
built outside CDK, both retained in prod and emptied on delete elsewhere. With ``aws.encryption: kms``
(the default) the repository's images are encrypted with a customer-managed key of this stack (rotated,
retained with the images).

A repository's encryption is fixed when it is created, so the KMS-encrypted repository has a name of its
own (``twinserve/<name>-<env>-kms``): an environment created with the AES-256 repository replaces it on
its next deploy (a new repository under the new name; the old one is retained in prod with its images,
emptied and deleted elsewhere) instead of failing on a custom-named resource that needs replacing.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecr-repository.html

Their names are fixed (pipelines and clients refer to them), so after prod is destroyed the retained
ones would block a new `cdk deploy` with AlreadyExists: re-create prod with `cdk import` instead,
which adopts them by those names (docs/aws.md, "Destroy and re-create")."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms

from constructs import Construct
from twinserve.aws import ImageRepository, ImageRepositoryProps, ModelRegistry, ModelRegistryProps
from twinserve.spec import DeploymentSpec

from ..environment_policy import EnvironmentPolicy

KMS_REPOSITORY_SUFFIX = "-kms"
"""Ends the name of a KMS-encrypted repository (see the module docstring)."""


def image_repository_name(spec: DeploymentSpec, env_name: str) -> str:
    kms_encrypted = spec.environment(env_name).aws.encryption == "kms"
    return f"twinserve/{spec.name}-{env_name}{KMS_REPOSITORY_SUFFIX if kms_encrypted else ''}"


def model_package_group_name(spec: DeploymentSpec, env_name: str) -> str:
    return f"{spec.name}-{env_name}"


class RegistryStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, spec: DeploymentSpec, env_name: str, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        keep = EnvironmentPolicy(env_name).keep_data
        name = f"{spec.name}-{env_name}"
        self.image_key = (
            kms.Key(
                self,
                "ImageKey",
                enable_key_rotation=True,
                # the images stay readable only while their key exists
                removal_policy=cdk.RemovalPolicy.RETAIN if keep else cdk.RemovalPolicy.DESTROY,
                alias=f"alias/twinserve/{name}-images",
                description=f"twinserve {name}: images of the ECR repository",
            )
            if spec.environment(env_name).aws.encryption == "kms"
            else None
        )
        self.image_repository = ImageRepository(
            self,
            "ImageRepository",
            ImageRepositoryProps(
                repository_name=image_repository_name(spec, env_name), retain=keep, encryption_key=self.image_key
            ),
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
