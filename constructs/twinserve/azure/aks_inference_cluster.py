"""An AKS cluster for Azure ML Kubernetes online endpoints, attached to a workspace.

ManagedCluster (system-assigned identity, Kubernetes RBAC with Entra ID / Azure RBAC, local
accounts off) with one node pool of at least 3 nodes and 12 vCPU in total (Azure ML's minimum for
inference, ``twinserve.platform.azure``: 3 x Standard_D4s_v3), the ``Microsoft.AzureML.Kubernetes``
extension with inference enabled, and the cluster attached to the workspace as a Kubernetes compute.

Azure refuses in-place updates of an attached Kubernetes compute, so the Compute is declared with
``replace_on_changes=["*"]`` and ``delete_before_replace``: any change detaches and re-attaches it
instead of failing half-way.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, containerservice, kubernetesconfiguration
from pulumi_azure_native import machinelearningservices as ml

from ..checks import Checks
from ..platform import azure as azure_platform
from ._common import (
    ROLE_ACR_PULL,
    ROLE_NETWORK_CONTRIBUTOR,
    ROLE_STORAGE_BLOB_DATA_READER,
    child_opts,
    role_definition,
)

ROUTER_SERVICE_TYPES = ("LoadBalancer", "NodePort", "ClusterIP")
SKU_TIERS = ("Free", "Standard", "Premium")
# What the AzureML extension creates as its default instance type when none is declared
# (https://learn.microsoft.com/azure/machine-learning/how-to-manage-kubernetes-instance-types);
# declared as is beside the GPU one, so CPU deployments keep it.
_DEFAULT_INSTANCE_RESOURCES = {"requests": {"cpu": "100m", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}


@dataclass(frozen=True)
class AksGpuPoolArgs:
    """A GPU node pool and the Azure ML instance type that places pods on it."""

    vm_size: str = "Standard_NC4as_T4_v3"
    """A GPU size of ``twinserve.platform.azure.GPU_VM_SIZES``."""
    node_count: int = 1
    """Nodes of the pool (1..100)."""
    instance_cpu: int = 2
    """CPU cores an inference pod requests (fewer than the node has)."""
    instance_memory_gib: int = 8
    """Memory an inference pod requests."""
    instance_gpus: int = 1
    """GPUs an inference pod requests (at most the size's GPU count)."""

    @property
    def pool_name(self) -> str:
        """``gpu`` + a hash of the size: AKS cannot change a pool's VM size in place, so a new size is a
        new pool, created before the old one is deleted (Linux pool names: 1-12 lower-case alphanumerics;
        https://learn.microsoft.com/azure/aks/resize-node-pool)."""
        return "gpu" + hashlib.sha256(self.vm_size.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class AksInferenceClusterArgs:
    """Args of :class:`AksInferenceCluster`."""

    resource_group_name: pulumi.Input[str]
    """The resource group of the cluster."""
    location: pulumi.Input[str]
    """Azure region of the cluster."""
    workspace_name: str
    """The Azure ML workspace the cluster is attached to."""
    subscription_id: pulumi.Input[str]
    """The subscription of the role definitions."""
    registry_id: pulumi.Input[str]
    """The workspace's container registry: the attached compute's identity may pull from it."""
    storage_account_id: pulumi.Input[str]
    """The workspace's storage account: the attached compute's identity may read it."""
    cluster_name: str
    """AKS cluster name and DNS prefix (2-63 letters, digits and '-')."""
    compute_name: str = "aks-inference"
    """Name of the attached compute in the workspace (2-16 characters)."""
    node_count: int = azure_platform.AKS_MIN_NODES
    """Nodes of the one (system) node pool; Azure ML inference needs at least 3."""
    vm_size: str = "Standard_D4s_v3"
    """Node VM size; with ``node_count`` at least 12 vCPU in all."""
    vcpus_per_node: int | None = None
    """Only needed when the vCPU count cannot be read from ``vm_size``."""
    autoscale_min_nodes: int | None = None
    """With ``autoscale_max_nodes``: the cluster autoscaler's bounds (at least 3)."""
    autoscale_max_nodes: int | None = None
    """With ``autoscale_min_nodes``: the cluster autoscaler's upper bound."""
    kubernetes_namespace: str = "twinserve"
    """The namespace the attached compute deploys into."""
    sku_tier: str = "Free"
    """AKS control plane tier: Free, Standard (uptime SLA) or Premium."""
    router_service_type: str = "LoadBalancer"
    """How the AzureML inference router is exposed: LoadBalancer, NodePort or ClusterIP."""
    internal_load_balancer: bool = True
    """Expose the inference router on a private IP in the cluster's virtual network."""
    allow_insecure_connections: bool = False
    """Plain HTTP to the inference router: only allowed behind an internal load balancer."""
    ssl_cname: str | None = None
    """The DNS name the router's TLS certificate is issued for."""
    ssl_cert_pem: pulumi.Input[str] | None = None
    """The certificate chain as PEM text (not a file path); sent base64-encoded as a protected setting."""
    ssl_key_pem: pulumi.Input[str] | None = None
    """The certificate's private key as PEM text (not a file path); sent base64-encoded as a protected setting."""
    gpu_pool: AksGpuPoolArgs | None = None
    """A GPU node pool beside the system pool; its pods are requested through the instance type
    ``gpuinstancetype`` (``nvidia.com/gpu``), and the AzureML extension installs the NVIDIA device plugin."""
    api_server_authorized_ip_ranges: tuple[str, ...] | None = None
    """Restrict the Kubernetes API server to these IPv4 CIDR ranges (``0.0.0.0/32`` alone: only the cluster's
    own outbound IP, so in-cluster clients such as the AzureML extension keep working); ``None``: open.
    AKS's cluster extensions, managed namespaces and the attach go through ARM, not the API server."""
    node_subnet_id: pulumi.Input[str] | None = None
    """Put the nodes (and the inference router's internal load balancer) in this subnet, e.g. one of a
    virtual network whose private DNS zones resolve the workspace's private endpoints. The cluster's
    identity gets Network Contributor on it (the internal load balancer is created in it)."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""

    @property
    def total_vcpus(self) -> int:
        return (self.vcpus_per_node or azure_platform.azure_vm_vcpus(self.vm_size) or 0) * self.node_count


def _check(args: AksInferenceClusterArgs) -> None:
    check = Checks("AksInferenceClusterArgs")
    check.pattern(
        "cluster_name",
        args.cluster_name,
        r"[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]",
        "must be 2-63 letters, digits and '-'",
    )
    check.pattern(
        "compute_name",
        args.compute_name,
        r"[a-zA-Z][a-zA-Z0-9-]{1,15}",
        "must be 2-16 letters, digits and '-', starting with a letter",
    )
    min_nodes, min_vcpus = azure_platform.AKS_MIN_NODES, azure_platform.AKS_MIN_VCPUS
    check.that(
        args.node_count >= min_nodes,
        "node_count",
        args.node_count,
        f"Azure ML inference on AKS needs at least {min_nodes} nodes",
    )
    vcpus = args.vcpus_per_node or azure_platform.azure_vm_vcpus(args.vm_size)
    check.that(
        vcpus is not None,
        "vcpus_per_node",
        args.vcpus_per_node,
        f"the vCPUs of {args.vm_size} cannot be read from its name; set vcpus_per_node",
    )
    check.that(
        vcpus * args.node_count >= min_vcpus,
        "vm_size",
        args.vm_size,
        f"{args.node_count} x {vcpus} vCPU = {vcpus * args.node_count}; the cluster needs at least "
        f"{min_vcpus} vCPU (e.g. 3 x Standard_D4s_v3)",
    )
    low, high = args.autoscale_min_nodes, args.autoscale_max_nodes
    check.that(
        (low is None) == (high is None),
        "autoscale_min_nodes",
        (low, high),
        "set both autoscale_min_nodes and autoscale_max_nodes, or neither",
    )
    if low is not None and high is not None:
        check.that(low >= min_nodes, "autoscale_min_nodes", low, f"must be at least {min_nodes}")
        check.that(
            low <= args.node_count <= high,
            "node_count",
            args.node_count,
            f"must lie within the autoscale bounds {low}..{high}",
        )
    if args.gpu_pool is not None:
        _check_gpu_pool(check, args.gpu_pool)
    for i, cidr in enumerate(args.api_server_authorized_ip_ranges or ()):
        check.that(
            _is_ipv4_cidr(cidr), f"api_server_authorized_ip_ranges[{i}]", cidr, "must be an IPv4 range in CIDR form"
        )
    check.that(
        args.api_server_authorized_ip_ranges is None or len(args.api_server_authorized_ip_ranges) > 0,
        "api_server_authorized_ip_ranges",
        args.api_server_authorized_ip_ranges,
        "give at least one range (0.0.0.0/32: the cluster's own outbound IP only), or None for an open API server",
    )
    check.one_of("sku_tier", args.sku_tier, SKU_TIERS)
    check.one_of("router_service_type", args.router_service_type, ROUTER_SERVICE_TYPES)
    if args.allow_insecure_connections:
        check.that(
            args.internal_load_balancer or args.router_service_type != "LoadBalancer",
            "allow_insecure_connections",
            True,
            "plain HTTP is only allowed behind an internal load balancer; set internal_load_balancer "
            "or give ssl_cname, ssl_cert_pem and ssl_key_pem",
        )
    else:
        check.that(
            None not in (args.ssl_cname, args.ssl_cert_pem, args.ssl_key_pem),
            "ssl_cname",
            args.ssl_cname,
            "TLS on the inference router needs ssl_cname, ssl_cert_pem and ssl_key_pem; "
            "or set allow_insecure_connections with an internal load balancer",
        )


def _is_ipv4_cidr(text: str) -> bool:
    try:
        return ipaddress.ip_network(text).version == 4 and "/" in text
    except ValueError:
        return False


def _check_gpu_pool(check: Checks, pool: AksGpuPoolArgs) -> None:
    sizes = azure_platform.GPU_VM_SIZES
    check.one_of("gpu_pool.vm_size", pool.vm_size, sizes)
    check.range("gpu_pool.node_count", pool.node_count, 1, 100)
    gpus, vcpus = sizes[pool.vm_size], azure_platform.azure_vm_vcpus(pool.vm_size) or 0
    check.range("gpu_pool.instance_gpus", pool.instance_gpus, 1, gpus)
    check.range("gpu_pool.instance_cpu", pool.instance_cpu, 1, vcpus - 1)
    check.range("gpu_pool.instance_memory_gib", pool.instance_memory_gib, 1, 880)


def _base64(pem: pulumi.Input[str]) -> pulumi.Output[str]:
    """The extension takes certificate and key as base64 of the PEM text, kept secret in the state."""
    return pulumi.Output.secret(pem).apply(lambda text: base64.b64encode(text.encode("ascii")).decode())


class AksInferenceCluster(pulumi.ComponentResource):
    """Exposes ``cluster``, ``extension``, ``namespace``, ``compute``, ``compute_name`` and
    ``compute_role_assignments``."""

    def __init__(self, name: str, args: AksInferenceClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:AksInferenceCluster", name, None, opts)
        self._name, self._args = name, args
        self.cluster = self._cluster()
        self.gpu_pool = self._gpu_pool()
        self.extension = self._extension()
        self.namespace = self._namespace()
        self.compute_name = args.compute_name
        self.compute = self._compute()
        self.compute_role_assignments = self._compute_roles()
        self.subnet_role_assignment = self._subnet_role()
        self.register_outputs(
            {
                "cluster_id": self.cluster.id,
                "compute_id": self.compute.id,
                "compute_name": args.compute_name,
                "node_count": args.node_count,
                "total_vcpus": args.total_vcpus,
                "gpu_node_count": args.gpu_pool.node_count if args.gpu_pool else 0,
            }
        )

    def _cluster(self) -> containerservice.ManagedCluster:
        args = self._args
        autoscale = args.autoscale_min_nodes is not None
        return containerservice.ManagedCluster(
            f"{self._name}-aks",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=args.tags,
            resource_name_=args.cluster_name,
            dns_prefix=args.cluster_name,
            identity=containerservice.ManagedClusterIdentityArgs(type="SystemAssigned"),
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=args.sku_tier),
            enable_rbac=True,
            # The AzureML extension does not support AKS with local accounts disabled
            # (https://learn.microsoft.com/azure/machine-learning/how-to-deploy-kubernetes-extension#limitations).
            disable_local_accounts=False,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure", network_plugin_mode="overlay", load_balancer_sku="standard"
            ),
            # Authorized ranges rather than a private cluster: they work with the Standard load balancer
            # this cluster has, change in place (a cluster cannot be made private after creation), and keep
            # the API server reachable by the ranges an operator adds (kubectl, CI)
            # (https://learn.microsoft.com/azure/aks/api-server-authorized-ip-ranges).
            api_server_access_profile=containerservice.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=list(args.api_server_authorized_ip_ranges)
            )
            if args.api_server_authorized_ip_ranges is not None
            else None,
            agent_pool_profiles=[
                containerservice.ManagedClusterAgentPoolProfileArgs(
                    name="system",
                    mode="System",
                    os_type="Linux",
                    type="VirtualMachineScaleSets",
                    vm_size=args.vm_size,
                    count=args.node_count,
                    enable_auto_scaling=autoscale,
                    min_count=args.autoscale_min_nodes,
                    max_count=args.autoscale_max_nodes,
                    vnet_subnet_id=args.node_subnet_id,
                )
            ],
            # With the cluster autoscaler on, the node count is the autoscaler's: re-sending node_count
            # on every `pulumi up` would fight it. node_count is then only the initial size.
            opts=child_opts(self, ignore_changes=["agentPoolProfiles[0].count"] if autoscale else None),
        )

    def _gpu_pool(self) -> containerservice.AgentPool | None:
        """A user pool of GPU nodes, labelled for the GPU instance type. AKS installs the NVIDIA driver
        on GPU nodes (gpuProfile.driver Install); the AzureML extension adds the device plugin that
        makes ``nvidia.com/gpu`` schedulable (installNvidiaDevicePlugin)."""
        args, pool = self._args, self._args.gpu_pool
        if pool is None:
            return None
        # The size is in the logical name too: a new size is a new resource, which Pulumi creates before
        # it deletes the one that left the program (never a delete-first replacement of the GPU capacity).
        return containerservice.AgentPool(
            f"{self._name}-{pool.pool_name}",
            resource_group_name=args.resource_group_name,
            resource_name_=args.cluster_name,
            agent_pool_name=pool.pool_name,
            mode="User",
            os_type="Linux",
            type="VirtualMachineScaleSets",
            vm_size=pool.vm_size,
            count=pool.node_count,
            node_labels=dict(azure_platform.GPU_NODE_LABEL),
            gpu_profile=containerservice.GPUProfileArgs(driver="Install"),
            vnet_subnet_id=args.node_subnet_id,
            tags=args.tags,
            opts=child_opts(self, depends_on=[self.cluster]),
        )

    def _extension(self) -> kubernetesconfiguration.Extension:
        # pulumi-azure-native sends these settings to ARM as they are. `az k8s-extension create`
        # derives several of them on the client (internalLoadBalancerProvider ->
        # scoringFe.serviceType.internalLoadBalancer, PEM files -> base64 scoringFe.sslCert/sslKey,
        # the cluster's identity, location and the relay/service-bus switches), so they are written out
        # here as in Azure's ARM template for the extension (Azure/AML-Kubernetes deployextension.json).
        args = self._args
        cluster_location = pulumi.Output.from_input(args.location).apply(lambda region: region.lower())
        settings: dict[str, pulumi.Input[str]] = {
            "enableTraining": "False",
            "enableInference": "True",
            "inferenceRouterServiceType": args.router_service_type,
            "inferenceRouterHA": "True",
            "allowInsecureConnections": "True" if args.allow_insecure_connections else "False",
            "cluster_name": self.cluster.id,
            "clusterId": self.cluster.id,
            "prometheus.prometheusSpec.externalLabels.cluster_name": self.cluster.id,
            "cluster_name_friendly": args.cluster_name,
            "location": cluster_location,
            "jobSchedulerLocation": cluster_location,
            "domain": cluster_location.apply(lambda region: f"{region}.cloudapp.azure.com"),
            "servicebus.enabled": "false",
            "relayserver.enabled": "false",
            "nginxIngress.enabled": "true",
        }
        if args.gpu_pool is not None:
            settings["installNvidiaDevicePlugin"] = "True"
        if args.router_service_type == "NodePort":
            settings["scoringFe.serviceType.nodePort"] = "True"
        elif args.internal_load_balancer and args.router_service_type == "LoadBalancer":
            settings["internalLoadBalancerProvider"] = "azure"
            settings["scoringFe.serviceType.internalLoadBalancer"] = "True"
        if args.ssl_cname:
            settings["sslCname"] = args.ssl_cname
        protected = (
            {"scoringFe.sslCert": _base64(args.ssl_cert_pem), "scoringFe.sslKey": _base64(args.ssl_key_pem)}
            if args.ssl_cert_pem is not None and args.ssl_key_pem is not None
            else None
        )
        return kubernetesconfiguration.Extension(
            f"{self._name}-azureml-ext",
            resource_group_name=args.resource_group_name,
            cluster_rp="Microsoft.ContainerService",
            cluster_resource_name="managedClusters",
            cluster_name=args.cluster_name,
            extension_name="azureml",
            extension_type="Microsoft.AzureML.Kubernetes",
            release_train="stable",
            auto_upgrade_minor_version=True,
            identity=kubernetesconfiguration.IdentityArgs(type="SystemAssigned"),
            scope=kubernetesconfiguration.ScopeArgs(
                cluster=kubernetesconfiguration.ScopeClusterArgs(release_namespace="azureml")
            ),
            configuration_settings=settings,
            configuration_protected_settings=protected,
            opts=child_opts(self, depends_on=[self.cluster]),
        )

    def _namespace(self) -> containerservice.ManagedNamespace:
        """Attaching a Kubernetes compute neither creates nor checks its namespace, and workloads fail
        without it (https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace).
        An AKS managed namespace is an ARM resource, so no cluster credentials are needed. Its default
        network policy would admit only same-namespace traffic; the AzureML router (namespace azureml)
        must reach the inference pods."""
        args = self._args
        return containerservice.ManagedNamespace(
            f"{self._name}-namespace",
            resource_group_name=args.resource_group_name,
            resource_name_=args.cluster_name,
            managed_namespace_name=args.kubernetes_namespace,
            location=args.location,
            tags=args.tags,
            properties=containerservice.NamespacePropertiesArgs(
                default_network_policy=containerservice.NetworkPoliciesArgs(ingress="AllowAll", egress="AllowAll"),
                adoption_policy="IfIdentical",
            ),
            opts=child_opts(self, depends_on=[self.cluster]),
        )

    def _compute(self) -> ml.Compute:
        """The cluster attached to the workspace. Azure refuses in-place updates of an attached
        Kubernetes compute, so any change of its inputs replaces it (detach, re-attach); its inputs
        therefore hold nothing that changes with the node pool (node count, VM size), which must never
        detach the compute live endpoints run on."""
        args = self._args
        return ml.Compute(
            f"{self._name}-compute",
            resource_group_name=args.resource_group_name,
            workspace_name=args.workspace_name,
            location=args.location,
            compute_name=args.compute_name,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=ml.KubernetesArgs(
                compute_type="Kubernetes",
                resource_id=self.cluster.id,
                description=f"AKS cluster {args.cluster_name}",
                properties=ml.KubernetesPropertiesArgs(
                    namespace=args.kubernetes_namespace,
                    default_instance_type=azure_platform.KUBERNETES_DEFAULT_INSTANCE_TYPE,
                    instance_types=self._instance_types(),
                ),
            ),
            opts=child_opts(
                self,
                depends_on=[self.extension, self.namespace, *([self.gpu_pool] if self.gpu_pool else [])],
                replace_on_changes=["*"],
                delete_before_replace=True,
            ),
        )

    def _instance_types(self) -> dict[str, ml.InstanceTypeSchemaArgs] | None:
        """With a GPU pool: the default instance type as the extension makes it, and the GPU one, whose pods
        land on the pool's label and request its GPUs (requests = limits: a GPU cannot be shared)."""
        pool = self._args.gpu_pool
        if pool is None:
            return None
        gpu = {
            "cpu": str(pool.instance_cpu),
            "memory": f"{pool.instance_memory_gib}Gi",
            "nvidia.com/gpu": str(pool.instance_gpus),
        }
        return {
            azure_platform.KUBERNETES_DEFAULT_INSTANCE_TYPE: ml.InstanceTypeSchemaArgs(
                resources=ml.InstanceTypeSchemaResourcesArgs(**_DEFAULT_INSTANCE_RESOURCES)
            ),
            azure_platform.KUBERNETES_GPU_INSTANCE_TYPE: ml.InstanceTypeSchemaArgs(
                node_selector=dict(azure_platform.GPU_NODE_LABEL),
                resources=ml.InstanceTypeSchemaResourcesArgs(requests=gpu, limits=gpu),
            ),
        }

    def _subnet_role(self) -> authorization.RoleAssignment | None:
        """In a given subnet the cluster's identity creates the inference router's internal load balancer
        (https://learn.microsoft.com/azure/aks/configure-azure-cni#prerequisites: Network Contributor)."""
        args = self._args
        if args.node_subnet_id is None:
            return None
        return authorization.RoleAssignment(
            f"{self._name}-subnet-network",
            scope=args.node_subnet_id,
            principal_id=self.cluster.identity.apply(lambda identity: identity.principal_id),
            principal_type="ServicePrincipal",
            role_definition_id=role_definition(args.subscription_id, ROLE_NETWORK_CONTRIBUTOR),
            opts=child_opts(self),
        )

    def _compute_roles(self) -> list[authorization.RoleAssignment]:
        """The compute's identity pulls from the workspace registry and reads the model storage
        (https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace#assign-managed-identity-to-the-compute-target)."""
        args = self._args
        principal = self.compute.identity.apply(lambda identity: identity.principal_id)
        return [
            authorization.RoleAssignment(
                f"{self._name}-compute-{short}",
                scope=scope,
                principal_id=principal,
                principal_type="ServicePrincipal",
                role_definition_id=role_definition(args.subscription_id, role),
                opts=child_opts(self),
            )
            for short, scope, role in (
                ("acrpull", args.registry_id, ROLE_ACR_PULL),
                ("blobreader", args.storage_account_id, ROLE_STORAGE_BLOB_DATA_READER),
            )
        ]
