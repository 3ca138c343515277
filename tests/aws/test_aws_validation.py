"""Every constraint, checked where it is enforced:
* construct props (ValueError naming the prop, the bad value and what is allowed);
* spec rules for AWS (SpecIssue at the exact field path, before anything is synthesized);
* update compatibility of a guarded rollout (same variant names across updates).
Constructs are built in one throw-away stack (never synthesized): no extra jsii start.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import replace

import pytest

from twinserve.spec import SpecError, parse_spec

# --------------------------------------------------------------------------- construct props


@pytest.fixture(scope="module")
def base(sample_model, tmp_path_factory):
    import aws_cdk as cdk

    from twinserve.aws import (
        InferenceImage,
        InstanceVariant,
        ModelArtifacts,
        ModelArtifactsProps,
        SageMakerEndpoint,
        SageMakerEndpointProps,
        SageMakerModel,
        SageMakerModelProps,
    )

    app = cdk.App(outdir=str(tmp_path_factory.mktemp("unused")))
    stack = cdk.Stack(app, "Validation")
    artifacts = ModelArtifacts(
        stack, "Artifacts", ModelArtifactsProps(model_archive_path=str(sample_model / "model.tar.gz"))
    )
    image = InferenceImage.from_image_uri("123456789012.dkr.ecr.eu-west-1.amazonaws.com/twinserve/iris:1")
    model = SageMakerModel(stack, "Model", SageMakerModelProps(image=image, artifacts=artifacts))
    vpc_model = SageMakerModel(
        stack,
        "VpcModel",
        SageMakerModelProps(
            image=image,
            artifacts=artifacts,
            vpc=__import__("twinserve.aws", fromlist=["ModelVpcConfig"]).ModelVpcConfig(["subnet-1"], ["sg-1"]),
        ),
    )
    one = InstanceVariant(name="primary", model=model)
    realtime = SageMakerEndpoint(stack, "Realtime", SageMakerEndpointProps(endpoint_name="rt", variants=[one]))
    counter = itertools.count()

    class Base:
        pass

    b = Base()
    b.stack, b.artifacts, b.image, b.model, b.vpc_model, b.variant, b.realtime = (
        stack,
        artifacts,
        image,
        model,
        vpc_model,
        one,
        realtime,
    )
    b.scope = lambda: cdk.Stack(app, f"Case{next(counter)}")
    b.sample_model = sample_model
    return b


def _endpoint(b, **kw):
    from twinserve.aws import SageMakerEndpoint, SageMakerEndpointProps

    props = dict(endpoint_name="ep", variants=[b.variant])
    props.update(kw)
    return SageMakerEndpoint(b.scope(), "E", SageMakerEndpointProps(**props))


def _serverless(b, **kw):
    from twinserve.aws import ServerlessVariant

    return ServerlessVariant(**{"name": "sl", "model": b.model, **kw})


def _instance(b, **kw):
    return replace(b.variant, **kw)


def _rollout(**kw):
    from twinserve.aws import RolloutProps

    return RolloutProps(**kw)


def _artifacts(b, **kw):
    from twinserve.aws import ModelArtifacts, ModelArtifactsProps

    return ModelArtifacts(b.scope(), "A", ModelArtifactsProps(**kw))


def _scaling(b, endpoint=None, **kw):
    from twinserve.aws import VariantAutoscaling, VariantAutoscalingProps

    return VariantAutoscaling(
        b.scope(), "S", VariantAutoscalingProps(**{"endpoint": endpoint or b.realtime, "variant_name": "primary", **kw})
    )


def _alarms(b, **kw):
    from twinserve.aws import EndpointAlarms, EndpointAlarmsProps

    return EndpointAlarms(b.scope(), "Al", EndpointAlarmsProps(**{"endpoint": b.realtime, **kw}))


def _budget(b, **kw):
    from twinserve.aws import CostBudget, CostBudgetProps

    return CostBudget(
        b.scope(),
        "B",
        CostBudgetProps(**{"budget_name": "b", "monthly_limit_usd": 10, "emails": ["a@example.com"], **kw}),
    )


def _batch(b, **kw):
    from twinserve.aws import BatchTransform, BatchTransformProps

    return BatchTransform(b.scope(), "T", BatchTransformProps(**{"model": b.model, "bucket": b.artifacts.bucket, **kw}))


def _image_repo(b, **kw):
    from twinserve.aws import ImageRepository, ImageRepositoryProps

    return ImageRepository(b.scope(), "R", ImageRepositoryProps(**{"repository_name": "twinserve/x", **kw}))


def _model(b, **kw):
    from twinserve.aws import SageMakerModel, SageMakerModelProps

    return SageMakerModel(b.scope(), "M", SageMakerModelProps(**{"image": b.image, "artifacts": b.artifacts, **kw}))


def _registry(b, **kw):
    from twinserve.aws import ModelRegistry, ModelRegistryProps

    return ModelRegistry(b.scope(), "G", ModelRegistryProps(**kw))


def _image(method, *args, **kw):
    from twinserve.aws import InferenceImage

    return getattr(InferenceImage, method)(*args, **kw)


def _guarded(b, n_alarms=0, **rollout):
    """An endpoint of one 3-instance variant with ``rollout``, handed ``n_alarms`` rollback alarms."""
    from aws_cdk import aws_cloudwatch as cloudwatch

    endpoint = _endpoint(b, variants=[_instance(b, instance_count=3)], rollout=_rollout(**rollout))
    endpoint.add_rollback_alarms(
        *[
            cloudwatch.Alarm.from_alarm_arn(
                endpoint, f"Alarm{i}", f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a{i}"
            )
            for i in range(n_alarms)
        ]
    )
    return endpoint


def _vpc(subnets, groups):
    from twinserve.aws import ModelVpcConfig

    return ModelVpcConfig(subnets, groups)


# (id, build(b), expected fragment of the message: the prop name and the allowed values)
CASES = [
    # model artifacts
    (
        "artifacts-both",
        lambda b: _artifacts(
            b, model_archive_path=str(b.sample_model / "model.tar.gz"), model_data_url="s3://bucket/m.tar.gz"
        ),
        "model_archive_path/model_data_url",
    ),
    ("artifacts-neither", lambda b: _artifacts(b), "set exactly one"),
    ("artifacts-not-targz", lambda b: _artifacts(b, model_archive_path=str(b.sample_model / "model")), "model.tar.gz"),
    ("artifacts-missing", lambda b: _artifacts(b, model_archive_path="/nonexistent/model.tar.gz"), "must exist"),
    ("artifacts-bad-s3", lambda b: _artifacts(b, model_data_url="https://x/m.tar.gz"), "model_data_url"),
    (
        "artifacts-bad-model-name",
        lambda b: _artifacts(b, model_data_url="s3://bucket/m.tar.gz", model_name="my_model"),
        "model_name",
    ),
    (
        "artifacts-bad-version",
        lambda b: _artifacts(b, model_data_url="s3://bucket/m.tar.gz", model_version="1/2"),
        "model_version",
    ),
    # an s3_uri archive is the current version only: no versioned layout to find another in
    (
        "model-other-version-of-s3-uri",
        lambda b: _model(
            b, artifacts=_artifacts(b, model_data_url="s3://bucket/m.tar.gz", model_version="2"), model_version="1"
        ),
        "only '2'",
    ),
    # image
    ("repo-name", lambda b: _image_repo(b, repository_name="Bad Name"), "repository_name"),
    ("repo-lifecycle", lambda b: _image_repo(b, max_image_count=0), "max_image_count"),
    ("image-no-dockerfile", lambda b: _image("from_asset", b.scope(), "I", str(b.sample_model)), "Dockerfile"),
    ("image-not-ecr", lambda b: _image("from_image_uri", "docker.io/library/python:3.11"), "Amazon ECR"),
    (
        "image-bad-tag",
        lambda b: _image(
            "from_repository",
            b.stack.node.find_child("Case0")
            if False
            else __import__("aws_cdk.aws_ecr", fromlist=["Repository"]).Repository.from_repository_name(
                b.scope(), "Imp", "x"
            ),
            "bad tag!",
        ),
        "tag",
    ),
    (
        "prebuilt-token-region",
        lambda b: _image("from_prebuilt", "sklearn", "1.2-1", region=b.stack.region, instance_type="ml.m5.large"),
        "literal region",
    ),
    # model
    ("model-env-name", lambda b: _model(b, environment={"1BAD": "x"}), "environment"),
    ("model-vpc-empty", lambda b: _model(b, vpc=_vpc([], ["sg-1"])), "at least one subnet"),
    # rollout
    ("rollout-strategy", lambda b: _guarded(b, strategy="bluegreen"), "rollout.strategy"),
    ("rollout-canary-step", lambda b: _guarded(b, strategy="canary", step_percent=60), "rollout.step_percent"),
    ("rollout-linear-step", lambda b: _guarded(b, strategy="linear", step_percent=5), "rollout.step_percent"),
    ("rollout-wait", lambda b: _guarded(b, wait_seconds=4000), "rollout.wait_seconds"),
    (
        "rollout-termination-wait",
        lambda b: _guarded(b, termination_wait_seconds=-1),
        "rollout.termination_wait_seconds",
    ),
    (
        "rollout-timeout",
        lambda b: _guarded(b, max_execution_timeout_seconds=300),
        "rollout.max_execution_timeout_seconds",
    ),
    ("rollout-too-many-alarms", lambda b: _guarded(b, 11), "at most 10 rollback alarms"),
    # endpoint
    ("endpoint-name", lambda b: _endpoint(b, endpoint_name="bad_name"), "endpoint_name"),
    ("endpoint-no-variant", lambda b: _endpoint(b, variants=[]), "1..10 variants"),
    (
        "endpoint-11-variants",
        lambda b: _endpoint(b, variants=[_instance(b, name=f"v{i}") for i in range(11)]),
        "1..10 variants",
    ),
    ("endpoint-duplicate-names", lambda b: _endpoint(b, variants=[b.variant, b.variant]), "unique"),
    ("endpoint-shadow-same-name", lambda b: _endpoint(b, shadow=_instance(b, weight=0.5)), "unique"),
    ("endpoint-mixed", lambda b: _endpoint(b, variants=[b.variant, _serverless(b)]), "cannot be mixed"),
    (
        "endpoint-two-serverless",
        lambda b: _endpoint(b, variants=[_serverless(b), _serverless(b, name="sl2")]),
        "exactly one variant",
    ),
    ("serverless-memory", lambda b: _endpoint(b, variants=[_serverless(b, memory_mb=1000)]), "memory_mb"),
    (
        "serverless-concurrency",
        lambda b: _endpoint(b, variants=[_serverless(b, max_concurrency=201)]),
        "max_concurrency",
    ),
    (
        "serverless-provisioned",
        lambda b: _endpoint(b, variants=[_serverless(b, max_concurrency=5, provisioned_concurrency=6)]),
        "provisioned_concurrency",
    ),
    ("serverless-vpc", lambda b: _endpoint(b, variants=[_serverless(b, model=b.vpc_model)]), "neither VPC"),
    (
        "serverless-rollout",
        lambda b: _endpoint(b, variants=[_serverless(b)], rollout=_rollout()),
        "do not apply to serverless",
    ),
    (
        "serverless-data-capture",
        lambda b: _endpoint(b, variants=[_serverless(b)], data_capture=_capture(b)),
        "data capture",
    ),
    (
        "serverless-async",
        lambda b: _endpoint(b, variants=[_serverless(b)], async_inference=_async(b)),
        "not serverless",
    ),
    ("instance-type", lambda b: _endpoint(b, variants=[_instance(b, instance_type="m5.large")]), "instance_type"),
    ("instance-count", lambda b: _endpoint(b, variants=[_instance(b, instance_count=0)]), "instance_count"),
    (
        "startup-timeout",
        lambda b: _endpoint(b, variants=[_instance(b, container_startup_timeout_seconds=30)]),
        "container_startup_timeout_seconds",
    ),
    ("negative-weight", lambda b: _endpoint(b, variants=[_instance(b, weight=-1)]), "weight"),
    ("all-weights-zero", lambda b: _endpoint(b, variants=[_instance(b, weight=0)]), "weight > 0"),
    (
        "shadow-two-live",
        lambda b: _endpoint(b, variants=[b.variant, _instance(b, name="b")], shadow=_instance(b, name="s", weight=0.5)),
        "exactly one live",
    ),
    ("shadow-weight", lambda b: _endpoint(b, shadow=_instance(b, name="s", weight=2)), "shadow.weight"),
    (
        "shadow-async",
        lambda b: _endpoint(b, shadow=_instance(b, name="s", weight=0.5), async_inference=_async(b)),
        "not async",
    ),
    (
        "async-concurrency",
        lambda b: _endpoint(b, async_inference=_async(b, max_concurrent_invocations_per_instance=0)),
        "max_concurrent_invocations_per_instance",
    ),
    ("capture-sampling", lambda b: _endpoint(b, data_capture=_capture(b, sampling_percent=0)), "sampling_percent"),
    (
        "capture-nothing",
        lambda b: _endpoint(b, data_capture=_capture(b, capture_input=False, capture_output=False)),
        "capture the input",
    ),
    (
        "canary-multi-variant",
        lambda b: _endpoint(
            b,
            variants=[_instance(b, instance_count=3, weight=0.5), _instance(b, name="b", instance_count=3, weight=0.5)],
            rollout=_rollout(strategy="canary"),
        ),
        "single-variant",
    ),
    (
        "canary-instances",
        lambda b: _endpoint(b, variants=[_instance(b, instance_count=2)], rollout=_rollout(strategy="canary")),
        "at least 3 instances",
    ),
    ("linear-instances", lambda b: _endpoint(b, rollout=_rollout(strategy="linear")), "at least 3 instances"),
    ("rolling-instances", lambda b: _endpoint(b, rollout=_rollout(strategy="rolling")), "at least 2 instances"),
    ("metric-unknown-variant", lambda b: b.realtime.metric_invocations("nope"), "variant_name"),
    # autoscaling
    (
        "scaling-burstable",
        lambda b: _scaling(b, endpoint=_endpoint(b, variants=[_instance(b, instance_type="ml.t2.medium")])),
        "burstable ml.t*",
    ),
    ("scaling-unknown-variant", lambda b: _scaling(b, variant_name="nope"), "variant_name"),
    ("scaling-min-max", lambda b: _scaling(b, min_capacity=3, max_capacity=2), "max_capacity"),
    ("scaling-min-zero", lambda b: _scaling(b, min_capacity=0), "min_capacity"),
    (
        "scaling-provisioned-on-instances",
        lambda b: _scaling(b, mode="provisioned_concurrency"),
        "for serverless variants",
    ),
    (
        "scaling-serverless-without-provisioned",
        lambda b: _scaling(
            b, endpoint=_endpoint(b, variants=[_serverless(b, name="primary")]), mode="provisioned_concurrency"
        ),
        "set provisioned_concurrency",
    ),
    (
        "scaling-serverless-instances-mode",
        lambda b: _scaling(
            b, endpoint=_endpoint(b, variants=[_serverless(b, name="primary", provisioned_concurrency=1)])
        ),
        "scales itself",
    ),
    ("scaling-backlog-not-async", lambda b: _scaling(b, mode="async_backlog", min_capacity=0), "asynchronous endpoint"),
    # alarms
    ("alarm-threshold", lambda b: _alarms(b, errors_5xx=0), "errors_5xx"),
    ("alarm-percent", lambda b: _alarms(b, cpu_utilization_percent=101), "cpu_utilization_percent"),
    ("alarm-period", lambda b: _alarms(b, period=__import__("aws_cdk").Duration.seconds(45)), "period"),
    ("alarm-email", lambda b: _alarms(b, emails=["not-an-email"]), "emails"),
    ("alarm-evaluation", lambda b: _alarms(b, evaluation_periods=0), "evaluation_periods"),
    # budget
    ("budget-no-email", lambda b: _budget(b, emails=[]), "emails"),
    ("budget-too-many-emails", lambda b: _budget(b, emails=[f"a{i}@example.com" for i in range(11)]), "emails"),
    ("budget-too-many-thresholds", lambda b: _budget(b, notify_at_percent=[10, 20, 30, 40, 50]), "notify_at_percent"),
    ("budget-duplicate-thresholds", lambda b: _budget(b, notify_at_percent=[80, 80]), "notify_at_percent"),
    ("budget-limit", lambda b: _budget(b, monthly_limit_usd=0), "monthly_limit_usd"),
    ("budget-name", lambda b: _budget(b, budget_name="a:b"), "budget_name"),
    # batch
    ("batch-payload-x-concurrency", lambda b: _batch(b, max_payload_mb=20, max_concurrent_transforms=6), "<= 100"),
    ("batch-instance-type", lambda b: _batch(b, instance_type="m5.large"), "instance_type"),
    ("batch-split", lambda b: _batch(b, split_type="Line"), "split_type"),
    ("batch-strategy", lambda b: _batch(b, strategy="ALL"), "strategy"),
    ("batch-prefix", lambda b: _batch(b, prefix="Batch Input"), "prefix"),
    # registry
    ("registry-name", lambda b: _registry(b, group_name="bad_name"), "group_name"),
    ("registry-description", lambda b: _registry(b, group_name="ok", description="x" * 1025), "description"),
]


def _capture(b, **kw):
    from twinserve.aws import DataCaptureProps

    return DataCaptureProps(**{"bucket": b.artifacts.bucket, **kw})


def _async(b, **kw):
    from twinserve.aws import AsyncInferenceProps

    return AsyncInferenceProps(**{"bucket": b.artifacts.bucket, **kw})


@pytest.mark.parametrize("build,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_construct_rejects(base, build, expected):
    with pytest.raises(ValueError, match=re.escape(expected)) as info:
        build(base)
    message = str(info.value)
    # "<Props>.<prop>: <what is allowed> (got <value>)" - the shape of every construct and spec error.
    assert re.match(r"^[A-Za-z_.]+\.[a-z_/\[\]0-9.]+: .+ \(got .+\)$", message, re.DOTALL), message


def test_valid_props_build(base):
    """The constraints are not over-eager: the edge values that are allowed do build."""
    _endpoint(base, variants=[_serverless(base, memory_mb=6144, max_concurrency=200, provisioned_concurrency=200)])
    _endpoint(base, variants=[_instance(base, instance_count=3)], rollout=_rollout(strategy="canary", step_percent=50))
    _endpoint(
        base,
        variants=[_instance(base, instance_count=2)],
        rollout=_rollout(strategy="rolling", max_execution_timeout_seconds=28800),
    )
    _endpoint(base, shadow=_instance(base, name="s", weight=1.0), data_capture=_capture(base, sampling_percent=100))
    _budget(base, notify_at_percent=[10, 20, 30, 40])
    _batch(base, max_payload_mb=25, max_concurrent_transforms=4)
    _guarded(base, 10, strategy="canary")
    pinned = _model(base, model_version="7")  # uploaded by an earlier deployment: read from its key
    assert pinned.model_data_url.endswith("/models/model/7/model.tar.gz")


def test_batch_sets_no_volume_key_on_instance_storage_types(base):
    """SageMaker refuses VolumeKmsKeyId for NVMe instance-storage types (hardware-encrypted), as it
    refuses an endpoint config's KmsKeyId; the output stays under the key."""
    import json

    import aws_cdk as cdk
    from aws_cdk import aws_kms as kms

    key = kms.Key.from_key_arn(
        base.scope(), "K", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )

    def definition(instance_type: str) -> str:
        batch = _batch(base, instance_type=instance_type, encryption_key=key)
        return json.dumps(cdk.Stack.of(batch).resolve(batch.state_machine.node.default_child.definition_string))

    for instance_type in ("ml.g5.xlarge", "ml.m5d.large", "ml.g4dn.xlarge"):
        text = definition(instance_type)
        assert "VolumeKmsKeyId" not in text and "KmsKeyId" in text, instance_type
    assert "VolumeKmsKeyId" in definition("ml.m5.large")


# --------------------------------------------------------------------------- spec rules (AWS)


def _spec(**env) -> dict:
    raw = {
        "name": "t",
        "model": {"name": "m", "version": "1", "artifact": {"path": "model"}},
        "container": {"image_uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/t:1"},
        "defaults": {"targets": ["aws"], "alarms": {"emails": ["a@example.com"]}},
        "environments": {"dev": env},
    }
    return raw


def _issues(raw: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(copy.deepcopy(raw), file="spec.yaml")
    return {i.path: i.message for i in info.value.issues}


SPEC_CASES = [
    (
        "serverless-vpc",
        {
            "serving": {"endpoint_type": "serverless"},
            "aws": {"vpc": {"subnet_ids": ["subnet-1"], "security_group_ids": ["sg-1"]}},
        },
        "environments.dev.aws.vpc",
        "VPC",
    ),
    (
        "serverless-isolation",
        {"serving": {"endpoint_type": "serverless"}, "aws": {"network_isolation": True}},
        "environments.dev.aws.network_isolation",
        "network isolation",
    ),
    (
        "serverless-capture",
        {"serving": {"endpoint_type": "serverless"}, "aws": {"data_capture": {"enabled": True}}},
        "environments.dev.aws.data_capture.enabled",
        "data capture",
    ),
    (
        "serverless-two-variants",
        {
            "serving": {
                "endpoint_type": "serverless",
                "variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
            }
        },
        "environments.dev.serving.variants",
        "exactly one variant",
    ),
    (
        "serverless-canary",
        {"serving": {"endpoint_type": "serverless"}, "rollout": {"strategy": "canary"}},
        "environments.dev.rollout.strategy",
        "not available for serverless",
    ),
    (
        "serverless-provisioned",
        {
            "serving": {
                "endpoint_type": "serverless",
                "serverless": {"max_concurrency": 2, "provisioned_concurrency": 3},
            }
        },
        "environments.dev.serving.serverless.provisioned_concurrency",
        "must not exceed",
    ),
    (
        "canary-instances",
        {"rollout": {"strategy": "canary"}},
        "defaults.compute.instance_count",
        "at least 3 instances",
    ),  # the default (1) is what breaks
    (
        "rolling-instances",
        {"rollout": {"strategy": "rolling"}},
        "defaults.compute.instance_count",
        "at least 2 instances",
    ),
    (
        "canary-multi-variant",
        {
            "compute": {"instance_count": 3},
            "rollout": {"strategy": "canary"},
            "serving": {"variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]},
        },
        "environments.dev.rollout.strategy",
        "single-variant",
    ),
    (
        "linear-step",
        {"compute": {"instance_count": 3}, "rollout": {"strategy": "linear", "step_percent": 60}},
        "environments.dev.rollout.step_percent",
        "10..50",
    ),
    (
        "burstable-autoscaling",
        {"compute": {"aws_instance_type": "ml.t3.medium"}, "scaling": {"enabled": True}},
        "environments.dev.compute.aws_instance_type",
        "burstable",
    ),
    (
        "shadow-two-live",
        {
            "serving": {
                "variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
                "shadow": {"name": "s", "sample_percent": 10},
            }
        },
        "environments.dev.serving.variants",
        "exactly one live variant",
    ),
    (
        "weights",
        {"serving": {"variants": [{"name": "a", "weight": 50}, {"name": "b", "weight": 30}]}},
        "environments.dev.serving.variants",
        "sum to 100",
    ),
    (
        "batch-payload",
        {"serving": {"batch": {"enabled": True, "max_payload_mb": 60, "max_concurrent_transforms": 2}}},
        "environments.dev.serving.batch.max_payload_mb",
        "<= 100",
    ),
    (
        "budget-thresholds",
        {"budget": {"monthly_limit_usd": 10, "notify_at_percent": [10, 20, 30, 40, 50]}},
        "environments.dev.budget.notify_at_percent",
        "at most 4",
    ),
    (
        "budget-emails",
        {"budget": {"monthly_limit_usd": 10}, "alarms": {"emails": [f"a{i}@example.com" for i in range(11)]}},
        "environments.dev.alarms.emails",
        "at most 10",
    ),
]


@pytest.mark.parametrize("env,path,fragment", [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_spec_rule(env, path, fragment):
    issues = _issues(_spec(**env))
    assert path in issues, issues
    assert fragment in issues[path]


def test_spec_base_is_valid():
    parse_spec(_spec(), file="spec.yaml")


# --------------------------------------------------------------------------- update compatibility


def test_guarded_update_must_keep_variant_names(synth):
    from twinserve.aws import check_update_compatible
    from twinserve.aws.deployment_config import main

    deployed = synth.template("iris-prod/Serving")
    assert check_update_compatible(deployed, copy.deepcopy(deployed)) == []
    renamed = copy.deepcopy(deployed)
    for resource in renamed["Resources"].values():
        if resource["Type"] == "AWS::SageMaker::EndpointConfig":
            resource["Properties"]["ProductionVariants"][0]["VariantName"] = "blue"
    problems = check_update_compatible(deployed, renamed)
    assert len(problems) == 1 and "['primary'] to ['blue']" in problems[0]
    # Without guardrails (no DeploymentConfig) a rename is a plain replacement: allowed.
    unguarded = copy.deepcopy(renamed)
    for resource in unguarded["Resources"].values():
        resource.get("Properties", {}).pop("DeploymentConfig", None)
    assert check_update_compatible(deployed, unguarded) == []
    assert main(["x"]) == 2


def test_all_at_once_without_auto_rollback_sends_no_deployment_config(base):
    """The one update that may remove or rename a variant: guarded updates (any DeploymentConfig) must
    keep the variant names (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html),
    so all_at_once without rollback leaves DeploymentConfig out (SageMaker's default blue/green update)."""
    from aws_cdk import Stack
    from aws_cdk.assertions import Template

    rollouts = {
        "unguarded": _rollout(strategy="all_at_once", auto_rollback=False),
        "all_at_once": _rollout(strategy="all_at_once", auto_rollback=True),
        # rolling without rollback is still guarded: its batches need the config
        "rolling": _rollout(strategy="rolling", step_percent=50, auto_rollback=False),
    }
    # every endpoint first: the app synthesizes once, on the first Template
    endpoints = {
        name: _endpoint(base, rollout=rollout, variants=[_instance(base, instance_count=3)])
        for name, rollout in rollouts.items()
    }

    def deployment_config(name):
        template = Template.from_stack(Stack.of(endpoints[name]))
        (resource,) = template.find_resources("AWS::SageMaker::Endpoint").values()
        return resource["Properties"].get("DeploymentConfig")

    assert deployment_config("unguarded") is None and not rollouts["unguarded"].guarded
    guarded = deployment_config("all_at_once")
    assert guarded["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert "RollingUpdatePolicy" in deployment_config("rolling")


# --------------------------------------------------------------------------- prebuilt images


def test_prebuilt_framework_image_resolves_offline_with_the_sagemaker_sdk():
    """The optional lookup of AWS's prebuilt images (sagemaker SDK table, no AWS call)."""
    from twinserve.aws import InferenceImage

    image = InferenceImage.from_prebuilt("sklearn", "1.2-1", region="eu-west-1", instance_type="ml.m5.large")
    assert re.fullmatch(
        r"\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/sagemaker-scikit-learn:1\.2-1-cpu-py3", image.image_uri
    )
    with pytest.raises(ValueError, match=r"from_prebuilt\.framework: .*\(got 'no-such-framework'\)"):
        InferenceImage.from_prebuilt("no-such-framework", "1", region="eu-west-1", instance_type="ml.m5.large")
