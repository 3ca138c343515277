"""The tags both clouds put on every resource of an environment: one set, one home."""

from __future__ import annotations

from twinserve.spec import DeploymentSpec

COST_ALLOCATION_TAG = "twinserve:stage"
"""The tag whose value, ``<deployment>-<environment>``, is unique per environment. On AWS, activate
it as a cost-allocation tag in the payer account's Billing console: the environment's budget counts
the resources carrying it (docs/aws.md, "Cost ceiling"). On Azure the budget is scoped to the
environment's resource group instead."""


def environment_tags(spec: DeploymentSpec, env_name: str) -> dict[str, str]:
    """The tags of every resource of one environment."""
    return {
        "twinserve:deployment": spec.name,
        "twinserve:environment": env_name,
        "twinserve:model": spec.model.name,
        COST_ALLOCATION_TAG: f"{spec.name}-{env_name}",
    }
