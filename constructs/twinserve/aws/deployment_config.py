"""Rollouts: how an endpoint update reaches traffic (``AWS::SageMaker::Endpoint.DeploymentConfig``).

* ``all_at_once`` / ``canary`` / ``linear``: a blue/green update. SageMaker provisions the new fleet,
  shifts traffic to it (all at once, a canary share first, or in equal linear steps), bakes for
  ``wait_seconds`` between steps while watching the rollback alarms, then keeps the old fleet for
  ``termination_wait_seconds`` before deleting it.
* ``rolling``: replaces the fleet in batches of ``step_percent`` of capacity, in place.

Constraints (SageMaker "deployment guardrails", numbers in ``twinserve.platform.aws``), checked by
:class:`~.endpoint.SageMakerEndpoint` when it is given a rollout: the updated endpoint config must
keep the same variant name (:func:`check_update_compatible` compares two synthesized templates for
that); canary, linear and rolling work on a single instance variant, never on serverless;
canary/linear need at least 3 instances and rolling 2, so that a step is a real share of the fleet;
at most 10 rollback alarms.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import aws_sagemaker as sagemaker

from ..checks import Checks
from ..platform import aws as aws_platform

Strategy = Literal["all_at_once", "canary", "linear", "rolling"]


@dataclass(frozen=True)
class RolloutProps:
    """Props of a rollout (the endpoint's deployment configuration)."""

    strategy: Strategy = "all_at_once"
    """all_at_once, canary or linear (blue/green traffic shifting), or rolling (in-place batches)."""
    step_percent: int = 10
    """Canary size (1..50), linear step (10..50) or rolling batch (5..50), in percent of capacity; a
    canary smaller than one instance is sent as one instance."""
    wait_seconds: int = 300
    """Bake time after each traffic step, watched by the rollback alarms (0..3600)."""
    termination_wait_seconds: int = 120
    """How long the old fleet is kept after the shift completes (0..3600, blue/green only)."""
    max_execution_timeout_seconds: int = 3600
    """Upper bound of the whole update (600..28800); it must cover every bake, the termination wait and
    the new instances' start-up."""
    auto_rollback: bool = True
    """Roll back automatically when one of the endpoint's rollback alarms fires. ``all_at_once``
    without it sends no DeploymentConfig at all (SageMaker's default blue/green update, no bake):
    the one kind of update that may rename or remove variants."""

    @property
    def guarded(self) -> bool:
        """Whether the endpoint carries a DeploymentConfig (deployment guardrails). Guarded updates must
        keep the variant names (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html)."""
        return self.strategy != "all_at_once" or self.auto_rollback


def check_rollout(rollout: RolloutProps, checks: Checks, provisioning_seconds: int, at: str = "rollout") -> None:
    """The ranges SageMaker accepts, and a timeout that covers the whole update, reported at
    ``<at>.<prop>`` of the owner's props. ``provisioning_seconds``: how long new instances may take
    to pass their health check."""
    checks.one_of(f"{at}.strategy", rollout.strategy, aws_platform.ROLLOUT_STRATEGIES)
    steps = aws_platform.ROLLOUT_STEP_PERCENT.get(rollout.strategy)
    if steps is not None:
        checks.range(f"{at}.step_percent", rollout.step_percent, *steps)
    checks.range(f"{at}.wait_seconds", rollout.wait_seconds, *aws_platform.ROLLOUT_WAIT_SECONDS)
    checks.range(
        f"{at}.termination_wait_seconds", rollout.termination_wait_seconds, *aws_platform.TERMINATION_WAIT_SECONDS
    )
    checks.range(
        f"{at}.max_execution_timeout_seconds",
        rollout.max_execution_timeout_seconds,
        *aws_platform.MAX_EXECUTION_TIMEOUT_SECONDS,
    )
    total = aws_platform.rollout_seconds(
        rollout.strategy,
        rollout.step_percent,
        rollout.wait_seconds,
        rollout.termination_wait_seconds,
        provisioning_seconds,
    )
    checks.that(
        total <= rollout.max_execution_timeout_seconds,
        f"{at}.max_execution_timeout_seconds",
        rollout.max_execution_timeout_seconds,
        f"the update may take {total} s (bakes, termination wait and {provisioning_seconds} s start-up per "
        "provisioning round); SageMaker rolls back an update that outlasts its timeout",
    )


def render_deployment_config(
    rollout: RolloutProps, rollback_alarm_names: Sequence[str], instance_count: int
) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
    """The CloudFormation ``DeploymentConfig`` of an already checked ``rollout`` of a variant with
    ``instance_count`` instances, with these alarms as rollback triggers (ignored without
    ``auto_rollback``). A canary smaller than one instance is sent as one instance: SageMaker does not
    document how it rounds a percentage below one instance."""
    names = list(rollback_alarm_names) if rollout.auto_rollback else []
    rollback = (
        sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
            alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=n) for n in names]
        )
        if names
        else None
    )
    step = sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=rollout.step_percent)
    if rollout.strategy == "rolling":
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                maximum_batch_size=step,
                rollback_maximum_batch_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                    type="CAPACITY_PERCENT", value=100
                ),
                wait_interval_in_seconds=rollout.wait_seconds,
                maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_seconds,
            ),
        )
    if rollout.strategy == "canary" and instance_count * rollout.step_percent < 100:
        step = sagemaker.CfnEndpoint.CapacitySizeProperty(type="INSTANCE_COUNT", value=1)
    routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
        type=rollout.strategy.upper(),
        wait_interval_in_seconds=rollout.wait_seconds,
        canary_size=step if rollout.strategy == "canary" else None,
        linear_step_size=step if rollout.strategy == "linear" else None,
    )
    return sagemaker.CfnEndpoint.DeploymentConfigProperty(
        auto_rollback_configuration=rollback,
        blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
            traffic_routing_configuration=routing,
            termination_wait_in_seconds=rollout.termination_wait_seconds,
            maximum_execution_timeout_in_seconds=rollout.max_execution_timeout_seconds,
        ),
    )


# --------------------------------------------------------------------------- update compatibility


def _variant_names(template: dict) -> dict[str, list[str]]:
    """{endpoint logical id: production variant names} for endpoints that use guardrails."""
    resources = template.get("Resources", {})
    found: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::SageMaker::Endpoint":
            continue
        props = resource.get("Properties", {})
        config_ref = props.get("EndpointConfigName", {})
        config_id = config_ref.get("Fn::GetAtt", [None])[0] if isinstance(config_ref, dict) else None
        config = resources.get(config_id or "", {}).get("Properties", {})
        found[logical_id] = sorted(v["VariantName"] for v in config.get("ProductionVariants", []))
        found[logical_id + "#guardrails"] = ["yes"] if "DeploymentConfig" in props else []
    return found


def check_update_compatible(previous: dict, current: dict) -> list[str]:
    """Problems that would make SageMaker refuse a guarded update from ``previous`` to ``current``.

    Both are CloudFormation templates (``aws cloudformation get-template`` of the deployed stack and
    the newly synthesized one). Blue/green and rolling updates need the same variant names."""
    before, after = _variant_names(previous), _variant_names(current)
    problems = []
    for endpoint, names in after.items():
        if endpoint.endswith("#guardrails") or endpoint not in before:
            continue
        if after.get(endpoint + "#guardrails") and before[endpoint] != names:
            problems.append(
                f"endpoint {endpoint}: variant names change from {before[endpoint]} to {names}; "
                "a guarded (blue/green or rolling) update needs the same variant names - "
                "keep the names, or deploy the rename once with rollout strategy all_at_once and "
                "auto_rollback false, which sends no DeploymentConfig"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m twinserve.aws.deployment_config deployed.json new.json`` (exit 1 on a problem)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m twinserve.aws.deployment_config DEPLOYED_TEMPLATE NEW_TEMPLATE", file=sys.stderr)
        return 2
    with open(args[0]) as a, open(args[1]) as b:
        problems = check_update_compatible(json.load(a), json.load(b))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
