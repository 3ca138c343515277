"""The ids of an environment's CDK stages, one per AWS region (``aws.regions``): the one home of the
pattern, read by the CDK app (stacks/aws/placement.py) and by `twinserve synth`'s summary."""

from __future__ import annotations

from .models import DeploymentSpec


def aws_stage_id(spec: DeploymentSpec, env_name: str, secondary_region: str | None = None, prefix: str = "") -> str:
    """``<prefix><name>-<env>`` for the primary region (the id single-region environments have always had,
    so their stacks keep their names), ``<prefix><name>-<env>-<region>`` for a disaster-recovery region."""
    base = f"{prefix}{spec.name}-{env_name}"
    return base if secondary_region is None else f"{base}-{secondary_region}"


def aws_stage_ids(spec: DeploymentSpec, env_name: str, prefix: str = "") -> list[str]:
    """Every stage id of ``env_name``, the primary's first."""
    secondaries = spec.environment(env_name).aws.secondary_regions
    return [aws_stage_id(spec, env_name, None, prefix), *(aws_stage_id(spec, env_name, r, prefix) for r in secondaries)]
