"""The per-environment `monitoring` section (drift checks): its shapes and the rules that tie it to the
endpoint type, the capture settings and the retraining targets. Every error names its field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twinserve.spec import SpecError, parse_spec
from twinserve.spec.rules import DRIFT_STATISTICS, schedule_interval_minutes

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "twinserve.yaml"
RETRAIN_AWS = {"kind": "sagemaker_pipeline", "arn": "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/iris-retrain"}
RETRAIN_AZURE = {"webhook_secret_name": "retrainWebhook"}


@pytest.fixture()
def raw() -> dict:
    """The sample spec with monitoring on staging (both clouds) and nothing else changed."""
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["environments"]["staging"]["monitoring"] = {"reference_dataset": "reference.csv"}
    return doc


def monitoring(raw: dict) -> dict:
    return raw["environments"]["staging"]["monitoring"]


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    return [issue.render("spec.yaml") for issue in info.value.issues]


def only(raw: dict) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


def test_defaults_psi_and_linf_daily_at_twenty_percent_notify_only(raw):
    spec = parse_spec(raw, file="spec.yaml")
    m = spec.environments["staging"].monitoring
    assert (m.numeric.statistic, m.numeric.threshold) == ("psi", 0.2)
    assert (m.categorical.statistic, m.categorical.threshold) == ("linf", 0.1)
    assert (m.schedule, m.sampling_percent, m.on_drift, m.retrain) == ("rate(1 day)", 20, "notify", None)
    assert spec.environments["dev"].monitoring is None  # opt-in per environment


@pytest.mark.parametrize("percent", [0, 101])
def test_sampling_outside_1_to_100_is_named(raw, percent):
    monitoring(raw)["sampling_percent"] = percent
    assert "environments.staging.monitoring.sampling_percent" in only(raw)


@pytest.mark.parametrize(
    ("kind", "statistic", "threshold", "expected"),
    [
        ("numeric", "linf", 0.1, "use one of psi, jensen_shannon"),
        ("categorical", "psi", 0.2, "use one of linf, chi_squared"),
        ("numeric", "psi", 0.0, "psi needs a threshold in (0.0, 10.0]"),
        ("numeric", "jensen_shannon", 1.5, "jensen_shannon needs a threshold in (0.0, 1.0]"),
        ("categorical", "chi_squared", 0.9, "chi_squared needs a threshold in (0.0, 0.5]"),
    ],
)
def test_statistics_fit_their_feature_kind_and_thresholds_their_range(raw, kind, statistic, threshold, expected):
    monitoring(raw)[kind] = {"statistic": statistic, "threshold": threshold}
    message = only(raw)
    assert f"environments.staging.monitoring.{kind}." in message and expected in message


def test_every_statistic_in_range_is_accepted(raw):
    for statistic, (kind, _, high) in DRIFT_STATISTICS.items():
        monitoring(raw)[kind] = {"statistic": statistic, "threshold": high}
        parse_spec(raw, file="spec.yaml")


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("every day", "use 'rate(N hours|days)'"),
        ("rate(30 minutes)", "run at most every 60 minutes"),
        ("cron(0 3 * * ?)", "use 'rate(N hours|days)'"),  # five fields: EventBridge wants six
    ],
)
def test_schedule_expressions_both_clouds_can_run(raw, schedule, expected):
    monitoring(raw)["schedule"] = schedule
    message = only(raw)
    assert "environments.staging.monitoring.schedule" in message and expected in message


@pytest.mark.parametrize(
    ("schedule", "minutes"), [("rate(2 hours)", 120), ("rate(1 day)", 1440), ("cron(0 3 * * ? *)", None)]
)
def test_valid_schedules(raw, schedule, minutes):
    monitoring(raw)["schedule"] = schedule
    parse_spec(raw, file="spec.yaml")
    assert schedule_interval_minutes(schedule) == minutes


def test_categorical_features_must_be_watched(raw):
    monitoring(raw).update(features=["sepal_length"], categorical_features=["species"])
    message = only(raw)
    assert "monitoring.categorical_features" in message and "species" in message


def test_serverless_endpoints_capture_nothing(raw):
    env = raw["environments"]["staging"]
    env["targets"] = ["aws"]
    env.setdefault("serving", {})
    env["serving"] = {"endpoint_type": "serverless", "serverless": {"memory_mb": 2048, "max_concurrency": 5}}
    env["rollout"] = {"strategy": "all_at_once"}
    env["scaling"] = {"enabled": False}
    found = problems(raw)
    assert any("environments.staging.monitoring" in p and "serverless" in p for p in found), found


def test_a_different_capture_percent_on_aws_is_refused(raw):
    raw["environments"]["staging"].setdefault("aws", {})["data_capture"] = {"enabled": True, "sampling_percent": 50}
    message = only(raw)
    assert "environments.staging.aws.data_capture.sampling_percent" in message and "monitoring captures 20%" in message


def test_retrain_needs_a_target_on_every_cloud_of_the_environment(raw):
    monitoring(raw)["on_drift"] = "notify_and_retrain"
    found = problems(raw)
    assert len(found) == 2, found
    for cloud, message in zip(("aws", "azure"), found, strict=True):
        assert (
            f"monitoring.retrain.{cloud}: on_drift notify_and_retrain needs a retraining target on {cloud}" in message
        )
    monitoring(raw)["retrain"] = {"aws": RETRAIN_AWS, "azure": RETRAIN_AZURE}
    parse_spec(raw, file="spec.yaml")


def test_a_retrain_arn_must_be_of_its_kind(raw):
    monitoring(raw).update(
        on_drift="notify_and_retrain",
        retrain={"aws": {**RETRAIN_AWS, "kind": "codebuild"}, "azure": RETRAIN_AZURE},
    )
    message = only(raw)
    assert "monitoring.retrain.aws.arn" in message and "a codebuild ARN must match" in message


def test_retrain_without_notify_and_retrain_is_refused(raw):
    monitoring(raw)["retrain"] = {"aws": RETRAIN_AWS}
    assert "only used with on_drift: notify_and_retrain" in only(raw)


@pytest.mark.parametrize("schedule", ["rate(90 minutes)", "cron(0 6 L * ? *)", "cron(0 6 * * ? 2027)"])
def test_a_schedule_azure_ml_cannot_run_is_refused_for_azure_targets(raw, schedule):
    # Azure ML schedules: recurrence in whole hours/days, or a 5-field NCronTab without L/W/#/year
    # (https://learn.microsoft.com/azure/machine-learning/how-to-schedule-pipeline-job).
    monitoring(raw)["schedule"] = schedule
    assert "spec.yaml: environments.staging.monitoring.schedule: Azure ML schedules run whole hours or days" in only(
        raw
    )
    raw["environments"]["staging"]["targets"] = ["aws"]  # EventBridge Scheduler runs it
    parse_spec(raw, file="spec.yaml")


def test_monitoring_needs_the_image_twinserve_builds(raw):
    for env in ("prod",):
        raw["environments"][env].pop("monitoring", None)
    raw["container"] = {"image_uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/custom:1"}
    raw["environments"]["staging"]["targets"] = ["aws"]
    assert only(raw) == (
        "spec.yaml: environments.staging.monitoring: the drift check runs the twinserve image's drift command; "
        "container.image_uri may not have it: use container.build (got 'set')"
    )
