"""Disaster recovery on Azure (azure.locations): a secondary location's own serving resources, the Front Door
in front of all locations (the GlobalFront component alone and composed by the program), and the spec rules.

Plans are made by the real Pulumi SDK and pulumi-azure-native classes under the recording mocks of
``twinserve.pulumi_plan`` (no Pulumi engine or Azure subscription is involved): what is asserted is what the
program would send to the provider."""

from __future__ import annotations

import copy

import pytest
import yaml
from azure_plan_queries import ML, REPO, by_name, children, of_type, one

from twinserve.azure.front_door import FrontDoorOrigin, GlobalFront, GlobalFrontArgs
from twinserve.platform.azure import MAX_LOCATIONS, location_code
from twinserve.pulumi_plan import plan_program
from twinserve.spec import SpecError, parse_spec

CDN = "azure-native:cdn:"
EXAMPLE = REPO / "examples" / "azure" / "dr-two-locations.yaml"
PRIMARY, SECONDARY = "westeurope", "northeurope"
URI = "https://{}.{}.inference.ml.azure.com/score"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def plan_example(raw: dict, env: str = "prod", *, location: str = PRIMARY, exports=None, config=None) -> list[dict]:
    from stacks.azure.program import build_environment

    spec = parse_spec(raw)
    return [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(
                spec, env, location=location, spec_dir=EXAMPLE.parent, budget_start_date="2026-11-01"
            ),
            project="twinserve",
            stack=env,
            exports=exports,
            config=config,
        )
    ]


@pytest.fixture(scope="module")
def prod(sample_model) -> tuple[list[dict], dict]:
    exports: dict = {}
    return plan_example(example(), exports=exports), exports


# --------------------------------------------------------------------------- each location's resources


def test_each_location_has_its_own_workspace_storage_registry_and_managed_endpoint(prod):
    # A workspace and its dependencies live in one region; an online endpoint serves from its workspace's
    # region (https://learn.microsoft.com/azure/machine-learning/concept-workspace), so each location needs all.
    planned, _ = prod
    for typ in (
        "azure-native:resources:ResourceGroup",
        ML + "Workspace",
        "azure-native:storage:StorageAccount",
        "azure-native:containerregistry:Registry",
        "azure-native:keyvault:Vault",
        "azure-native:operationalinsights:Workspace",
        ML + "OnlineEndpoint",
    ):
        locations = sorted(r["inputs"]["location"] for r in of_type(planned, typ))
        assert locations == sorted([PRIMARY, SECONDARY]), typ


def test_the_secondary_serves_the_same_deployments_model_and_environment(prod):
    # Models and environments are workspace assets (https://learn.microsoft.com/azure/machine-learning/how-to-manage-models):
    # the secondary registers its own copies in its own workspace.
    planned, _ = prod
    deployments = {}
    for d in of_type(planned, ML + "OnlineDeployment"):
        deployments.setdefault(d["inputs"]["location"], []).append(d["inputs"]["deploymentName"])
    assert deployments[SECONDARY] == deployments[PRIMARY]
    secondary_workspace = one(planned, ML + "Workspace", **{"inputs.location": SECONDARY})["inputs"]["workspaceName"]
    models = [m for m in of_type(planned, ML + "ModelVersion") if m["inputs"]["workspaceName"] == secondary_workspace]
    assert models, "the secondary workspace registers the model"
    envs = [
        e for e in of_type(planned, ML + "EnvironmentVersion") if e["inputs"]["workspaceName"] == secondary_workspace
    ]
    assert envs, "the secondary workspace has the serving ML environment"


def test_secondary_resources_sit_under_their_location_component_and_resource_group(prod):
    planned, _ = prod
    component = one(planned, "twinserve:azure:ServingLocation")
    assert component["name"] == f"iris-dr-prod-{SECONDARY}-location"
    group = one(planned, "azure-native:resources:ResourceGroup", **{"inputs.location": SECONDARY})
    assert group["parent"] == component["name"]
    assert group["inputs"]["resourceGroupName"] == f"rg-iris-dr-prod-{SECONDARY}"
    # prod keeps data: the secondary's resource group is protected like the primary's
    assert group["options"].get("protect") is True and group["options"].get("retain_on_delete") is True
    kids = {r["type"] for r in children(planned, component["name"])}
    assert {"twinserve:azure:MlWorkspace", "twinserve:azure:ModelEnvironment", "twinserve:azure:OnlineEndpoint"} <= kids
    for r in of_type(planned, ML + "OnlineEndpoint"):
        if r["inputs"]["location"] == SECONDARY:
            assert r["inputs"]["resourceGroupName"] == f"rg-iris-dr-prod-{SECONDARY}"


def test_globally_unique_names_differ_per_location_and_fit_azure_limits(prod):
    # Storage account names: 3-24 lower-case letters and digits, unique in Azure; registry names 5-50
    # alphanumerics (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
    planned, _ = prod
    for typ, key, limit in (
        ("azure-native:storage:StorageAccount", "accountName", 24),
        ("azure-native:containerregistry:Registry", "registryName", 50),
        ("azure-native:keyvault:Vault", "vaultName", 24),
    ):
        names = [r["inputs"][key] for r in of_type(planned, typ)]
        assert len(set(names)) == len(names) == 2, (typ, names)
        assert all(len(n) <= limit for n in names), names
    storage = one(planned, "azure-native:storage:StorageAccount", **{"inputs.location": SECONDARY})
    assert location_code(SECONDARY) in storage["inputs"]["accountName"]
    logical = [r["name"] for r in planned]
    assert len(set(logical)) == len(logical)


def test_the_batch_endpoint_stays_in_the_primary(prod):
    # Only the managed online endpoint is fronted and duplicated. (A Kubernetes endpoint cannot be combined with
    # a second location at all: it takes no aad_token, which a second location needs -
    # https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint.)
    planned, _ = prod
    batch = of_type(planned, ML + "BatchEndpoint")
    assert [b["inputs"]["location"] for b in batch] == [PRIMARY]


def test_the_primarys_resources_keep_their_names(prod, sample_model):
    # Adding a location must not rename (= replace) anything the primary has: compare with one location.
    planned, _ = prod
    raw = example()
    raw["environments"]["prod"]["azure"]["locations"] = [PRIMARY]
    single = plan_example(raw)
    single_names = {r["name"] for r in single}
    assert single_names <= {r["name"] for r in planned}
    for name in single_names:
        assert by_name(planned, name)["inputs"] == by_name(single, name)["inputs"], name
    assert of_type(single, CDN + "Profile") == []


# --------------------------------------------------------------------------- the front


def test_front_door_standard_with_one_origin_per_location_primary_first(prod):
    # Priority routing: the lowest priority among healthy, enabled origins takes the traffic
    # (https://learn.microsoft.com/azure/frontdoor/routing-methods).
    planned, _ = prod
    profile = one(planned, CDN + "Profile")["inputs"]
    assert profile["sku"] == {"name": "Standard_AzureFrontDoor"} and profile["location"] == "global"
    origins = {o["inputs"]["originName"]: o["inputs"] for o in of_type(planned, CDN + "AFDOrigin")}
    assert set(origins) == {PRIMARY, SECONDARY}
    assert origins[PRIMARY]["priority"] == 1 and origins[SECONDARY]["priority"] == 2
    assert {o["weight"] for o in origins.values()} == {1000}
    assert all(o["enabledState"] == "Enabled" for o in origins.values())


def test_origins_send_the_endpoint_host_so_its_certificate_matches(prod):
    # Front Door connects with the origin host header as Host and SNI and checks the origin's certificate
    # against it (https://learn.microsoft.com/azure/frontdoor/origin#origin-host-header).
    planned, _ = prod
    for origin in of_type(planned, CDN + "AFDOrigin"):
        inputs = origin["inputs"]
        location = inputs["originName"]
        assert inputs["hostName"].endswith(f".{location}.inference.ml.azure.com")
        assert inputs["originHostHeader"] == inputs["hostName"]
        assert inputs["enforceCertificateNameCheck"] is True and inputs["httpsPort"] == 443
    endpoints = {e["inputs"]["location"]: e["inputs"]["endpointName"] for e in of_type(planned, ML + "OnlineEndpoint")}
    hosts = {o["inputs"]["originName"]: o["inputs"]["hostName"] for o in of_type(planned, CDN + "AFDOrigin")}
    assert hosts == {loc: f"{name}.{loc}.inference.ml.azure.com" for loc, name in endpoints.items()}


def test_health_probe_path_protocol_and_interval(prod):
    # Probes: GET or HEAD over HTTP or HTTPS every 1..255 s, only 200 OK is healthy
    # (https://learn.microsoft.com/azure/frontdoor/health-probes).
    planned, _ = prod
    group = one(planned, CDN + "AFDOriginGroup")["inputs"]
    assert group["healthProbeSettings"] == {
        "probePath": "/score",
        "probeProtocol": "Https",
        "probeRequestType": "HEAD",
        "probeIntervalInSeconds": 30,
    }
    assert group["loadBalancingSettings"]["sampleSize"] == 4
    assert group["loadBalancingSettings"]["successfulSamplesRequired"] == 3


def test_route_is_https_only_to_the_origin_group(prod):
    # https://learn.microsoft.com/azure/frontdoor/front-door-route-matching
    planned, _ = prod
    route = one(planned, CDN + "Route")
    inputs = route["inputs"]
    assert inputs["supportedProtocols"] == ["Https"] and inputs["forwardingProtocol"] == "HttpsOnly"
    assert inputs["patternsToMatch"] == ["/*"]
    assert inputs["originGroup"] == {"id": f"{one(planned, CDN + 'AFDOriginGroup')['name']}-id"}
    # the route waits for the origins
    assert {o["name"] for o in of_type(planned, CDN + "AFDOrigin")} <= set(route["depends_on"])


def test_front_door_logs_go_to_the_primarys_log_analytics(prod):
    # Front Door's access and health-probe logs are resource logs exported by a diagnostic setting
    # (https://learn.microsoft.com/azure/frontdoor/front-door-diagnostics).
    planned, _ = prod
    profile = one(planned, CDN + "Profile")
    primary_logs = one(planned, "azure-native:operationalinsights:Workspace", **{"inputs.location": PRIMARY})
    setting = one(planned, "azure-native:monitor:DiagnosticSetting", **{"inputs.resourceUri": f"{profile['name']}-id"})
    assert setting["inputs"]["workspaceId"] == f"{primary_logs['name']}-id"
    assert setting["inputs"]["logs"] == [{"categoryGroup": "allLogs", "enabled": True}]


def test_exports_the_global_url_and_each_locations_scoring_uri(prod):
    planned, exports = prod
    assert exports["global_url"] == "https://irisdrprod-score-fakehash.z01.azurefd.net/score"
    endpoints = {e["inputs"]["location"]: e["inputs"]["endpointName"] for e in of_type(planned, ML + "OnlineEndpoint")}
    assert exports["location_scoring_uris"] == {loc: URI.format(name, loc) for loc, name in endpoints.items()}
    assert exports["drained_locations"] == []


def test_a_drained_location_is_disabled_at_the_front(sample_model):
    # A disabled origin takes no traffic; priority routing moves it to the next one
    # (https://learn.microsoft.com/azure/frontdoor/origin#origin-group).
    planned = plan_example(example(), config={"twinserve:drainedLocations": PRIMARY})
    origins = {o["inputs"]["originName"]: o["inputs"]["enabledState"] for o in of_type(planned, CDN + "AFDOrigin")}
    assert origins == {PRIMARY: "Disabled", SECONDARY: "Enabled"}


@pytest.mark.parametrize("drained", [f"{PRIMARY},{SECONDARY}", "eastus"])
def test_drained_locations_must_be_known_and_leave_one_serving(sample_model, drained):
    with pytest.raises(SpecError) as error:
        plan_example(example(), config={"twinserve:drainedLocations": drained})
    assert "twinserve:drainedLocations" in str(error.value)


def test_one_location_plans_no_front(sample_model):
    planned = plan_example(example(), "dev")
    assert [r for r in planned if r["type"].startswith(CDN)] == []
    assert of_type(planned, "twinserve:azure:ServingLocation") == []


# --------------------------------------------------------------------------- the component alone


def front_args(**kw) -> GlobalFrontArgs:
    base = dict(
        resource_group_name="rg",
        profile_name="demo-afd",
        endpoint_name="demo-score",
        origins=[
            FrontDoorOrigin(name=PRIMARY, scoring_uri=URI.format("a-managed", PRIMARY), priority=1),
            FrontDoorOrigin(name=SECONDARY, scoring_uri=URI.format("b-managed", SECONDARY), priority=2),
        ],
    )
    return GlobalFrontArgs(**{**base, **kw})


def plan_front(args: GlobalFrontArgs) -> list[dict]:
    return [r.as_dict() for r in plan_program(lambda: GlobalFront("demo", args), project="demo", stack="dev")]


def test_component_children_are_parented_and_origins_follow_the_args():
    planned = plan_front(front_args(probe_interval_seconds=60, probe_method="GET"))
    assert all(r["parent"] == "demo" for r in planned if r["custom"])
    group = one(planned, CDN + "AFDOriginGroup")["inputs"]["healthProbeSettings"]
    assert (group["probeIntervalInSeconds"], group["probeRequestType"]) == (60, "GET")
    assert {o["inputs"]["hostName"] for o in of_type(planned, CDN + "AFDOrigin")} == {
        f"a-managed.{PRIMARY}.inference.ml.azure.com",
        f"b-managed.{SECONDARY}.inference.ml.azure.com",
    }


@pytest.mark.parametrize(
    "kw, field, fragment",
    [
        (dict(probe_interval_seconds=0), "probe_interval_seconds", "1..255"),
        (dict(probe_interval_seconds=256), "probe_interval_seconds", "1..255"),
        (dict(probe_protocol="Tcp"), "probe_protocol", "must be one of Http, Https"),
        (dict(probe_method="POST"), "probe_method", "must be one of GET, HEAD"),
        (dict(probe_path="score"), "probe_path", "start with '/'"),
        (dict(origin_response_timeout_seconds=10), "origin_response_timeout_seconds", "16..240"),
        (dict(origins=[]), "origins", "at least one"),
        (
            dict(origins=[FrontDoorOrigin(name=PRIMARY, scoring_uri="u", priority=1)] * 2),
            "origins",
            "unique",
        ),
        (
            dict(origins=[FrontDoorOrigin(name=PRIMARY, scoring_uri="u", priority=6)]),
            "origins.0.priority",
            "1..5",
        ),
        (
            dict(origins=[FrontDoorOrigin(name=PRIMARY, scoring_uri="u", priority=1, drained=True)]),
            "origins",
            "at least one origin must stay enabled",
        ),
    ],
)
def test_invalid_arguments_name_field_value_and_what_is_allowed(kw, field, fragment):
    with pytest.raises(ValueError, match=f"GlobalFrontArgs.{field}:") as error:
        plan_front(front_args(**kw))
    assert fragment in str(error.value)


# --------------------------------------------------------------------------- spec rules


def with_prod_azure(**azure) -> dict:
    raw = example()
    raw["environments"]["prod"]["azure"].update(copy.deepcopy(azure))
    return raw


def issues_of(raw: dict) -> dict[str, str]:
    with pytest.raises(SpecError) as error:
        parse_spec(raw)
    return {issue.path: issue.message for issue in error.value.issues}


def test_the_example_is_valid():
    assert parse_spec(example()).environment("prod").azure.locations == [PRIMARY, SECONDARY]


def test_locations_must_be_unique():
    issues = issues_of(with_prod_azure(locations=[PRIMARY, SECONDARY, SECONDARY]))
    assert "unique" in issues["environments.prod.azure.locations.2"]


@pytest.mark.parametrize("bad", ["West Europe", "west-europe", "EU"])
def test_locations_must_be_azure_location_names(bad):
    # Programmatic location names: `az account list-locations --query [].name`
    # (https://learn.microsoft.com/cli/azure/account#az-account-list-locations).
    issues = issues_of(with_prod_azure(locations=[PRIMARY, bad]))
    assert "Azure location name" in issues["environments.prod.azure.locations.1"]


def test_at_most_three_locations():
    locations = [PRIMARY, SECONDARY, "swedencentral", "francecentral"]
    issues = issues_of(with_prod_azure(locations=locations))
    assert f"at most {MAX_LOCATIONS}" in issues["environments.prod.azure.locations"]


def test_an_empty_list_is_refused():
    assert "at least the primary" in issues_of(with_prod_azure(locations=[]))["environments.prod.azure.locations"]


def test_a_second_location_needs_a_managed_endpoint():
    issues = issues_of(with_prod_azure(online_endpoints=["kubernetes"], auth_mode="aml_token"))
    message = issues["environments.prod.azure.online_endpoints"]
    assert "include managed" in message and "Kubernetes endpoint stays in the primary" in message


@pytest.mark.parametrize("auth_mode", ["key", "aml_token"])
def test_a_second_location_needs_entra_tokens(auth_mode):
    # Keys and Azure ML tokens are per endpoint; an Entra token is accepted by every endpoint the caller may
    # score (https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint).
    issues = issues_of(with_prod_azure(auth_mode=auth_mode))
    assert "aad_token" in issues["environments.prod.azure.auth_mode"]


def test_a_second_location_needs_a_public_network():
    # Front Door Standard reaches public origins only; Private Link origins are Premium
    # (https://learn.microsoft.com/azure/frontdoor/private-link).
    issues = issues_of(with_prod_azure(public_network_access=False))
    assert "Front Door Standard" in issues["environments.prod.azure.locations"]


def test_prod_private_by_default_is_refused_by_the_program(sample_model):
    raw = example()
    del raw["environments"]["prod"]["azure"]["public_network_access"]
    with pytest.raises(SpecError) as error:
        plan_example(raw)
    assert "environments.prod.azure.locations" in str(error.value)


def test_the_primary_must_be_the_stacks_location(sample_model):
    with pytest.raises(SpecError) as error:
        plan_example(example(), location="swedencentral")
    message = str(error.value)
    assert "environments.prod.azure.locations.0" in message
    assert PRIMARY in message and "swedencentral" in message and "azure-native:location" in message


def test_location_codes_differ_for_locations_with_the_same_start():
    codes = {location_code(loc) for loc in ("westus", "westus2", "westus3", "westeurope", "eastus", "eastasia")}
    assert len(codes) == 6


def test_one_spec_serves_two_locations_on_both_clouds(sample_model):
    """examples/two-clouds/dr-two-regions.yaml: its Azure side here (Pulumi with the recording mocks),
    its AWS side in tests/aws/test_aws_disaster_recovery.py."""
    path = REPO / "examples" / "two-clouds" / "dr-two-regions.yaml"
    from stacks.azure.program import build_environment
    from twinserve.spec import load_spec

    spec = load_spec(path)
    assert spec.environment("prod").targets == ["aws", "azure"]
    planned = [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(
                spec, "prod", location=PRIMARY, spec_dir=path.parent, budget_start_date="2026-11-01"
            ),
            project="twinserve",
            stack="prod",
        )
    ]
    origins = {o["inputs"]["originName"]: o["inputs"]["priority"] for o in of_type(planned, CDN + "AFDOrigin")}
    assert origins == {PRIMARY: 1, SECONDARY: 2}
