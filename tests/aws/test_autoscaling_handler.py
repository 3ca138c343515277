"""The autoscaling reconciler (twinserve/aws/autoscaling_handler/reconcile.py) against in-memory fakes of
SageMaker, Application Auto Scaling and CloudWatch (autoscaling_fakes.FakeAws; no AWS is reached). The
fake enforces the platform rule the reconciler exists for: UpdateEndpoint refuses to change the instance
type of, or to remove, a variant registered as a scalable target
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling.html)."""

from __future__ import annotations

import json
import threading

import pytest
from autoscaling_fakes import (
    INSTANCES,
    PROVISIONED,
    ClientError,
    Context,
    FakeAws,
    Template,
    assert_consistent,
    event,
    send,
    variant,
)

from twinserve.aws.autoscaling_handler import reconcile


def endpoint(aws: FakeAws, config: dict[str, str], name: str = "ep", config_name: str = "config-1") -> None:
    """An endpoint serving ``config`` (variant -> instance type or serverless)."""
    aws.configs[config_name] = [
        {"VariantName": v, "ModelName": "m"}
        | ({"ServerlessConfig": {"MemorySizeInMB": 2048}} if t == "serverless" else {"InstanceType": t})
        for v, t in config.items()
    ]
    if name in aws.endpoints:
        aws.endpoints[name]["EndpointConfigName"] = config_name
    else:
        aws.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config_name)


def props(*variants: dict, phase: str = "after", name: str = "ep") -> dict:
    return {"EndpointName": name, "Phase": phase, "Variants": list(variants)}


def consistent(aws: FakeAws, *variants: dict, name: str = "ep") -> None:
    assert_consistent(aws, name, Template(config=aws.live(name), scaled=variants))


# --------------------------------------------------------------------------- the fake keeps the rule


def test_the_fake_refuses_what_sagemaker_refuses_and_allows_model_only_changes():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large", "b": "ml.m5.large", "plain": "ml.m5.large"})
    send(aws, "Create", props(variant("a"), variant("b")))
    for refused in ({"a": "ml.c5.large", "b": "ml.m5.large", "plain": "ml.m5.large"}, {"a": "ml.m5.large"}):
        aws.configs["new"] = [{"VariantName": v, "InstanceType": t, "ModelName": "m2"} for v, t in refused.items()]
        with pytest.raises(ClientError, match="scalable target"):
            aws.sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="new")
    assert len(aws.refused) == 2
    # a model-only change of registered variants, and anything about an unregistered one, pass
    aws.configs["model-only"] = [
        {"VariantName": "a", "InstanceType": "ml.m5.large", "ModelName": "m2"},
        {"VariantName": "b", "InstanceType": "ml.m5.large", "ModelName": "m2"},
    ]
    aws.sagemaker.update_endpoint(EndpointName="ep", EndpointConfigName="model-only")
    assert aws.live("ep") == {"a": "ml.m5.large", "b": "ml.m5.large"}


# --------------------------------------------------------------------------- properties


def test_parse_restores_the_numbers_cloudformation_sends_as_strings():
    sent = event("Create", props(variant("a", min_capacity=2, max_capacity=5, target=150)))["ResourceProperties"]
    assert sent["Variants"][0]["MinCapacity"] == "2"  # what CloudFormation does to numbers
    desired = reconcile.parse(sent)
    (a,) = desired.variants
    assert (desired.endpoint_name, desired.phase, a.min_capacity, a.max_capacity) == ("ep", "after", 2, 5)
    (policy,) = a.policies
    assert policy.configuration["TargetValue"] == 150.0
    assert policy.configuration["ScaleInCooldown"] == 300
    step = reconcile.parse(event("Create", props(variant("a", scale_to_zero=True)))["ResourceProperties"])
    alarm = step.variants[0].policies[1].alarm
    assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["Period"]) == (0.5, 2, 60)
    adjustment = step.variants[0].policies[1].configuration["StepAdjustments"][0]
    assert adjustment == {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}


@pytest.mark.parametrize(
    "bad, message",
    [({"Phase": "during"}, "Phase"), ({"Variants": [variant("a"), variant("a")]}, "once")],
)
def test_parse_refuses_properties_it_cannot_act_on(bad, message):
    with pytest.raises(ValueError, match=message):
        reconcile.parse({**props(), **bad})


# --------------------------------------------------------------------------- the rule


def test_before_on_the_first_create_does_nothing():
    aws = FakeAws()
    response = send(aws, "Create", props(variant("a"), phase="before"))
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", "ep/before")
    assert aws.targets == {} and response["Data"] == {"RegisteredVariants": ""}
    assert aws.calls == ["describe_endpoint", "describe_scalable_targets"]


def test_registers_a_served_variant_with_its_capacity_and_policies_and_again_changes_nothing():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    response = send(aws, "Create", props(variant("a", min_capacity=2, max_capacity=4, target=120)))
    assert (response["Status"], response["Data"]) == ("SUCCESS", {"RegisteredVariants": "a"})
    registration = aws.registered("ep")["a"]
    assert (registration["dimension"], registration["MinCapacity"], registration["MaxCapacity"]) == (INSTANCES, 2, 4)
    policy = registration["policies"]["invocations-per-instance"]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 120.0
    before = repr([aws.targets, aws.policies])
    send(aws, "Update", props(variant("a", min_capacity=2, max_capacity=4, target=120)), physical_id="ep/after")
    assert repr([aws.targets, aws.policies]) == before  # the same policy ARN too


def test_a_variant_served_on_another_instance_type_is_deregistered_not_registered():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    send(aws, "Create", props(variant("a")))
    # the template now asks for ml.c5.large; the endpoint still serves ml.m5.large (the before step)
    response = send(aws, "Update", props(variant("a", "ml.c5.large"), phase="before"), physical_id="ep/before")
    assert response["Data"] == {"RegisteredVariants": ""}
    assert aws.targets == {} and aws.policies == {}
    assert "deregister_scalable_target" in aws.calls


def test_registrations_not_desired_are_removed_and_other_endpoints_are_left_alone():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large", "b": "ml.m5.large"})
    endpoint(aws, {"a": "ml.m5.large"}, name="ep2", config_name="config-2")  # shares the "endpoint/ep" prefix
    send(aws, "Create", props(variant("a"), variant("b")))
    send(aws, "Create", props(variant("a"), name="ep2"))
    send(aws, "Update", props(variant("a"), phase="before"), physical_id="ep/before")
    assert set(aws.registered("ep")) == {"a"}
    assert set(aws.registered("ep2")) == {"a"}


def test_policies_no_longer_desired_are_deleted_with_their_alarm():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    send(aws, "Create", props(variant("a", scale_to_zero=True, min_capacity=0)))
    assert set(aws.alarms) == {"ep-a-backlog-without-capacity"}
    send(aws, "Update", props(variant("a")), physical_id="ep/after")
    assert set(aws.registered("ep")["a"]["policies"]) == {"invocations-per-instance"}
    assert aws.alarms == {}


def test_the_first_instance_alarm_follows_the_policy_arn_when_the_policy_is_created_again():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    scaled = variant("a", scale_to_zero=True, min_capacity=0)
    send(aws, "Create", props(scaled))
    first = aws.alarms["ep-a-backlog-without-capacity"]
    assert first["MetricName"] == "HasBacklogWithoutCapacity" and first["Threshold"] == 0.5
    consistent(aws, scaled)
    # an instance type change: deregistered before the update (policy and alarm gone), registered after it
    send(aws, "Update", props(variant("a", "ml.c5.large", scale_to_zero=True, min_capacity=0), phase="before"))
    assert aws.alarms == {}
    endpoint(aws, {"a": "ml.c5.large"}, config_name="config-2")
    moved = variant("a", "ml.c5.large", scale_to_zero=True, min_capacity=0)
    send(aws, "Update", props(moved), physical_id="ep/after")
    consistent(aws, moved)
    assert aws.alarms["ep-a-backlog-without-capacity"]["AlarmActions"] != first["AlarmActions"]


def test_serverless_variants_scale_their_provisioned_concurrency():
    aws = FakeAws()
    endpoint(aws, {"s": "serverless"})
    scaled = variant("s", "serverless", min_capacity=1, max_capacity=10, target=0.7)
    send(aws, "Create", props(scaled))
    assert aws.registered("ep")["s"]["dimension"] == PROVISIONED
    consistent(aws, scaled)


def test_pages_of_targets_and_policies_are_all_read():
    aws = FakeAws(page_size=1)
    endpoint(aws, {name: "ml.m5.large" for name in "abcde"})
    send(aws, "Create", props(*(variant(name, scale_to_zero=True, min_capacity=0) for name in "abcde")))
    send(aws, "Update", props(variant("e"), phase="before"), physical_id="ep/before")
    assert set(aws.registered("ep")) == {"e"} and aws.alarms == {}


def test_what_is_already_gone_is_fine_when_removing():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    send(aws, "Create", props(variant("a")))
    aws.fail_next("deregister_scalable_target", ClientError("ObjectNotFoundException", "gone meanwhile"))
    aws.fail_next("delete_scaling_policy", ClientError("ObjectNotFoundException", "gone meanwhile"))
    assert send(aws, "Update", props(phase="before"), physical_id="ep/before")["Status"] == "SUCCESS"


# --------------------------------------------------------------------------- requests


def test_delete_of_after_removes_every_registration_and_alarm_delete_of_before_nothing():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large", "b": "ml.m5.large"})
    both = props(variant("a", scale_to_zero=True, min_capacity=0), variant("b"))
    send(aws, "Create", both)
    assert send(aws, "Delete", {**both, "Phase": "before"}, physical_id="ep/before")["Status"] == "SUCCESS"
    assert set(aws.registered("ep")) == {"a", "b"}
    start = len(aws.calls)
    response = send(aws, "Delete", both, physical_id="ep/after")
    assert (response["Status"], response["PhysicalResourceId"]) == ("SUCCESS", "ep/after")
    assert aws.targets == {} and aws.policies == {} and aws.alarms == {}
    assert "describe_endpoint" not in aws.calls[start:]  # nothing is desired: the endpoint is not read


def test_a_delete_after_a_create_that_failed_on_its_properties_succeeds():
    response = send(FakeAws(), "Delete", {"Phase": "after"}, physical_id="EndpointAutoscalingAfter/unparsed")
    assert response["Status"] == "SUCCESS"


def test_the_physical_id_changes_only_with_the_endpoint_name():
    aws = FakeAws()
    assert send(aws, "Update", props(phase="before"), physical_id="ep/before")["PhysicalResourceId"] == "ep/before"
    renamed = send(aws, "Update", props(phase="before", name="ep-2"), physical_id="ep/before")
    assert renamed["PhysicalResourceId"] == "ep-2/before"  # CloudFormation deletes "ep/before" in cleanup


def test_an_error_is_answered_failed_with_the_reason_and_the_log_stream():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    aws.fail_next("register_scalable_target", ClientError("LimitExceededException", "too many targets"))
    response = send(aws, "Update", props(variant("a")), physical_id="ep/after")
    assert response["Status"] == "FAILED"
    assert "too many targets" in response["Reason"] and Context.log_stream_name in response["Reason"]
    assert response["PhysicalResourceId"] == "ep/after"
    assert {k: response[k] for k in ("StackId", "RequestId", "LogicalResourceId")} == {
        "StackId": "arn:aws:cloudformation:eu-west-1:111111111111:stack/s/1",
        "RequestId": "request-1",
        "LogicalResourceId": "EndpointAutoscalingAfter",
    }


def test_waits_while_the_endpoint_is_updating_then_reads_what_it_serves():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    aws.endpoints["ep"]["EndpointStatus"] = "Updating"
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 2:
            aws.endpoints["ep"]["EndpointStatus"] = "InService"

    reconcile.handle(event("Create", props(variant("a"))), Context(), aws.clients, send=lambda u, b: None, sleep=sleep)
    assert len(waits) == 2 and set(aws.registered("ep")) == {"a"}


def test_an_endpoint_that_stays_busy_fails_before_the_function_times_out():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    aws.endpoints["ep"]["EndpointStatus"] = "Updating"
    clock = Context(seconds=120)
    answers = []

    def sleep(seconds):
        clock.seconds -= seconds

    reconcile.handle(
        event("Create", props(variant("a"))),
        clock,
        aws.clients,
        send=lambda u, b: answers.append(json.loads(b)),
        sleep=sleep,
    )
    (answer,) = answers
    assert answer["Status"] == "FAILED" and "still Updating" in answer["Reason"]


def test_the_guard_answers_failed_once_before_lambda_would_stop_the_function():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    release, answers = threading.Event(), []

    class Stuck:
        def __getattr__(self, operation):
            def call(**kwargs):
                release.wait(5)
                return getattr(aws.sagemaker, operation)(**kwargs)

            return call

    clients = reconcile.Clients(Stuck(), aws.autoscaling, aws.cloudwatch)

    def record(url, body):
        answers.append(json.loads(body))
        release.set()  # the request goes on after the guard answered

    reconcile.handle(
        event("Create", props(variant("a"))), Context(seconds=reconcile._GUARD_SECONDS + 0.05), clients, send=record
    )
    assert [a["Status"] for a in answers] == ["FAILED"] and "timed out" in answers[0]["Reason"]
    assert aws.targets == {}  # nothing changes once CloudFormation may be rolling back


def test_the_response_is_put_to_the_presigned_https_url_without_a_content_type(monkeypatch):
    seen = {}

    class Response:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def urlopen(request, timeout):
        seen.update(method=request.get_method(), url=request.full_url, headers=dict(request.header_items()))
        seen["body"] = json.loads(request.data)
        return Response()

    monkeypatch.setattr(reconcile.urllib.request, "urlopen", urlopen)
    reconcile._put("https://bucket.s3.amazonaws.com/signed?x=1", json.dumps({"Status": "SUCCESS"}).encode())
    assert (seen["method"], seen["url"], seen["body"]) == (
        "PUT",
        "https://bucket.s3.amazonaws.com/signed?x=1",
        {"Status": "SUCCESS"},
    )
    assert seen["headers"]["Content-type"] == ""
    with pytest.raises(ValueError, match="https"):
        reconcile._put("file:///etc/passwd", b"{}")


def test_a_registration_removed_behind_its_back_is_restored_and_its_alarm_repointed():
    # e.g. an operator's deregister-scalable-target: the policy goes with the target, our alarm stays
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    scaled = variant("a", scale_to_zero=True, min_capacity=0)
    send(aws, "Create", props(scaled))
    stale = aws.alarms["ep-a-backlog-without-capacity"]["AlarmActions"]
    aws.autoscaling.deregister_scalable_target(
        ServiceNamespace="sagemaker", ResourceId="endpoint/ep/variant/a", ScalableDimension=INSTANCES
    )
    send(aws, "Update", props(scaled), physical_id="ep/after")
    consistent(aws, scaled)
    assert aws.alarms["ep-a-backlog-without-capacity"]["AlarmActions"] != stale


def test_access_errors_right_after_the_role_was_created_are_retried_a_few_times():
    aws = FakeAws()
    endpoint(aws, {"a": "ml.m5.large"})
    denied = ClientError("AccessDeniedException", "not authorized to perform: sagemaker:DescribeEndpoint")
    aws.fail_next("describe_endpoint", denied)
    aws.fail_next("describe_endpoint", denied)
    assert send(aws, "Create", props(variant("a")))["Status"] == "SUCCESS"
    for _ in range(reconcile._DENIED_RETRIES + 1):
        aws.fail_next("describe_endpoint", denied)
    response = send(aws, "Update", props(variant("a")), physical_id="ep/after")
    assert response["Status"] == "FAILED" and "sagemaker:DescribeEndpoint" in response["Reason"]
