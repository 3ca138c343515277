"""The deployment spec: the sample is valid, and every kind of bad input gets an error naming the
file, the field path, the bad value and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from twinserve.platform.azure import azure_vm_vcpus
from twinserve.spec import SpecError, load_spec, parse_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "deploy" / "twinserve.yaml"


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(SAMPLE.read_text())


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    assert str(info.value).startswith("invalid deployment spec")
    return [issue.render("spec.yaml") for issue in info.value.issues]


def only(raw: dict) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


# ----------------------------------------------------------------------------- the sample


def test_sample_spec_is_valid_and_merges_defaults_per_environment():
    spec = load_spec(SAMPLE)
    assert list(spec.environments) == ["dev", "staging", "prod"]
    dev, staging, prod = (spec.environments[e] for e in ("dev", "staging", "prod"))
    # overridden per environment
    assert dev.compute.aws_instance_type == "ml.c5.large" and dev.scaling.enabled
    assert prod.compute.instance_count == 3 and prod.rollout.strategy == "canary"
    assert prod.alarms.errors_5xx == 1
    # inherited from defaults where the environment is silent
    assert staging.compute.aws_instance_type == "ml.m5.large"
    assert staging.alarms.errors_5xx == 5 and staging.alarms.emails == ["mlops-oncall@example.com"]
    # lists replace rather than merge
    assert prod.alarms.emails == ["mlops-oncall@example.com", "ml-platform@example.com"]
    assert staging.serving.shadow is not None and staging.serving.shadow.sample_percent == 20
    assert all(sum(v.weight for v in env.serving.variants) == 100 for env in spec.environments.values())


# ----------------------------------------------------------------------------- shape and types


def test_unknown_field_names_the_path_and_lists_allowed_fields(raw):
    raw["environments"]["prod"]["compute"]["instance_cuont"] = 4
    msg = only(raw)
    assert msg.startswith("spec.yaml: environments.prod.compute.instance_cuont: unknown field")
    assert "allowed: aws_instance_type, azure_instance_type, gpu, instance_count" in msg
    assert "(got 4)" in msg


def test_unknown_top_level_field(raw):
    raw["enviroments"] = {}
    msg = only(raw)
    assert "spec.yaml: enviroments: unknown field; allowed: name, model, container, defaults, environments" in msg


def test_wrong_type_is_not_coerced(raw):
    raw["environments"]["prod"]["compute"]["instance_count"] = "3"
    msg = only(raw)
    assert "environments.prod.compute.instance_count" in msg
    assert "valid integer" in msg and "(got '3')" in msg


def test_bad_value_in_defaults_is_reported_once_with_the_environments_that_inherit_it(raw):
    raw["defaults"]["alarms"]["errors_5xx"] = "five"
    msg = only(raw)
    # prod sets its own errors_5xx, so only dev and staging inherit the bad default
    assert msg.startswith("spec.yaml: defaults.alarms.errors_5xx:")
    assert "[inherited by environments dev, staging]" in msg


def test_value_out_of_range_says_what_is_allowed(raw):
    raw["environments"]["prod"]["rollout"]["wait_seconds"] = 7200
    msg = only(raw)
    assert "environments.prod.rollout.wait_seconds" in msg and "less than or equal to 3600" in msg


def test_literal_choice_lists_the_allowed_values(raw):
    raw["environments"]["prod"]["rollout"]["strategy"] = "big_bang"
    msg = only(raw)
    assert "environments.prod.rollout.strategy: not an allowed value" in msg
    assert "'canary'" in msg and "'linear'" in msg and "(got 'big_bang')" in msg


def test_name_pattern_is_explained_in_words(raw):
    raw["name"] = "Iris_Model"
    msg = only(raw)
    assert "spec.yaml: name: must be 1-24 characters: lower-case letters, digits and '-'" in msg


def test_missing_required_field(raw):
    del raw["model"]["version"]
    assert "spec.yaml: model.version: required field is missing (got (missing))" in only(raw)


# ----------------------------------------------------------------------------- environments


def test_unknown_environment(raw):
    raw["environments"]["qa"] = {}
    msg = only(raw)
    assert "spec.yaml: environments.qa: unknown environment; allowed: dev, staging, prod (got 'qa')" == msg


def test_no_environment_at_all(raw):
    raw["environments"] = {}
    assert "environments: must map at least one of dev, staging, prod" in only(raw)


def test_unknown_environment_lookup_names_the_defined_ones():
    spec = load_spec(SAMPLE)
    with pytest.raises(KeyError, match="environment 'qa' is not in the spec; defined: dev, staging, prod"):
        spec.environment("qa")


# ----------------------------------------------------------------------------- cross-field rules


def test_instance_count_below_what_the_rollout_needs(raw):
    raw["environments"]["prod"]["compute"]["instance_count"] = 2
    raw["environments"]["prod"]["scaling"]["min_instances"] = 2
    msg = only(raw)
    assert msg == (
        "spec.yaml: environments.prod.compute.instance_count: a canary rollout needs at least "
        "3 instances per variant (got 2)"
    )


@pytest.mark.parametrize("strategy,needed", [("linear", 3), ("rolling", 2)])
def test_each_strategy_has_its_minimum(raw, strategy, needed):
    prod = raw["environments"]["prod"]
    prod["rollout"]["strategy"] = strategy
    prod["rollout"]["step_percent"] = 20
    prod["rollout"]["max_execution_timeout_seconds"] = 7200  # five steps must fit the timeout too
    prod["compute"]["instance_count"] = needed - 1
    prod["scaling"]["enabled"] = False
    assert f"a {strategy} rollout needs at least {needed} instances per variant (got {needed - 1})" in only(raw)


def test_traffic_weights_must_sum_to_100(raw):
    raw["environments"]["dev"]["serving"] = {
        "variants": [{"name": "blue", "weight": 70}, {"name": "green", "weight": 20}]
    }
    msg = only(raw)
    assert msg == (
        "spec.yaml: environments.dev.serving.variants: variant weights must sum to 100, they sum to 90 "
        "(got {'blue': 70, 'green': 20})"
    )


def test_aks_below_three_nodes(raw):
    raw["defaults"]["azure"] = {"aks": {"node_count": 2}}
    found = problems(raw)
    assert any(
        p.startswith(
            "spec.yaml: defaults.azure.aks.node_count: Azure ML inference on AKS needs at least 3 nodes (got 2)"
        )
        for p in found
    ), found


def test_aks_below_twelve_vcpus(raw):
    raw["environments"]["prod"]["azure"] = {"aks": {"vm_size": "Standard_D2s_v3"}}
    msg = only(raw)
    assert msg.startswith(
        "spec.yaml: environments.prod.azure.aks.vm_size: 3 x 2 vCPU = 6; the AKS inference "
        "cluster needs at least 12 vCPU"
    )


def test_unknown_vm_size_asks_for_the_core_count(raw):
    raw["environments"]["prod"]["azure"] = {"aks": {"vm_size": "Standard_A2m_v2"}}
    assert "set azure.aks.vcpus_per_node" in only(raw)
    raw["environments"]["prod"]["azure"]["aks"]["vcpus_per_node"] = 6
    parse_spec(raw, file="spec.yaml")


@pytest.mark.parametrize(
    "size,vcpus",
    [
        ("Standard_D4s_v3", 4),
        ("Standard_E8ds_v5", 8),
        ("Standard_DS3_v2", 4),
        ("Standard_F16s_v2", 16),
        ("Standard_NC8as_T4_v3", 8),
        ("Standard_NC40ads_H100_v5", 40),
        ("Standard_NC6", None),
        ("Standard_A2m_v2", None),
    ],
)
def test_vcpus_read_from_azure_size_names(size, vcpus):
    assert azure_vm_vcpus(size) == vcpus


def test_shadow_mirror_is_capped_at_50_percent_on_azure(raw):
    raw["environments"]["staging"]["serving"]["shadow"]["sample_percent"] = 60
    assert "environments.staging.serving.shadow.sample_percent: Azure ML mirrors at most 50 percent" in only(raw)
    raw["environments"]["staging"]["targets"] = ["aws"]
    parse_spec(raw, file="spec.yaml")  # SageMaker shadows may sample more


def test_shadow_must_not_also_be_live(raw):
    raw["environments"]["staging"]["serving"]["shadow"]["name"] = "primary"
    assert "serving.shadow.name: a shadow must not also be a live variant" in only(raw)


def test_serverless_is_aws_only(raw):
    raw["environments"]["dev"]["serving"] = {"endpoint_type": "serverless"}
    raw["environments"]["dev"]["scaling"]["enabled"] = False
    assert "environments.dev.serving.endpoint_type: Azure ML has no serverless or asynchronous online endpoint" in only(
        raw
    )


def test_burstable_instances_cannot_autoscale(raw):
    raw["environments"]["dev"]["compute"]["aws_instance_type"] = "ml.t2.medium"
    assert "environments.dev.compute.aws_instance_type: SageMaker cannot autoscale burstable ml.t*" in only(raw)


def test_guardrails_are_single_variant_on_sagemaker(raw):
    prod = raw["environments"]["prod"]
    prod["serving"] = {"variants": [{"name": "blue", "weight": 50}, {"name": "green", "weight": 50}]}
    assert "SageMaker deployment guardrails work on single-variant endpoints" in only(raw)


def test_budget_needs_an_email(raw):
    raw["defaults"]["alarms"]["emails"] = []
    raw["environments"]["prod"]["alarms"]["emails"] = []
    found = problems(raw)
    assert any("alarms.emails: a budget needs at least one e-mail" in p for p in found), found


def test_batch_payload_times_concurrency_is_capped(raw):
    raw["environments"]["dev"]["serving"] = {
        "batch": {"enabled": True, "max_payload_mb": 60, "max_concurrent_transforms": 2}
    }
    assert "max_concurrent_transforms x max_payload_mb must be <= 100 MB (2 x 60)" in only(raw)


def test_every_problem_is_reported_at_once(raw):
    raw["environments"]["prod"]["compute"]["instance_count"] = 2
    raw["environments"]["dev"]["serving"] = {"variants": [{"name": "a", "weight": 10}]}
    found = problems(raw)
    assert any("environments.prod.compute.instance_count" in p for p in found)
    assert any("environments.dev.serving.variants" in p for p in found)


def test_exactly_one_artifact_source(raw):
    raw["model"]["artifact"]["s3_uri"] = "s3://bucket/model.tar.gz"
    assert "spec.yaml: model.artifact: set exactly one of path (local model directory) or s3_uri" in only(raw)


def test_a_pinned_model_version_needs_the_versioned_artifact_layout_on_aws(raw):
    raw["defaults"]["targets"] = ["aws"]
    raw["model"]["artifact"] = {"s3_uri": "s3://bucket/model.tar.gz"}
    raw["environments"]["dev"]["serving"] = {"variants": [{"name": "blue", "weight": 100, "model_version": "1"}]}
    parse_spec(copy.deepcopy(raw), file="spec.yaml")  # pinning model.version itself is fine
    raw["environments"]["dev"]["serving"]["variants"][0]["model_version"] = "2"
    assert only(raw).startswith(
        "spec.yaml: environments.dev.serving.variants.0.model_version: with "
        "model.artifact.s3_uri SageMaker serves only model.version ('1')"
    )


def test_azure_batch_image_uri_is_only_for_a_prebuilt_image(raw):
    assert raw["container"].get("build")  # the sample builds model_containers/
    raw["container"]["azure_batch_image_uri"] = "myregistry.azurecr.io/twinserve-azureml-batch:1"
    assert (
        "spec.yaml: container.azure_batch_image_uri: only with image_uri: with build, the Azure ML batch image "
        "is built from Dockerfile.azureml-batch in the build context"
    ) in only(raw)
    raw["container"] = {
        "image_uri": "myregistry.azurecr.io/twinserve-serving:1",
        "azure_batch_image_uri": "myregistry.azurecr.io/twinserve-azureml-batch:1",
    }
    for env in raw["environments"].values():
        env.pop("monitoring", None)  # the drift check needs the image twinserve builds
    assert parse_spec(raw, file="spec.yaml").container.azure_batch_image_uri.endswith("-batch:1")


def test_the_sample_is_not_mutated_by_validation(raw):
    before = copy.deepcopy(raw)
    parse_spec(raw, file="spec.yaml")
    assert raw == before


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml: \(file\): not valid YAML"):
        load_spec(bad)


def test_docs_spec_reference_is_generated_from_the_models():
    from twinserve.spec.reference import render

    assert (REPO_ROOT / "docs" / "spec.md").read_text() == render(), (
        "docs/spec.md is stale: run `python -m twinserve.spec.reference > docs/spec.md`"
    )


def test_sagemaker_realtime_timeout_is_capped_at_60_seconds(raw):
    raw["environments"]["dev"]["serving"] = {"request_timeout_seconds": 120}
    assert (
        "environments.dev.serving.request_timeout_seconds: SageMaker realtime invocations time out after 60 s"
        in only(raw)
    )
    raw["environments"]["dev"]["targets"] = ["azure"]
    parse_spec(raw, file="spec.yaml")  # Azure ML managed endpoints allow up to 180 s


# ----------------------------------------------------------------------------- one value, both clouds
# A spec value reaches both clouds as written or is rejected here; nothing is adjusted on one side.


def test_cooldowns_below_azures_minute_are_rejected_not_raised(raw):
    # Azure autoscale: a scale action's cooldown is 1 minute .. 1 week
    # (https://learn.microsoft.com/azure/azure-monitor/autoscale/autoscale-understanding-settings)
    raw["environments"]["dev"]["scaling"]["scale_out_cooldown_seconds"] = 30
    assert (
        "environments.dev.scaling.scale_out_cooldown_seconds: Azure autoscale waits at least 60 s between scale "
        "actions; use 60 or more (both clouds take the same value) (got 30)"
    ) in only(raw)
    raw["environments"]["dev"]["targets"] = ["aws"]  # Application Auto Scaling takes any cooldown
    assert parse_spec(raw, file="spec.yaml").environment("dev").scaling.scale_out_cooldown_seconds == 30


def test_every_live_variant_starts_within_the_scaling_bounds(raw):
    dev = raw["environments"]["dev"]
    dev["serving"] = {
        "variants": [{"name": "blue", "weight": 50}, {"name": "green", "weight": 50, "instance_count": 3}]
    }
    assert only(raw) == (
        "spec.yaml: environments.dev.serving.variants.1.instance_count: must lie within scaling bounds 1..2 (got 3)"
    )


def test_budget_thresholds_fit_azure_too(raw):
    # Azure budgets hold 5 notifications (https://learn.microsoft.com/azure/cost-management-billing/costs/tutorial-acm-create-budgets);
    # the forecast alert takes one on both clouds.
    raw["environments"]["dev"]["targets"] = ["azure"]
    raw["environments"]["dev"]["budget"]["notify_at_percent"] = [20, 40, 60, 80, 100]
    assert "environments.dev.budget.notify_at_percent: give at most 4 distinct thresholds" in only(raw)


# ----------------------------------------------------------------------------- SageMaker rollout rules


def test_a_rolling_batch_is_5_to_50_percent(raw):
    # RollingUpdatePolicy.MaximumBatchSize: 5-50 % of the variant's instances
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_RollingUpdatePolicy.html)
    prod = raw["environments"]["prod"]
    prod["rollout"] = {"strategy": "rolling", "step_percent": 4, "wait_seconds": 60}
    assert "environments.prod.rollout.step_percent: a rolling batch must be 5..50 percent of capacity (got 4)" in only(
        raw
    )
    prod["rollout"]["step_percent"] = 25
    parse_spec(raw, file="spec.yaml")


def test_the_whole_rollout_must_fit_its_timeout(raw):
    # MaximumExecutionTimeoutInSeconds "should be larger than the total waiting time"
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html):
    # a canary bakes twice (after the canary, after the rest), then the old fleet waits for termination,
    # and the new fleet needs its start-up time.
    prod = raw["environments"]["prod"]
    prod["rollout"] = {
        "strategy": "canary",
        "step_percent": 10,
        "wait_seconds": 1800,
        "termination_wait_seconds": 600,
        "max_execution_timeout_seconds": 3600,
    }
    msg = only(raw)
    total = 2 * 1800 + 600 + load_spec(SAMPLE).environment("prod").aws.container_startup_timeout_seconds
    assert msg.startswith(
        f"spec.yaml: environments.prod.rollout.max_execution_timeout_seconds: a canary rollout may "
        f"take {total} s (2 x 1800 s bake + 600 s termination wait"
    )
    assert f"use at least {total}" in msg
    prod["rollout"]["max_execution_timeout_seconds"] = total
    parse_spec(raw, file="spec.yaml")
    prod["targets"] = ["azure"]  # Azure ML has no such policy
    prod["rollout"]["max_execution_timeout_seconds"] = 3600
    parse_spec(raw, file="spec.yaml")
