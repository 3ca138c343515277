"""Names of an environment's AWS resources that callers outside CDK need too (``twinserve invoke``),
in a module that imports no CDK: importing serving_stack starts the jsii runtime (seconds)."""

from __future__ import annotations

from twinserve.spec import DeploymentSpec


def endpoint_name(spec: DeploymentSpec, env_name: str) -> str:
    """The serving of ``env_name``: the SageMaker endpoint, the Lambda function or the ECS service."""
    return f"{spec.name}-{env_name}"


def probe_function_name(spec: DeploymentSpec, env_name: str) -> str:
    """The in-VPC probe function of an ECS Fargate environment (``aws.platform: ecs_fargate``)."""
    return f"{endpoint_name(spec, env_name)}-probe"
