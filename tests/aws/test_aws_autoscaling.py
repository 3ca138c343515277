"""Autoscaling in the synthesized stacks: the reconciler around every endpoint (the endpoint waits for
``Before``, ``After`` waits for the endpoint and re-runs with every endpoint config), the desired state
the handler will read (expected values from the spec under test), the endpoint keeping live counts, and
the handler's least-privilege role. The handler's behaviour is tested in test_autoscaling_handler.py and
test_autoscaling_rollout.py."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest
from autoscaling_fakes import INSTANCES, PROVISIONED, reconciler, scaled_variants
from autoscaling_fakes import variant as fake_variant
from aws_synth import DEPLOY_SPEC, sagemaker_deployments

from twinserve.spec import load_spec

SERVING = [f"{stage}/Serving" for _, _, stage in sagemaker_deployments()]
SAMPLE = load_spec(DEPLOY_SPEC)


def example(name: str, env: str):
    return load_spec(DEPLOY_SPEC.parents[1] / "examples" / "aws" / f"{name}.yaml").environment(env)


def _props_default(name: str):
    from twinserve.aws import VariantAutoscalingProps

    return next(f.default for f in fields(VariantAutoscalingProps) if f.name == name)


def _one(template: dict, type_: str) -> tuple[str, dict]:
    found = [(k, r) for k, r in template["Resources"].items() if r["Type"] == type_]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("case", SERVING)
def test_the_endpoint_waits_for_before_and_after_waits_for_the_endpoint(synth, case):
    template = synth.template(case)
    endpoint_id, endpoint = _one(template, "AWS::SageMaker::Endpoint")
    config_id, _ = _one(template, "AWS::SageMaker::EndpointConfig")
    phases = reconciler(template)
    (before_id, before), (_, after) = phases["before"], phases["after"]
    assert before_id in endpoint["DependsOn"]
    assert endpoint_id in after["DependsOn"]
    # a new config (any endpoint change) gets a new generated name, so After runs after every update
    assert after["Properties"]["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    assert "EndpointConfigName" not in before["Properties"]
    assert before["Properties"]["Variants"] == after["Properties"]["Variants"]
    assert before["Properties"]["ServiceToken"] == after["Properties"]["ServiceToken"]
    assert endpoint["Properties"]["EndpointName"] == before["Properties"]["EndpointName"]
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::ApplicationAutoScaling::")]


@pytest.mark.parametrize("env_name", ["dev", "staging", "prod"])
def test_the_sample_scales_each_live_variant_as_its_spec_says(synth, env_name):
    env = SAMPLE.environment(env_name)
    scaling = env.scaling
    assert scaling.enabled
    template = synth.template(f"iris-{env_name}/Serving")
    scaled = scaled_variants(template)
    assert sorted(scaled) == sorted(v.name for v in env.serving.variants)  # never the shadow
    for variant in scaled.values():
        assert (variant.instance_type, variant.dimension) == (env.compute.aws_instance_type, INSTANCES)
        assert (variant.min_capacity, variant.max_capacity) == (scaling.min_instances, scaling.max_instances)
        (policy,) = variant.policies
        assert (policy.name, policy.type) == ("invocations-per-instance", "TargetTrackingScaling")
        assert policy.configuration == {
            "TargetValue": scaling.target_invocations_per_instance,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
            "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
        }


def _rendered_by_the_fakes(case: str) -> list[dict]:
    """What autoscaling_fakes.variant() makes of the spec under test."""
    if case == "iris-dev/Serving":
        env = SAMPLE.environment("dev")
        scaling = env.scaling
        (live,) = env.serving.variants
        return [
            fake_variant(
                live.name,
                env.compute.aws_instance_type,
                min_capacity=scaling.min_instances,
                max_capacity=scaling.max_instances,
                target=scaling.target_invocations_per_instance,
            )
        ]
    if case == "serverless-dev/Serving":
        env = example("serverless", "dev")
        (live,) = env.serving.variants
        return [
            fake_variant(
                live.name,
                "serverless",
                max_capacity=env.serving.serverless.max_concurrency,
                target=_props_default("target_utilization"),
            )
        ]
    env = example("async", "dev")
    (live,) = env.serving.variants
    return [
        fake_variant(
            live.name,
            env.compute.aws_instance_type,
            min_capacity=0,  # scale_to_zero
            max_capacity=env.scaling.max_instances,
            target=_props_default("target_backlog_per_instance"),
            scale_to_zero=True,
            endpoint_name="async-dev",
        )
    ]


@pytest.mark.parametrize("case", ["iris-dev/Serving", "serverless-dev/Serving", "async-dev/Serving"])
def test_the_handler_tests_use_the_shape_the_construct_renders(synth, case):
    # autoscaling_fakes.variant() feeds the handler and rollout tests; it must be what the templates hold
    _, after = reconciler(synth.template(case))["after"]
    got = after["Properties"]["Variants"]
    for rendered in got:  # the alarm's description is the construct's own text
        for policy in rendered["Policies"]:
            policy.get("Alarm", {}).pop("AlarmDescription", None)
    assert got == _rendered_by_the_fakes(case)


def test_ab_test_scales_both_variants(synth):
    spec = example("ab-test", "dev")
    scaled = scaled_variants(synth.template("ab-test-dev/Serving"))
    assert sorted(scaled) == sorted(v.name for v in spec.serving.variants)
    assert {(v.min_capacity, v.max_capacity) for v in scaled.values()} == {
        (spec.scaling.min_instances, spec.scaling.max_instances)
    }


def test_serverless_scales_its_provisioned_concurrency(synth):
    spec = example("serverless", "dev")
    (variant,) = scaled_variants(synth.template("serverless-dev/Serving")).values()
    assert (variant.instance_type, variant.dimension) == ("serverless", PROVISIONED)
    assert (variant.min_capacity, variant.max_capacity) == (1, spec.serving.serverless.max_concurrency)
    (policy,) = variant.policies
    assert policy.configuration["TargetValue"] == _props_default("target_utilization")
    assert policy.configuration["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"
    }


def test_async_scales_to_zero_and_the_handler_puts_the_first_instance_alarm(synth):
    spec = example("async", "dev")
    assert spec.serving.async_inference.scale_to_zero
    template = synth.template("async-dev/Serving")
    (variant,) = scaled_variants(template).values()
    assert (variant.min_capacity, variant.max_capacity) == (0, spec.scaling.max_instances)
    tracking, step = variant.policies
    assert tracking.configuration["TargetValue"] == _props_default("target_backlog_per_instance")
    assert tracking.configuration["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": "async-dev"}],
        "Statistic": "Average",
    }
    assert (step.name, step.type) == ("backlog-without-capacity", "StepScaling")
    assert step.configuration["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    assert step.configuration["Cooldown"] == spec.scaling.scale_out_cooldown_seconds
    assert {k: step.alarm[k] for k in ("MetricName", "Dimensions", "Threshold", "ComparisonOperator")} == {
        "MetricName": "HasBacklogWithoutCapacity",
        "Dimensions": [{"Name": "EndpointName", "Value": "async-dev"}],
        "Threshold": 0.5,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    # the alarm must act on the policy's real ARN, so the handler creates it: none in the template
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert not [a for a in alarms if a.get("MetricName") == "HasBacklogWithoutCapacity"]


@pytest.mark.parametrize("path, env_name, stage", sagemaker_deployments(), ids=[d[2] for d in sagemaker_deployments()])
def test_autoscaled_endpoints_keep_live_counts_and_template_weights(synth, path, env_name, stage):
    # RetainAllVariantProperties keeps what autoscaling chose across config updates; the weights stay the
    # template's (DesiredWeight excluded). Without scaling the template's instance counts apply.
    template = synth.template(f"{stage}/Serving")
    endpoint = _one(template, "AWS::SageMaker::Endpoint")[1]["Properties"]
    if scaled_variants(template):
        assert endpoint["RetainAllVariantProperties"] is True
        assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]
    else:
        assert "RetainAllVariantProperties" not in endpoint and "ExcludeRetainedVariantProperties" not in endpoint


@pytest.mark.parametrize("name, env_name", [("linear", "staging"), ("shadow", "staging"), ("batch", "dev")])
def test_endpoints_without_scaling_still_have_the_reconciler(synth, name, env_name):
    # so that switching scaling off deregisters before the endpoint update that may change instance types
    assert not example(name, env_name).scaling.enabled
    assert scaled_variants(synth.template(f"{name}-{env_name}/Serving")) == {}


def _handler_statements(template: dict) -> list[dict]:
    _, before = reconciler(template)["before"]
    function_id = before["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    role_id = template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    (policy,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    return policy["PolicyDocument"]["Statement"]


def _arn_tail(resource) -> str:
    """What follows the account in an ARN the template builds with Fn::Join (or the literal)."""
    if isinstance(resource, str):
        return resource
    return resource["Fn::Join"][1][-1]


def test_the_handler_role_is_least_privilege(synth):
    template = synth.template("async-dev/Serving")
    statements = {s["Sid"]: s for s in _handler_statements(template) if "Sid" in s}
    granted = {sid: (sorted(_list(s["Action"])), _arn_tail(s["Resource"])) for sid, s in statements.items()}
    assert granted == {
        "ReadAndResizeTheEndpoint": (
            ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"],
            ":endpoint/async-dev",
        ),
        "ReadEndpointConfigs": (["sagemaker:DescribeEndpointConfig"], ":endpoint-config/*"),
        "ListScalingAndAlarms": (
            [
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
                "cloudwatch:DescribeAlarms",
            ],
            "*",
        ),
        "ScaleSageMakerVariants": (
            [
                "application-autoscaling:DeleteScalingPolicy",
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:RegisterScalableTarget",
            ],
            ":scalable-target/*",
        ),
        "TargetTrackingAlarms": (["cloudwatch:DeleteAlarms", "cloudwatch:PutMetricAlarm"], ":alarm:TargetTracking*"),
        "FirstInstanceAlarms": (
            ["cloudwatch:DeleteAlarms", "cloudwatch:PutMetricAlarm"],
            ":alarm:async-dev-*-backlog-without-capacity",
        ),
        "AutoscalingServiceLinkedRole": (
            ["iam:CreateServiceLinkedRole"],
            ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
            "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        ),
    }
    assert statements["ScaleSageMakerVariants"]["Condition"] == {
        "StringEquals": {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": [INSTANCES, PROVISIONED],
        }
    }
    assert statements["TargetTrackingAlarms"]["Condition"] == {
        "StringEquals": {"aws:CalledViaLast": "application-autoscaling.amazonaws.com"}
    }
    assert statements["AutoscalingServiceLinkedRole"]["Condition"] == {
        "StringLike": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }
    # the rest writes the function's own log group, nothing else
    rest = [s for s in _handler_statements(template) if "Sid" not in s]
    log_group = _one(template, "AWS::Logs::LogGroup")[0]
    assert rest == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
        }
    ]


def test_the_handler_runs_the_packaged_reconciler_with_logs_kept_three_months(synth):
    template = synth.template("iris-prod/Serving")
    _, before = reconciler(template)["before"]
    function = template["Resources"][before["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]["Properties"]
    assert (function["Handler"], function["Runtime"], function["Timeout"]) == ("reconcile.handler", "python3.14", 900)
    log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    assert template["Resources"][log_group_id]["Properties"]["RetentionInDays"] == 90
    # the code asset is the handler folder, without caches
    asset = synth.outdir / f"asset.{function['Code']['S3Key'].removesuffix('.zip')}"
    files = sorted(p.name for p in asset.iterdir())
    assert files == ["__init__.py", "reconcile.py"], files
    # CloudFormation gives up on the request after 20 minutes even if the function never answers
    assert before["Properties"]["ServiceTimeout"] == "1200"


def test_variant_autoscaling_alone_attaches_to_its_endpoints_reconciler_once(tmp_path):
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from twinserve.aws import (
        EndpointAutoscaling,
        InferenceImage,
        InstanceVariant,
        ModelArtifacts,
        ModelArtifactsProps,
        SageMakerEndpoint,
        SageMakerEndpointProps,
        SageMakerModel,
        SageMakerModelProps,
        VariantAutoscaling,
        VariantAutoscalingProps,
    )

    stack = cdk.Stack(cdk.App(outdir=str(tmp_path)), "Alone")
    artifacts = ModelArtifacts(stack, "A", ModelArtifactsProps(model_data_url="s3://bucket/model.tar.gz"))
    image = InferenceImage.from_image_uri("123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1")
    model = SageMakerModel(stack, "M", SageMakerModelProps(image=image, artifacts=artifacts))
    endpoint = SageMakerEndpoint(
        stack, "E", SageMakerEndpointProps(endpoint_name="ep", variants=[InstanceVariant(name="v", model=model)])
    )
    scaling = VariantAutoscaling(stack, "S", VariantAutoscalingProps(endpoint=endpoint, variant_name="v"))
    assert EndpointAutoscaling.of(endpoint) is scaling.autoscaling
    assert (scaling.resource_id, scaling.scalable_dimension) == ("endpoint/ep/variant/v", INSTANCES)
    template = json.loads(json.dumps(Template.from_stack(stack).to_json()))
    assert list(scaled_variants(template)) == ["v"]
    with pytest.raises(
        ValueError, match=r"VariantAutoscalingProps.variant_name: scale each variant of an endpoint once"
    ):
        VariantAutoscaling(stack, "Again", VariantAutoscalingProps(endpoint=endpoint, variant_name="v"))


def _list(value) -> list:
    return value if isinstance(value, list) else [value]
