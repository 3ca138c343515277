"""The API Management front (azure.api_management): the ApiFront component on its own, the spec rules that
decide where it can work, and the program that composes it in front of the managed endpoint."""

from __future__ import annotations

import copy

import pytest
import yaml
from azure_plan_queries import REPO, of_type, one

from twinserve.azure import ApiFront, ApiFrontArgs
from twinserve.azure.api_front import backend_base_url
from twinserve.pulumi_plan import plan_program
from twinserve.spec import SpecError, parse_spec

APIM = "azure-native:apimanagement:"
EXAMPLE = REPO / "examples" / "azure" / "api-management.yaml"
SCORING_URI = "https://iris-managed.westeurope.inference.ml.azure.com/score"
DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"


def front(**kw) -> ApiFrontArgs:
    base = dict(
        resource_group_name="rg",
        location="westeurope",
        subscription_id="sub",
        service_name="iris-apim",
        publisher_email="ops@example.com",
        endpoint_id="endpoint-arm-id",
        scoring_uri=SCORING_URI,
        api_path="iris-managed",
        backend_timeout_seconds=65,
    )
    return ApiFrontArgs(**{**base, **kw})


def plan_front(args: ApiFrontArgs) -> list[dict]:
    def program():
        ApiFront("demo", args)

    return [r.as_dict() for r in plan_program(program, project="demo", stack="dev")]


def policy_of(planned: list[dict]) -> str:
    return one(planned, APIM + "ApiPolicy")["inputs"]["value"]


# --------------------------------------------------------------------------- the component alone


@pytest.mark.parametrize("sku, capacity", [("Consumption", 0), ("BasicV2", 1), ("StandardV2", 1)])
def test_service_sku_capacity_and_system_identity(sku, capacity):
    service = one(plan_front(front(sku=sku)), APIM + "ApiManagementService")["inputs"]
    assert service["sku"] == {"name": sku, "capacity": capacity}
    assert service["identity"] == {"type": "SystemAssigned"}
    assert service["serviceName"] == "iris-apim"
    assert service["publisherEmail"] == "ops@example.com"


def test_policy_authenticates_with_the_managed_identity_to_the_endpoint_host():
    policy = policy_of(plan_front(front()))
    assert '<authentication-managed-identity resource="https://ml.azure.com" />' in policy
    assert '<set-backend-service base-url="https://iris-managed.westeurope.inference.ml.azure.com" />' in policy
    assert '<forward-request timeout="65" />' in policy
    # the caller's APIM key is not passed on to the endpoint
    assert '<set-header name="Ocp-Apim-Subscription-Key" exists-action="delete" />' in policy
    assert "rate-limit" not in policy


def test_policy_rate_limits_per_minute_when_set():
    policy = policy_of(plan_front(front(rate_limit_calls_per_minute=120)))
    assert '<rate-limit calls="120" renewal-period="60" />' in policy


def test_backend_base_url_drops_the_scoring_path():
    assert backend_base_url(SCORING_URI) == "https://iris-managed.westeurope.inference.ml.azure.com"


def test_role_assignment_scopes_the_services_identity_to_the_endpoint():
    planned = plan_front(front())
    role = one(planned, "azure-native:authorization:RoleAssignment")["inputs"]
    assert role["scope"] == "endpoint-arm-id"
    # the mock gives a system-assigned identity the principal id "<logical name>-principal"
    assert role["principalId"] == "demo-service-principal"
    assert role["principalType"] == "ServicePrincipal"
    assert role["roleDefinitionId"].endswith(f"/roleDefinitions/{DATA_SCIENTIST}")


def test_api_and_score_operation():
    planned = plan_front(front())
    api = one(planned, APIM + "Api")["inputs"]
    assert api["path"] == "iris-managed" and api["protocols"] == ["https"]
    assert api["subscriptionRequired"] is True
    assert api["serviceName"] == "iris-apim"
    operation = one(planned, APIM + "ApiOperation")["inputs"]
    assert (operation["method"], operation["urlTemplate"]) == ("POST", "/score")
    subscription = one(planned, APIM + "Subscription")["inputs"]
    assert subscription["scope"] == "/apis/iris-managed"
    assert all(r["parent"] == "demo" for r in planned if r["custom"])


def test_an_open_api_has_no_subscription():
    planned = plan_front(front(subscription_required=False))
    assert one(planned, APIM + "Api")["inputs"]["subscriptionRequired"] is False
    assert of_type(planned, APIM + "Subscription") == []


@pytest.mark.parametrize(
    "kw, field, fragment",
    [
        (dict(sku="Developer"), "sku", "must be one of Consumption, BasicV2, StandardV2"),
        (dict(sku="Premium"), "sku", "must be one of"),
        (dict(publisher_email="not-an-address"), "publisher_email", "e-mail"),
        (dict(service_name="9apim"), "service_name", "starting with a letter"),
        (dict(api_path="Iris/Managed"), "api_path", "lower-case"),
        (dict(backend_timeout_seconds=241), "backend_timeout_seconds", "1..240"),
        (dict(publisher_name=""), "publisher_name", "1-100"),
        (
            dict(rate_limit_calls_per_minute=10, subscription_required=False),
            "rate_limit_calls_per_minute",
            "subscription_required",
        ),
    ],
)
def test_invalid_arguments_name_field_value_and_what_is_allowed(kw, field, fragment):
    with pytest.raises(ValueError, match=f"ApiFrontArgs.{field}:") as error:
        plan_front(front(**kw))
    assert fragment in str(error.value)


# --------------------------------------------------------------------------- spec rules


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def with_dev_azure(**azure) -> dict:
    raw = example()
    raw["environments"]["dev"] = {"azure": copy.deepcopy(azure)}
    return raw


def issues_of(raw: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as error:
        parse_spec(raw)
    return {issue.path: issue.message for issue in error.value.issues}


def test_the_example_is_valid():
    spec = parse_spec(example())
    apim = spec.environment("dev").azure.api_management
    assert apim.enabled and apim.sku == "Consumption"
    assert spec.environment("prod").azure.api_management.sku == "StandardV2"


def test_api_management_is_off_by_default():
    raw = example()
    del raw["defaults"]["azure"]["api_management"]
    raw["environments"]["prod"]["azure"].pop("api_management")
    assert parse_spec(raw).environment("dev").azure.api_management.enabled is False


def test_classic_tiers_are_not_offered():
    issues = issues_of(with_dev_azure(api_management={"sku": "Developer"}))
    assert any(path.endswith("azure.api_management.sku") for path in issues)


@pytest.mark.parametrize("auth_mode", ["key", "aml_token"])
def test_the_endpoint_must_take_entra_tokens(auth_mode):
    issues = issues_of(with_dev_azure(auth_mode=auth_mode))
    message = issues["environments.dev.azure.auth_mode"]
    assert "aad_token" in message and "managed identity" in message


def test_only_in_front_of_a_managed_endpoint():
    issues = issues_of(with_dev_azure(online_endpoints=["kubernetes"], auth_mode="aml_token"))
    assert "include managed" in issues["environments.dev.azure.online_endpoints"]


def test_a_publisher_email_is_required_when_enabled():
    raw = example()
    del raw["defaults"]["azure"]["api_management"]["publisher_email"]
    issues = issues_of(raw)
    # reported where the setting that enables it is written: the defaults
    assert "required" in issues["defaults.azure.api_management.publisher_email"]


def test_a_publisher_email_must_be_an_address():
    issues = issues_of(with_dev_azure(api_management={"publisher_email": "nobody"}))
    assert any(path.endswith("api_management.publisher_email") for path in issues)


def test_a_rate_limit_needs_subscription_keys():
    issues = issues_of(
        with_dev_azure(api_management={"subscription_required": False, "rate_limit_calls_per_minute": 60})
    )
    assert "per subscription key" in issues["environments.dev.azure.api_management.rate_limit_calls_per_minute"]


@pytest.mark.parametrize("sku, fragment", [("Consumption", "no virtual network"), ("StandardV2", "does not integrate")])
def test_a_private_network_is_refused_at_the_field(sku, fragment):
    issues = issues_of(with_dev_azure(public_network_access=False, api_management={"enabled": True, "sku": sku}))
    message = issues["environments.dev.azure.api_management.enabled"]
    assert fragment in message and "public network access is Disabled" in message


def test_prod_private_by_default_is_refused_by_the_program(sample_model):
    """Unset, prod's network is private by the environment policy: the program judges that too."""
    raw = example()
    del raw["environments"]["prod"]["azure"]["public_network_access"]
    with pytest.raises(SpecError) as error:
        plan_example(raw, "prod")
    assert "environments.prod.azure.api_management.enabled" in str(error.value)


# --------------------------------------------------------------------------- the program


def plan_example(raw: dict, env: str, exports: dict | None = None) -> list[dict]:
    from stacks.azure.program import build_environment

    spec = parse_spec(raw)
    return [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(
                spec, env, location="westeurope", spec_dir=EXAMPLE.parent, budget_start_date="2026-11-01"
            ),
            project="twinserve",
            stack=env,
            exports=exports,
        )
    ]


def test_program_fronts_the_managed_endpoint_and_exports_the_api_url(sample_model):
    exports: dict = {}
    planned = plan_example(example(), "dev", exports)
    endpoint = one(planned, "azure-native:machinelearningservices:OnlineEndpoint")
    role = one(planned, "azure-native:authorization:RoleAssignment", **{"inputs.scope": f"{endpoint['name']}-id"})
    service = one(planned, APIM + "ApiManagementService")
    assert role["inputs"]["principalId"] == f"{service['name']}-principal"
    assert endpoint["inputs"]["properties"]["authMode"] == "AADToken"
    # the deployment's 30 s request timeout plus the margin
    assert '<forward-request timeout="35" />' in policy_of(planned)
    assert exports["api_url"] == "https://irisapimdev-apim.azure-api.net/irisapimdev-managed/score"
    assert exports["api_subscription_keys"] == {
        "$secret": {"primary": "fake-subscription-primary-key", "secondary": "fake-subscription-secondary-key"}
    }


def test_program_creates_no_api_management_when_disabled(sample_model):
    raw = example()
    raw["defaults"]["azure"]["api_management"]["enabled"] = False
    exports: dict = {}
    planned = plan_example(raw, "dev", exports)
    assert [r for r in planned if r["type"].startswith(APIM)] == []
    assert "api_url" not in exports
