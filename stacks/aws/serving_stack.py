"""One environment's SageMaker serving stack, composed from the spec."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct

from twinserve.aws import ModelArtifacts, ModelArtifactsProps, RealtimeEndpoint, RealtimeEndpointProps, VariantProps
from twinserve.spec import DeploymentSpec


class ServingStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, spec: DeploymentSpec, env_name: str,
                 spec_dir: Path, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        env = spec.environment(env_name)
        prod = env_name == "prod"

        artifact_dir = (spec_dir / spec.model.artifact.path).resolve() if spec.model.artifact.path else None
        archive = artifact_dir.parent / "model.tar.gz" if artifact_dir else None
        artifacts = ModelArtifacts(self, "Artifacts", ModelArtifactsProps(
            model_archive_path=str(archive), retain=prod))

        if spec.container.image_uri:
            image_uri = spec.container.image_uri
        else:
            image = ecr_assets.DockerImageAsset(self, "Image", directory=str((spec_dir / spec.container.build).resolve()))
            image_uri = image.image_uri

        variants = [
            VariantProps(name=v.name, model_data_url=artifacts.model_data_url, weight=v.weight,
                         instance_type=env.compute.aws_instance_type,
                         instance_count=v.instance_count or env.compute.instance_count)
            for v in env.serving.variants
        ]
        self.endpoint = RealtimeEndpoint(self, "Endpoint", RealtimeEndpointProps(image_uri=image_uri, variants=variants))
        artifacts.model_archive.grant_read(self.endpoint.role)
        cdk.CfnOutput(self, "EndpointName", value=self.endpoint.endpoint.attr_endpoint_name)
