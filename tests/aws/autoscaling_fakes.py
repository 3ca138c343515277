"""Stand-ins for what the autoscaling reconciler talks to, for its tests (no AWS account is reached here):

* :class:`FakeAws` - SageMaker, Application Auto Scaling and CloudWatch in memory, with the clients the
  handler calls (``aws.sagemaker``, ``aws.autoscaling``, ``aws.cloudwatch``, shaped like boto3's). Its
  UpdateEndpoint ENFORCES the platform rule: it refuses to change the instance type of, or to remove, a
  variant registered as a scalable target (model-only changes pass), as SageMaker documents at
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html ("Update or delete endpoints that
  use automatic scaling"). RegisterScalableTarget needs the variant to exist, deregistering a target
  deletes its policies (so a policy created again gets a new ARN), and what is already gone answers
  ObjectNotFoundException / ResourceNotFound, as the real APIs do.
* :class:`CloudFormation` - one stack holding the reconciler's ``Before`` and ``After`` custom resources
  around the endpoint, updated in CloudFormation's order (Before, endpoint, After) and rolled back in the
  reverse order, each custom resource request sent through the real handler as CloudFormation sends it
  (every property value a string).
* :func:`variant` - a variant of the reconciler's ``Variants`` property, in the shape
  :class:`twinserve.aws.autoscaling.VariantAutoscaling` renders (test_aws_autoscaling.py checks that
  the synthesized templates parse into the same state).
* :func:`reconciler`, :func:`scaled_variants` - the two custom resources of a synthesized template, and
  the variants they scale as the handler reads them.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from twinserve.aws.autoscaling_handler import reconcile

INSTANCES = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED = "sagemaker:variant:DesiredProvisionedConcurrency"
SCALING_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html"


class ClientError(Exception):
    """Shaped like botocore's ClientError: the handler reads ``response['Error']['Code']``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


def instance_type_of(production_variant: dict) -> str:
    return production_variant.get("InstanceType") or ("serverless" if "ServerlessConfig" in production_variant else "")


@dataclass
class FakeAws:
    configs: dict[str, list[dict]] = field(default_factory=dict)
    """Endpoint config name -> its ProductionVariants."""
    endpoints: dict[str, dict] = field(default_factory=dict)
    """Endpoint name -> {"EndpointConfigName", "EndpointStatus"}."""
    targets: dict[tuple[str, str], dict] = field(default_factory=dict)
    """(resource id, dimension) -> {"MinCapacity", "MaxCapacity"}."""
    policies: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    """(resource id, dimension, policy name) -> the PutScalingPolicy arguments plus "PolicyARN"."""
    alarms: dict[str, dict] = field(default_factory=dict)
    """Alarm name -> the PutMetricAlarm arguments."""
    refused: list[str] = field(default_factory=list)
    """Every UpdateEndpoint SageMaker refused, with the reason."""
    calls: list[str] = field(default_factory=list)
    """Every API call, in order."""
    page_size: int = 2
    _failures: dict[str, list[Exception]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.sagemaker = _Client(self, "sagemaker")
        self.autoscaling = _Client(self, "autoscaling")
        self.cloudwatch = _Client(self, "cloudwatch")
        self.clients = reconcile.Clients(self.sagemaker, self.autoscaling, self.cloudwatch)

    # ------------------------------------------------------------------ test controls

    def fail_next(self, operation: str, error: Exception | None = None) -> None:
        """Make the next call of ``operation`` (e.g. ``put_scaling_policy``) fail."""
        self._failures.setdefault(operation, []).append(error or ClientError("LimitExceededException", "injected"))

    def pending_failures(self) -> list[str]:
        return [op for op, errors in self._failures.items() if errors]

    def registered(self, endpoint_name: str) -> dict[str, dict]:
        """Variant -> its registration (dimension, capacities, policies), for one endpoint."""
        prefix = f"endpoint/{endpoint_name}/variant/"
        return {
            rid[len(prefix) :]: {
                "dimension": dim,
                **target,
                "policies": {name: p for (r, d, name), p in self.policies.items() if (r, d) == (rid, dim)},
            }
            for (rid, dim), target in self.targets.items()
            if rid.startswith(prefix)
        }

    def live(self, endpoint_name: str) -> dict[str, str]:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return {}
        return {v["VariantName"]: instance_type_of(v) for v in self.configs[endpoint["EndpointConfigName"]]}

    # ------------------------------------------------------------------ SageMaker

    def sagemaker_describe_endpoint(self, EndpointName):
        if EndpointName not in self.endpoints:
            raise ClientError(
                "ValidationException",
                f'Could not find endpoint "arn:aws:sagemaker:eu-west-1:111111111111:endpoint/{EndpointName.lower()}".',
            )
        return {"EndpointName": EndpointName, **copy.deepcopy(self.endpoints[EndpointName])}

    def sagemaker_describe_endpoint_config(self, EndpointConfigName):
        return {
            "EndpointConfigName": EndpointConfigName,
            "ProductionVariants": copy.deepcopy(self.configs[EndpointConfigName]),
        }

    def sagemaker_create_endpoint(self, EndpointName, EndpointConfigName):
        assert EndpointName not in self.endpoints
        self.endpoints[EndpointName] = {"EndpointConfigName": EndpointConfigName, "EndpointStatus": "InService"}

    def sagemaker_update_endpoint(self, EndpointName, EndpointConfigName, fails=False):
        """``fails``: SageMaker accepts the update but it fails (e.g. the new containers never get
        healthy) and SageMaker keeps serving the old config."""
        current = {v["VariantName"]: v for v in self.configs[self.endpoints[EndpointName]["EndpointConfigName"]]}
        new = {v["VariantName"]: v for v in self.configs[EndpointConfigName]}
        # The platform rule, from the SageMaker developer guide (SCALING_DOC, "Update or delete endpoints
        # that use automatic scaling"): "If the update would change the instance type for any model that
        # is a target for automatic scaling, the update fails", and so does removing such a variant;
        # "If you change the model for a variant that is configured for automatic scaling, Amazon
        # SageMaker automatic scaling allows the update."
        for name in self.registered(EndpointName):
            if name not in new:
                reason = f"{EndpointName}: variant {name} is a scalable target and would be removed"
            elif instance_type_of(new[name]) != instance_type_of(current[name]):
                reason = f"{EndpointName}: variant {name} is a scalable target and would change its instance type"
            else:
                continue
            self.refused.append(reason)
            raise ClientError("ValidationException", f"{reason} ({SCALING_DOC})")
        if fails:
            raise ClientError("ValidationException", f"{EndpointName}: the new variants failed their health check")
        self.endpoints[EndpointName]["EndpointConfigName"] = EndpointConfigName

    def sagemaker_delete_endpoint(self, EndpointName):
        # "If you delete an endpoint, Application Auto Scaling ... deregisters those variants as scalable
        # targets" (SCALING_DOC); alarms of ours stay.
        del self.endpoints[EndpointName]
        for name in self.registered(EndpointName):
            self._deregister(f"endpoint/{EndpointName}/variant/{name}")

    # ------------------------------------------------------------------ Application Auto Scaling

    def autoscaling_register_scalable_target(
        self, ServiceNamespace, ResourceId, ScalableDimension, MinCapacity, MaxCapacity
    ):
        assert ServiceNamespace == "sagemaker"
        _, endpoint_name, _, variant_name = ResourceId.split("/")
        served_on = self.live(endpoint_name).get(variant_name)
        wanted = PROVISIONED if served_on == "serverless" else INSTANCES
        if served_on is None or ScalableDimension != wanted:
            raise ClientError("ValidationException", f"{ResourceId} ({ScalableDimension}) does not exist")
        if not 0 <= MinCapacity <= MaxCapacity:
            raise ClientError("ValidationException", "MinCapacity must be <= MaxCapacity")
        self.targets[(ResourceId, ScalableDimension)] = {"MinCapacity": MinCapacity, "MaxCapacity": MaxCapacity}
        return {
            "ScalableTargetARN": f"arn:aws:application-autoscaling:eu-west-1:111111111111:scalable-target/{ResourceId}"
        }

    def autoscaling_deregister_scalable_target(self, ServiceNamespace, ResourceId, ScalableDimension):
        if (ResourceId, ScalableDimension) not in self.targets:
            raise ClientError("ObjectNotFoundException", f"No scalable target {ResourceId}")
        self._deregister(ResourceId, ScalableDimension)

    def _deregister(self, resource_id, dimension=None):
        # "Deregistering a scalable target deletes the scaling policies ... associated with it."
        for key in [k for k in self.targets if k[0] == resource_id and dimension in (None, k[1])]:
            del self.targets[key]
            for policy in [p for p in self.policies if p[:2] == key]:
                del self.policies[policy]

    def autoscaling_describe_scalable_targets(self, ServiceNamespace, NextToken=None):
        found = [
            {"ServiceNamespace": "sagemaker", "ResourceId": rid, "ScalableDimension": dim, **target}
            for (rid, dim), target in sorted(self.targets.items())
        ]
        return self._page(found, "ScalableTargets", NextToken)

    def autoscaling_put_scaling_policy(
        self, PolicyName, ServiceNamespace, ResourceId, ScalableDimension, PolicyType, **config
    ):
        if (ResourceId, ScalableDimension) not in self.targets:
            raise ClientError("ObjectNotFoundException", f"No scalable target {ResourceId}")
        assert list(config) == [f"{PolicyType}PolicyConfiguration"], config
        key = (ResourceId, ScalableDimension, PolicyName)
        arn = self.policies.get(key, {}).get("PolicyARN") or (
            f"arn:aws:autoscaling:eu-west-1:111111111111:scalingPolicy:{next(self._ids):08d}:"
            f"resource/sagemaker/{ResourceId}:policyName/{PolicyName}"
        )
        self.policies[key] = {"PolicyName": PolicyName, "PolicyType": PolicyType, **config, "PolicyARN": arn}
        return {"PolicyARN": arn, "Alarms": []}

    def autoscaling_describe_scaling_policies(self, ServiceNamespace, ResourceId, ScalableDimension, NextToken=None):
        found = [
            p for (rid, dim, _), p in sorted(self.policies.items()) if (rid, dim) == (ResourceId, ScalableDimension)
        ]
        return self._page(copy.deepcopy(found), "ScalingPolicies", NextToken)

    def autoscaling_delete_scaling_policy(self, PolicyName, ServiceNamespace, ResourceId, ScalableDimension):
        if self.policies.pop((ResourceId, ScalableDimension, PolicyName), None) is None:
            raise ClientError("ObjectNotFoundException", f"No scaling policy {PolicyName}")

    # ------------------------------------------------------------------ CloudWatch

    def cloudwatch_put_metric_alarm(self, AlarmName, AlarmActions, **alarm):
        self.alarms[AlarmName] = {"AlarmActions": AlarmActions, **alarm}

    def cloudwatch_delete_alarms(self, AlarmNames):
        if any(name not in self.alarms for name in AlarmNames):
            raise ClientError("ResourceNotFound", f"no alarm {AlarmNames}")
        for name in AlarmNames:
            del self.alarms[name]

    def _page(self, items: list, key: str, token: str | None) -> dict:
        start = int(token or 0)
        page = {key: items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            page["NextToken"] = str(start + self.page_size)
        return page


class _Client:
    """``aws.<service>.<operation>(**kwargs)`` -> ``FakeAws.<service>_<operation>``, with injected failures."""

    def __init__(self, aws: FakeAws, service: str) -> None:
        self._aws, self._service = aws, service

    def __getattr__(self, operation: str):
        method = getattr(self._aws, f"{self._service}_{operation}")

        def call(**kwargs):
            self._aws.calls.append(operation)
            pending = self._aws._failures.get(operation)
            if pending:
                raise pending.pop(0)
            return method(**kwargs)

        return call


# --------------------------------------------------------------------------- the desired state


def variant(
    name: str,
    instance_type: str = "ml.m5.large",
    *,
    min_capacity: int = 1,
    max_capacity: int = 3,
    target: float = 200,
    scale_to_zero: bool = False,
    endpoint_name: str = "ep",
) -> dict[str, Any]:
    """One entry of the reconciler's ``Variants`` property (instances; ``scale_to_zero``: the async
    backlog policies; ``instance_type="serverless"``: provisioned concurrency)."""
    serverless = instance_type == "serverless"
    cooldowns = {"ScaleInCooldown": 300, "ScaleOutCooldown": 60}
    metric = {"PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}}
    policies = [_tracking("invocations-per-instance", target, metric, cooldowns)]
    if serverless:
        metric = {
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
            }
        }
        policies = [_tracking("provisioned-concurrency-utilization", target, metric, cooldowns)]
    if scale_to_zero:
        backlog = {
            "CustomizedMetricSpecification": {
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
                "Statistic": "Average",
            }
        }
        policies = [
            _tracking("backlog-per-instance", target, backlog, cooldowns),
            {
                "PolicyName": "backlog-without-capacity",
                "PolicyType": "StepScaling",
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "Cooldown": 60,
                    "MetricAggregationType": "Average",
                    "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
                },
                "Alarm": {
                    "MetricName": "HasBacklogWithoutCapacity",
                    "Namespace": "AWS/SageMaker",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
                    "Statistic": "Average",
                    "Period": 60,
                    "EvaluationPeriods": 2,
                    "Threshold": 0.5,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                },
            },
        ]
    return {
        "VariantName": name,
        "InstanceType": instance_type,
        "ScalableDimension": PROVISIONED if serverless else INSTANCES,
        "MinCapacity": min_capacity,
        "MaxCapacity": max_capacity,
        "Policies": policies,
    }


def _tracking(name, target, metric, cooldowns):
    return {
        "PolicyName": name,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {"TargetValue": target, **metric, **cooldowns},
    }


def as_cloudformation_sends(value: Any) -> Any:
    """Custom resource properties as CloudFormation hands them to the function: every number and
    boolean becomes a string."""
    if isinstance(value, dict):
        return {k: as_cloudformation_sends(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class Context:
    """The Lambda context the handler reads: the time left and the log stream."""

    log_stream_name = "2030/01/01/[$LATEST]test"

    def __init__(self, seconds: float = 900.0) -> None:
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


def event(request: str, properties: dict, *, physical_id: str | None = None, old: dict | None = None) -> dict:
    """A custom resource request as CloudFormation sends it."""
    found = {
        "RequestType": request,
        "ResponseURL": "https://cloudformation-custom-resource-response-euwest1.s3.amazonaws.com/signed",
        "StackId": "arn:aws:cloudformation:eu-west-1:111111111111:stack/s/1",
        "RequestId": "request-1",
        "ResourceType": "Custom::EndpointAutoscaling",
        "LogicalResourceId": f"EndpointAutoscaling{properties['Phase'].title()}",
        "ResourceProperties": as_cloudformation_sends(
            {"ServiceToken": "arn:aws:lambda:eu-west-1:111111111111:function:f", **properties}
        ),
    }
    if physical_id is not None:
        found["PhysicalResourceId"] = physical_id
    if old is not None:
        found["OldResourceProperties"] = as_cloudformation_sends(old)
    return found


def send(aws: FakeAws, request: str, properties: dict, **kwargs: Any) -> dict:
    """One request through the real handler; returns the response it PUT to CloudFormation."""
    responses: list[dict] = []
    reconcile.handle(
        event(request, properties, **kwargs),
        Context(),
        aws.clients,
        send=lambda url, body: responses.append(json.loads(body)),
        sleep=lambda seconds: None,
    )
    assert len(responses) == 1, responses
    return responses[0]


# --------------------------------------------------------------------------- CloudFormation's order


@dataclass(frozen=True)
class Template:
    """What a template says about the endpoint and its autoscaling."""

    config: dict[str, str]
    """The endpoint config: variant name -> instance type (``serverless``)."""
    scaled: tuple[dict, ...] = ()
    """The reconciler's ``Variants`` property (:func:`variant`)."""
    models: dict[str, str] = field(default_factory=dict)
    """Variant name -> the model it serves (a model-only change changes only this)."""

    @property
    def config_name(self) -> str:
        """CloudFormation gives a changed endpoint config a new generated name."""
        digest = hashlib.sha256(json.dumps([self.config, self.models], sort_keys=True).encode()).hexdigest()
        return f"EndpointConfig-{digest[:12]}"

    def production_variants(self) -> list[dict]:
        return [
            {"VariantName": name, "ModelName": self.models.get(name, "model-1")}
            | ({"ServerlessConfig": {"MemorySizeInMB": 2048}} if kind == "serverless" else {"InstanceType": kind})
            for name, kind in self.config.items()
        ]

    def properties(self, phase: str, endpoint_name: str) -> dict:
        found = {"EndpointName": endpoint_name, "Phase": phase, "Variants": list(self.scaled)}
        if phase == "after":
            found["EndpointConfigName"] = self.config_name
        return found


class DeployFailed(Exception):
    pass


class RollbackFailed(Exception):
    pass


class CloudFormation:
    """A stack with the reconciler's two custom resources around the endpoint (Before -> endpoint ->
    After), deployed and rolled back the way CloudFormation orders them:

    * a resource runs only when its properties change (Create the first time);
    * on failure, every resource already touched - the failed one included: a custom resource whose
      Update failed is sent an Update back to its old properties - is rolled back in reverse order:
      the custom resources with an Update to their old properties (Delete if they were created), the
      endpoint with an UpdateEndpoint back to the old config (SageMaker itself keeps the old one when
      an update fails).
    """

    def __init__(self, aws: FakeAws, endpoint_name: str = "ep", *, skip: tuple[str, ...] = ()) -> None:
        self.aws, self.endpoint_name, self.skip = aws, endpoint_name, skip
        """``skip``: phases left out, to show what each is for."""
        self.deployed: Template | None = None
        self.physical_ids: dict[str, str] = {}

    def deploy(self, new: Template, *, fail: str | None = None) -> str:
        """``fail``: ``endpoint`` (the endpoint update fails), ``after`` (the After step fails midway),
        ``later`` (a resource updated after the After step fails). Returns deployed or rolled back."""
        old, touched = self.deployed, []
        try:
            self._custom_resource("before", old, new, touched)
            self._endpoint(old, new, touched, fails=fail == "endpoint")
            if fail == "after":
                # midway: the target is registered, its policy is refused (or, with nothing to
                # register, the first call fails)
                self.aws.fail_next("put_scaling_policy" if new.scaled else "describe_scalable_targets")
            self._custom_resource("after", old, new, touched)
            if fail == "later":
                raise DeployFailed("a resource updated after the autoscaling failed")
        except DeployFailed:
            self._roll_back(old, new, touched)
            return "rolled back"
        assert not self.aws.pending_failures(), "the injected failure never happened"
        self.deployed = new
        return "deployed"

    def delete(self) -> None:
        """Stack deletion: dependents first (After, endpoint, Before)."""
        assert self.deployed is not None
        self._send("Delete", "after", self.deployed)
        self.aws.sagemaker.delete_endpoint(EndpointName=self.endpoint_name)
        self._send("Delete", "before", self.deployed)
        self.deployed = None

    def _custom_resource(self, phase: str, old: Template | None, new: Template, touched: list) -> None:
        if phase in self.skip:
            return
        if old is not None and old.properties(phase, self.endpoint_name) == new.properties(phase, self.endpoint_name):
            return
        touched.append(phase)
        response = self._send("Create" if old is None else "Update", phase, new, old)
        if response["Status"] != "SUCCESS":
            raise DeployFailed(response["Reason"])

    def _endpoint(self, old: Template | None, new: Template, touched: list, *, fails: bool) -> None:
        self.aws.configs.setdefault(new.config_name, new.production_variants())
        if old is None:
            touched.append("endpoint")
            self.aws.sagemaker.create_endpoint(EndpointName=self.endpoint_name, EndpointConfigName=new.config_name)
            return
        if old.config_name == new.config_name:
            return
        touched.append("endpoint")
        try:
            self.aws.sagemaker.update_endpoint(
                EndpointName=self.endpoint_name, EndpointConfigName=new.config_name, fails=fails
            )
        except ClientError as exc:
            raise DeployFailed(str(exc)) from exc

    def _roll_back(self, old: Template | None, new: Template, touched: list) -> None:
        for resource in reversed(touched):
            if resource == "endpoint":
                if old is None:
                    self.aws.sagemaker.delete_endpoint(EndpointName=self.endpoint_name)
                elif self.aws.endpoints[self.endpoint_name]["EndpointConfigName"] != old.config_name:
                    try:
                        self.aws.sagemaker.update_endpoint(
                            EndpointName=self.endpoint_name, EndpointConfigName=old.config_name
                        )
                    except ClientError as exc:
                        raise RollbackFailed(f"UPDATE_ROLLBACK_FAILED: {exc}") from exc
            elif old is None:
                self._expect_success(self._send("Delete", resource, new))
            else:
                self._expect_success(self._send("Update", resource, old, new))

    @staticmethod
    def _expect_success(response: dict) -> None:
        if response["Status"] != "SUCCESS":
            raise RollbackFailed(f"UPDATE_ROLLBACK_FAILED: {response['Reason']}")

    def _send(self, request: str, phase: str, template: Template, previous: Template | None = None) -> dict:
        response = send(
            self.aws,
            request,
            template.properties(phase, self.endpoint_name),
            physical_id=self.physical_ids.get(phase),
            old=previous.properties(phase, self.endpoint_name) if previous is not None else None,
        )
        if response["Status"] == "SUCCESS" and request != "Delete":
            self.physical_ids[phase] = response["PhysicalResourceId"]
        return response


def expected_registrations(template: Template, live: dict[str, str]) -> dict[str, tuple]:
    """What the rule says must be registered: the desired variants the endpoint serves as desired."""
    return {
        v["VariantName"]: (
            v["ScalableDimension"],
            v["MinCapacity"],
            v["MaxCapacity"],
            sorted(p["PolicyName"] for p in v["Policies"]),
        )
        for v in template.scaled
        if live.get(v["VariantName"]) == v["InstanceType"]
    }


def assert_consistent(aws: FakeAws, endpoint_name: str, template: Template) -> None:
    """Registered exactly when the live variant matches the desired one, with the desired capacities and
    policies; every step policy's alarm acts on that policy's current ARN, and no alarm of ours is left
    without its policy."""
    got = {
        name: (r["dimension"], r["MinCapacity"], r["MaxCapacity"], sorted(r["policies"]))
        for name, r in aws.registered(endpoint_name).items()
    }
    assert got == expected_registrations(template, aws.live(endpoint_name))
    step_alarms = {
        reconcile.alarm_name(endpoint_name, name, policy): p["PolicyARN"]
        for name, r in aws.registered(endpoint_name).items()
        for policy, p in r["policies"].items()
        if p["PolicyType"] == "StepScaling"
    }
    assert {name: alarm["AlarmActions"] for name, alarm in aws.alarms.items()} == {
        name: [arn] for name, arn in step_alarms.items()
    }


# --------------------------------------------------------------------------- synthesized templates


def reconciler(template: dict) -> dict[str, tuple[str, dict]]:
    """Phase -> (logical id, resource) of a template's two ``Custom::EndpointAutoscaling`` resources."""
    found = {
        resource["Properties"]["Phase"]: (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "Custom::EndpointAutoscaling"
    }
    assert sorted(found) == ["after", "before"], found
    return found


def scaled_variants(template: dict) -> dict[str, reconcile.Variant]:
    """The variants a template scales, as the handler reads them from what CloudFormation sends."""
    _, after = reconciler(template)["after"]
    return {v.name: v for v in reconcile.parse(as_cloudformation_sends(after["Properties"])).variants}
