"""The Pulumi program: one environment of the spec on Azure ML. Stack name = environment.

Config (``Pulumi.<env>.yaml``) holds only Azure-only settings:
  azure-native:location       where everything is created
  twinserve:spec              path of the deployment spec (default: deploy/twinserve.yaml)
  twinserve:namePrefix        optional: prefix of globally unique names (default <spec name><env>)
  twinserve:budgetStartDate   optional: first day of the budget, YYYY-MM-01 (default: the current month,
                              which is what Azure accepts at creation; later runs never change it)
  twinserve:drainedLocations  optional, comma-separated locations of azure.locations whose Front Door origin
                              is disabled: the failover and fail-back switch (docs/azure.md, "Disaster recovery")
  twinserve:subscriptionActivityLog  optional, true/false (default false): send the subscription's activity
                              log to the environment's Log Analytics workspace. Subscription-scoped and
                              outliving the environment, so only the stack that owns the subscription sets it

How the spec maps onto the components (see docs/azure.md), one step of :class:`AzureEnvironment` each:
  serving.variants      -> online_endpoints: one deployment per variant on every online endpoint,
                           traffic = weights
  serving.shadow        -> online_endpoints: a deployment on the managed endpoint receiving mirror traffic
  azure.online_endpoints-> online_endpoints: a managed and/or a Kubernetes (AKS) online endpoint
  azure.aks             -> inference_cluster
  azure.api_management  -> api_front: an API Management service and API in front of the managed endpoint,
                           calling it with its managed identity (aad_token); only when enabled
  azure.public_network_access (unset: the environment policy, private in prod)
                        -> private_network: a virtual network, private endpoints of workspace, storage,
                           key vault and registry, private DNS zones; the workspace's managed network;
                           the managed endpoint's public access off; the AKS API server restricted
  serving.batch         -> batch_endpoint: the batch deployment's settings (the batch endpoint is always
                           planned: its cluster scales to zero, so it costs nothing while idle)
  container             -> model_and_images: the serving ML environment (online deployments) and the
                           batch ML environment (Dockerfile.azureml-batch, or azure_batch_image_uri, or image_uri)
  scaling               -> monitoring: autoscale of the managed endpoint's live deployments
  alarms                -> monitoring: latency and 5xx alerts to an action group with the e-mails
  budget                -> budget: a monthly consumption budget on the environment's resource group
  azure.locations       -> secondary_locations + global_front: for each location after the first (the stack's
                           own), a resource group, workspace, model/ML environment, managed endpoint, autoscale
                           and alerts (serving_location); an Azure Front Door in front of every location's
                           managed endpoint, priority routing in the spec's order (front_door). Drained
                           locations (twinserve:drainedLocations) take no traffic
"""

from __future__ import annotations

import copy
import datetime
import re
from pathlib import Path

import pulumi
from pulumi_azure_native import authorization, monitor, resources

from twinserve.azure import (
    AksGpuPoolArgs,
    AksInferenceCluster,
    AksInferenceClusterArgs,
    AlertRules,
    ApiFront,
    ApiFrontArgs,
    AutoscaleRules,
    AutoscaleTarget,
    BatchEndpoint,
    BatchEndpointArgs,
    CostBudget,
    CostBudgetArgs,
    EndpointMonitoring,
    EndpointMonitoringArgs,
    InferenceRoutes,
    MlWorkspace,
    MlWorkspaceArgs,
    ModelEnvironment,
    ModelEnvironmentArgs,
    OnlineDeploymentSettings,
    OnlineEndpoint,
    OnlineEndpointArgs,
    PrivateEndpointTarget,
    PrivateNetwork,
    PrivateNetworkArgs,
    TargetUtilizationScaling,
)
from twinserve.azure.drift_monitor import DriftMonitor, DriftMonitorArgs, DriftTrigger
from twinserve.azure.front_door import FrontDoorOrigin, GlobalFront, GlobalFrontArgs
from twinserve.azure.image_import import SOURCE_IMAGE_HINT, SOURCE_IMAGE_PATTERN, ImportedImage, ImportedImageArgs
from twinserve.azure.serving_location import ServingLocation, ServingLocationArgs
from twinserve.platform import azure as azure_platform
from twinserve.platform.azure import KUBERNETES_DEFAULT_INSTANCE_TYPE, KUBERNETES_GPU_INSTANCE_TYPE
from twinserve.spec import DeploymentSpec, SpecError, SpecIssue, load_spec
from twinserve.spec.models import ShadowSpec, VariantSpec
from twinserve.spec.rules import AZURE_BATCH_DOCKERFILE, azure_network_issues

from ..container_settings import container_environment
from ..deploy_inputs import apply_deploy_inputs, load_deploy_inputs
from ..environment_policy import EnvironmentPolicy
from ..model_image import resolve_model_image
from ..monitoring import drift_baseline_file, drift_window_hours
from ..tags import environment_tags

DEFAULT_SPEC = "deploy/twinserve.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT_SHORT_NAMES = {"managed": "managed", "kubernetes": "k8s"}
"""The online endpoint kinds' part of logical and Azure names (``<prefix>-managed``, ``<prefix>-k8s``)."""


ACTIVITY_LOG_CONFIG = "subscriptionActivityLog"
"""Stack config (``twinserve:subscriptionActivityLog``): this stack owns the subscription's activity-log export."""
SOURCE_IMAGE_CONFIG = "sourceImage"
"""Stack config (``twinserve:sourceImage``) naming the image to import instead of building (the pipeline sets it)."""
DRAINED_LOCATIONS_CONFIG = "drainedLocations"
"""Stack config (``twinserve:drainedLocations``): locations whose Front Door origin is disabled (failover)."""
FRONT_PROBE_INTERVAL_SECONDS = 30
"""Front Door's health probe interval per edge (Front Door's default)."""


def secondary_name_prefix(prefix: str, location: str) -> str:
    """The globally unique names' prefix of a secondary location: the environment's prefix, cut so that the
    location's code fits the 16 characters storage account and registry names leave
    (``twinserveprod`` + northeurope -> ``twinservepnrthb9``)."""
    code = azure_platform.location_code(location)
    return prefix[: 16 - len(code)] + code


def default_name_prefix(spec: DeploymentSpec, env_name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", f"{spec.name}{env_name}".lower())[:16]


def build_environment(
    spec: DeploymentSpec,
    env_name: str,
    *,
    location: str,
    spec_dir: Path,
    name_prefix: str | None = None,
    budget_start_date: str | None = None,
) -> None:
    """Declare every Azure resource of one environment (nothing when it does not target azure)."""
    if "azure" in spec.environment(env_name).targets:
        AzureEnvironment(
            spec,
            env_name,
            location=location,
            spec_dir=spec_dir,
            name_prefix=name_prefix,
            budget_start_date=budget_start_date,
        ).build()


class AzureEnvironment:
    """One environment's Azure resources, declared step by step from the spec."""

    def __init__(
        self,
        spec: DeploymentSpec,
        env_name: str,
        *,
        location: str,
        spec_dir: Path,
        name_prefix: str | None,
        budget_start_date: str | None,
    ) -> None:
        self.spec, self.env_name, self.location, self.spec_dir = spec, env_name, location, spec_dir
        self.environment_spec = spec.environment(env_name)
        self.policy = EnvironmentPolicy(env_name)
        self.prefix = name_prefix or default_name_prefix(spec, env_name)
        self.logical = f"{spec.name}-{env_name}"
        """Prefix of logical names."""
        self.budget_start_date = budget_start_date
        self.tags = environment_tags(spec, env_name)
        self.client = authorization.get_client_config_output()
        azure = self.environment_spec.azure
        self.private = (
            not azure.public_network_access if azure.public_network_access is not None else self.policy.private_network
        )
        """No public endpoints: the spec's ``azure.public_network_access``, else the environment's policy."""
        self.managed_network = azure.managed_network or ("allow_only_approved_outbound" if self.private else "disabled")
        self.parent: pulumi.Resource | None = None
        """The component a secondary location's resources are parented to (None: the primary, as always)."""
        self.endpoint_kinds: list[str] = list(azure.online_endpoints)
        """The online endpoints of this location: all of the spec's in the primary, the managed one elsewhere."""
        self.serves_batch = True
        """The batch endpoint (and its ML environment) is the primary's alone."""
        self.check_locations()
        issues = azure_network_issues(azure, self.private)
        if issues:
            raise SpecError(
                f"environments.{env_name}",
                [SpecIssue(f"environments.{env_name}.{path}", value, message) for path, value, message in issues],
            )

    def check_locations(self) -> None:
        """``azure.locations[0]`` is the primary and must be where the stack deploys; drained locations must be
        among ``azure.locations`` and leave one location serving."""
        locations = self.environment_spec.azure.locations
        if not locations:
            return
        if locations[0] != self.location:
            raise SpecError(
                f"environments.{self.env_name}",
                [
                    SpecIssue(
                        f"environments.{self.env_name}.azure.locations.0",
                        locations[0],
                        f"the primary location must be the stack's azure-native:location, {self.location} "
                        f"(Pulumi.{self.env_name}.yaml): put {self.location} first, or change the stack's location "
                        "(which moves every primary resource)",
                    )
                ],
            )
        drained = self.drained_locations()
        unknown = [d for d in drained if d not in locations]
        if unknown or (drained and set(drained) >= set(locations)):
            raise SpecError(
                f"Pulumi.{self.env_name}.yaml",
                [
                    SpecIssue(
                        f"twinserve:{DRAINED_LOCATIONS_CONFIG}",
                        ",".join(drained),
                        f"must name locations of azure.locations ({', '.join(locations)}) and leave at least one "
                        "serving",
                    )
                ],
            )

    @staticmethod
    def drained_locations() -> list[str]:
        value = pulumi.Config("twinserve").get(DRAINED_LOCATIONS_CONFIG) or ""
        return [part.strip() for part in value.split(",") if part.strip()]

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        """Resource options of a component declared for this location (parented to a secondary's component)."""
        return pulumi.ResourceOptions(parent=self.parent, **kwargs)

    def build(self) -> None:
        self.model_image = resolve_model_image(
            self.spec, self.environment_spec, self.spec_dir, env_path=f"environments.{self.env_name}"
        )
        self.group = self.resource_group()
        self.workspace = self.ml_workspace()
        self.network = self.private_network()
        self.audit()
        self.assets = self.model_and_images()
        self.cluster = self.inference_cluster()
        self.endpoints = self.online_endpoints()
        self.secondaries = self.secondary_locations()
        self.front = self.global_front()
        self.api = self.api_front()
        self.batch_endpoint()
        self.monitoring()
        self.drift = self.drift_monitor()
        self.budget()
        self.exports()

    def resource_group(self) -> resources.ResourceGroup:
        # Kept in prod too: deleting a resource group deletes everything in it, which would defeat the
        # retained storage and registry.
        keep = self.policy.keep_data
        return resources.ResourceGroup(
            f"{self.logical}-rg",
            resource_group_name=f"rg-{self.spec.name}-{self.env_name}",
            location=self.location,
            tags=self.tags,
            opts=pulumi.ResourceOptions(protect=keep, retain_on_delete=keep),
        )

    def ml_workspace(self) -> MlWorkspace:
        return MlWorkspace(
            self.logical,
            MlWorkspaceArgs(
                resource_group_name=self.group.name,
                location=self.location,
                tenant_id=self.client.tenant_id,
                name_prefix=self.prefix,
                purge_protection=self.policy.purge_protection,
                keep_data=self.policy.keep_data,
                public_network_access=not self.private,
                managed_network=self.managed_network,
                # Only Premium registries take private endpoints and refuse public access.
                registry_sku=azure_platform.REGISTRY_SKU_FOR_PRIVATE_ENDPOINTS if self.private else "Standard",
                # Azure ML builds the image from the context inside the managed network: with approved outbound
                # only, the build's base image (Docker Hub) and requirements (PyPI) need FQDN rules.
                outbound_fqdns=azure_platform.BUILD_OUTBOUND_FQDNS
                if self.managed_network == "allow_only_approved_outbound" and self.spec.container.build
                else (),
                firewall_sku=azure_platform.MANAGED_NETWORK_FIREWALL_SKU,
                tags=self.tags,
            ),
            opts=self._opts(),
        )

    def private_network(self) -> PrivateNetwork | None:
        """With a private network: the workspace, its storage (blob, file), key vault and registry through
        private endpoints in a virtual network twinserve creates, resolved by private DNS zones linked to it."""
        if not self.private:
            return None
        workspace = self.workspace
        targets = {
            "workspace": workspace.workspace.id,
            "blob": workspace.storage_account.id,
            "file": workspace.storage_account.id,
            "vault": workspace.key_vault.id,
            "registry": workspace.registry.id,
        }
        groups = azure_platform.PRIVATE_ENDPOINT_GROUPS
        return PrivateNetwork(
            f"{self.logical}-network",
            PrivateNetworkArgs(
                resource_group_name=self.group.name,
                location=self.location,
                name_prefix=self.prefix,
                address_space=self.environment_spec.azure.network_address_space,
                targets=[
                    PrivateEndpointTarget(
                        name=name, resource_id=resource_id, group_id=groups[name][0], dns_zones=groups[name][1]
                    )
                    for name, resource_id in targets.items()
                ],
                dns_zones=azure_platform.PRIVATE_DNS_ZONES,
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(depends_on=[workspace]),
        )

    def audit(self) -> monitor.SubscriptionDiagnosticSetting | None:
        """The subscription's activity log to the environment's Log Analytics workspace, when this stack owns
        the subscription (``twinserve:subscriptionActivityLog``). A subscription takes at most five diagnostic
        settings and outlives any environment in it, so the program does not claim it by default; the setting
        is named after the environment, so two stacks in one subscription do not overwrite each other."""
        if not pulumi.Config("twinserve").get_bool(ACTIVITY_LOG_CONFIG):
            return None
        return monitor.SubscriptionDiagnosticSetting(
            f"{self.logical}-activity-log",
            name=f"{self.logical}-activity-log",
            workspace_id=self.workspace.log_analytics.id,
            logs=[
                monitor.SubscriptionLogSettingsArgs(category=category, enabled=True)
                for category in azure_platform.ACTIVITY_LOG_CATEGORIES
            ],
        )

    def model_and_images(self) -> ModelEnvironment:
        """Model versions, the serving and batch ML environments (the common image), and the identity."""
        spec, workspace, container = self.spec, self.workspace, self.spec.container
        serving = self.environment_spec.serving
        model_dir = (self.spec_dir / spec.model.artifact.path).resolve()  # rules guarantee a path for Azure
        context = self.model_image.context  # resolve_model_image has checked the model folder
        served = [*serving.variants, *([serving.shadow] if serving.shadow else [])]
        imported = self.imported_image() if context else None
        pinned = sorted({spec.model_version_of(v) for v in served} - {spec.model.version}, key=int)
        return ModelEnvironment(
            f"{self.logical}-model",
            ModelEnvironmentArgs(
                resource_group_name=self.group.name,
                location=self.location,
                subscription_id=self.client.subscription_id,
                workspace_name=workspace.workspace_name,
                workspace_id=workspace.workspace.id,
                storage_account_name=workspace.storage_account.name,
                storage_account_id=workspace.storage_account.id,
                storage_blob_endpoint=workspace.blob_endpoint,
                asset_container_name=workspace.asset_container_name,
                asset_datastore_name=workspace.asset_datastore_name,
                registry_id=workspace.registry.id,
                model_name=spec.model.name,
                model_version=spec.model.version,
                model_dir=model_dir,
                pinned_model_versions=pinned,
                ml_environment_name=f"{spec.name}-serving",
                identity_name=f"{self.prefix}-serving-id",
                routes=InferenceRoutes(
                    port=container.port,
                    liveness_path=container.liveness_path,
                    readiness_path=container.readiness_path,
                    scoring_path=container.scoring_path,
                ),
                image_uri=container.image_uri,
                build_context=context.directory if context else None,
                imported_image=imported.image if imported else None,
                imported_image_digest=imported.digest if imported else None,
                # Azure ML's batch runtime needs azureml-core and azureml-dataset-runtime[fuse] in the image:
                # its own ML environment, built from Dockerfile.azureml-batch in the same context, or the
                # pre-built azure_batch_image_uri. With image_uri alone, batch runs image_uri (docs/azure.md).
                batch_ml_environment_name=(
                    f"{spec.name}-batch"
                    if self.serves_batch and (container.build or container.azure_batch_image_uri)
                    else None
                ),
                batch_dockerfile=context.batch_dockerfile if context else AZURE_BATCH_DOCKERFILE,
                batch_image_uri=container.azure_batch_image_uri,
                tags=self.tags,
            ),
            opts=self._opts(depends_on=[workspace]),
        )

    def imported_image(self) -> ImportedImage | None:
        """Build once: with ``twinserve:sourceImage`` (set by the pipeline's Azure step to the image this
        execution built for ECR, by digest) that image is imported into the workspace registry and served,
        instead of Azure ML building the same context again (docs/azure.md, "The image")."""
        source = pulumi.Config("twinserve").get(SOURCE_IMAGE_CONFIG)
        if not source:
            return None
        if not SOURCE_IMAGE_PATTERN.fullmatch(source):
            raise SpecError(
                f"Pulumi.{self.env_name}.yaml",
                [SpecIssue(f"twinserve:{SOURCE_IMAGE_CONFIG}", source, SOURCE_IMAGE_HINT)],
            )
        return ImportedImage(
            f"{self.logical}-image-import",
            ImportedImageArgs(
                registry_id=self.workspace.registry.id,
                login_server=self.workspace.registry.login_server,
                source_image=source,
                target_repository=f"{self.spec.name}-serving",
            ),
            opts=self._opts(depends_on=[self.workspace]),
        )

    def inference_cluster(self) -> AksInferenceCluster | None:
        """The AKS cluster, only when a Kubernetes endpoint is wanted."""
        azure = self.environment_spec.azure
        if "kubernetes" not in azure.online_endpoints:
            return None
        aks = azure.aks
        return AksInferenceCluster(
            f"{self.logical}-inference",
            AksInferenceClusterArgs(
                resource_group_name=self.group.name,
                location=self.location,
                workspace_name=self.workspace.workspace_name,
                subscription_id=self.client.subscription_id,
                registry_id=self.workspace.registry.id,
                storage_account_id=self.workspace.storage_account.id,
                cluster_name=f"{self.prefix}-aks",
                node_count=aks.node_count,
                vm_size=aks.vm_size,
                vcpus_per_node=aks.vcpus_per_node,
                autoscale_min_nodes=aks.autoscale_min_nodes,
                autoscale_max_nodes=aks.autoscale_max_nodes,
                gpu_pool=AksGpuPoolArgs(**aks.gpu_pool.model_dump()) if aks.gpu_pool else None,
                sku_tier=self.policy.aks_sku_tier,
                # The inference router listens on a private IP in the cluster's network; TLS would need a
                # certificate and a DNS name (ssl_cname / ssl_cert_pem / ssl_key_pem on the component).
                internal_load_balancer=True,
                allow_insecure_connections=True,
                # With a private network the nodes live in its node subnet (the private DNS zones resolve the
                # workspace, registry and storage there) and the API server admits the given ranges, else only
                # the cluster's own outbound IP.
                node_subnet_id=self.network.node_subnet.id if self.network else None,
                api_server_authorized_ip_ranges=tuple(aks.api_server_authorized_ip_ranges)
                if aks.api_server_authorized_ip_ranges is not None
                else ((azure_platform.AKS_OWN_EGRESS_ONLY,) if self.private else None),
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(depends_on=[self.workspace, *([self.network] if self.network else [])]),
        )

    def online_endpoints(self) -> dict[str, OnlineEndpoint]:
        """A deployment per variant on each endpoint, traffic from the weights, mirror to the shadow."""
        env = self.environment_spec
        serving, azure = env.serving, env.azure
        endpoints: dict[str, OnlineEndpoint] = {}
        for kind in self.endpoint_kinds:
            managed = kind == "managed"
            deployments = [self._deployment(v, managed, live=True) for v in serving.variants]
            mirror: dict[str, int] = {}
            if managed and serving.shadow is not None:
                deployments.append(self._deployment(serving.shadow, managed, live=False))
                mirror = {serving.shadow.name: serving.shadow.sample_percent}
            short = ENDPOINT_SHORT_NAMES[kind]
            depends = [self.assets] + ([self.cluster] if self.cluster and not managed else [])
            endpoints[short] = OnlineEndpoint(
                f"{self.logical}-{short}",
                OnlineEndpointArgs(
                    resource_group_name=self.group.name,
                    location=self.location,
                    workspace_name=self.workspace.workspace_name,
                    endpoint_name=f"{self.prefix}-{short}",
                    kind=kind,
                    identity_id=self.assets.identity.id,
                    compute_id=None if managed else self.cluster.compute.id,  # type: ignore[union-attr]
                    deployments=deployments,
                    traffic={v.name: v.weight for v in serving.variants},
                    mirror_traffic=mirror,
                    auth_mode=azure.auth_mode,
                    public_network_access=not self.private,
                    workspace_managed_network=self.managed_network != "disabled",
                    log_analytics_id=self.workspace.log_analytics.id,
                    wait_for=list(self.assets.role_assignments),
                    tags=self.tags,
                ),
                opts=self._opts(depends_on=depends),
            )
        return endpoints

    def secondary_locations(self) -> dict[str, AzureEnvironment]:
        """``azure.locations`` after the first: each location's own resource group, workspace (with its storage,
        key vault, registry and Log Analytics), model and ML environments, managed endpoint with the same
        deployments and traffic, and autoscale and alerts, under a ``ServingLocation`` component. Names: logical
        ``<spec>-<env>-<location>-...``, globally unique ones from :func:`secondary_name_prefix`."""
        sites: dict[str, AzureEnvironment] = {}
        for location in (self.environment_spec.azure.locations or [])[1:]:
            site = copy.copy(self)
            site.location = location
            site.prefix = secondary_name_prefix(self.prefix, location)
            site.logical = f"{self.logical}-{location}"
            site.endpoint_kinds = [kind for kind in self.endpoint_kinds if kind == "managed"]
            site.serves_batch = False
            site.cluster, site.network = None, None  # the spec rules ensure a public network with a second location
            holder = ServingLocation(
                f"{site.logical}-location",
                ServingLocationArgs(
                    location=location,
                    resource_group_name=f"rg-{self.spec.name}-{self.env_name}-{location}",
                    keep_data=self.policy.keep_data,
                    tags=self.tags,
                ),
            )
            site.parent, site.group = holder, holder.group
            site.workspace = site.ml_workspace()
            site.assets = site.model_and_images()
            site.endpoints = site.online_endpoints()
            site.monitoring()
            managed = site.endpoints[ENDPOINT_SHORT_NAMES["managed"]]
            holder.complete(workspace_name=site.workspace.workspace_name, scoring_uri=managed.scoring_uri)
            sites[location] = site
        taken = [self.prefix, *(site.prefix for site in sites.values())]
        if len(set(taken)) != len(taken):  # location codes carry a hash: this would take a collision of it
            raise SpecError(
                f"environments.{self.env_name}.azure.locations",
                [SpecIssue(f"environments.{self.env_name}.azure.locations", taken, "name prefixes must differ")],
            )
        return sites

    def global_front(self) -> GlobalFront | None:
        """With a second location: Azure Front Door (Standard) in front of every location's managed endpoint,
        priority routing in ``azure.locations`` order (primary 1), health probes on the scoring path."""
        if not self.secondaries:
            return None
        env = self.environment_spec
        managed = ENDPOINT_SHORT_NAMES["managed"]
        scoring = {self.location: self.endpoints[managed].scoring_uri}
        scoring.update({location: site.endpoints[managed].scoring_uri for location, site in self.secondaries.items()})
        drained = set(self.drained_locations())
        low, high = azure_platform.FRONT_DOOR_ORIGIN_TIMEOUT_SECONDS
        return GlobalFront(
            f"{self.logical}-front",
            GlobalFrontArgs(
                resource_group_name=self.group.name,
                profile_name=f"{self.prefix}-afd",
                endpoint_name=f"{self.prefix}-score",
                origins=[
                    FrontDoorOrigin(name=location, scoring_uri=uri, priority=i + 1, drained=location in drained)
                    for i, (location, uri) in enumerate(scoring.items())
                ],
                scoring_path=self.spec.container.scoring_path,
                probe_path=self.spec.container.scoring_path,
                probe_protocol="Https",
                probe_method="HEAD",
                probe_interval_seconds=FRONT_PROBE_INTERVAL_SECONDS,
                # Front Door waits a little longer than the deployment, so the endpoint's own timeout answer wins.
                origin_response_timeout_seconds=min(
                    high,
                    max(low, env.serving.request_timeout_seconds + azure_platform.APIM_BACKEND_TIMEOUT_MARGIN_SECONDS),
                ),
                # Front Door is global; its access and health-probe logs go to the primary's Log Analytics.
                log_analytics_id=self.workspace.log_analytics.id,
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(
                depends_on=[self.endpoints[managed], *(site.endpoints[managed] for site in self.secondaries.values())]
            ),
        )

    def api_front(self) -> ApiFront | None:
        """An API Management front on the managed endpoint (``azure.api_management``); the spec rules ensure
        a managed endpoint with aad_token auth, a publisher e-mail and a public network."""
        env = self.environment_spec
        apim = env.azure.api_management
        if not apim.enabled:
            return None
        endpoint = self.endpoints[ENDPOINT_SHORT_NAMES["managed"]]
        endpoint_name = f"{self.prefix}-{ENDPOINT_SHORT_NAMES['managed']}"
        return ApiFront(
            f"{self.logical}-apim",
            ApiFrontArgs(
                resource_group_name=self.group.name,
                location=self.location,
                subscription_id=self.client.subscription_id,
                service_name=f"{self.prefix}-apim",
                publisher_email=apim.publisher_email,  # type: ignore[arg-type]
                publisher_name=apim.publisher_name,
                sku=apim.sku,
                endpoint_id=endpoint.endpoint_id,
                scoring_uri=endpoint.scoring_uri,
                api_path=endpoint_name,
                # APIM waits a little longer than the deployment, so the endpoint's own timeout answer wins.
                backend_timeout_seconds=env.serving.request_timeout_seconds
                + azure_platform.APIM_BACKEND_TIMEOUT_MARGIN_SECONDS,
                subscription_required=apim.subscription_required,
                rate_limit_calls_per_minute=apim.rate_limit_calls_per_minute,
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(depends_on=[endpoint]),
        )

    def _deployment(self, variant: VariantSpec | ShadowSpec, managed: bool, *, live: bool) -> OnlineDeploymentSettings:
        env = self.environment_spec
        return OnlineDeploymentSettings(
            name=variant.name,
            model_id=self.assets.model_ids[self.spec.model_version_of(variant)],
            environment_id=self.assets.ml_environment_id,
            instance_type=env.compute.azure_instance_type if managed else self._kubernetes_instance_type(),
            instance_count=env.instance_count_of(variant),
            request_timeout_ms=env.serving.request_timeout_seconds * 1000,
            max_concurrent_requests_per_instance=env.serving.max_concurrent_requests_per_instance,
            environment_variables=container_environment(env, "azure", self.model_image),
            # Live deployments log the sampled payloads drift checks read; the mirror sees copies of them.
            payload_collection_percent=env.monitoring.sampling_percent if env.monitoring and live else None,
            # Only live deployments autoscale, as on SageMaker: the shadow keeps its instance count.
            # Managed ones through autoscale settings (monitoring), Kubernetes ones by the AzureML
            # extension on CPU utilization, the scale type that scales there.
            autoscaled=managed and live and env.scaling.enabled,
            target_utilization=TargetUtilizationScaling(
                min_instances=env.scaling.min_instances,
                max_instances=env.scaling.max_instances,
                target_utilization_percent=env.scaling.cpu_scale_out_percent,
            )
            if not managed and live and env.scaling.enabled
            else None,
        )

    def _kubernetes_instance_type(self) -> str:
        """GPU pods request nvidia.com/gpu through the instance type the cluster component declares."""
        if self.environment_spec.compute.gpu:
            return KUBERNETES_GPU_INSTANCE_TYPE
        return KUBERNETES_DEFAULT_INSTANCE_TYPE

    def batch_endpoint(self) -> BatchEndpoint:
        """On a compute cluster that scales to zero."""
        azure, batch = self.environment_spec.azure, self.environment_spec.serving.batch
        workspace, assets = self.workspace, self.assets
        return BatchEndpoint(
            f"{self.logical}-batch",
            BatchEndpointArgs(
                resource_group_name=self.group.name,
                location=self.location,
                workspace_name=workspace.workspace_name,
                endpoint_name=f"{self.prefix}-batch",
                model_id=assets.model_ids[self.spec.model.version],
                environment_id=assets.batch_ml_environment_id,
                identity_id=assets.identity.id,
                storage_account_name=workspace.storage_account.name,
                storage_blob_endpoint=workspace.blob_endpoint,
                asset_container_name=workspace.asset_container_name,
                vm_size=azure.batch_vm_size,
                max_nodes=azure.batch_max_nodes,
                instance_count=batch.instance_count,
                mini_batch_size=batch.mini_batch_size,
                max_concurrency_per_instance=batch.max_concurrent_transforms,
                environment_variables=self.model_image.environment,
                wait_for=list(assets.role_assignments),
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(depends_on=[assets]),
        )

    def monitoring(self) -> EndpointMonitoring:
        """Alerts on every online endpoint; autoscale of the managed endpoint's live deployments."""
        alarms, scaling = self.environment_spec.alarms, self.environment_spec.scaling
        return EndpointMonitoring(
            f"{self.logical}-monitoring",
            EndpointMonitoringArgs(
                resource_group_name=self.group.name,
                location=self.location,
                action_group_name=f"{self.prefix}-alerts",
                emails=list(alarms.emails),
                endpoints={f"{self.prefix}-{short}": e.endpoint_id for short, e in self.endpoints.items()},
                alerts=AlertRules(
                    latency_p99_ms=alarms.model_latency_p99_ms,
                    errors_5xx=alarms.errors_5xx,
                    period_seconds=alarms.period_seconds,
                    evaluation_periods=alarms.evaluation_periods,
                    severity=self.policy.alert_severity,
                ),
                autoscale_targets=self._autoscale_targets(),
                autoscale=AutoscaleRules(
                    min_instances=scaling.min_instances,
                    max_instances=scaling.max_instances,
                    cpu_scale_out_percent=scaling.cpu_scale_out_percent,
                    cpu_scale_in_percent=scaling.cpu_scale_in_percent,
                    latency_scale_out_ms=scaling.latency_scale_out_ms,
                    scale_out_cooldown_seconds=scaling.scale_out_cooldown_seconds,
                    scale_in_cooldown_seconds=scaling.scale_in_cooldown_seconds,
                )
                if scaling.enabled
                else None,
                tags=self.tags,
            ),
            opts=self._opts(depends_on=list(self.endpoints.values())),
        )

    def drift_monitor(self) -> DriftMonitor | None:
        """The scheduled drift check of every online endpoint's collected payloads (``monitoring``)."""
        env, monitoring = self.environment_spec, self.environment_spec.monitoring
        if monitoring is None:
            return None
        trigger = azure_platform.schedule_trigger(monitoring.schedule)  # the spec rules ensure one exists
        webhook = None
        if monitoring.on_drift == "notify_and_retrain" and monitoring.retrain and monitoring.retrain.azure:
            key = monitoring.retrain.azure.webhook_secret_name
            webhook = pulumi.Config("twinserve").get_secret(key)
            if webhook is None:
                raise SpecError(
                    str(self.spec_dir),
                    [
                        SpecIssue(
                            f"environments.{self.env_name}.monitoring.retrain.azure.webhook_secret_name",
                            key,
                            f"set the webhook URL as a secret first: pulumi config set --secret twinserve:{key} URL "
                            f"--stack {self.env_name}",
                        )
                    ],
                )
        return DriftMonitor(
            f"{self.logical}-drift",
            DriftMonitorArgs(
                resource_group_name=self.group.name,
                workspace_name=self.workspace.workspace_name,
                workspace_id=self.workspace.workspace.id,
                workspace_guid=self.workspace.workspace.workspace_id,
                storage_account_name=self.workspace.storage_account.name,
                storage_account_id=self.workspace.storage_account.id,
                subscription_id=self.client.subscription_id,
                workspace_principal_id=self.workspace.workspace.identity.apply(lambda i: i.principal_id),
                asset_container_name=self.workspace.asset_container_name,
                asset_datastore_name=self.workspace.asset_datastore_name,
                environment_id=self.assets.ml_environment_id,
                endpoint_names=[f"{self.prefix}-{short}" for short in self.endpoints],
                baseline_file=drift_baseline_file(monitoring, self.spec_dir),
                trigger=DriftTrigger(cron=trigger)
                if isinstance(trigger, str)
                else DriftTrigger(frequency=trigger[0], interval=trigger[1]),
                window_hours=drift_window_hours(monitoring),
                retention_days=monitoring.retention_days,
                emails=list(env.alarms.emails),
                action_group_name=f"{self.prefix}-drift",
                retrain_webhook_url=webhook,
                severity=self.policy.alert_severity,
                tags=self.tags,
            ),
            opts=pulumi.ResourceOptions(depends_on=list(self.endpoints.values())),
        )

    def _autoscale_targets(self) -> list[AutoscaleTarget]:
        env = self.environment_spec
        managed = self.endpoints.get(ENDPOINT_SHORT_NAMES["managed"])
        if not env.scaling.enabled or managed is None:
            return []
        return [
            AutoscaleTarget(
                name=v.name,
                deployment_id=managed.deployments[v.name].id,
                endpoint_id=managed.endpoint_id,
                default_instances=env.instance_count_of(v),
            )
            for v in env.serving.variants
        ]

    def budget(self) -> CostBudget | None:
        """A monthly cost ceiling on the environment's resource group."""
        env = self.environment_spec
        if env.budget is None:
            return None
        start = self.budget_start_date or datetime.date.today().replace(day=1).isoformat()
        return CostBudget(
            f"{self.logical}-cost",
            CostBudgetArgs(
                scope=pulumi.Output.concat(
                    "/subscriptions/", self.client.subscription_id, "/resourceGroups/", self.group.name
                ),
                budget_name=f"{self.logical}-monthly",
                monthly_amount=env.budget.monthly_limit_usd,
                emails=list(env.alarms.emails),
                start_date=start,
                notify_at_percent=list(env.budget.notify_at_percent),
            ),
        )

    def unreachable_endpoints(self) -> dict[str, str]:
        """Online endpoints no caller outside the environment's network can score (the pipeline's smoke
        test reads this and says why it skips them): short name -> why."""
        why = {}
        for short in self.endpoints:
            if short == ENDPOINT_SHORT_NAMES["kubernetes"]:
                why[short] = "the cluster's inference router listens on an internal load balancer"
            elif self.private:
                why[short] = "public network access is disabled (azure.public_network_access)"
        return why

    def exports(self) -> None:
        pulumi.export("resource_group", self.group.name)
        pulumi.export("workspace_name", self.workspace.workspace_name)
        pulumi.export("online_endpoints", {short: f"{self.prefix}-{short}" for short in self.endpoints})
        # What clients call: each online endpoint's scoring URI, and its keys as secrets (key auth only).
        pulumi.export("scoring_uris", {short: endpoint.scoring_uri for short, endpoint in self.endpoints.items()})
        keys = {short: endpoint.keys for short, endpoint in self.endpoints.items() if endpoint.keys is not None}
        if keys:
            pulumi.export("endpoint_keys", pulumi.Output.secret(keys))
        pulumi.export("unreachable_endpoints", self.unreachable_endpoints())
        # The API Management front: its URL, and the keys of its subscription as secrets.
        if self.api is not None:
            pulumi.export("api_url", self.api.url)
            if self.api.subscription_keys is not None:
                pulumi.export("api_subscription_keys", self.api.subscription_keys)
        # Disaster recovery: the one name that fails over, and each location's own scoring URI.
        if self.front is not None:
            managed = ENDPOINT_SHORT_NAMES["managed"]
            pulumi.export("global_url", self.front.url)
            pulumi.export(
                "location_scoring_uris",
                {
                    self.location: self.endpoints[managed].scoring_uri,
                    **{location: site.endpoints[managed].scoring_uri for location, site in self.secondaries.items()},
                },
            )
            pulumi.export("drained_locations", self.drained_locations())
        pulumi.export("batch_endpoint", f"{self.prefix}-batch")
        pulumi.export("private_network", self.network.virtual_network.name if self.network else None)
        pulumi.export("serving_ml_environment_version", self.assets.ml_environment_version)
        pulumi.export("batch_ml_environment_version", self.assets.batch_ml_environment_version)


def main() -> None:
    env_name = pulumi.get_stack()
    config = pulumi.Config("twinserve")
    spec_path = Path(config.get("spec") or DEFAULT_SPEC)
    if not spec_path.is_absolute():
        spec_path = REPO_ROOT / spec_path
    location = pulumi.Config("azure-native").require("location")
    build_environment(
        # a pipeline execution's model version (stacks/deploy_inputs.py), else the spec as written
        apply_deploy_inputs(load_spec(spec_path), load_deploy_inputs()),
        env_name,
        location=location,
        spec_dir=spec_path.parent,
        name_prefix=config.get("namePrefix"),
        budget_start_date=config.get("budgetStartDate"),
    )
