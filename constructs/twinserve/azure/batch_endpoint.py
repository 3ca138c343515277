"""An Azure ML batch endpoint with one deployment on an autoscaling compute cluster.

The compute cluster scales from 0 (no cost when idle) to ``max_nodes``. The deployment runs the
common inference image with a small entry script (``batch_driver/batch_score.py``) that feeds each
mini-batch of files to the container's batch mode. Batch endpoints only take Microsoft Entra
tokens.

The endpoint's default deployment obeys the same ordering rule as online traffic (it may only name
a deployment that exists), so it is set the same way: the endpoint is created without defaults and
an ARM template deployment sets ``defaults.deploymentName`` once the deployment exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import resources, storage
from pulumi_azure_native import machinelearningservices as ml

from ._common import DEPLOYMENT_NAME, ENDPOINT_NAME, arm_template, check, child_opts
from .model_environment import content_hash
from .online_endpoint import ML_API_VERSION

DRIVER_DIR = Path(__file__).parent / "batch_driver"
DRIVER_SCRIPT = "batch_score.py"
OUTPUT_ACTIONS = ("SummaryOnly", "AppendRow")


@dataclass
class BatchEndpointArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    workspace_name: str
    endpoint_name: str
    model_id: pulumi.Input[str]
    environment_id: pulumi.Input[str]
    identity_id: pulumi.Input[str]
    """User-assigned identity of the compute cluster (pulls the image, reads the model)."""
    storage_account_name: pulumi.Input[str]
    asset_container_name: str
    asset_datastore_name: str
    deployment_name: str = "default"
    compute_name: str = "batch-cpu"
    vm_size: str = "Standard_DS3_v2"
    min_nodes: int = 0
    max_nodes: int = 2
    idle_seconds_before_scale_down: int = 120
    instance_count: int = 1
    mini_batch_size: int = 10
    max_concurrency_per_instance: int = 2
    error_threshold: int = -1
    """Failed files tolerated before the job fails; -1 ignores failures (they are reported per file)."""
    max_retries: int = 3
    retry_timeout_seconds: int = 300
    output_action: str = "SummaryOnly"
    wait_for: list[pulumi.Resource] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "BatchEndpointArgs"
        check(bool(ENDPOINT_NAME.match(self.endpoint_name)), owner, "endpoint_name", self.endpoint_name,
              "must be 3-32 letters, digits and '-', starting with a letter")
        check(bool(DEPLOYMENT_NAME.match(self.deployment_name)), owner, "deployment_name", self.deployment_name,
              "must be 3-32 letters, digits and '-', starting with a letter")
        check(bool(re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,15}", self.compute_name)), owner, "compute_name",
              self.compute_name, "must be 2-16 letters, digits and '-', starting with a letter")
        check(self.vm_size.startswith("Standard_"), owner, "vm_size", self.vm_size, "must be an Azure VM size (Standard_...)")
        check(0 <= self.min_nodes <= self.max_nodes, owner, "min_nodes", self.min_nodes,
              f"must be 0..max_nodes ({self.max_nodes})")
        check(1 <= self.max_nodes <= 100, owner, "max_nodes", self.max_nodes, "must be 1..100")
        check(1 <= self.instance_count <= self.max_nodes, owner, "instance_count", self.instance_count,
              f"must be 1..max_nodes ({self.max_nodes}): a job cannot use more nodes than the cluster has")
        check(1 <= self.mini_batch_size <= 10_000, owner, "mini_batch_size", self.mini_batch_size, "must be 1..10000")
        check(1 <= self.max_concurrency_per_instance <= 100, owner, "max_concurrency_per_instance",
              self.max_concurrency_per_instance, "must be 1..100")
        check(self.error_threshold >= -1, owner, "error_threshold", self.error_threshold, "must be -1 or more")
        check(self.output_action in OUTPUT_ACTIONS, owner, "output_action", self.output_action,
              f"must be one of {', '.join(OUTPUT_ACTIONS)}")
        check(self.idle_seconds_before_scale_down >= 60, owner, "idle_seconds_before_scale_down",
              self.idle_seconds_before_scale_down, "must be at least 60 seconds")


class BatchEndpoint(pulumi.ComponentResource):
    """Exposes ``compute``, ``endpoint``, ``deployment`` and ``defaults_update``."""

    def __init__(self, name: str, args: BatchEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:BatchEndpoint", name, None, opts)
        rg, ws, loc, tags = args.resource_group_name, args.workspace_name, args.location, args.tags
        identity = ml.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[args.identity_id])

        self.compute = ml.Compute(
            f"{name}-cluster", resource_group_name=rg, workspace_name=ws, location=loc, tags=tags,
            compute_name=args.compute_name, identity=identity,
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute", disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=args.vm_size, vm_priority="Dedicated", os_type="Linux",
                    remote_login_port_public_access="Disabled",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=args.min_nodes, max_node_count=args.max_nodes,
                        node_idle_time_before_scale_down=f"PT{args.idle_seconds_before_scale_down}S"))),
            opts=child_opts(self, depends_on=args.wait_for))

        # The entry script, uploaded to the asset datastore and registered as a code version.
        driver_files = sorted(p for p in DRIVER_DIR.glob("*.py"))
        code_version = content_hash(DRIVER_DIR, driver_files)
        prefix = f"code/batch-driver/{code_version}"
        blobs = [storage.Blob(
            f"{name}-driver-{p.stem.replace('_', '-')}", resource_group_name=rg,
            account_name=args.storage_account_name, container_name=args.asset_container_name,
            blob_name=f"{prefix}/{p.name}", type="Block", source=pulumi.FileAsset(str(p)),
            opts=child_opts(self, retain_on_delete=True)) for p in driver_files]
        self.code = ml.CodeVersion(
            f"{name}-driver", resource_group_name=rg, workspace_name=ws, name="twinserve-batch-driver",
            version=code_version,
            properties=ml.CodeVersionPropertiesArgs(
                code_uri=f"azureml://datastores/{args.asset_datastore_name}/paths/{prefix}/",
                description="twinserve batch entry script"),
            opts=child_opts(self, depends_on=blobs))

        self.endpoint = ml.BatchEndpoint(
            f"{name}-endpoint", resource_group_name=rg, workspace_name=ws, endpoint_name=args.endpoint_name,
            location=loc, tags=tags,
            properties=ml.BatchEndpointPropertiesArgs(auth_mode="AADToken", description="twinserve batch scoring"),
            opts=child_opts(self, ignore_changes=["properties", "tags"]))
        self.deployment = ml.BatchDeployment(
            f"{name}-{args.deployment_name}", resource_group_name=rg, workspace_name=ws,
            endpoint_name=args.endpoint_name, deployment_name=args.deployment_name, location=loc, tags=tags,
            properties=ml.BatchDeploymentPropertiesArgs(
                compute=self.compute.id,
                model=ml.IdAssetReferenceArgs(reference_type="Id", asset_id=args.model_id),
                environment_id=args.environment_id,
                code_configuration=ml.CodeConfigurationArgs(code_id=self.code.id, scoring_script=DRIVER_SCRIPT),
                resources=ml.DeploymentResourceConfigurationArgs(instance_count=args.instance_count),
                mini_batch_size=args.mini_batch_size,
                max_concurrency_per_instance=args.max_concurrency_per_instance,
                error_threshold=args.error_threshold, output_action=args.output_action,
                logging_level="Info",
                retry_settings=ml.BatchRetrySettingsArgs(max_retries=args.max_retries,
                                                         timeout=f"PT{args.retry_timeout_seconds}S")),
            opts=child_opts(self, depends_on=[self.endpoint, self.compute, *args.wait_for]))

        template = arm_template({
            "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
            "apiVersion": ML_API_VERSION,
            "name": f"{ws}/{args.endpoint_name}",
            "location": loc,
            "tags": tags,
            "properties": {"authMode": "AADToken", "description": "twinserve batch scoring",
                           "defaults": {"deploymentName": args.deployment_name}},
        })
        self.defaults_update = resources.Deployment(
            f"{name}-defaults", resource_group_name=rg, deployment_name=f"{args.endpoint_name}-defaults",
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=child_opts(self, depends_on=[self.endpoint, self.deployment]))

        self.register_outputs({
            "endpoint_id": self.endpoint.id, "endpoint_name": args.endpoint_name,
            "deployment_name": args.deployment_name, "compute_id": self.compute.id,
        })
