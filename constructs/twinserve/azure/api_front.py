"""An Azure API Management front on a managed online endpoint: callers present an APIM subscription key,
APIM calls the endpoint with its own managed identity.

What is created, all parented to the component:

1. ``apimanagement.ApiManagementService`` with a system-assigned identity, in a tier that is created in
   minutes: Consumption (capacity 0), BasicV2 or StandardV2 (capacity 1). The classic tiers take 30-45
   minutes and are not offered.
2. ``apimanagement.Api`` at ``<gateway>/<api_path>`` (https only), and ``ApiOperation`` ``POST /score``.
3. ``apimanagement.ApiPolicy``: ``rate-limit`` (when set), ``set-backend-service`` to the endpoint's
   scoring host, ``authentication-managed-identity`` for ``https://ml.azure.com`` (the audience of an
   endpoint with Microsoft Entra token auth, AADToken), the caller's subscription key removed before the
   call, and ``forward-request`` with a timeout just above the deployment's own request timeout.
4. ``authorization.RoleAssignment``: the service's identity gets ``role`` on the endpoint alone.
5. With ``subscription_required``: an ``apimanagement.Subscription`` scoped to the API; its keys are the
   ``subscription_keys`` output (secret).

The role: the built-in "AzureML Data Scientist" by default, scoped to the one endpoint, which includes
``Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action``. A custom role holding only
that action would be narrower, but custom roles are tenant-wide definitions whose assignable scopes cannot
be a single endpoint; pass its id as ``role`` to use one. The identity's tokens are requested by the policy
for ``https://ml.azure.com`` only, which the management plane (``management.azure.com``) does not accept.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

import pulumi
from pulumi_azure_native import apimanagement, authorization

from ..checks import Checks
from ..platform import azure as azure_platform
from ..platform.shared import EMAIL_HINT, EMAIL_PATTERN
from ._common import ROLE_AZUREML_DATA_SCIENTIST, child_opts, role_definition

SCORE_OPERATION = "/score"
"""The API's one operation, forwarded to the same path of the endpoint's scoring host."""
SUBSCRIPTION_KEY_HEADER = "Ocp-Apim-Subscription-Key"
SERVICE_NAME = r"[a-zA-Z][a-zA-Z0-9-]{0,48}[a-zA-Z0-9]"
API_PATH = r"[a-z0-9][a-z0-9-]{0,62}"


@dataclass(frozen=True)
class ApiFrontArgs:
    """Args of :class:`ApiFront`."""

    resource_group_name: pulumi.Input[str]
    """The resource group of the API Management service."""
    location: pulumi.Input[str]
    """Azure region of the service."""
    subscription_id: pulumi.Input[str]
    """The subscription of the role definition."""
    service_name: str
    """The API Management service's name, globally unique (``<name>.azure-api.net``; 2-50 letters, digits
    and '-')."""
    publisher_email: str
    """Where API Management sends its notifications."""
    endpoint_id: pulumi.Input[str]
    """The managed online endpoint's ARM id: the scope of the role assignment."""
    scoring_uri: pulumi.Input[str]
    """The endpoint's scoring URI (``https://<endpoint>.<region>.inference.ml.azure.com/score``); the
    backend is its scheme and host."""
    api_path: str
    """The API's path on the gateway (lower-case letters, digits and '-'), e.g. the endpoint's name."""
    backend_timeout_seconds: int
    """``forward-request timeout``: the deployment's request timeout plus a margin (1..240)."""
    publisher_name: str = "twinserve"
    """The organization name in the developer portal and notifications."""
    sku: str = "Consumption"
    """Consumption, BasicV2 or StandardV2."""
    subscription_required: bool = True
    """Callers must send ``Ocp-Apim-Subscription-Key``; a subscription scoped to the API is created."""
    rate_limit_calls_per_minute: int | None = None
    """Calls per subscription per minute (``rate-limit``); needs ``subscription_required``."""
    role: str = ROLE_AZUREML_DATA_SCIENTIST
    """The role definition (GUID) the service's identity gets on the endpoint: it must include
    ``Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action``."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags of the service."""


def _check(args: ApiFrontArgs) -> None:
    check = Checks("ApiFrontArgs")
    check.pattern(
        "service_name", args.service_name, SERVICE_NAME, "must be 2-50 letters, digits and '-', starting with a letter"
    )
    check.one_of("sku", args.sku, azure_platform.APIM_SKUS)
    check.pattern("publisher_email", args.publisher_email, EMAIL_PATTERN, EMAIL_HINT)
    check.that(1 <= len(args.publisher_name) <= 100, "publisher_name", args.publisher_name, "must be 1-100 characters")
    check.pattern("api_path", args.api_path, API_PATH, "must be 1-63 lower-case letters, digits and '-'")
    check.range(
        "backend_timeout_seconds",
        args.backend_timeout_seconds,
        1,
        azure_platform.APIM_MAX_BACKEND_TIMEOUT_SECONDS,
        " s",
    )
    if args.rate_limit_calls_per_minute is not None:
        check.range("rate_limit_calls_per_minute", args.rate_limit_calls_per_minute, 1, 1_000_000)
        check.that(
            args.subscription_required,
            "rate_limit_calls_per_minute",
            args.rate_limit_calls_per_minute,
            "a rate limit counts calls per subscription key: needs subscription_required",
        )


def backend_base_url(scoring_uri: str) -> str:
    """``https://host/score`` -> ``https://host``: APIM appends the operation's path (``/score``)."""
    parts = urllib.parse.urlsplit(scoring_uri)
    return f"{parts.scheme}://{parts.netloc}"


def policy_xml(base_url: str, *, timeout_seconds: int, rate_limit_calls_per_minute: int | None) -> str:
    """The API's policy: who may call (rate limit), where to, with which identity, how long to wait."""
    rate_limit = (
        f'\n    <rate-limit calls="{rate_limit_calls_per_minute}" renewal-period="60" />'
        if rate_limit_calls_per_minute is not None
        else ""
    )
    return f"""<policies>
  <inbound>
    <base />{rate_limit}
    <set-backend-service base-url={quoteattr(base_url)} />
    <authentication-managed-identity resource="{azure_platform.APIM_SCORING_AUDIENCE}" />
    <set-header name="{SUBSCRIPTION_KEY_HEADER}" exists-action="delete" />
  </inbound>
  <backend>
    <forward-request timeout="{timeout_seconds}" />
  </backend>
  <outbound>
    <base />
  </outbound>
  <on-error>
    <base />
  </on-error>
</policies>
"""


class ApiFront(pulumi.ComponentResource):
    """Exposes ``service``, ``api``, ``operation``, ``policy``, ``role_assignment``, ``subscription``
    (``None`` without ``subscription_required``), ``principal_id``, ``url`` (``<gateway>/<path>/score``)
    and ``subscription_keys`` (primary/secondary, secret; ``None`` without a subscription)."""

    def __init__(self, name: str, args: ApiFrontArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        _check(args)
        super().__init__("twinserve:azure:ApiFront", name, None, opts)
        group, service_name = args.resource_group_name, args.service_name
        self.service = apimanagement.ApiManagementService(
            f"{name}-service",
            resource_group_name=group,
            location=args.location,
            service_name=service_name,
            publisher_email=args.publisher_email,
            publisher_name=args.publisher_name,
            sku=apimanagement.ApiManagementServiceSkuPropertiesArgs(
                name=args.sku, capacity=azure_platform.APIM_SKUS[args.sku]
            ),
            identity=apimanagement.ApiManagementServiceIdentityArgs(type="SystemAssigned"),
            tags=args.tags,
            opts=child_opts(self),
        )
        self.principal_id = self.service.identity.apply(lambda identity: identity.principal_id if identity else None)
        self.api = apimanagement.Api(
            f"{name}-api",
            resource_group_name=group,
            service_name=self.service.name,
            api_id=args.api_path,
            path=args.api_path,
            display_name=args.api_path,
            protocols=["https"],
            api_type="http",
            subscription_required=args.subscription_required,
            subscription_key_parameter_names=apimanagement.SubscriptionKeyParameterNamesContractArgs(
                header=SUBSCRIPTION_KEY_HEADER, query="subscription-key"
            ),
            opts=child_opts(self),
        )
        self.operation = apimanagement.ApiOperation(
            f"{name}-score",
            resource_group_name=group,
            service_name=self.service.name,
            api_id=args.api_path,
            operation_id="score",
            display_name="score",
            method="POST",
            url_template=SCORE_OPERATION,
            opts=child_opts(self, depends_on=[self.api]),
        )
        self.policy = apimanagement.ApiPolicy(
            f"{name}-policy",
            resource_group_name=group,
            service_name=self.service.name,
            api_id=args.api_path,
            policy_id="policy",
            format="xml",
            value=pulumi.Output.from_input(args.scoring_uri).apply(
                lambda uri: policy_xml(
                    backend_base_url(uri),
                    timeout_seconds=args.backend_timeout_seconds,
                    rate_limit_calls_per_minute=args.rate_limit_calls_per_minute,
                )
            ),
            opts=child_opts(self, depends_on=[self.api]),
        )
        self.role_assignment = authorization.RoleAssignment(
            f"{name}-score-role",
            scope=args.endpoint_id,
            principal_id=self.principal_id,
            principal_type="ServicePrincipal",
            role_definition_id=role_definition(args.subscription_id, args.role),
            opts=child_opts(self),
        )
        self.subscription: apimanagement.Subscription | None = None
        self.subscription_keys: pulumi.Output[dict[str, str]] | None = None
        if args.subscription_required:
            sid = f"{args.api_path}-callers"
            self.subscription = apimanagement.Subscription(
                f"{name}-subscription",
                resource_group_name=group,
                service_name=self.service.name,
                sid=sid,
                display_name=f"{args.api_path} callers",
                scope=f"/apis/{args.api_path}",
                state="active",
                opts=child_opts(self, depends_on=[self.api]),
            )
            secrets = apimanagement.list_subscription_secrets_output(
                resource_group_name=group,
                service_name=self.service.name,
                sid=sid,
                opts=pulumi.InvokeOutputOptions(depends_on=[self.subscription]),
            )
            self.subscription_keys = pulumi.Output.secret(
                secrets.apply(lambda s: {"primary": s.primary_key, "secondary": s.secondary_key})
            )
        self.url = pulumi.Output.concat(self.service.gateway_url, "/", args.api_path, SCORE_OPERATION)
        self.register_outputs(
            {
                "service_id": self.service.id,
                "gateway_url": self.service.gateway_url,
                "url": self.url,
                "principal_id": self.principal_id,
            }
        )
