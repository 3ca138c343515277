"""Intent of the synthesized stacks, asserted with aws_cdk.assertions: what the spec says must be
what CloudFormation gets. Expected values are read from the spec under test (deploy/twinserve.yaml,
examples/aws/*.yaml), so an edit of the sample changes what is expected, not the test."""

from __future__ import annotations

import json

import pytest
from autoscaling_fakes import scaled_variants
from aws_cdk.assertions import Match, Template
from aws_synth import DEPLOY_SPEC

from twinserve.aws.sagemaker_model import VPC_NETWORK_INTERFACE_ACTIONS
from twinserve.spec import load_spec

SAMPLE = load_spec(DEPLOY_SPEC)


def canary_size(env) -> dict:
    """A canary smaller than one instance is sent as one instance (SageMaker leaves the rounding of a
    percentage below one instance undocumented: API_CapacitySize)."""
    if env.compute.instance_count * env.rollout.step_percent < 100:
        return {"Type": "INSTANCE_COUNT", "Value": 1}
    return {"Type": "CAPACITY_PERCENT", "Value": env.rollout.step_percent}


def example(name: str, env: str):
    """The environment ``env`` of examples/aws/<name>.yaml, as the stack reads it."""
    return load_spec(DEPLOY_SPEC.parents[1] / "examples" / "aws" / f"{name}.yaml").environment(env)


@pytest.fixture(scope="module")
def tpl(synth):
    cache: dict[str, Template] = {}

    def get(case: str) -> Template:
        if case not in cache:
            cache[case] = Template.from_json(synth.template(case))
        return cache[case]

    return get


def _one(template: Template, type_: str) -> dict:
    found = template.find_resources(type_)
    assert len(found) == 1, f"expected one {type_}, found {list(found)}"
    return next(iter(found.values()))


def _alarm(template: Template, name: str) -> dict:
    alarms = [
        a
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("AlarmName") == name
    ]
    assert len(alarms) == 1, name
    return alarms[0]["Properties"]


# --------------------------------------------------------------------------- deploy/twinserve.yaml


def test_dev_is_small_cheap_and_destroyable(tpl, synth):
    dev = SAMPLE.environment("dev")
    assert dev.aws.encryption == "s3_managed" and dev.scaling.enabled  # what this test is about
    t = tpl("iris-dev/Serving")
    (variant,) = dev.serving.variants
    t.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like(
                    {
                        "VariantName": variant.name,
                        "InstanceType": dev.compute.aws_instance_type,
                        "InitialInstanceCount": dev.instance_count_of(variant),
                        "InitialVariantWeight": variant.weight / 100,
                    }
                )
            ],
            "KmsKeyId": Match.absent(),
            "DataCaptureConfig": Match.absent(),
        },
    )
    t.resource_count_is("AWS::KMS::Key", 0)
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            }
        },
    )
    assert {(v.min_capacity, v.max_capacity) for v in scaled_variants(t.to_json()).values()} == {
        (dev.scaling.min_instances, dev.scaling.max_instances)
    }
    for bucket in t.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    t.has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": Match.object_like(
                {
                    "BudgetLimit": {"Amount": dev.budget.monthly_limit_usd, "Unit": "USD"},
                    "TimeUnit": "MONTHLY",
                    "BudgetType": "COST",
                }
            )
        },
    )
    assert not synth.stack("iris-dev/Serving").termination_protection
    assert not synth.stack("iris-dev/Registry").termination_protection
    r = tpl("iris-dev/Registry")
    r.has_resource("AWS::ECR::Repository", {"DeletionPolicy": "Delete"})


def test_staging_shadows_candidate_and_scales(tpl):
    staging = SAMPLE.environment("staging")
    live, shadow_spec, scaling = staging.serving.variants, staging.serving.shadow, staging.scaling
    t = tpl("iris-staging/Serving")
    config = _one(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert [v["VariantName"] for v in config["ProductionVariants"]] == [v.name for v in live]
    shadow = config["ShadowProductionVariants"]
    # ShadowProductionVariants' weight is its share of the live traffic it receives a copy of
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in shadow] == [
        (shadow_spec.name, shadow_spec.sample_percent / 100)
    ]
    # the live variant scales (registered by the endpoint's reconciler, test_aws_autoscaling.py), the shadow not
    (scaled,) = scaled_variants(t.to_json()).values()
    assert (scaled.name, scaled.dimension, scaled.min_capacity, scaled.max_capacity) == (
        live[0].name,
        "sagemaker:variant:DesiredInstanceCount",
        scaling.min_instances,
        scaling.max_instances,
    )
    assert scaled.policies[0].configuration["TargetValue"] == scaling.target_invocations_per_instance
    # KMS by default: bucket, endpoint volumes, topic.
    t.resource_count_is("AWS::KMS::Key", 1)
    t.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    assert "KmsKeyId" in config
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    # The shadow has its own alarms, but they never roll a deployment back: the rollback alarms are the
    # live variant's seven (all kinds but "no invocations").
    rollback = _one(t, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"][
        "Alarms"
    ]
    assert len(rollback) == 7
    _alarm(t, f"iris-staging-{shadow_spec.name}-5xx")


def test_prod_canary_rollout_with_rollback_on_the_alarms(tpl):
    prod = SAMPLE.environment("prod")
    rollout = prod.rollout
    assert rollout.strategy == "canary"
    t = tpl("iris-prod/Serving")
    endpoint = _one(t, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["EndpointName"] == "iris-prod"
    policy = endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": canary_size(prod),
            "WaitIntervalInSeconds": rollout.wait_seconds,
        },
        "TerminationWaitInSeconds": rollout.termination_wait_seconds,
        "MaximumExecutionTimeoutInSeconds": rollout.max_execution_timeout_seconds,
    }
    rollback_refs = [a["AlarmName"]["Ref"] for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    alarms = t.find_resources("AWS::CloudWatch::Alarm")
    names = [alarms[ref]["Properties"]["AlarmName"] for ref in rollback_refs]
    assert names[:2] == ["iris-prod-primary-5xx", "iris-prod-primary-model-latency"]
    assert set(names) == {
        f"iris-prod-primary-{k}" for k in ("5xx", "4xx", "model-latency", "overhead-latency", "cpu", "memory", "disk")
    }


def test_prod_alarm_thresholds_come_from_the_spec(tpl):
    prod = SAMPLE.environment("prod")
    alarms = prod.alarms
    t = tpl("iris-prod/Serving")
    five = _alarm(t, "iris-prod-primary-5xx")
    assert (five["Threshold"], five["MetricName"], five["Namespace"], five["Statistic"]) == (
        alarms.errors_5xx,
        "Invocation5XXErrors",
        "AWS/SageMaker",
        "Sum",
    )
    assert five["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert five["EvaluationPeriods"] == alarms.evaluation_periods and five["Period"] == alarms.period_seconds
    assert five["Dimensions"] == [
        {"Name": "EndpointName", "Value": "iris-prod"},
        {"Name": "VariantName", "Value": "primary"},
    ]
    # SageMaker reports ModelLatency and OverheadLatency in microseconds
    latency = _alarm(t, "iris-prod-primary-model-latency")
    assert (latency["Threshold"], latency["ExtendedStatistic"]) == (alarms.model_latency_p99_ms * 1000, "p99")
    assert _alarm(t, "iris-prod-primary-overhead-latency")["Threshold"] == alarms.overhead_latency_p99_ms * 1000
    # /aws/sagemaker/Endpoints CPUUtilization is summed over the cores: ml.m5.large has 2 vCPU
    assert prod.compute.aws_instance_type == "ml.m5.large"
    assert _alarm(t, "iris-prod-primary-cpu")["Threshold"] == alarms.cpu_utilization_percent * 2
    assert _alarm(t, "iris-prod-primary-memory")["Threshold"] == alarms.memory_utilization_percent
    assert _alarm(t, "iris-prod-primary-4xx")["Threshold"] == alarms.errors_4xx
    assert five["AlarmActions"] == [{"Ref": next(iter(t.find_resources("AWS::SNS::Topic")))}]
    emails = sorted(s["Properties"]["Endpoint"] for s in t.find_resources("AWS::SNS::Subscription").values())
    assert emails == sorted(alarms.emails)
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    t.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardName": "iris-prod"})


def test_cloudwatch_may_publish_to_the_alarm_topic(tpl):
    # enforce_ssl gives the topic a policy, which replaces SNS's default one: without an explicit Allow for
    # cloudwatch.amazonaws.com every alarm action fails. With KMS the key must let CloudWatch use it too.
    for case in ("iris-dev/Serving", "iris-prod/Serving"):
        t = tpl(case)
        topic = _alarm(t, f"{case.split('/')[0]}-primary-5xx")["AlarmActions"][0]
        (policy,) = [
            p["Properties"]
            for p in t.find_resources("AWS::SNS::TopicPolicy").values()
            if p["Properties"]["Topics"] == [topic]
        ]
        statements = policy["PolicyDocument"]["Statement"]
        allow = [
            s
            for s in statements
            if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        ]
        assert [s["Action"] for s in allow] == ["sns:Publish"], case
        assert allow[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        assert "alarm:" + case.split("/")[0] + "-*" in json.dumps(allow[0]["Condition"]["ArnLike"])
        assert any(s["Effect"] == "Deny" for s in statements)  # TLS only, still
    key = _one(tpl("iris-prod/Serving"), "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and "kms:GenerateDataKey*" in s["Action"] for s in key
    )


def test_prod_instances_scaling_capture_and_budget(tpl):
    prod = SAMPLE.environment("prod")
    t = tpl("iris-prod/Serving")
    config = _one(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    variant = config["ProductionVariants"][0]
    assert (
        variant["InitialInstanceCount"],
        variant["InstanceType"],
        variant["ContainerStartupHealthCheckTimeoutInSeconds"],
    ) == (prod.compute.instance_count, prod.compute.aws_instance_type, prod.aws.container_startup_timeout_seconds)
    capture = config["DataCaptureConfig"]
    assert prod.monitoring is not None  # drift monitoring turns capture on, at its sampling rate
    assert (capture["EnableCapture"], capture["InitialSamplingPercentage"]) == (
        True,
        prod.monitoring.sampling_percent,
    )
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert "KmsKeyId" in capture
    assert {(v.min_capacity, v.max_capacity) for v in scaled_variants(t.to_json()).values()} == {
        (prod.scaling.min_instances, prod.scaling.max_instances)
    }
    budget = _one(t, "AWS::Budgets::Budget")["Properties"]
    assert budget["Budget"]["BudgetLimit"] == {"Amount": prod.budget.monthly_limit_usd, "Unit": "USD"}
    got = [
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
        for n in budget["NotificationsWithSubscribers"]
    ]
    # one notification per threshold, plus the forecast alert at the limit
    assert got == [("ACTUAL", p) for p in sorted(prod.budget.notify_at_percent)] + [("FORECASTED", 100)]
    # NotificationsWithSubscribers is create-only and a custom-named resource cannot be replaced under
    # its name: the name carries the notifications' digest, so a new e-mail or threshold is a new budget
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-budgets-budget.html)
    from twinserve.aws.cost_budget import CostBudgetProps, notifications_digest

    props = CostBudgetProps(
        "twinserve-iris-prod", prod.budget.monthly_limit_usd, prod.alarms.emails, prod.budget.notify_at_percent
    )
    assert budget["Budget"]["BudgetName"] == f"twinserve-iris-prod-{notifications_digest(props)}"
    more = CostBudgetProps(
        props.budget_name, props.monthly_limit_usd, [*props.emails, "new@example.com"], props.notify_at_percent
    )
    assert notifications_digest(more) != notifications_digest(props)
    limit = CostBudgetProps(props.budget_name, 1, props.emails, props.notify_at_percent)
    assert notifications_digest(limit) == notifications_digest(props)  # BudgetLimit updates in place


def test_prod_retains_data_and_is_termination_protected(tpl, synth):
    t = tpl("iris-prod/Serving")
    for bucket in t.find_resources("AWS::S3::Bucket").values():
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")
    t.has_resource("AWS::KMS::Key", {"DeletionPolicy": "Retain"})
    r = tpl("iris-prod/Registry")
    r.has_resource("AWS::ECR::Repository", {"DeletionPolicy": "Retain"})
    r.has_resource("AWS::SageMaker::ModelPackageGroup", {"DeletionPolicy": "Retain"})
    assert synth.stack("iris-prod/Serving").termination_protection
    assert synth.stack("iris-prod/Registry").termination_protection


def test_buckets_are_private_tls_only_versioned_and_logged(tpl):
    t = tpl("iris-prod/Serving")
    for bucket in t.find_resources("AWS::S3::Bucket").values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "artifacts/"}),
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like({"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})})
                ]
            },
        },
    )
    for policy in t.find_resources("AWS::S3::BucketPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_registry_repository_and_model_package_group(tpl):
    r = tpl("iris-prod/Registry")
    r.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "RepositoryName": "twinserve/iris-prod-kms",
            "ImageTagMutability": "IMMUTABLE",
            "ImageScanningConfiguration": {"ScanOnPush": True},
            "LifecyclePolicy": Match.object_like(
                {"LifecyclePolicyText": Match.string_like_regexp("imageCountMoreThan")}
            ),
        },
    )
    r.has_resource_properties("AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "iris-prod"})


def test_the_registry_encrypts_images_with_its_own_rotated_key_under_a_name_of_their_own(tpl):
    # EncryptionConfiguration is create-only (a change replaces the repository), and a custom-named
    # resource cannot be replaced under the same name: the KMS repository is named "<...>-kms", so an
    # environment created with the AES-256 one gets a new repository instead of a failed update.
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecr-repository.html
    from twinserve.platform.aws import cfn_resource_schema

    assert ("EncryptionConfiguration",) in cfn_resource_schema("AWS::ECR::Repository").create_only
    prod = tpl("iris-prod/Registry")
    (key_id,) = prod.find_resources("AWS::KMS::Key")
    assert _one(prod, "AWS::KMS::Key")["Properties"]["EnableKeyRotation"] is True
    repository = _one(prod, "AWS::ECR::Repository")["Properties"]
    assert repository["EncryptionConfiguration"] == {
        "EncryptionType": "KMS",
        "KmsKey": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert _one(prod, "AWS::KMS::Alias")["Properties"]["AliasName"] == "alias/twinserve/iris-prod-images"
    # aws.encryption: s3_managed (iris-dev) keeps AES-256 under the original name, and no key
    dev = tpl("iris-dev/Registry")
    repository = _one(dev, "AWS::ECR::Repository")["Properties"]
    assert "EncryptionConfiguration" not in repository  # ECR's default: AES-256
    assert repository["RepositoryName"] == "twinserve/iris-dev"
    assert not dev.find_resources("AWS::KMS::Key")


def test_image_asset_goes_to_the_bootstrap_container_assets_repository(tpl):
    # A pipeline publishes every asset before it deploys any stage (CDK Pipelines' Assets stage), so the
    # image must go to a repository that exists before the first run: the one `cdk bootstrap` creates.
    model = _one(tpl("iris-prod/Serving"), "AWS::SageMaker::Model")["Properties"]
    image = json.dumps(model["PrimaryContainer"]["Image"])
    assert "cdk-hnb659fds-container-assets-" in image
    policy = json.dumps(_execution_policy(tpl("iris-prod/Serving")))
    assert ':repository/", {"Fn::Sub": "cdk-hnb659fds-container-assets-' in policy  # pull on that repository only


def test_guarded_updates_may_watch_their_rollback_alarms(tpl):
    # "Ensure that your IAM execution role has permission to perform the cloudwatch:DescribeAlarms action
    # on the auto-rollback alarms you specify."
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html
    t = tpl("iris-prod/Serving")
    endpoint = _one(t, "AWS::SageMaker::Endpoint")["Properties"]
    rollback = {a["AlarmName"]["Ref"] for a in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]}
    (describe,) = [s for s in _execution_policy(t) if s["Action"] == "cloudwatch:DescribeAlarms"]
    assert {r["Fn::GetAtt"][0] for r in describe["Resource"]} == rollback


def test_budget_counts_the_environment_not_the_account(tpl, synth):
    # AWS Budgets filters on an activated cost-allocation tag, "user:<key>$<value>"
    # (https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-create-filters.html); the tag
    # must be activated in the payer account (docs/aws.md, "Cost ceiling").
    for env in ("dev", "staging", "prod"):
        budget = _one(tpl(f"iris-{env}/Serving"), "AWS::Budgets::Budget")["Properties"]["Budget"]
        assert budget["CostFilters"] == {"TagKeyValue": [f"user:twinserve:stage$iris-{env}"]}
        # ... and the stage's resources carry that tag
        model = _one(tpl(f"iris-{env}/Serving"), "AWS::SageMaker::Model")["Properties"]
        assert {"Key": "twinserve:stage", "Value": f"iris-{env}"} in model["Tags"]


def test_outside_prod_a_destroy_empties_what_it_deletes(tpl):
    # S3 and ECR refuse to delete a bucket or repository that is not empty
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteBucket.html,
    # https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html): outside prod the
    # stack empties them on delete, and nothing with a fixed name is left behind to block a new deploy.
    for env in ("dev", "staging"):
        serving = tpl(f"iris-{env}/Serving")
        buckets = serving.find_resources("AWS::S3::Bucket")
        assert all(b["DeletionPolicy"] == "Delete" for b in buckets.values())
        cleaned = {
            r["Properties"]["BucketName"]["Ref"] for r in serving.find_resources("Custom::S3AutoDeleteObjects").values()
        }
        assert cleaned == set(buckets)
        registry = tpl(f"iris-{env}/Registry")
        repository = _one(registry, "AWS::ECR::Repository")
        assert repository["DeletionPolicy"] == "Delete" and repository["Properties"]["EmptyOnDelete"] is True
        assert _one(registry, "AWS::SageMaker::ModelPackageGroup")["DeletionPolicy"] == "Delete"


def test_prod_keeps_its_data_under_the_names_an_import_adopts(tpl):
    # Retained resources survive a destroy; those with fixed names would block a new `cdk deploy` with
    # AlreadyExists, so prod is re-created with `cdk import`, which adopts them by their identifiers
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resource-import.html).
    registry = tpl("iris-prod/Registry")
    repository = _one(registry, "AWS::ECR::Repository")
    group = _one(registry, "AWS::SageMaker::ModelPackageGroup")
    assert (repository["DeletionPolicy"], group["DeletionPolicy"]) == ("Retain", "Retain")
    assert repository["Properties"]["RepositoryName"] == "twinserve/iris-prod-kms"  # the import identifier
    assert _one(registry, "AWS::KMS::Key")["DeletionPolicy"] == "Retain"  # the images' key stays with them
    assert group["Properties"]["ModelPackageGroupName"] == "iris-prod"
    assert "EmptyOnDelete" not in repository["Properties"]
    serving = tpl("iris-prod/Serving")
    assert not serving.find_resources("Custom::S3AutoDeleteObjects")
    for bucket in serving.find_resources("AWS::S3::Bucket").values():
        assert "BucketName" not in bucket["Properties"]  # generated names never collide on a re-create
    alias = _one(serving, "AWS::KMS::Alias")  # the kept key's alias goes with the stack, so it is free again
    assert alias.get("DeletionPolicy", "Delete") == "Delete"


def test_serving_settings_reach_the_container(tpl):
    # The container's deadline must fall inside SageMaker's own 60 s invocation limit (so the caller
    # gets the container's JSON 504, not SageMaker's), and it predicts with as many threads as the
    # spec lets requests run at once on an instance.
    serving = SAMPLE.environment("prod").serving
    model = _one(tpl("iris-prod/Serving"), "AWS::SageMaker::Model")["Properties"]
    environment = model["PrimaryContainer"]["Environment"]
    assert set(environment) == {"SAGEMAKER_MODEL_SERVER_TIMEOUT", "TWINSERVE_THREADS"}
    assert 0 < int(environment["SAGEMAKER_MODEL_SERVER_TIMEOUT"]) < min(serving.request_timeout_seconds, 60)
    assert environment["TWINSERVE_THREADS"] == str(serving.max_concurrent_requests_per_instance)


def _execution_policy(template: Template) -> list[dict]:
    """The serving execution role's statements (not the model upload handler's)."""
    found = [p for key, p in template.find_resources("AWS::IAM::Policy").items() if key.startswith("ExecutionRole")]
    assert len(found) == 1, found
    return found[0]["Properties"]["PolicyDocument"]["Statement"]


def _in_artifacts_bucket(template: Template, key: str) -> dict:
    """``s3://<artifacts bucket>/<key>`` the way the template spells it."""
    bucket = next(k for k in template.find_resources("AWS::S3::Bucket") if k.startswith("ArtifactsBucket"))
    return {"Fn::Join": ["", ["s3://", {"Ref": bucket}, f"/{key}"]]}


def _object_arn(template: Template, key: str) -> dict:
    bucket = next(k for k in template.find_resources("AWS::S3::Bucket") if k.startswith("ArtifactsBucket"))
    return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, f"/{key}"]]}


def _upload(template: Template) -> tuple[str, dict]:
    found = template.find_resources("Custom::CDKBucketDeployment")
    assert len(found) == 1, list(found)
    return next(iter(found.items()))


def _models_by_variant(template: Template) -> dict[str, dict]:
    """variant name (live and shadow) -> its AWS::SageMaker::Model resource."""
    config = _one(template, "AWS::SageMaker::EndpointConfig")["Properties"]
    models = template.find_resources("AWS::SageMaker::Model")
    return {
        v["VariantName"]: models[v["ModelName"]["Fn::GetAtt"][0]]
        for v in config["ProductionVariants"] + config.get("ShadowProductionVariants", [])
    }


def test_current_version_is_uploaded_to_its_versioned_key_and_kept(tpl):
    # model.version "1" -> s3://<artifacts>/models/iris/1/model.tar.gz, written by this deployment,
    # encrypted with the environment's key, never pruned, kept when the version changes or the stack goes.
    t = tpl("iris-prod/Serving")
    upload_id, upload = _upload(t)
    bucket = next(k for k in t.find_resources("AWS::S3::Bucket") if k.startswith("ArtifactsBucket"))
    key = next(iter(t.find_resources("AWS::KMS::Key")))
    assert upload["Properties"]["DestinationBucketName"] == {"Ref": bucket}
    assert upload["Properties"]["DestinationBucketKeyPrefix"] == "models/iris/1/"
    assert (upload["Properties"]["Extract"], upload["Properties"]["Prune"], upload["Properties"]["RetainOnDelete"]) == (
        True,
        False,
        True,
    )
    assert upload["Properties"]["SystemMetadata"] == {"sse": "aws:kms", "sse-kms-key-id": {"Ref": key}}
    model = _one(t, "AWS::SageMaker::Model")
    assert model["Properties"]["PrimaryContainer"]["ModelDataUrl"] == _in_artifacts_bucket(
        t, "models/iris/1/model.tar.gz"
    )
    assert upload_id in model["DependsOn"]  # SageMaker reads the archive when it creates the model
    # dev uses S3-managed keys
    dev_upload = _upload(tpl("iris-dev/Serving"))[1]["Properties"]
    assert dev_upload["SystemMetadata"] == {"sse": "AES256"}


def test_execution_role_reads_only_the_served_model_versions(tpl):
    # Exact objects (no wildcard): models/<name>/<version>/model.tar.gz of each version a model serves.
    for case, versions in [("iris-prod/Serving", ["1"]), ("ab-test-dev/Serving", ["1", "2"])]:
        t = tpl(case)
        reads = [
            r
            for s in _execution_policy(t)
            if s["Action"] == "s3:GetObject"
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        ]
        assert reads == [_object_arn(t, f"models/iris/{v}/model.tar.gz") for v in versions], case
        assert "cdk-hnb659fds-assets-" not in json.dumps(_execution_policy(t))  # nothing in the CDK asset bucket


def test_ab_test_each_variant_serves_its_own_version(tpl):
    # examples/aws/ab-test.yaml: model.version "2"; "current" pins version 1 (uploaded by an earlier
    # deployment), "challenger" serves version 2 (uploaded by this one).
    t = tpl("ab-test-dev/Serving")
    upload_id, upload = _upload(t)
    assert upload["Properties"]["DestinationBucketKeyPrefix"] == "models/iris/2/"
    models = _models_by_variant(t)
    url = {name: m["Properties"]["PrimaryContainer"]["ModelDataUrl"] for name, m in models.items()}
    assert url == {
        "current": _in_artifacts_bucket(t, "models/iris/1/model.tar.gz"),
        "challenger": _in_artifacts_bucket(t, "models/iris/2/model.tar.gz"),
    }
    assert upload_id in models["challenger"]["DependsOn"]
    assert upload_id not in models["current"].get("DependsOn", [])  # version 1 is already in place


def test_shadow_serves_the_version_it_pins(tpl):
    # examples/aws/shadow.yaml: the live variant pins version 1, the candidate serves model.version 2.
    t = tpl("shadow-staging/Serving")
    url = {name: m["Properties"]["PrimaryContainer"]["ModelDataUrl"] for name, m in _models_by_variant(t).items()}
    assert url == {
        "live": _in_artifacts_bucket(t, "models/iris/1/model.tar.gz"),
        "candidate": _in_artifacts_bucket(t, "models/iris/2/model.tar.gz"),
    }


def test_execution_role_is_least_privilege(tpl):
    t = tpl("iris-prod/Serving")
    policy = _execution_policy(t)
    actions = {a for s in policy for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.endswith("*") for a in actions), actions
    assert "s3:GetObject" in actions and "s3:PutObject" in actions
    assert not any(a.startswith("sagemaker:") for a in actions)
    star = [s for s in policy if s["Resource"] == "*"]
    # Prod's models run in the private network: SageMaker attaches their containers with the role, and
    # those EC2 calls are granted on "*" (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html).
    assert {a for s in star for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])} == {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        *VPC_NETWORK_INTERFACE_ACTIONS,
    }
    dev_star = [s for s in _execution_policy(tpl("iris-dev/Serving")) if s["Resource"] == "*"]
    assert not any(str(s["Action"]).count("ec2:") for s in dev_star)  # no VPC in dev: no network interfaces
    ecr = next(s for s in policy if "ecr:BatchGetImage" in s["Action"])
    assert "cdk-hnb659fds-container-assets-" in str(ecr["Resource"])  # the one repository the image is in


# --------------------------------------------------------------------------- examples


def test_ab_test_weights_and_two_model_versions(tpl):
    spec = example("ab-test", "dev")
    t = tpl("ab-test-dev/Serving")
    variants = _one(t, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in variants] == [
        (v.name, v.weight / 100) for v in spec.serving.variants
    ]
    assert len(t.find_resources("AWS::SageMaker::Model")) == 2  # one per version (see test_ab_test_each_variant...)
    assert len(scaled_variants(t.to_json())) == len(spec.serving.variants)
    policy = _one(t, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert len(policy["AutoRollbackConfiguration"]["Alarms"]) == 10  # capped at SageMaker's limit


def test_canary_example(tpl):
    spec = example("canary", "prod")
    rollout = spec.rollout
    config = _one(tpl("canary-prod/Serving"), "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    policy = config["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": rollout.wait_seconds,
        "CanarySize": canary_size(spec),
    }
    assert (policy["TerminationWaitInSeconds"], policy["MaximumExecutionTimeoutInSeconds"]) == (
        rollout.termination_wait_seconds,
        rollout.max_execution_timeout_seconds,
    )


def test_linear_example(tpl):
    spec = example("linear", "staging")
    t = tpl("linear-staging/Serving")
    routing = _one(t, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": spec.rollout.wait_seconds,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": spec.rollout.step_percent},
    }
    variant = _one(t, "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"][0]
    assert (variant["InitialInstanceCount"], variant["InstanceType"]) == (
        spec.compute.instance_count,
        spec.compute.aws_instance_type,
    )
    # CPUUtilization is summed over the cores: ml.c5.xlarge has 4 vCPU
    assert spec.compute.aws_instance_type == "ml.c5.xlarge"
    assert _alarm(t, "linear-staging-primary-cpu")["Threshold"] == spec.alarms.cpu_utilization_percent * 4


def test_shadow_example(tpl):
    spec = example("shadow", "staging")
    config = _one(tpl("shadow-staging/Serving"), "AWS::SageMaker::EndpointConfig")["Properties"]
    assert [(v["VariantName"], v["InitialVariantWeight"]) for v in config["ShadowProductionVariants"]] == [
        (spec.serving.shadow.name, spec.serving.shadow.sample_percent / 100)
    ]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == spec.aws.data_capture.sampling_percent


def test_serverless_example(tpl):
    serverless = example("serverless", "dev").serving.serverless
    t = tpl("serverless-dev/Serving")
    config = _one(t, "AWS::SageMaker::EndpointConfig")["Properties"]
    variant = config["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": serverless.memory_mb,
        "MaxConcurrency": serverless.max_concurrency,
        "ProvisionedConcurrency": serverless.provisioned_concurrency,
    }
    assert "InstanceType" not in variant and "KmsKeyId" not in config
    assert "DeploymentConfig" not in _one(t, "AWS::SageMaker::Endpoint")["Properties"]  # no guardrails
    (scaled,) = scaled_variants(t.to_json()).values()
    assert (scaled.dimension, scaled.min_capacity, scaled.max_capacity) == (
        "sagemaker:variant:DesiredProvisionedConcurrency",
        1,
        serverless.max_concurrency,
    )
    assert not any("cpu" in a["Properties"]["AlarmName"] for a in t.find_resources("AWS::CloudWatch::Alarm").values())


def test_async_example(tpl):
    spec = example("async", "dev")
    t = tpl("async-dev/Serving")
    config = _one(t, "AWS::SageMaker::EndpointConfig")["Properties"]["AsyncInferenceConfig"]
    assert config["ClientConfig"] == {
        "MaxConcurrentInvocationsPerInstance": spec.serving.async_inference.max_concurrent_invocations_per_instance
    }
    output = config["OutputConfig"]
    assert set(output["NotificationConfig"]) == {"SuccessTopic", "ErrorTopic"}
    assert "async/output" in str(output["S3OutputPath"]) and "async/failures" in str(output["S3FailurePath"])
    t.resource_count_is("AWS::SNS::Topic", 3)  # alarms + success + error
    # scale to zero when the queue is empty, up to the scaling bound (policies: test_aws_autoscaling.py)
    (scaled,) = scaled_variants(t.to_json()).values()
    assert (scaled.min_capacity, scaled.max_capacity) == (0, spec.scaling.max_instances)
    assert [p.name for p in scaled.policies] == ["backlog-per-instance", "backlog-without-capacity"]


def test_batch_example(tpl):
    batch = example("batch", "dev").serving.batch
    assert batch.strategy == "MULTI_RECORD"
    t = tpl("batch-dev/Serving")
    machine = _one(t, "AWS::StepFunctions::StateMachine")["Properties"]
    definition = json.dumps(machine["DefinitionString"])
    for needle in (
        "createTransformJob.sync",
        '\\"BatchStrategy\\":\\"MultiRecord\\"',
        f'\\"MaxPayloadInMB\\":{batch.max_payload_mb}',
        f'\\"MaxConcurrentTransforms\\":{batch.max_concurrent_transforms}',
        f'\\"InstanceCount\\":{batch.instance_count}',
        "batch/input/",
        "batch/output/",
    ):
        assert needle in definition, needle
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    model = next(iter(t.find_resources("AWS::SageMaker::Model")))
    assert model in definition  # the endpoint's own model, so the same container


def test_batch_state_machine_may_grant_the_volume_key_to_sagemaker_only(tpl):
    # CreateTransformJob with a volume key makes SageMaker create a KMS grant in the caller's name
    t = tpl("batch-dev/Serving")
    key_id = next(iter(t.find_resources("AWS::KMS::Key")))
    statements = [
        s for p in t.find_resources("AWS::IAM::Policy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    grants = [s for s in statements if s["Action"] == "kms:CreateGrant"]
    assert grants == [
        {
            "Action": "kms:CreateGrant",
            "Effect": "Allow",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            "Resource": {"Fn::GetAtt": [key_id, "Arn"]},
        }
    ]


def test_only_this_accounts_state_machines_may_assume_the_batch_role(tpl):
    # Step Functions' confused-deputy guard on the role's trust policy
    # (https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html)
    t = tpl("batch-dev/Serving")
    roles = [
        r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
        for r in t.find_resources("AWS::IAM::Role").values()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "states.amazonaws.com"}
    ]
    (trust,) = roles
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":stateMachine:*" in json.dumps(trust["Condition"]["ArnLike"]["aws:SourceArn"])


# --------------------------------------------------------------------------- model formats and GPU (examples/aws)


def test_gpu_environment_runs_the_cuda_image_on_a_driver_that_supports_it(tpl, synth):
    """A CUDA 12 image needs NVIDIA driver >= 525; g4dn/g5/p4d default to 470, so the variant names the
    host image with driver 550 (InferenceAmiVersion, API_ProductionVariant:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariant.html)."""
    from twinserve.platform.aws import GPU_INFERENCE_AMI_VERSION

    prod, dev = example("gpu", "prod"), example("gpu", "dev")
    (variant,) = _one(tpl("gpu-prod/Serving"), "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert variant["InstanceType"] == prod.compute.aws_instance_type and prod.compute.gpu
    assert variant["InferenceAmiVersion"] == GPU_INFERENCE_AMI_VERSION == "al2-ami-sagemaker-inference-gpu-3-1"
    assert variant["InitialInstanceCount"] == prod.compute.instance_count
    (cpu,) = _one(tpl("gpu-dev/Serving"), "AWS::SageMaker::EndpointConfig")["Properties"]["ProductionVariants"]
    assert "InferenceAmiVersion" not in cpu and not dev.compute.gpu
    # the image asset is the GPU build (Dockerfile.gpu staged as the context's Dockerfile); dev the core image
    prod_image = synth.stack("gpu-prod/Serving").model_image
    assert prod_image.variant.name == "gpu"
    assert "onnxruntime-gpu" in (prod_image.context.directory / "Dockerfile").read_text()
    assert synth.stack("gpu-dev/Serving").model_image.variant.name == "core"


def test_mlflow_model_is_served_by_the_formats_image_with_its_requirements(tpl, synth):
    stack = synth.stack("mlflow-dev/Serving")
    image = stack.model_image
    assert (image.model_format, image.variant.name) == ("mlflow", "formats")
    assert any(r.startswith("mlflow-skinny==") for r in image.context.model_requirements)
    # the CDK image asset is built from exactly that staged context
    assets = json.loads((synth.outdir / "assembly-mlflow-dev" / f"{stack.artifact_id}.assets.json").read_text())
    (docker,) = assets["dockerImages"].values()
    staged = synth.outdir / "assembly-mlflow-dev" / docker["source"]["directory"]
    assert (staged / "model-requirements" / "requirements.txt").read_text().split() == list(
        image.context.model_requirements
    )
    assert (staged / "Dockerfile").read_text() == (image.context.directory / "Dockerfile").read_text()
    # format detected, so the container detects it the same way: nothing extra in its environment
    env = _one(tpl("mlflow-dev/Serving"), "AWS::SageMaker::Model")["Properties"]["PrimaryContainer"]["Environment"]
    assert not any(name.startswith("TWINSERVE_MODEL") or name.startswith("TWINSERVE_TRUST") for name in env)
