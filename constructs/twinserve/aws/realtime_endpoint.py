"""A SageMaker real-time endpoint: model(s), endpoint config with weighted variants, endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


@dataclass(frozen=True)
class VariantProps:
    name: str
    """Production variant name; keep it stable across updates (deployment guardrails need that)."""
    model_data_url: str
    weight: int = 100
    instance_type: str = "ml.m5.large"
    instance_count: int = 1


@dataclass(frozen=True)
class RealtimeEndpointProps:
    image_uri: str
    variants: list[VariantProps] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    """Environment variables of the serving container."""


class RealtimeEndpoint(Construct):
    def __init__(self, scope: Construct, id: str, props: RealtimeEndpointProps) -> None:
        super().__init__(scope, id)
        if not props.variants:
            raise ValueError("RealtimeEndpointProps.variants: at least one variant is required (got [])")
        self.role = iam.Role(self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        production_variants = []
        self.models: dict[str, sagemaker.CfnModel] = {}
        for variant in props.variants:
            model = sagemaker.CfnModel(
                self, f"Model{variant.name.title().replace('-', '')}",
                execution_role_arn=self.role.role_arn,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=props.image_uri, model_data_url=variant.model_data_url,
                    environment=props.environment or None,
                ),
            )
            self.models[variant.name] = model
            production_variants.append(sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=variant.name, model_name=model.attr_model_name,
                initial_variant_weight=variant.weight, instance_type=variant.instance_type,
                initial_instance_count=variant.instance_count,
            ))
        self.endpoint_config = sagemaker.CfnEndpointConfig(self, "Config", production_variants=production_variants)
        self.endpoint = sagemaker.CfnEndpoint(self, "Endpoint", endpoint_config_name=self.endpoint_config.attr_endpoint_config_name)
