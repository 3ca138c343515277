"""What twinserve does differently per environment, decided once for both clouds.

The constructs and components take plain switches (``retain``, ``keep_data``, ``purge_protection``,
...) and know nothing of environments; the stacks read those switches from here.
"""

from __future__ import annotations

from dataclasses import dataclass

PRODUCTION = "prod"


@dataclass(frozen=True)
class EnvironmentPolicy:
    """The policy of one environment (``dev``, ``staging`` or ``prod``)."""

    name: str

    @property
    def production(self) -> bool:
        return self.name == PRODUCTION

    @property
    def keep_data(self) -> bool:
        """Model artifacts, images, registries and logs survive a stack delete (RETAIN / retain_on_delete)."""
        return self.production

    @property
    def termination_protection(self) -> bool:
        """CloudFormation refuses to delete the stacks."""
        return self.production

    @property
    def purge_protection(self) -> bool:
        """Azure key vault purge protection (it cannot be switched off again once on)."""
        return self.production

    @property
    def private_network(self) -> bool:
        """No public endpoints: private endpoints, private DNS, isolated outbound (Azure's
        ``azure.public_network_access`` and AWS's ``aws.private_network`` when the spec leaves them unset)."""
        return self.production

    @property
    def network_isolation(self) -> bool:
        """SageMaker containers without network access (spec ``aws.network_isolation`` when unset)."""
        return self.production

    @property
    def audit_trail(self) -> bool:
        """A CloudTrail trail of the environment's account (spec ``aws.audit_trail`` when it leaves it unset)."""
        return self.production

    @property
    def alert_severity(self) -> int:
        """Azure Monitor severity of the endpoint alerts (1 error in production, 2 warning elsewhere)."""
        return 1 if self.production else 2

    @property
    def aks_sku_tier(self) -> str:
        """AKS control plane tier: Standard (uptime SLA) in production, Free elsewhere."""
        return "Standard" if self.production else "Free"
