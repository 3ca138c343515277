"""Where an environment's AWS stacks stand among its regions (``aws.regions``, disaster recovery).

The primary region holds everything: the Registry stack (model package group, ECR repository) and the
Serving stack with the environment's budget and audit trail (a multi-region trail: it records every
region). Each secondary region holds a Serving stack of its own: the same endpoint name, model and
image (CDK publishes the assets to each region's bootstrap bucket and repository), its own key, alarms
and dashboard. Names that are global in an account (IAM roles, CloudWatch dashboards) get the region as
a suffix there, so the regions' stacks never collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from twinserve.spec import DeploymentSpec, aws_stage_id


@dataclass(frozen=True)
class RegionPlacement:
    """A Serving stack's region and role among its environment's regions."""

    region: str | None = None
    """The stack's region (``None``: the environment's only region, possibly the CLI's)."""
    primary: bool = True
    """The primary region (the only one without ``aws.regions``)."""

    def global_name(self, name: str) -> str:
        """``name`` for an account-global resource: as it is in the primary, ``<name>-<region>`` elsewhere."""
        return name if self.primary else f"{name}-{self.region}"


PRIMARY = RegionPlacement()
"""The primary (or only) region."""


def stage_id(spec: DeploymentSpec, env_name: str, placement: RegionPlacement = PRIMARY, prefix: str = "") -> str:
    """The stage's id (``twinserve.spec.aws_stage_id``: ``<name>-<env>``, or ``<name>-<env>-<region>`` in a
    secondary region)."""
    return aws_stage_id(spec, env_name, None if placement.primary else placement.region, prefix)


def secondary_placements(spec: DeploymentSpec, env_name: str) -> list[RegionPlacement]:
    """The disaster-recovery regions of ``env_name``, in the spec's order."""
    return [RegionPlacement(region, primary=False) for region in spec.environment(env_name).aws.secondary_regions]
