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

from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import resources, storage

from ..checks import Checks
from ..platform import azure as azure_platform
from ._common import ML_API_VERSION, arm_template, child_opts
from .model_environment import content_hash

DRIVER_DIR = Path(__file__).parent / "batch_driver"
DRIVER_SCRIPT = "batch_score.py"
OUTPUT_ACTIONS = ("SummaryOnly", "AppendRow")


@dataclass(frozen=True)
class BatchEndpointArgs:
    """Args of :class:`BatchEndpoint`."""

    resource_group_name: pulumi.Input[str]
    """The workspace's resource group."""
    location: pulumi.Input[str]
    """Azure region of the endpoint and its cluster."""
    workspace_name: str
    """The Azure ML workspace."""
    endpoint_name: str
    """Endpoint name, unique in the region (3-32 letters, digits and '-')."""
    model_id: pulumi.Input[str]
    """The model version the deployment scores with."""
    environment_id: pulumi.Input[str]
    """The Azure ML environment version (image) with the batch runtime packages."""
    identity_id: pulumi.Input[str]
    """User-assigned identity of the compute cluster (pulls the image, reads the model)."""
    storage_account_name: pulumi.Input[str]
    """Where the entry script is uploaded."""
    storage_blob_endpoint: pulumi.Input[str]
    """The storage account's blob endpoint (``https://<account>.blob.core.windows.net/``)."""
    asset_container_name: str
    """The blob container the entry script is uploaded to."""
    deployment_name: str = "default"
    """The one deployment, also the endpoint's default."""
    compute_name: str = "batch-cpu"
    """The compute cluster's name in the workspace (2-16 characters)."""
    vm_size: str = "Standard_DS3_v2"
    """The cluster's node size."""
    min_nodes: int = 0
    """0 scales the cluster to zero when idle."""
    max_nodes: int = 2
    """Largest cluster size (1..100)."""
    idle_seconds_before_scale_down: int = 120
    """Idle time before a node is released (at least 60 s)."""
    instance_count: int = 1
    """Nodes one job uses (at most ``max_nodes``)."""
    mini_batch_size: int = 10
    """Files per call of the entry script (1..10000)."""
    max_concurrency_per_instance: int = 2
    """Parallel entry-script processes per node (1..100)."""
    error_threshold: int = -1
    """Failed files tolerated before the job fails; -1 ignores failures (they are reported per file)."""
    max_retries: int = 3
    """Retries of a failed mini-batch."""
    retry_timeout_seconds: int = 300
    """How long one mini-batch may take."""
    output_action: str = "SummaryOnly"
    """SummaryOnly or AppendRow (the entry script writes its own outputs either way)."""
    environment_variables: dict[str, str] = field(default_factory=dict)
    """Variables of the scoring processes (the container's TWINSERVE_* settings)."""
    wait_for: list[pulumi.Resource] = field(default_factory=list)
    """Resources the cluster and deployment must wait for (e.g. the identity's role assignments)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""


def _check(args: BatchEndpointArgs) -> None:
    check = Checks("BatchEndpointArgs")
    check.that(
        bool(azure_platform.ENDPOINT_NAME.match(args.endpoint_name)),
        "endpoint_name",
        args.endpoint_name,
        azure_platform.NAME_HINT,
    )
    check.that(
        bool(azure_platform.DEPLOYMENT_NAME.match(args.deployment_name)),
        "deployment_name",
        args.deployment_name,
        azure_platform.NAME_HINT,
    )
    check.pattern(
        "compute_name",
        args.compute_name,
        r"[a-zA-Z][a-zA-Z0-9-]{1,15}",
        "must be 2-16 letters, digits and '-', starting with a letter",
    )
    check.pattern("vm_size", args.vm_size, azure_platform.VM_SIZE_PATTERN, azure_platform.VM_SIZE_HINT)
    check.that(
        0 <= args.min_nodes <= args.max_nodes, "min_nodes", args.min_nodes, f"must be 0..max_nodes ({args.max_nodes})"
    )
    check.range("max_nodes", args.max_nodes, 1, 100)
    check.that(
        1 <= args.instance_count <= args.max_nodes,
        "instance_count",
        args.instance_count,
        f"must be 1..max_nodes ({args.max_nodes}): a job cannot use more nodes than the cluster has",
    )
    check.range("mini_batch_size", args.mini_batch_size, 1, 10_000)
    check.range("max_concurrency_per_instance", args.max_concurrency_per_instance, 1, 100)
    check.that(args.error_threshold >= -1, "error_threshold", args.error_threshold, "must be -1 or more")
    check.one_of("output_action", args.output_action, OUTPUT_ACTIONS)
    check.that(
        args.idle_seconds_before_scale_down >= 60,
        "idle_seconds_before_scale_down",
        args.idle_seconds_before_scale_down,
        "must be at least 60 seconds",
    )


class BatchEndpoint(pulumi.ComponentResource):
    """Exposes ``compute``, ``endpoint``, ``deployment`` and ``defaults_update``."""

    def __init__(self, name: str, args: BatchEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:BatchEndpoint", name, None, opts)
        group, workspace, location, tags = args.resource_group_name, args.workspace_name, args.location, args.tags
        identity = ml.ManagedServiceIdentityArgs(type="UserAssigned", user_assigned_identities=[args.identity_id])

        self.compute = ml.Compute(
            f"{name}-cluster",
            resource_group_name=group,
            workspace_name=workspace,
            location=location,
            tags=tags,
            compute_name=args.compute_name,
            identity=identity,
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=args.vm_size,
                    vm_priority="Dedicated",
                    os_type="Linux",
                    remote_login_port_public_access="Disabled",
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=args.min_nodes,
                        max_node_count=args.max_nodes,
                        node_idle_time_before_scale_down=f"PT{args.idle_seconds_before_scale_down}S",
                    ),
                ),
            ),
            opts=child_opts(self, depends_on=args.wait_for),
        )

        # The entry script, uploaded to the asset datastore and registered as a code version.
        driver_files = sorted(p for p in DRIVER_DIR.glob("*.py"))
        code_version = content_hash(DRIVER_DIR, driver_files)
        prefix = f"code/batch-driver/{code_version}"
        blobs = [
            storage.Blob(
                f"{name}-driver-{p.stem.replace('_', '-')}",
                resource_group_name=group,
                account_name=args.storage_account_name,
                container_name=args.asset_container_name,
                blob_name=f"{prefix}/{p.name}",
                type="Block",
                source=pulumi.FileAsset(str(p)),
                opts=child_opts(self, retain_on_delete=True),
            )
            for p in driver_files
        ]
        self.code = ml.CodeVersion(
            f"{name}-driver",
            resource_group_name=group,
            workspace_name=workspace,
            name="twinserve-batch-driver",
            version=code_version,
            # codeUri, "Uri where code is located" (2025-12-01 CodeVersion): the folder's https blob URL,
            # as the azure-ai-ml SDK registers code.
            properties=ml.CodeVersionPropertiesArgs(
                code_uri=pulumi.Output.concat(args.storage_blob_endpoint, args.asset_container_name, "/", prefix, "/"),
                description="twinserve batch entry script",
            ),
            # immutable and named by content: kept in Azure when a new driver replaces it
            opts=child_opts(self, retain_on_delete=True, depends_on=blobs),
        )

        self.endpoint = ml.BatchEndpoint(
            f"{name}-endpoint",
            resource_group_name=group,
            workspace_name=workspace,
            endpoint_name=args.endpoint_name,
            location=location,
            tags=tags,
            properties=ml.BatchEndpointPropertiesArgs(auth_mode="AADToken", description="twinserve batch scoring"),
            opts=child_opts(self, ignore_changes=["properties", "tags"]),
        )
        self.deployment = ml.BatchDeployment(
            f"{name}-{args.deployment_name}",
            resource_group_name=group,
            workspace_name=workspace,
            endpoint_name=args.endpoint_name,
            deployment_name=args.deployment_name,
            location=location,
            tags=tags,
            properties=ml.BatchDeploymentPropertiesArgs(
                compute=self.compute.id,
                model=ml.IdAssetReferenceArgs(reference_type="Id", asset_id=args.model_id),
                environment_id=args.environment_id,
                code_configuration=ml.CodeConfigurationArgs(code_id=self.code.id, scoring_script=DRIVER_SCRIPT),
                resources=ml.DeploymentResourceConfigurationArgs(instance_count=args.instance_count),
                mini_batch_size=args.mini_batch_size,
                max_concurrency_per_instance=args.max_concurrency_per_instance,
                error_threshold=args.error_threshold,
                output_action=args.output_action,
                environment_variables=args.environment_variables or None,
                logging_level="Info",
                retry_settings=ml.BatchRetrySettingsArgs(
                    max_retries=args.max_retries, timeout=f"PT{args.retry_timeout_seconds}S"
                ),
            ),
            opts=child_opts(self, depends_on=[self.endpoint, self.compute, *args.wait_for]),
        )

        template = arm_template(
            {
                "type": "Microsoft.MachineLearningServices/workspaces/batchEndpoints",
                "apiVersion": ML_API_VERSION,
                "name": f"{workspace}/{args.endpoint_name}",
                "location": location,
                "tags": tags,
                "properties": {
                    "authMode": "AADToken",
                    "description": "twinserve batch scoring",
                    "defaults": {"deploymentName": args.deployment_name},
                },
            }
        )
        self.defaults_update = resources.Deployment(
            f"{name}-defaults",
            resource_group_name=group,
            deployment_name=f"{args.endpoint_name}-defaults",
            properties=resources.DeploymentPropertiesArgs(mode="Incremental", template=template),
            opts=child_opts(self, depends_on=[self.endpoint, self.deployment]),
        )

        self.register_outputs(
            {
                "endpoint_id": self.endpoint.id,
                "endpoint_name": args.endpoint_name,
                "deployment_name": args.deployment_name,
                "compute_id": self.compute.id,
            }
        )
