"""Keeps an endpoint's Application Auto Scaling registrations in step with the variants it serves.

A CloudFormation custom resource handler (AWS Lambda, standard library plus the runtime's boto3).

The platform rule: SageMaker refuses an UpdateEndpoint that changes the instance type of, or removes
(so also renames), a production variant registered as a scalable target. Its scaling policies must be
deleted and the target deregistered first, and both registered again after the update; a model-only
change is allowed (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html, "Update or
delete endpoints that use automatic scaling"). ``AWS::ApplicationAutoScaling`` resources cannot follow
it: CloudFormation deletes an old target only in its cleanup phase, after the refused update, and a
replaced target shares its registration key (namespace, resource id, dimension) with the old one, so
deleting the old one would deregister the new one.

So :class:`twinserve.aws.autoscaling.EndpointAutoscaling` declares this resource twice around the
endpoint: ``before`` (the endpoint depends on it) and ``after`` (it depends on the endpoint, and its
properties hold the endpoint config's name, so it runs after every endpoint update). Both apply ONE
rule, on Create and on Update, forward and on rollback alike (CloudFormation rolls a resource back with
an Update to its old properties):

    a desired variant is registered (target, policies, the alarm of a step policy) exactly when the
    live endpoint serves it on the desired instance type ("serverless" for a serverless variant);
    every other registration of the endpoint is removed (policies, alarms, target).

"Live" is read from SageMaker (DescribeEndpoint -> EndpointConfigName -> DescribeEndpointConfig), never
taken from the template: before the update it is the old config, after it the new one, during a
rollback whatever the endpoint serves at that moment. An endpoint that does not exist (the first
create, when ``before`` runs) serves nothing. Delete of ``after`` removes every registration of the
endpoint (the stack is deleted, or the endpoint renamed, which gives this resource a new physical id);
Delete of ``before`` does nothing.

The step policy that adds the first instance to an endpoint scaled to zero needs a CloudWatch alarm whose
action is the policy's ARN. The ARN exists only once the policy does, and it changes whenever the policy
is created again (deregistering a target deletes its policies), so this handler puts the alarm right
after the policy, with the ARN PutScalingPolicy returned, and deletes it with the policy. An alarm
declared in the template could not follow the ARN through a rollback.

AWS is reached only through the clients handed to :func:`handle` (SageMaker, Application Auto Scaling,
CloudWatch): boto3 in Lambda (:func:`handler`), in-memory fakes in the tests. CloudFormation sends every
property value as a string; :func:`parse` restores the numbers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

NAMESPACE = "sagemaker"
SERVERLESS = "serverless"
"""The instance type of a serverless variant, in the desired state and as read from the endpoint."""
PHASES = ("before", "after")
STEP_SCALING = "StepScaling"
_TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
"""Endpoint statuses to wait out: the variants are being replaced or the endpoint removed."""
_POLL_SECONDS = 15.0
_GUARD_SECONDS = 20.0
"""Answer FAILED this long before Lambda would stop the function, so CloudFormation never waits an hour."""
_GONE = frozenset({"ObjectNotFoundException", "ResourceNotFound", "ResourceNotFoundException"})
"""Error codes of a policy, target or alarm that is already gone: removing it again is done."""
_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
_DENIED_RETRIES = 3
"""IAM is eventually consistent: right after the stack creates the function's role, its policy may not
apply yet. An access error is retried this many times, a poll interval apart (the rule is idempotent)."""
# The numbers among the properties (CloudFormation sends them as strings).
_INTS = frozenset(
    {
        "MinCapacity",
        "MaxCapacity",
        "ScaleInCooldown",
        "ScaleOutCooldown",
        "Cooldown",
        "ScalingAdjustment",
        "MinAdjustmentMagnitude",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
    }
)
_FLOATS = frozenset({"TargetValue", "MetricIntervalLowerBound", "MetricIntervalUpperBound", "Threshold"})
_BOOLS = frozenset({"DisableScaleIn", "ActionsEnabled"})


# --------------------------------------------------------------------------- the desired state


@dataclass(frozen=True)
class Policy:
    """One scaling policy of a variant, as PutScalingPolicy takes it."""

    name: str
    """PolicyName, unique per scalable target."""
    type: str
    """PolicyType: ``TargetTrackingScaling`` or ``StepScaling``."""
    configuration: dict[str, Any]
    """The ``<type>PolicyConfiguration`` argument of PutScalingPolicy."""
    alarm: dict[str, Any] | None = None
    """Step scaling: PutMetricAlarm's arguments for the alarm that triggers the policy, without
    AlarmName (see :func:`alarm_name`) and AlarmActions (the policy's ARN)."""


@dataclass(frozen=True)
class Variant:
    """A variant to register, and what it must be served on for that to be allowed."""

    name: str
    """The production variant's name."""
    instance_type: str
    """The instance type the template gives it, or ``serverless``."""
    dimension: str
    """The scalable dimension (``sagemaker:variant:DesiredInstanceCount`` or ``...DesiredProvisionedConcurrency``)."""
    min_capacity: int
    """Fewest instances (or provisioned concurrency)."""
    max_capacity: int
    """Most instances (or provisioned concurrency)."""
    policies: tuple[Policy, ...] = ()
    """Its scaling policies."""


@dataclass(frozen=True)
class Desired:
    """The resource's properties: which variants of which endpoint should scale, and how."""

    endpoint_name: str
    """The endpoint (``EndpointName``)."""
    phase: str
    """``before`` or ``after`` the endpoint update (only Delete treats them differently)."""
    variants: tuple[Variant, ...] = ()
    """The variants that should be registered."""

    def resource_id(self, variant_name: str) -> str:
        return f"endpoint/{self.endpoint_name}/variant/{variant_name}"


def alarm_name(endpoint_name: str, variant_name: str, policy_name: str) -> str:
    """The alarm this handler puts for a step policy (and deletes with it)."""
    return f"{endpoint_name}-{variant_name}-{policy_name}"


def parse(properties: dict[str, Any]) -> Desired:
    """The desired state from the resource properties, numbers restored (CloudFormation sends strings)."""
    props = _typed(properties)
    if props["Phase"] not in PHASES:
        raise ValueError(f"Phase must be one of {', '.join(PHASES)} (got {props['Phase']!r})")
    variants = tuple(
        Variant(
            name=v["VariantName"],
            instance_type=v["InstanceType"],
            dimension=v["ScalableDimension"],
            min_capacity=v["MinCapacity"],
            max_capacity=v["MaxCapacity"],
            policies=tuple(
                Policy(p["PolicyName"], p["PolicyType"], p[f"{p['PolicyType']}PolicyConfiguration"], p.get("Alarm"))
                for p in v.get("Policies", [])
            ),
        )
        for v in props.get("Variants", [])
    )
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"Variants must name each variant once (got {names})")
    return Desired(props["EndpointName"], props["Phase"], variants)


def _typed(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _typed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v, key) for v in value]
    if key in _INTS:
        return int(value)
    if key in _FLOATS:
        return float(value)
    if key in _BOOLS:
        return value if isinstance(value, bool) else value == "true"
    return value


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Clients:
    """The AWS clients the rule uses (boto3's in Lambda)."""

    sagemaker: Any
    """DescribeEndpoint, DescribeEndpointConfig."""
    autoscaling: Any
    """Application Auto Scaling."""
    cloudwatch: Any
    """PutMetricAlarm, DeleteAlarms (the step policies' alarms)."""


class Deadline:
    """Time left in this invocation, how to wait, and whether CloudFormation was already told it failed."""

    def __init__(self, seconds_left: Callable[[], float], sleep: Callable[[float], None] = time.sleep) -> None:
        self.seconds_left = seconds_left
        self.sleep = sleep
        self.answered = threading.Event()
        """Set when the guard answered FAILED: CloudFormation may be rolling back, so stop changing things."""

    def check(self) -> None:
        if self.answered.is_set():
            raise TimeoutError("CloudFormation was told this request timed out; stopping")


def reconcile(desired: Desired, clients: Clients, deadline: Deadline) -> list[str]:
    """Apply the rule once; returns the names of the variants registered now."""
    live = live_variants(clients.sagemaker, desired.endpoint_name, deadline) if desired.variants else {}
    keep: dict[tuple[str, str], Variant] = {}
    for variant in desired.variants:
        served_on = live.get(variant.name)
        if served_on == variant.instance_type:
            keep[(desired.resource_id(variant.name), variant.dimension)] = variant
        else:
            LOG.info(
                "%s: served on %s, wanted on %s: not registered now",
                variant.name,
                served_on or "nothing",
                variant.instance_type,
            )
    for resource_id, dimension in registered(clients.autoscaling, desired.endpoint_name):
        if (resource_id, dimension) not in keep:
            deadline.check()
            remove(clients, desired.endpoint_name, resource_id, dimension)
    for variant in keep.values():
        deadline.check()
        apply(clients, desired, variant)
    return sorted(v.name for v in keep.values())


def live_variants(sagemaker: Any, endpoint_name: str, deadline: Deadline) -> dict[str, str]:
    """Variant name -> the instance type (or ``serverless``) the endpoint serves it on now; empty when
    the endpoint does not exist. Waits while the endpoint is being created, updated or rolled back."""
    while True:
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
        except Exception as exc:
            if _code(exc) == "ValidationException" and "Could not find endpoint" in _message(exc):
                return {}
            raise
        status = endpoint["EndpointStatus"]
        if status not in _TRANSITIONAL:
            break
        if deadline.seconds_left() < _GUARD_SECONDS + 2 * _POLL_SECONDS:
            raise TimeoutError(f"endpoint {endpoint_name} is still {status}; deploy again once it is InService")
        LOG.info("endpoint %s is %s; waiting", endpoint_name, status)
        deadline.sleep(_POLL_SECONDS)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return {
        v["VariantName"]: v.get("InstanceType") or (SERVERLESS if "ServerlessConfig" in v else "")
        for v in config["ProductionVariants"]
    }


def registered(autoscaling: Any, endpoint_name: str) -> list[tuple[str, str]]:
    """(resource id, dimension) of every scalable target of the endpoint's variants."""
    prefix = f"endpoint/{endpoint_name}/variant/"
    return [
        (t["ResourceId"], t["ScalableDimension"])
        for t in _pages(autoscaling.describe_scalable_targets, "ScalableTargets", ServiceNamespace=NAMESPACE)
        if t["ResourceId"].startswith(prefix)
    ]


def remove(clients: Clients, endpoint_name: str, resource_id: str, dimension: str) -> None:
    """Delete a target's policies (and their alarms), then deregister it; what is gone already is fine."""
    variant_name = resource_id.rsplit("/", 1)[-1]
    for policy in _policies(clients.autoscaling, resource_id, dimension):
        _delete_policy(clients, endpoint_name, variant_name, resource_id, dimension, policy)
    _ignoring_gone(
        clients.autoscaling.deregister_scalable_target,
        ServiceNamespace=NAMESPACE,
        ResourceId=resource_id,
        ScalableDimension=dimension,
    )
    LOG.info("deregistered %s (%s)", resource_id, dimension)


def apply(clients: Clients, desired: Desired, variant: Variant) -> None:
    """Register the target (or update its capacity) and put exactly its policies (idempotent)."""
    resource_id = desired.resource_id(variant.name)
    target = dict(ServiceNamespace=NAMESPACE, ResourceId=resource_id, ScalableDimension=variant.dimension)
    clients.autoscaling.register_scalable_target(
        **target, MinCapacity=variant.min_capacity, MaxCapacity=variant.max_capacity
    )
    wanted = {p.name for p in variant.policies}
    for policy in _policies(clients.autoscaling, resource_id, variant.dimension):
        if policy["PolicyName"] not in wanted:
            _delete_policy(clients, desired.endpoint_name, variant.name, resource_id, variant.dimension, policy)
    for policy in variant.policies:
        arn = clients.autoscaling.put_scaling_policy(
            **target,
            PolicyName=policy.name,
            PolicyType=policy.type,
            **{f"{policy.type}PolicyConfiguration": policy.configuration},
        )["PolicyARN"]
        if policy.alarm is not None:
            clients.cloudwatch.put_metric_alarm(
                AlarmName=alarm_name(desired.endpoint_name, variant.name, policy.name),
                AlarmActions=[arn],
                **policy.alarm,
            )
    LOG.info(
        "registered %s (%s) %s..%s with %s",
        resource_id,
        variant.dimension,
        variant.min_capacity,
        variant.max_capacity,
        ", ".join(sorted(wanted)) or "no policies",
    )


def _policies(autoscaling: Any, resource_id: str, dimension: str) -> list[dict[str, Any]]:
    return list(
        _pages(
            autoscaling.describe_scaling_policies,
            "ScalingPolicies",
            ServiceNamespace=NAMESPACE,
            ResourceId=resource_id,
            ScalableDimension=dimension,
        )
    )


def _delete_policy(
    clients: Clients, endpoint_name: str, variant_name: str, resource_id: str, dimension: str, policy: dict
) -> None:
    _ignoring_gone(
        clients.autoscaling.delete_scaling_policy,
        PolicyName=policy["PolicyName"],
        ServiceNamespace=NAMESPACE,
        ResourceId=resource_id,
        ScalableDimension=dimension,
    )
    if policy.get("PolicyType") == STEP_SCALING:
        _ignoring_gone(
            clients.cloudwatch.delete_alarms, AlarmNames=[alarm_name(endpoint_name, variant_name, policy["PolicyName"])]
        )


def _pages(call: Callable[..., dict], key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = call(**kwargs, **({"NextToken": token} if token else {}))
        yield from page[key]
        token = page.get("NextToken")
        if not token:
            return


def _ignoring_gone(call: Callable[..., Any], **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except Exception as exc:
        if _code(exc) not in _GONE:
            raise
        LOG.info("already gone: %s", kwargs)


def _code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError (duck-typed: botocore is the runtime's, not ours)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _message(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", exc))


# --------------------------------------------------------------------------- the custom resource


def handle(
    event: dict[str, Any],
    context: Any,
    clients: Clients,
    *,
    send: Callable[[str, bytes], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Answer one CloudFormation request: run the rule, then PUT the response to the pre-signed URL
    (``send``, default urllib). Always answers exactly once, FAILED shortly before the invocation would
    time out. Returns the response sent."""
    responder = _Responder(event, send or _put)
    deadline = Deadline(lambda: context.get_remaining_time_in_millis() / 1000, sleep)
    fallback_id = event.get("PhysicalResourceId") or f"{event['LogicalResourceId']}/unparsed"

    def give_up() -> None:
        deadline.answered.set()
        responder.answer("FAILED", _reason("timed out", context), fallback_id)

    guard = threading.Timer(max(0.0, deadline.seconds_left() - _GUARD_SECONDS), give_up)
    guard.daemon = True
    guard.start()
    try:
        physical_id, data = _run(event, clients, deadline)
        status, reason = "SUCCESS", "reconciled"
    except Exception as exc:  # CloudFormation must always get an answer
        LOG.exception("%s failed", event.get("RequestType"))
        status, reason, physical_id, data = "FAILED", _reason(f"{type(exc).__name__}: {exc}", context), fallback_id, {}
    finally:
        guard.cancel()
    responder.answer(status, reason, physical_id, data)
    return responder.sent


def _run(event: dict[str, Any], clients: Clients, deadline: Deadline) -> tuple[str, dict[str, str]]:
    request = event["RequestType"]
    LOG.info("%s %s: %s", request, event.get("LogicalResourceId"), json.dumps(event.get("ResourceProperties")))
    try:
        desired = parse(event["ResourceProperties"])
    except (KeyError, TypeError, ValueError):
        if request == "Delete":  # a create that failed on its properties registered nothing
            LOG.exception("unreadable properties; nothing to delete")
            return event["PhysicalResourceId"], {}
        raise
    if request == "Delete":
        if desired.phase == "after":
            _reconcile_retrying_access(replace(desired, variants=()), clients, deadline)
        return event["PhysicalResourceId"], {}
    # Stable while the endpoint keeps its name; a renamed endpoint gets a new id, and CloudFormation then
    # deletes the old one (with its old properties) in cleanup, which removes the old endpoint's targets.
    physical_id = f"{desired.endpoint_name}/{desired.phase}"
    return physical_id, {"RegisteredVariants": ",".join(_reconcile_retrying_access(desired, clients, deadline))}


def _reconcile_retrying_access(desired: Desired, clients: Clients, deadline: Deadline) -> list[str]:
    retries = _DENIED_RETRIES
    while True:
        try:
            return reconcile(desired, clients, deadline)
        except Exception as exc:
            if _code(exc) not in _DENIED or retries == 0:
                raise
            retries -= 1
            LOG.warning("%s; the role's new policy may not apply yet, trying again", _message(exc))
            deadline.sleep(_POLL_SECONDS)


class _Responder:
    """Sends the one response of a request (the guard timer and the request race for it)."""

    def __init__(self, event: dict[str, Any], send: Callable[[str, bytes], None]) -> None:
        self._event, self._send = event, send
        self._lock = threading.Lock()
        self.sent: dict[str, Any] = {}

    def answer(self, status: str, reason: str, physical_id: str, data: dict[str, str] | None = None) -> None:
        with self._lock:
            if self.sent:
                return
            self.sent = {
                "Status": status,
                "Reason": reason,
                "PhysicalResourceId": physical_id,
                "StackId": self._event["StackId"],
                "RequestId": self._event["RequestId"],
                "LogicalResourceId": self._event["LogicalResourceId"],
                "NoEcho": False,
                "Data": data or {},
            }
            LOG.info("answering %s %s", status, reason)
            self._send(self._event["ResponseURL"], json.dumps(self.sent).encode())


def _reason(text: str, context: Any) -> str:
    """A reason that fits CloudFormation's 4 KB response, pointing at this invocation's log stream."""
    return f"{text[:1500]} (log stream {getattr(context, 'log_stream_name', '?')})"


def _put(url: str, body: bytes) -> None:
    """PUT the response to CloudFormation's pre-signed S3 URL (no content type: it is part of the signature)."""
    if not url.startswith("https://"):
        raise ValueError("ResponseURL must be an https URL")
    request = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # https only, checked above
        LOG.info("CloudFormation took the response: HTTP %s", response.status)


def handler(event: dict[str, Any], context: Any) -> None:
    """The Lambda entry point: boto3 clients of the function's own region (boto3 is in the runtime)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=30)
    clients = Clients(
        sagemaker=boto3.client("sagemaker", config=config),
        autoscaling=boto3.client("application-autoscaling", config=config),
        cloudwatch=boto3.client("cloudwatch", config=config),
    )
    handle(event, context, clients)
