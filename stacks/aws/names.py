"""Names of an environment's AWS resources that callers outside CDK need too (``twinserve invoke``),
in a module that imports no CDK: importing serving_stack starts the jsii runtime (seconds)."""

from __future__ import annotations

from twinserve.spec import DeploymentSpec


def endpoint_name(spec: DeploymentSpec, env_name: str) -> str:
    """The SageMaker endpoint of ``env_name``."""
    return f"{spec.name}-{env_name}"
