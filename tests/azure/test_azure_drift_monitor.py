"""Drift monitoring on Azure, as the Pulumi program declares it (under the recording mocks): payload
collection on the live deployments, one Azure ML schedule per online endpoint running the serving
image's drift command, its alert, action group and the retention policy.

Snapshots (test_azure_program.py) guard against unintended change; these state the intent.
"""

from __future__ import annotations

import json

import pytest
import yaml
from azure_plan_queries import DEPLOY_SPEC, ML, REPO, by_name, of_type, serving_ml_environment

from twinserve.platform.azure import DEFAULT_BLOB_DATASTORE, PAYLOAD_COLLECTION_FOLDER, schedule_trigger
from twinserve.pulumi_plan import plan_program
from twinserve.spec import SpecError, load_spec, parse_spec

SPEC = load_spec(DEPLOY_SPEC)
CRON_EXAMPLE = REPO / "examples" / "azure" / "drift.yaml"


def _job(schedule: dict) -> dict:
    return schedule["inputs"]["properties"]["action"]["jobDefinition"]


def _schedules(planned: list[dict]) -> dict[str, dict]:
    """endpoint name -> its drift schedule"""
    return {_job(s)["tags"]["twinserve:endpoint"]: s for s in of_type(planned, ML + "Schedule")}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_live_deployments_log_payloads_at_the_monitoring_rate(plan, env):
    # Payload logging is off unless enabled per collection; the sampling rate is a fraction
    # (https://learn.microsoft.com/azure/machine-learning/how-to-collect-production-data#log-payload).
    percent = SPEC.environment(env).monitoring.sampling_percent
    live = {v.name for v in SPEC.environment(env).serving.variants}
    for deployment in of_type(plan(DEPLOY_SPEC, env), ML + "OnlineDeployment"):
        collector = deployment["inputs"]["properties"].get("dataCollector")
        if deployment["inputs"]["deploymentName"] in live:
            assert collector == {
                "collections": {
                    name: {"dataCollectionMode": "Enabled", "samplingRate": percent / 100}
                    for name in ("request", "response")
                },
                "rollingRate": "Hour",
            }
        else:  # the mirror receives copies of requests already collected on a live deployment
            assert collector is None


def test_dev_collects_nothing_and_schedules_nothing(plan):
    planned = plan(DEPLOY_SPEC, "dev")
    assert of_type(planned, ML + "Schedule") == []
    assert all("dataCollector" not in d["inputs"]["properties"] for d in of_type(planned, ML + "OnlineDeployment"))


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_one_schedule_per_online_endpoint_runs_the_serving_image_drift_command(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    endpoints = {e["inputs"]["endpointName"] for e in of_type(planned, ML + "OnlineEndpoint")}
    schedules = _schedules(planned)
    assert set(schedules) == endpoints
    serving = serving_ml_environment(planned)
    for endpoint, schedule in schedules.items():
        properties = schedule["inputs"]["properties"]
        assert properties["trigger"] == {
            "triggerType": "Recurrence",
            "frequency": "Day",
            "interval": 1,
            "timeZone": "UTC",
        }  # rate(1 day)
        job = _job(schedule)
        assert job["environmentId"] == f"{serving['name']}-id"  # the same image as the endpoints
        assert job["command"].startswith("python -m twinserve_serving drift ")
        assert "--fail-on-drift" in job["command"] and "--since-hours 24" in job["command"]
        assert job["experimentName"] == f"twinserve-drift-{endpoint}"
        assert job["inputs"]["capture"] == {
            "jobInputType": "uri_folder",
            "mode": "ReadOnlyMount",
            "uri": f"azureml://datastores/{DEFAULT_BLOB_DATASTORE}/paths/{PAYLOAD_COLLECTION_FOLDER}/{endpoint}/",
        }
        assert job["outputs"]["report"]["uri"].endswith(f"/paths/drift-reports/{endpoint}/${{{{name}}}}/")
        assert "computeId" not in job  # serverless: nothing runs between checks


def test_the_baseline_blob_is_the_reference_dataset_baseline(plan):
    from twinserve.drift_baseline import baseline_for_monitoring

    planned = plan(DEPLOY_SPEC, "prod")
    blob = by_name(planned, "iris-prod-drift-baseline")
    shipped = json.loads((REPO / blob["inputs"]["source"]["$asset"]).read_text())
    assert shipped == baseline_for_monitoring(SPEC.environment("prod").monitoring, DEPLOY_SPEC.parent)
    for schedule in _schedules(planned).values():
        assert _job(schedule)["inputs"]["baseline"]["uri"].endswith("/paths/" + blob["inputs"]["blobName"])


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_failed_checks_alert_the_drift_action_group(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    group = by_name(planned, f"iris-{env}-drift-actions")
    assert [r["emailAddress"] for r in group["inputs"]["emailReceivers"]] == SPEC.environment(env).alarms.emails
    assert "webhookReceivers" not in group["inputs"]  # on_drift: notify
    workspace = of_type(planned, ML + "Workspace")[0]
    for endpoint in _schedules(planned):
        alert = by_name(planned, f"iris-{env}-drift-{endpoint}-alert")["inputs"]
        (criterion,) = alert["criteria"]["allOf"]
        assert (criterion["metricName"], criterion["operator"], criterion["threshold"]) == (
            "Failed Runs",
            "GreaterThan",
            0,
        )
        assert criterion["dimensions"] == [
            {"name": "ExperimentName", "operator": "Include", "values": [f"twinserve-drift-{endpoint}"]}
        ]
        assert alert["scopes"] == [f"{workspace['name']}-id"]
        assert alert["actions"] == [{"actionGroupId": f"{group['name']}-id"}]


def test_collected_payloads_and_reports_expire_after_retention(plan):
    planned = plan(DEPLOY_SPEC, "prod")
    (policy,) = of_type(planned, "azure-native:storage:ManagementPolicy")
    (rule,) = policy["inputs"]["policy"]["rules"]
    days = SPEC.environment("prod").monitoring.retention_days
    assert rule["definition"]["actions"] == {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": days}}}
    prefixes = rule["definition"]["filters"]["prefixMatch"]
    assert prefixes[0].startswith("azureml-blobstore-") and prefixes[0].endswith(f"/{PAYLOAD_COLLECTION_FOLDER}/")
    assert prefixes[1].endswith("/drift-reports/")
    assert not any("models" in p for p in prefixes)  # model files are never expired


def test_a_cron_schedule_becomes_an_azure_ml_cron_trigger(plan):
    planned = plan(CRON_EXAMPLE, "prod")
    schedules = _schedules(planned)
    assert len(schedules) == 2  # managed and Kubernetes endpoints
    for schedule in schedules.values():
        assert schedule["inputs"]["properties"]["trigger"] == {
            "triggerType": "Cron",
            "expression": "0 6 * * *",
            "timeZone": "UTC",
        }


@pytest.mark.parametrize(
    ("expression", "trigger"),
    [
        ("rate(1 day)", ("Day", 1)),
        ("rate(6 hours)", ("Hour", 6)),
        ("rate(120 minutes)", ("Hour", 2)),
        ("rate(90 minutes)", None),
        ("cron(0 6 * * ? *)", "0 6 * * *"),
        ("cron(30 2 ? * MON-FRI *)", "30 2 * * MON-FRI"),
        ("cron(0 6 L * ? *)", None),
        ("cron(0 6 * * ? 2027)", None),
    ],
)
def test_schedule_trigger_translation(expression, trigger):
    assert schedule_trigger(expression) == trigger


def _retrain_spec() -> dict:
    raw = yaml.safe_load(DEPLOY_SPEC.read_text())
    monitoring = raw["environments"]["prod"]["monitoring"]
    monitoring["on_drift"] = "notify_and_retrain"
    monitoring["retrain"] = {
        "aws": {"kind": "codebuild", "arn": "arn:aws:codebuild:eu-west-1:111111111111:project/retrain"},
        "azure": {"webhook_secret_name": "retrainWebhook"},
    }
    return raw


def _plan_prod(raw: dict, config: dict) -> list[dict]:
    from stacks.azure.program import build_environment

    spec = parse_spec(raw)
    return [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(
                spec, "prod", location="westeurope", spec_dir=DEPLOY_SPEC.parent, budget_start_date="2026-11-01"
            ),
            project="twinserve",
            stack="prod",
            config=config,
        )
    ]


def test_notify_and_retrain_calls_the_webhook_from_a_config_secret(sample_model):
    url = "https://example.logic.azure.com/workflows/retrain?sig=secret"
    planned = _plan_prod(_retrain_spec(), {"twinserve:retrainWebhook": url})
    group = by_name(planned, "iris-prod-drift-actions")
    # the URL carries a key: it stays a secret in the state
    assert group["inputs"]["webhookReceivers"] == {
        "$secret": [{"name": "retrain", "serviceUri": url, "useAadAuth": False, "useCommonAlertSchema": True}]
    }
    # the latency and error alerts keep their own group: retraining starts on drift only
    assert "webhookReceivers" not in by_name(planned, "iris-prod-monitoring-actions")["inputs"]


def test_notify_and_retrain_without_the_secret_names_the_config_to_set(sample_model):
    with pytest.raises(SpecError) as raised:
        _plan_prod(_retrain_spec(), {})
    message = str(raised.value)
    assert "environments.prod.monitoring.retrain.azure.webhook_secret_name" in message
    assert "pulumi config set --secret twinserve:retrainWebhook" in message


def test_the_checks_identity_may_read_payloads_and_write_reports(plan):
    # Identity-based datastores: the job's identity needs a data role on the account
    # (https://learn.microsoft.com/azure/machine-learning/how-to-identity-based-service-authentication).
    planned = plan(DEPLOY_SPEC, "prod")
    role = by_name(planned, "iris-prod-drift-blobdata")["inputs"]
    workspace = of_type(planned, ML + "Workspace")[0]
    account = of_type(planned, "azure-native:storage:StorageAccount")[0]
    assert role["roleDefinitionId"].endswith("/ba92f5b4-2d11-453d-a403-e96b0029c9fe")  # Storage Blob Data Contributor
    assert role["scope"] == f"{account['name']}-id"
    assert role["principalId"] == f"{workspace['name']}-principal"
    for schedule in _schedules(planned).values():
        assert _job(schedule)["identity"] == {"identityType": "Managed"}  # the workspace's identity
