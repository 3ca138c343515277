"""An AKS cluster for Azure ML Kubernetes online endpoints, attached to a workspace.

ManagedCluster (system-assigned identity, Kubernetes RBAC with Entra ID / Azure RBAC, local
accounts off) with one node pool of at least 3 nodes and 12 vCPU in total (Azure ML's minimum for
inference: 3 x Standard_D4s_v3), the ``Microsoft.AzureML.Kubernetes`` extension with inference
enabled, and the cluster attached to the workspace as a Kubernetes compute.

Azure refuses in-place updates of an attached Kubernetes compute, so the Compute is declared with
``replace_on_changes=["*"]`` and ``delete_before_replace``: any change detaches and re-attaches it
instead of failing half-way.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import containerservice, kubernetesconfiguration
from pulumi_azure_native import machinelearningservices as ml

from ..spec.rules import azure_vm_vcpus
from ._common import check, child_opts

MIN_NODES = 3
MIN_VCPUS = 12
ROUTER_SERVICE_TYPES = ("LoadBalancer", "NodePort", "ClusterIP")


@dataclass
class AksInferenceClusterArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    workspace_name: str
    cluster_name: str
    compute_name: str = "aks-inference"
    """Name of the attached compute in the workspace (2-16 characters)."""
    node_count: int = MIN_NODES
    vm_size: str = "Standard_D4s_v3"
    vcpus_per_node: int | None = None
    """Only needed when the vCPU count cannot be read from ``vm_size``."""
    autoscale_min_nodes: int | None = None
    autoscale_max_nodes: int | None = None
    kubernetes_namespace: str = "twinserve"
    sku_tier: str = "Free"
    """AKS control plane tier: Free, Standard (uptime SLA) or Premium."""
    router_service_type: str = "LoadBalancer"
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
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = "AksInferenceClusterArgs"
        check(bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,61}[a-zA-Z0-9]", self.cluster_name)), owner,
              "cluster_name", self.cluster_name, "must be 2-63 letters, digits and '-'")
        check(bool(re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,15}", self.compute_name)), owner, "compute_name",
              self.compute_name, "must be 2-16 letters, digits and '-', starting with a letter")
        check(self.node_count >= MIN_NODES, owner, "node_count", self.node_count,
              f"Azure ML inference on AKS needs at least {MIN_NODES} nodes")
        vcpus = self.vcpus_per_node or azure_vm_vcpus(self.vm_size)
        check(vcpus is not None, owner, "vcpus_per_node", self.vcpus_per_node,
              f"the vCPUs of {self.vm_size} cannot be read from its name; set vcpus_per_node")
        check(vcpus * self.node_count >= MIN_VCPUS, owner, "vm_size", self.vm_size,
              f"{self.node_count} x {vcpus} vCPU = {vcpus * self.node_count}; the cluster needs at least "
              f"{MIN_VCPUS} vCPU (e.g. 3 x Standard_D4s_v3)")
        lo, hi = self.autoscale_min_nodes, self.autoscale_max_nodes
        check((lo is None) == (hi is None), owner, "autoscale_min_nodes", (lo, hi),
              "set both autoscale_min_nodes and autoscale_max_nodes, or neither")
        if lo is not None and hi is not None:
            check(lo >= MIN_NODES, owner, "autoscale_min_nodes", lo, f"must be at least {MIN_NODES}")
            check(lo <= self.node_count <= hi, owner, "node_count", self.node_count,
                  f"must lie within the autoscale bounds {lo}..{hi}")
        check(self.sku_tier in ("Free", "Standard", "Premium"), owner, "sku_tier", self.sku_tier,
              "must be Free, Standard or Premium")
        check(self.router_service_type in ROUTER_SERVICE_TYPES, owner, "router_service_type",
              self.router_service_type, f"must be one of {', '.join(ROUTER_SERVICE_TYPES)}")
        if self.allow_insecure_connections:
            check(self.internal_load_balancer or self.router_service_type != "LoadBalancer", owner,
                  "allow_insecure_connections", True,
                  "plain HTTP is only allowed behind an internal load balancer; set internal_load_balancer "
                  "or give ssl_cname, ssl_cert_pem and ssl_key_pem")
        else:
            check(None not in (self.ssl_cname, self.ssl_cert_pem, self.ssl_key_pem), owner, "ssl_cname",
                  self.ssl_cname, "TLS on the inference router needs ssl_cname, ssl_cert_pem and ssl_key_pem; "
                  "or set allow_insecure_connections with an internal load balancer")

    @property
    def total_vcpus(self) -> int:
        return (self.vcpus_per_node or azure_vm_vcpus(self.vm_size) or 0) * self.node_count


def _base64(pem: pulumi.Input[str]) -> pulumi.Output[str]:
    """The extension takes certificate and key as base64 of the PEM text, kept secret in the state."""
    return pulumi.Output.secret(pem).apply(lambda text: base64.b64encode(text.encode("ascii")).decode())


class AksInferenceCluster(pulumi.ComponentResource):
    """Exposes ``cluster``, ``extension``, ``compute`` and ``compute_name``."""

    def __init__(self, name: str, args: AksInferenceClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("twinserve:azure:AksInferenceCluster", name, None, opts)
        rg, loc, tags = args.resource_group_name, args.location, args.tags
        autoscale = args.autoscale_min_nodes is not None

        self.cluster = containerservice.ManagedCluster(
            f"{name}-aks", resource_group_name=rg, location=loc, tags=tags,
            resource_name_=args.cluster_name, dns_prefix=args.cluster_name,
            identity=containerservice.ManagedClusterIdentityArgs(type="SystemAssigned"),
            sku=containerservice.ManagedClusterSKUArgs(name="Base", tier=args.sku_tier),
            enable_rbac=True, disable_local_accounts=True,
            aad_profile=containerservice.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True),
            network_profile=containerservice.ContainerServiceNetworkProfileArgs(
                network_plugin="azure", network_plugin_mode="overlay", load_balancer_sku="standard"),
            agent_pool_profiles=[containerservice.ManagedClusterAgentPoolProfileArgs(
                name="system", mode="System", os_type="Linux", type="VirtualMachineScaleSets",
                vm_size=args.vm_size, count=args.node_count,
                enable_auto_scaling=autoscale,
                min_count=args.autoscale_min_nodes, max_count=args.autoscale_max_nodes)],
            opts=child_opts(self))

        # pulumi-azure-native sends these settings to ARM as they are. `az k8s-extension create`
        # derives several of them on the client (internalLoadBalancerProvider ->
        # scoringFe.serviceType.internalLoadBalancer, PEM files -> base64 scoringFe.sslCert/sslKey,
        # the cluster's identity, location and the relay/service-bus switches), so they are written out
        # here as in Azure's ARM template for the extension (Azure/AML-Kubernetes deployextension.json).
        cluster_location = pulumi.Output.from_input(loc).apply(lambda location: location.lower())
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
            "domain": cluster_location.apply(lambda location: f"{location}.cloudapp.azure.com"),
            "servicebus.enabled": "false",
            "relayserver.enabled": "false",
            "nginxIngress.enabled": "true",
        }
        if args.router_service_type == "NodePort":
            settings["scoringFe.serviceType.nodePort"] = "True"
        elif args.internal_load_balancer and args.router_service_type == "LoadBalancer":
            settings["internalLoadBalancerProvider"] = "azure"
            settings["scoringFe.serviceType.internalLoadBalancer"] = "True"
        if args.ssl_cname:
            settings["sslCname"] = args.ssl_cname
        protected = ({"scoringFe.sslCert": _base64(args.ssl_cert_pem), "scoringFe.sslKey": _base64(args.ssl_key_pem)}
                     if args.ssl_cert_pem is not None and args.ssl_key_pem is not None else None)
        self.extension = kubernetesconfiguration.Extension(
            f"{name}-azureml-ext", resource_group_name=rg,
            cluster_rp="Microsoft.ContainerService", cluster_resource_name="managedClusters",
            cluster_name=args.cluster_name, extension_name="azureml",
            extension_type="Microsoft.AzureML.Kubernetes", release_train="stable",
            auto_upgrade_minor_version=True,
            identity=kubernetesconfiguration.IdentityArgs(type="SystemAssigned"),
            scope=kubernetesconfiguration.ScopeArgs(
                cluster=kubernetesconfiguration.ScopeClusterArgs(release_namespace="azureml")),
            configuration_settings=settings, configuration_protected_settings=protected,
            opts=child_opts(self, depends_on=[self.cluster]))

        self.compute_name = args.compute_name
        self.compute = ml.Compute(
            f"{name}-compute", resource_group_name=rg, workspace_name=args.workspace_name, location=loc,
            compute_name=args.compute_name,
            identity=ml.ManagedServiceIdentityArgs(type="SystemAssigned"),
            properties=ml.KubernetesArgs(
                compute_type="Kubernetes", resource_id=self.cluster.id,
                description=f"AKS {args.cluster_name}: {args.node_count} x {args.vm_size}",
                properties=ml.KubernetesPropertiesArgs(
                    namespace=args.kubernetes_namespace, default_instance_type="defaultinstancetype")),
            # An attached Kubernetes compute cannot be updated in place: replace (detach, re-attach).
            opts=child_opts(self, depends_on=[self.extension], replace_on_changes=["*"],
                            delete_before_replace=True))

        self.register_outputs({
            "cluster_id": self.cluster.id, "compute_id": self.compute.id, "compute_name": args.compute_name,
            "node_count": args.node_count, "total_vcpus": args.total_vcpus,
        })
