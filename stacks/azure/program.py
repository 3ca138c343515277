"""The Pulumi program: one environment of the spec on Azure ML. Stack name = environment.

Config (``Pulumi.<env>.yaml``) holds only Azure-only settings:
  azure-native:location       where everything is created
  twinserve:spec              path of the deployment spec (default: deploy/twinserve.yaml)
  twinserve:namePrefix        optional: prefix of globally unique names (default <spec name><env>)
  twinserve:budgetStartDate   optional: first day of the budget, YYYY-MM-01 (default: the current month,
                              which is what Azure accepts at creation; later runs never change it)

How the spec maps onto the components (see docs/azure.md):
  serving.variants      -> one deployment per variant on every online endpoint, traffic = weights
  serving.shadow        -> a deployment on the managed endpoint receiving mirror traffic
  azure.online_endpoints-> a managed and/or a Kubernetes (AKS) online endpoint
  serving.batch         -> the batch deployment's settings (the batch endpoint is always planned:
                           its cluster scales to zero, so it costs nothing while idle)
  container             -> the serving environment (online deployments) and the batch environment
                           (Dockerfile.azureml-batch, or azure_batch_image_uri, or image_uri)
  scaling               -> autoscale of the managed deployments
  alarms                -> latency and 5xx alerts to an action group with the e-mails
  budget                -> a monthly consumption budget on the environment's resource group
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, resources

from twinserve.azure import (AksInferenceCluster, AksInferenceClusterArgs, AlertRules, AutoscaleRules,
                             AutoscaleTarget, BatchEndpoint, BatchEndpointArgs, CostBudget, CostBudgetArgs,
                             EndpointMonitoring, EndpointMonitoringArgs, InferenceRoutes, MlWorkspace,
                             MlWorkspaceArgs, ModelEnvironment, ModelEnvironmentArgs, OnlineDeploymentSettings,
                             OnlineEndpoint, OnlineEndpointArgs)
from twinserve.spec import DeploymentSpec, load_spec
from twinserve.spec.rules import AZURE_BATCH_DOCKERFILE

from ..container_settings import container_environment

DEFAULT_SPEC = "deploy/twinserve.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_INSTANCE_TYPE = "defaultinstancetype"
"""The instance type the AzureML extension creates on the cluster (1 CPU / 2 GiB by default)."""


def default_name_prefix(spec: DeploymentSpec, env_name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", f"{spec.name}{env_name}".lower())[:16]


def build_environment(spec: DeploymentSpec, env_name: str, *, location: str, spec_dir: Path,
                      name_prefix: str | None = None, budget_start_date: str | None = None) -> None:
    """Declare every Azure resource of one environment."""
    env = spec.environment(env_name)
    if "azure" not in env.targets:
        return
    prod = env_name == "prod"
    prefix = name_prefix or default_name_prefix(spec, env_name)
    tags = {"twinserve:deployment": spec.name, "twinserve:environment": env_name}
    azure, serving, compute = env.azure, env.serving, env.compute
    client = authorization.get_client_config_output()

    # In prod the group is protected and retained too: deleting a resource group deletes everything
    # in it, which would defeat the retained storage and registry.
    group_name = f"rg-{spec.name}-{env_name}"
    group = resources.ResourceGroup(
        f"{spec.name}-{env_name}-rg", resource_group_name=group_name, location=location, tags=tags,
        opts=pulumi.ResourceOptions(protect=prod, retain_on_delete=prod))

    workspace = MlWorkspace(f"{spec.name}-{env_name}", MlWorkspaceArgs(
        resource_group_name=group.name, location=location, tenant_id=client.tenant_id, name_prefix=prefix,
        purge_protection=prod, keep_data=prod, public_network_access=azure.public_network_access,
        managed_network=azure.managed_network,
        registry_sku="Standard" if azure.public_network_access else "Premium", tags=tags))

    # ---- model, environment (the common image) and the serving identity
    model_dir = (spec_dir / spec.model.artifact.path).resolve()  # rules guarantee a path for Azure
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model.artifact.path: {model_dir} does not exist (build it with "
                                "`python model_containers/sample_model/build_sample_model.py --out build/sample-model`)")
    container = spec.container
    served = [*serving.variants, *([serving.shadow] if serving.shadow else [])]
    pinned = sorted({spec.model_version_of(v) for v in served} - {spec.model.version}, key=int)
    assets = ModelEnvironment(f"{spec.name}-{env_name}-model", ModelEnvironmentArgs(
        resource_group_name=group.name, location=location, subscription_id=client.subscription_id,
        workspace_name=workspace.workspace_name, workspace_id=workspace.workspace.id,
        storage_account_name=workspace.storage_account.name, storage_account_id=workspace.storage_account.id,
        asset_container_name=workspace.asset_container_name, asset_datastore_name=workspace.asset_datastore_name,
        registry_id=workspace.registry.id, model_name=spec.model.name, model_version=spec.model.version,
        model_dir=model_dir, pinned_model_versions=pinned, environment_name=f"{spec.name}-serving",
        identity_name=f"{prefix}-serving-id",
        routes=InferenceRoutes(port=container.port, liveness_path=container.liveness_path,
                               readiness_path=container.readiness_path, scoring_path=container.scoring_path),
        image_uri=container.image_uri,
        build_context=(spec_dir / container.build).resolve() if container.build else None,
        # Azure ML's batch runtime needs azureml-core and azureml-dataset-runtime[fuse] in the image:
        # its own environment, built from Dockerfile.azureml-batch in the same context, or the
        # pre-built azure_batch_image_uri. With image_uri alone, batch runs image_uri (docs/azure.md).
        batch_environment_name=(f"{spec.name}-batch" if container.build or container.azure_batch_image_uri
                                else None),
        batch_dockerfile=AZURE_BATCH_DOCKERFILE, batch_image_uri=container.azure_batch_image_uri,
        keep_data=prod, tags=tags),
        opts=pulumi.ResourceOptions(depends_on=[workspace]))

    # ---- AKS inference cluster (only when a Kubernetes endpoint is wanted)
    cluster = None
    if "kubernetes" in azure.online_endpoints:
        aks = azure.aks
        cluster = AksInferenceCluster(f"{spec.name}-{env_name}-inference", AksInferenceClusterArgs(
            resource_group_name=group.name, location=location, workspace_name=workspace.workspace_name,
            cluster_name=f"{prefix}-aks", node_count=aks.node_count, vm_size=aks.vm_size,
            vcpus_per_node=aks.vcpus_per_node, autoscale_min_nodes=aks.autoscale_min_nodes,
            autoscale_max_nodes=aks.autoscale_max_nodes, sku_tier="Standard" if prod else "Free",
            # The inference router listens on a private IP in the cluster's network; TLS would need a
            # certificate and a DNS name (ssl_cname / ssl_cert_pem / ssl_key_pem on the component).
            internal_load_balancer=True, allow_insecure_connections=True, tags=tags),
            opts=pulumi.ResourceOptions(depends_on=[workspace]))

    # ---- online endpoints: a deployment per variant, traffic from the weights, mirror to the shadow
    autoscale = env.scaling.enabled
    endpoints: dict[str, OnlineEndpoint] = {}
    for kind in azure.online_endpoints:
        managed = kind == "managed"

        def deployment(name: str, version: str, count: int | None) -> OnlineDeploymentSettings:
            return OnlineDeploymentSettings(
                name=name, model_id=assets.model_ids[version], environment_id=assets.environment_id,
                instance_type=compute.azure_instance_type if managed else KUBERNETES_INSTANCE_TYPE,
                instance_count=count or compute.instance_count,
                request_timeout_ms=serving.request_timeout_seconds * 1000,
                max_concurrent_requests_per_instance=serving.max_concurrent_requests_per_instance,
                environment_variables=container_environment(env, "azure"),
                autoscaled=managed and autoscale)

        deployments = [deployment(v.name, spec.model_version_of(v), v.instance_count) for v in serving.variants]
        mirror: dict[str, int] = {}
        if managed and serving.shadow is not None:
            shadow = serving.shadow
            deployments.append(deployment(shadow.name, spec.model_version_of(shadow), shadow.instance_count))
            mirror = {shadow.name: shadow.sample_percent}
        short = "managed" if managed else "k8s"
        endpoints[short] = OnlineEndpoint(f"{spec.name}-{env_name}-{short}", OnlineEndpointArgs(
            resource_group_name=group.name, location=location, workspace_name=workspace.workspace_name,
            endpoint_name=f"{prefix}-{short}", kind=kind, identity_id=assets.identity.id,
            compute_id=None if managed else cluster.compute.id,  # type: ignore[union-attr]
            deployments=deployments, traffic={v.name: v.weight for v in serving.variants}, mirror_traffic=mirror,
            auth_mode=azure.auth_mode, public_network_access=azure.public_network_access,
            log_analytics_id=workspace.log_analytics.id, wait_for=list(assets.role_assignments), tags=tags),
            opts=pulumi.ResourceOptions(depends_on=[assets] + ([cluster] if cluster and not managed else [])))

    # ---- batch endpoint on a compute cluster that scales to zero
    batch = serving.batch
    BatchEndpoint(f"{spec.name}-{env_name}-batch", BatchEndpointArgs(
        resource_group_name=group.name, location=location, workspace_name=workspace.workspace_name,
        endpoint_name=f"{prefix}-batch", model_id=assets.model_ids[spec.model.version],
        environment_id=assets.batch_environment_id, identity_id=assets.identity.id,
        storage_account_name=workspace.storage_account.name, asset_container_name=workspace.asset_container_name,
        asset_datastore_name=workspace.asset_datastore_name, vm_size=azure.batch_vm_size,
        max_nodes=azure.batch_max_nodes, instance_count=batch.instance_count,
        mini_batch_size=batch.mini_batch_size, max_concurrency_per_instance=batch.max_concurrent_transforms,
        wait_for=list(assets.role_assignments), tags=tags),
        opts=pulumi.ResourceOptions(depends_on=[assets]))

    # ---- autoscale and alerts
    alarms, scaling = env.alarms, env.scaling
    targets = []
    if autoscale and "managed" in endpoints:
        managed_endpoint = endpoints["managed"]
        targets = [AutoscaleTarget(name=n, deployment_id=d.id, endpoint_id=managed_endpoint.endpoint_id)
                   for n, d in managed_endpoint.deployments.items()]
    EndpointMonitoring(f"{spec.name}-{env_name}-monitoring", EndpointMonitoringArgs(
        resource_group_name=group.name, location=location, action_group_name=f"{prefix}-alerts",
        emails=list(alarms.emails), endpoints={f"{prefix}-{k}": e.endpoint_id for k, e in endpoints.items()},
        alerts=AlertRules(latency_p99_ms=alarms.model_latency_p99_ms, errors_5xx=alarms.errors_5xx,
                          period_seconds=alarms.period_seconds, evaluation_periods=alarms.evaluation_periods,
                          severity=1 if prod else 2),
        autoscale_targets=targets,
        autoscale=AutoscaleRules(
            min_instances=scaling.min_instances, max_instances=scaling.max_instances,
            default_instances=min(max(compute.instance_count, scaling.min_instances), scaling.max_instances),
            cpu_scale_out_percent=scaling.cpu_scale_out_percent, cpu_scale_in_percent=scaling.cpu_scale_in_percent,
            latency_scale_out_ms=scaling.latency_scale_out_ms,
            scale_out_cooldown_seconds=max(60, scaling.scale_out_cooldown_seconds),
            scale_in_cooldown_seconds=max(60, scaling.scale_in_cooldown_seconds)) if autoscale else None,
        tags=tags),
        opts=pulumi.ResourceOptions(depends_on=list(endpoints.values())))

    # ---- cost ceiling
    if env.budget is not None:
        start = budget_start_date or datetime.date.today().replace(day=1).isoformat()
        CostBudget(f"{spec.name}-{env_name}-cost", CostBudgetArgs(
            scope=pulumi.Output.concat("/subscriptions/", client.subscription_id, "/resourceGroups/", group.name),
            budget_name=f"{spec.name}-{env_name}-monthly", monthly_amount=env.budget.monthly_limit_usd,
            emails=list(alarms.emails), start_date=start, notify_at_percent=list(env.budget.notify_at_percent)))

    pulumi.export("resource_group", group.name)
    pulumi.export("workspace_name", workspace.workspace_name)
    pulumi.export("online_endpoints", {k: f"{prefix}-{k}" for k in endpoints})
    pulumi.export("batch_endpoint", f"{prefix}-batch")
    pulumi.export("environment_version", assets.environment_version)
    pulumi.export("batch_environment_version", assets.batch_environment_version)


def main() -> None:
    env_name = pulumi.get_stack()
    config = pulumi.Config("twinserve")
    spec_path = Path(config.get("spec") or DEFAULT_SPEC)
    if not spec_path.is_absolute():
        spec_path = REPO_ROOT / spec_path
    location = pulumi.Config("azure-native").require("location")
    build_environment(load_spec(spec_path), env_name, location=location, spec_dir=spec_path.parent,
                      name_prefix=config.get("namePrefix"), budget_start_date=config.get("budgetStartDate"))
