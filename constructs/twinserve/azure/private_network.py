"""A private network for Azure services: a small virtual network, private endpoints and their DNS.

The virtual network has two subnets carved from its address space: ``private-endpoints`` (the first
/24) and ``nodes`` (the second /24, for an AKS node pool that must reach the endpoints). Each target
gets a private endpoint with one Private Link sub-resource (``groupId``) in the first subnet, and a
private DNS zone group that writes its records into the private DNS zones of that sub-resource; every
zone is linked to the virtual network, so anything in it (or peered and resolving through it) reaches the
service by its usual name on a private IP (https://learn.microsoft.com/azure/private-link/private-endpoint-dns).

The component knows nothing of Azure ML: it takes ``(name, resource id, group id)`` targets and the zones
of each group (``twinserve.platform.azure.PRIVATE_ENDPOINT_GROUPS``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import network, privatedns

from ..checks import Checks
from ._common import child_opts

ZONE_LOCATION = "global"
"""Private DNS zones and their virtual network links are global resources."""
ENDPOINT_SUBNET = "private-endpoints"
NODE_SUBNET = "nodes"


@dataclass(frozen=True)
class PrivateEndpointTarget:
    """One service reached through a private endpoint."""

    name: str
    """Short name, part of the endpoint's name (letters, digits and '-')."""
    resource_id: pulumi.Input[str]
    """The service's ARM id (workspace, storage account, key vault, registry)."""
    group_id: str
    """The Private Link sub-resource: amlworkspace, blob, file, vault, registry, ..."""
    dns_zones: tuple[str, ...]
    """The private DNS zones its records go to (they must be among ``PrivateNetworkArgs.dns_zones``)."""


@dataclass(frozen=True)
class PrivateNetworkArgs:
    """Args of :class:`PrivateNetwork`."""

    resource_group_name: pulumi.Input[str]
    """The resource group of the network, endpoints and zones."""
    location: pulumi.Input[str]
    """Azure region of the network and endpoints (the zones are global)."""
    name_prefix: str
    """Prefix of the Azure names (``<prefix>-vnet``, ``<prefix>-pe-<target>``)."""
    address_space: str = "10.60.0.0/22"
    """The virtual network's IPv4 range, at most a /23 (two /24 subnets are carved from it)."""
    targets: list[PrivateEndpointTarget] = field(default_factory=list)
    """The services to reach privately, one endpoint each."""
    dns_zones: tuple[str, ...] = ()
    """The private DNS zones to create and link to the network."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of every resource."""

    @property
    def subnet_prefixes(self) -> tuple[str, str]:
        """The private-endpoint subnet and the node subnet: the first two /24 of the address space."""
        subnets = ipaddress.ip_network(self.address_space).subnets(new_prefix=24)
        return str(next(subnets)), str(next(subnets))


def _check(args: PrivateNetworkArgs) -> None:
    check = Checks("PrivateNetworkArgs")
    check.pattern(
        "name_prefix", args.name_prefix, r"[a-zA-Z][a-zA-Z0-9-]{0,40}", "must be 1-41 letters, digits and '-'"
    )
    try:
        space = ipaddress.ip_network(args.address_space)
    except ValueError:
        space = None
    check.that(
        space is not None and space.version == 4 and space.is_private and space.prefixlen <= 23,
        "address_space",
        args.address_space,
        "must be a private IPv4 range in CIDR form of at most /23 (e.g. 10.60.0.0/22): two /24 subnets come from it",
    )
    names = [t.name for t in args.targets]
    check.that(len(names) == len(set(names)), "targets", names, "target names must be unique")
    for i, target in enumerate(args.targets):
        check.pattern(
            f"targets[{i}].name",
            target.name,
            r"[a-z][a-z0-9-]{0,30}",
            "must be 1-31 lower-case letters, digits and '-'",
        )
        missing = [z for z in target.dns_zones if z not in args.dns_zones]
        check.that(not missing, f"targets[{i}].dns_zones", missing, "every zone of a target must be in dns_zones")


class PrivateNetwork(pulumi.ComponentResource):
    """Exposes ``virtual_network``, ``endpoint_subnet``, ``node_subnet``, ``zones`` (name -> zone),
    ``links`` (name -> link), ``endpoints`` (target name -> PrivateEndpoint) and ``zone_groups``."""

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:PrivateNetwork", name, None, opts)
        group, tags = args.resource_group_name, args.tags
        endpoint_prefix, node_prefix = args.subnet_prefixes
        # The subnets are resources of their own; a virtual network update that omitted them would remove
        # them, so the network never re-sends its subnet list.
        self.virtual_network = network.VirtualNetwork(
            f"{name}-vnet",
            resource_group_name=group,
            location=args.location,
            tags=tags,
            virtual_network_name=f"{args.name_prefix}-vnet",
            address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
            opts=child_opts(self, ignore_changes=["subnets"]),
        )
        self.endpoint_subnet = network.Subnet(
            f"{name}-{ENDPOINT_SUBNET}",
            resource_group_name=group,
            virtual_network_name=self.virtual_network.name,
            subnet_name=ENDPOINT_SUBNET,
            address_prefix=endpoint_prefix,
            private_endpoint_network_policies="Disabled",
            opts=child_opts(self),
        )
        # One subnet operation at a time per virtual network: the node subnet waits for the first.
        self.node_subnet = network.Subnet(
            f"{name}-{NODE_SUBNET}",
            resource_group_name=group,
            virtual_network_name=self.virtual_network.name,
            subnet_name=NODE_SUBNET,
            address_prefix=node_prefix,
            opts=child_opts(self, depends_on=[self.endpoint_subnet]),
        )
        self.zones: dict[str, privatedns.PrivateZone] = {}
        self.links: dict[str, privatedns.VirtualNetworkLink] = {}
        for zone_name in args.dns_zones:
            short = zone_name.replace("privatelink.", "").replace(".", "-")
            zone = privatedns.PrivateZone(
                f"{name}-zone-{short}",
                resource_group_name=group,
                private_zone_name=zone_name,
                location=ZONE_LOCATION,
                tags=tags,
                opts=child_opts(self),
            )
            self.zones[zone_name] = zone
            self.links[zone_name] = privatedns.VirtualNetworkLink(
                f"{name}-link-{short}",
                resource_group_name=group,
                private_zone_name=zone_name,
                virtual_network_link_name=f"{args.name_prefix}-vnet",
                location=ZONE_LOCATION,
                virtual_network=privatedns.SubResourceArgs(id=self.virtual_network.id),
                registration_enabled=False,
                tags=tags,
                opts=child_opts(self, depends_on=[zone]),
            )
        self.endpoints: dict[str, network.PrivateEndpoint] = {}
        self.zone_groups: dict[str, network.PrivateDnsZoneGroup] = {}
        for target in args.targets:
            endpoint_name = f"{args.name_prefix}-pe-{target.name}"
            endpoint = network.PrivateEndpoint(
                f"{name}-pe-{target.name}",
                resource_group_name=group,
                location=args.location,
                tags=tags,
                private_endpoint_name=endpoint_name,
                subnet=network.SubnetArgs(id=self.endpoint_subnet.id),
                private_link_service_connections=[
                    network.PrivateLinkServiceConnectionArgs(
                        name=endpoint_name,
                        private_link_service_id=target.resource_id,
                        group_ids=[target.group_id],
                    )
                ],
                opts=child_opts(self),
            )
            self.endpoints[target.name] = endpoint
            self.zone_groups[target.name] = network.PrivateDnsZoneGroup(
                f"{name}-pe-{target.name}-dns",
                resource_group_name=group,
                private_endpoint_name=endpoint_name,
                private_dns_zone_group_name="default",
                private_dns_zone_configs=[
                    network.PrivateDnsZoneConfigArgs(
                        name=zone_name.replace(".", "-"), private_dns_zone_id=self.zones[zone_name].id
                    )
                    for zone_name in target.dns_zones
                ],
                opts=child_opts(self, depends_on=[endpoint, *(self.links[z] for z in target.dns_zones)]),
            )
        self.register_outputs(
            {
                "virtual_network_id": self.virtual_network.id,
                "endpoint_subnet_id": self.endpoint_subnet.id,
                "node_subnet_id": self.node_subnet.id,
                "private_endpoints": {n: e.id for n, e in self.endpoints.items()},
            }
        )
