"""The environment's monthly cost ceiling on AWS, the same for every serving platform."""

from __future__ import annotations

from constructs import Construct
from twinserve.aws.cost_budget import CostBudget, CostBudgetProps
from twinserve.spec import DeploymentSpec

from ..tags import COST_ALLOCATION_TAG, environment_tags
from .placement import PRIMARY, RegionPlacement


def environment_budget(
    scope: Construct, spec: DeploymentSpec, env_name: str, name: str, placement: RegionPlacement = PRIMARY
) -> CostBudget | None:
    """``Budget`` in ``scope``: AWS Budgets on the resources tagged with the environment's cost tag. In the
    primary region only: a budget is account-wide and its tag filter counts every region's resources."""
    env = spec.environment(env_name)
    if env.budget is None or not placement.primary:
        return None
    return CostBudget(
        scope,
        "Budget",
        CostBudgetProps(
            budget_name=f"twinserve-{name}",
            monthly_limit_usd=env.budget.monthly_limit_usd,
            emails=tuple(env.alarms.emails),
            notify_at_percent=tuple(env.budget.notify_at_percent),
            # the environment's resources, not the whole account
            cost_filter_tag=(COST_ALLOCATION_TAG, environment_tags(spec, env_name)[COST_ALLOCATION_TAG]),
        ),
    )
