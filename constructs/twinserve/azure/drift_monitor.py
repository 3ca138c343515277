"""A scheduled drift check of online endpoints' collected payloads, run by the serving image itself.

Mechanism (the same check, baseline and thresholds as on AWS; no Azure SDK in the image):

* The online deployments log request payloads with Azure ML's data collector (``OnlineDeploymentSettings.
  payload_collection_percent``) to the workspace's default blob datastore,
  ``modelDataCollector/<endpoint>/<deployment>/request/yyyy/MM/dd/HH/*.jsonl``.
* Per endpoint, an Azure ML **schedule** runs a command job with the serving ML environment (the common
  image): ``python -m twinserve_serving drift --fail-on-drift`` on the endpoint's collected folder (mounted
  read-only) and the baseline (a blob in twinserve's asset container), writing ``drift.json`` and
  ``drift-report.md`` to ``drift-reports/<endpoint>/<job name>/`` there. On serverless compute: nothing
  runs between checks.
* The job fails when a feature drifted (exit 3) or the check could not run; a metric alert on the
  workspace's ``Failed Runs`` for the check's experiment notifies a drift action group (the environment's
  e-mails, plus with a retraining webhook its URL). Its description points at the report, which says which.
* A storage lifecycle policy deletes collected payloads and reports after ``retention_days``.

https://learn.microsoft.com/azure/machine-learning/how-to-collect-production-data (payload logging),
https://learn.microsoft.com/azure/machine-learning/how-to-schedule-pipeline-job (job schedules),
https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-machinelearningservices-workspaces-metrics
(``Failed Runs`` with the ``ExperimentName`` dimension).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, monitor, storage
from pulumi_azure_native import machinelearningservices as ml

from ..checks import Checks
from ..platform import azure as azure_platform
from ._common import ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR, child_opts, role_definition

RESULTS_FILE = "drift.json"
"""The machine-readable results the container writes (``twinserve_serving.drift``)."""


@dataclass(frozen=True)
class DriftTrigger:
    """When the check runs: an Azure ML recurrence (``frequency`` + ``interval``) or a 5-field cron."""

    frequency: str | None = None
    """``Hour`` or ``Day`` (with ``interval``)."""
    interval: int | None = None
    """How many ``frequency`` units between checks."""
    cron: str | None = None
    """NCronTab, 5 fields, UTC."""


@dataclass
class DriftMonitorArgs:
    """Args of :class:`DriftMonitor`."""

    resource_group_name: pulumi.Input[str]
    """The environment's resource group."""
    workspace_name: pulumi.Input[str]
    """The Azure ML workspace the schedules run in."""
    workspace_id: pulumi.Input[str]
    """ARM id of the workspace (scope of the alert)."""
    workspace_guid: pulumi.Input[str]
    """The workspace's ``workspace_id`` GUID: its default blob container is ``azureml-blobstore-<guid>``."""
    storage_account_name: pulumi.Input[str]
    """The workspace's storage account (payloads, baseline, reports; its lifecycle policy)."""
    storage_account_id: pulumi.Input[str]
    """Its ARM id (scope of the check identity's data role)."""
    subscription_id: pulumi.Input[str]
    """For the role definition id."""
    workspace_principal_id: pulumi.Input[str]
    """The workspace's system-assigned identity, which the checks run as: it gets Storage Blob Data
    Contributor on the account (read the collected payloads and the baseline, write the reports through
    the identity-based datastores)."""
    asset_container_name: str
    """twinserve's container in the workspace storage (baseline, reports)."""
    asset_datastore_name: str
    """The datastore over ``asset_container_name``."""
    environment_id: pulumi.Input[str]
    """The serving ML environment version (the common image)."""
    endpoint_names: list[str]
    """The online endpoints whose collected payloads are checked (one schedule each)."""
    baseline_file: Path
    """The baseline document (``twinserve.drift_baseline``)."""
    trigger: DriftTrigger
    """When the checks run."""
    window_hours: int = 24
    """Only payloads collected this many hours before the check are compared."""
    retention_days: int = 90
    """Collected payloads and reports are deleted after this many days."""
    emails: list[str] = field(default_factory=list)
    """Notified by the drift action group."""
    action_group_name: str = "drift"
    """Name of the drift action group (apart from the latency/error alerts': a webhook fires on drift only)."""
    retrain_webhook_url: pulumi.Input[str] | None = None
    """Called by the drift action group (a secret: webhook URLs carry keys)."""
    instance_type: str = "Standard_DS3_v2"
    """Serverless compute VM size of the check."""
    timeout_minutes: int = 60
    """Longest a check may run."""
    severity: int = 2
    """Azure Monitor severity of the alert (0 critical .. 4 verbose)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""


def _check(args: DriftMonitorArgs) -> None:
    check = Checks("DriftMonitorArgs")
    check.that(bool(args.endpoint_names), "endpoint_names", args.endpoint_names, "name at least one online endpoint")
    check.that(args.baseline_file.is_file(), "baseline_file", str(args.baseline_file), "must be an existing file")
    trigger = args.trigger
    if trigger.cron is None:
        check.one_of("trigger.frequency", trigger.frequency, ("Hour", "Day"))
        check.range("trigger.interval", trigger.interval, 1, 1000)
    else:
        check.that(len(trigger.cron.split()) == 5, "trigger.cron", trigger.cron, "a 5-field cron expression")
    check.range("window_hours", args.window_hours, 1, 24 * 31, " h")
    check.range("retention_days", args.retention_days, 1, 3650, " days")
    check.range("timeout_minutes", args.timeout_minutes, 1, 24 * 60, " min")
    check.range("severity", args.severity, 0, 4)
    for name in args.endpoint_names:
        check.that(bool(azure_platform.ENDPOINT_NAME.match(name)), "endpoint_names", name, azure_platform.NAME_HINT)


class DriftMonitor(pulumi.ComponentResource):
    """Exposes ``schedules`` and ``alerts`` (endpoint -> resource), ``action_group``, ``baseline_uri``."""

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:DriftMonitor", name, None, opts)
        _check(args)
        self._name, self.args = name, args
        digest = hashlib.sha256(args.baseline_file.read_bytes()).hexdigest()[:16]
        # one blob per baseline content: a new reference dataset is a new blob, and a new schedule input
        baseline_blob = f"drift/baselines/{digest}/baseline.json"
        self.baseline = storage.Blob(
            f"{name}-baseline",
            resource_group_name=args.resource_group_name,
            account_name=args.storage_account_name,
            container_name=args.asset_container_name,
            blob_name=baseline_blob,
            type="Block",
            content_type="application/json",
            source=pulumi.FileAsset(str(args.baseline_file)),
            # like the model files: a new baseline removes the old blob from the program, Azure keeps it
            opts=child_opts(self, retain_on_delete=True),
        )
        self.baseline_uri = f"azureml://datastores/{args.asset_datastore_name}/paths/{baseline_blob}"
        self.action_group = monitor.ActionGroup(
            f"{name}-actions",
            resource_group_name=args.resource_group_name,
            location="global",
            action_group_name=args.action_group_name,
            group_short_name=re.sub(r"[^a-zA-Z0-9]", "", args.action_group_name)[:12],
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{i}", email_address=e, use_common_alert_schema=True
                )
                for i, e in enumerate(args.emails)
            ],
            webhook_receivers=[
                monitor.WebhookReceiverArgs(
                    name="retrain", service_uri=args.retrain_webhook_url, use_common_alert_schema=True
                )
            ]
            if args.retrain_webhook_url is not None
            else None,
            tags=args.tags,
            opts=child_opts(self),
        )
        self.data_role = authorization.RoleAssignment(
            f"{name}-blobdata",
            scope=args.storage_account_id,
            principal_id=args.workspace_principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition(args.subscription_id, ROLE_STORAGE_BLOB_DATA_CONTRIBUTOR),
            opts=child_opts(self),
        )
        self.schedules = {endpoint: self._schedule(endpoint) for endpoint in args.endpoint_names}
        self.alerts = {endpoint: self._alert(endpoint) for endpoint in args.endpoint_names}
        self.lifecycle = self._lifecycle()
        self.register_outputs(
            {"baseline_uri": self.baseline_uri, "schedules": {e: s.name for e, s in self.schedules.items()}}
        )

    @staticmethod
    def experiment_name(endpoint: str) -> str:
        """The experiment the checks of ``endpoint`` run in (the alert's dimension)."""
        return f"twinserve-drift-{endpoint}"

    def _schedule(self, endpoint: str) -> ml.Schedule:
        args = self.args
        trigger = args.trigger
        job = ml.CommandJobArgs(
            job_type="Command",
            experiment_name=self.experiment_name(endpoint),
            display_name=f"drift check of {endpoint}",
            environment_id=args.environment_id,
            command=(
                "python -m twinserve_serving drift --baseline ${{inputs.baseline}} --capture ${{inputs.capture}} "
                f"--output ${{{{outputs.report}}}} --since-hours {args.window_hours} --fail-on-drift"
            ),
            inputs={
                "baseline": ml.UriFileJobInputArgs(job_input_type="uri_file", uri=self.baseline_uri, mode="Download"),
                "capture": ml.UriFolderJobInputArgs(
                    job_input_type="uri_folder",
                    uri=f"azureml://datastores/{azure_platform.DEFAULT_BLOB_DATASTORE}/paths/"
                    f"{azure_platform.PAYLOAD_COLLECTION_FOLDER}/{endpoint}/",
                    mode="ReadOnlyMount",
                ),
            },
            outputs={
                "report": ml.UriFolderJobOutputArgs(
                    job_output_type="uri_folder",
                    uri=f"azureml://datastores/{args.asset_datastore_name}/paths/drift-reports/{endpoint}/${{{{name}}}}/",
                    mode="ReadWriteMount",
                )
            },
            # serverless compute, run as the workspace's managed identity (it reads its own datastores)
            identity=ml.ManagedIdentityArgs(identity_type="Managed"),
            resources=ml.JobResourceConfigurationArgs(instance_type=args.instance_type, instance_count=1),
            limits=ml.CommandJobLimitsArgs(job_limits_type="Command", timeout=f"PT{args.timeout_minutes}M"),
            tags={"twinserve:endpoint": endpoint},
        )
        return ml.Schedule(
            f"{self._name}-{endpoint}-schedule",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            name=f"{endpoint}-drift",
            properties=ml.SchedulePropertiesArgs(
                action=ml.JobScheduleActionArgs(action_type="CreateJob", job_definition=job),
                trigger=ml.CronTriggerArgs(trigger_type="Cron", expression=trigger.cron, time_zone="UTC")
                if trigger.cron is not None
                else ml.RecurrenceTriggerArgs(
                    trigger_type="Recurrence", frequency=trigger.frequency, interval=trigger.interval, time_zone="UTC"
                ),
                description=f"twinserve drift check of {endpoint}'s collected requests (docs/drift.md)",
                is_enabled=True,
                tags=args.tags,
            ),
            opts=child_opts(self, depends_on=[self.baseline, self.data_role]),
        )

    def _alert(self, endpoint: str) -> monitor.MetricAlert:
        args = self.args
        return monitor.MetricAlert(
            f"{self._name}-{endpoint}-alert",
            resource_group_name=args.resource_group_name,
            rule_name=f"{endpoint}-drift",
            location="global",
            description=(
                f"The drift check of {endpoint} failed: a feature drifted (drift.json status 'drift') or the check "
                f"could not run. Read drift-reports/{endpoint}/<job>/ in the {args.asset_container_name} container "
                "and the job's log in the experiment (docs/drift.md)."
            ),
            severity=args.severity,
            enabled=True,
            scopes=[args.workspace_id],
            evaluation_frequency="PT15M",
            window_size="PT1H",
            auto_mitigate=True,
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[
                    monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion",
                        name="failed-drift-checks",
                        metric_namespace="Microsoft.MachineLearningServices/workspaces",
                        metric_name="Failed Runs",
                        dimensions=[
                            monitor.MetricDimensionArgs(
                                name="ExperimentName", operator="Include", values=[self.experiment_name(endpoint)]
                            )
                        ],
                        operator="GreaterThan",
                        threshold=0,
                        time_aggregation="Total",
                    )
                ],
            ),
            actions=[monitor.MetricAlertActionArgs(action_group_id=self.action_group.id)],
            tags=args.tags,
            opts=child_opts(self),
        )

    def _lifecycle(self) -> storage.ManagementPolicy:
        """Deletes collected payloads and reports after ``retention_days`` (the account's one policy)."""
        args = self.args
        collected = pulumi.Output.concat(
            "azureml-blobstore-", args.workspace_guid, f"/{azure_platform.PAYLOAD_COLLECTION_FOLDER}/"
        )
        reports = f"{args.asset_container_name}/drift-reports/"
        return storage.ManagementPolicy(
            f"{self._name}-retention",
            resource_group_name=args.resource_group_name,
            account_name=args.storage_account_name,
            management_policy_name="default",
            policy=storage.ManagementPolicySchemaArgs(
                rules=[
                    storage.ManagementPolicyRuleArgs(
                        name="expire-drift-data",
                        enabled=True,
                        type="Lifecycle",
                        definition=storage.ManagementPolicyDefinitionArgs(
                            filters=storage.ManagementPolicyFilterArgs(
                                blob_types=["blockBlob", "appendBlob"], prefix_match=[collected, reports]
                            ),
                            actions=storage.ManagementPolicyActionArgs(
                                base_blob=storage.ManagementPolicyBaseBlobArgs(
                                    delete=storage.DateAfterModificationArgs(
                                        days_after_modification_greater_than=args.retention_days
                                    )
                                )
                            ),
                        ),
                    )
                ]
            ),
            opts=child_opts(self),
        )
