"""What a second `pulumi up` and a destroy meet on Azure: each test states the platform rule it encodes,
with its source, and checks the plan the program declares for it (Pulumi's mock engine: no CLI or
subscription here)."""

from __future__ import annotations

import copy

import pytest
import yaml
from azure_plan_queries import DEPLOY_SPEC, ML, REPO, endpoint_groups, of_type, one, serving_ml_environment

from twinserve.pulumi_plan import plan_program
from twinserve.spec import load_spec, parse_spec

KUBERNETES_COMPUTE = {"inputs.properties.computeType": "Kubernetes"}


def sample() -> dict:
    return yaml.safe_load(DEPLOY_SPEC.read_text())


def plan_of(raw: dict, env: str = "dev", exports: dict | None = None) -> list[dict]:
    """The plan of ``raw`` (a spec dict whose paths are relative to deploy/), as `pulumi up` would declare it."""
    from stacks.azure.program import build_environment

    spec = parse_spec(raw)
    return [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(
                spec, env, location="westeurope", spec_dir=DEPLOY_SPEC.parent, budget_start_date="2026-11-01"
            ),
            project="twinserve",
            stack=env,
            exports=exports,
        )
    ]


def test_more_aks_nodes_or_another_vm_size_never_replace_the_attached_compute(sample_model):
    # An attached Kubernetes compute cannot be updated in place, so any change of its inputs replaces it
    # (detach, re-attach), taking the live Kubernetes endpoints' compute away. Its inputs therefore hold
    # nothing that follows the node pool.
    before = one(plan_of(sample()), ML + "Compute", **KUBERNETES_COMPUTE)
    for change in ({"node_count": 4}, {"vm_size": "Standard_D8s_v3"}):
        raw = sample()
        raw["defaults"]["azure"] = {"aks": change}
        after = one(plan_of(raw), ML + "Compute", **KUBERNETES_COMPUTE)
        assert after["inputs"] == before["inputs"], change


def test_the_cluster_autoscaler_owns_the_node_count():
    # With the cluster autoscaler on, re-sending `count` fights it (AKS scales the pool back): the count
    # is the initial size only.
    spec = REPO / "examples/azure/kubernetes-endpoint.yaml"
    assert load_spec(spec).environment("dev").azure.aks.autoscale_min_nodes is not None
    from stacks.azure.program import build_environment

    planned = [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(load_spec(spec), "dev", location="westeurope", spec_dir=spec.parent),
            project="twinserve",
            stack="dev",
        )
    ]
    cluster = one(planned, "azure-native:containerservice:ManagedCluster")
    assert cluster["options"]["ignore_changes"] == ["agentPoolProfiles[0].count"]
    fixed = one(plan_of(sample()), "azure-native:containerservice:ManagedCluster")
    assert "ignore_changes" not in fixed["options"]  # no autoscaler: the spec's count is the count


def test_the_kubernetes_computes_identity_may_pull_the_image_and_read_the_model(sample_model):
    # "Grant the AcrPull role to the compute Managed Identity", and blob read on the storage
    # (https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace#assign-managed-identity-to-the-compute-target)
    planned = plan_of(sample())
    compute = one(planned, ML + "Compute", **KUBERNETES_COMPUTE)
    assert compute["inputs"]["identity"] == {"type": "SystemAssigned"}
    granted = {
        r["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1]: r["inputs"]["scope"]
        for r in of_type(planned, "azure-native:authorization:RoleAssignment")
        if r["inputs"]["principalId"] == f"{compute['name']}-principal"
    }
    registry = one(planned, "azure-native:containerregistry:Registry")["name"]
    storage = one(planned, "azure-native:storage:StorageAccount")["name"]
    assert granted == {
        "7f951dda-4ed3-4680-a7ca-43fe172d538d": f"{registry}-id",  # AcrPull
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": f"{storage}-id",  # Storage Blob Data Reader
    }


def test_asset_uris_are_in_the_forms_the_rest_api_stores(sample_model):
    # Models: the long azureml://subscriptions/<sub>/resourceGroups/<rg>/workspaces/<ws>/datastores/<ds>/paths/
    # form azure-ai-ml writes after an upload (LONG_URI_FORMAT); code: the https URL of the uploaded
    # folder, as the SDK registers code (CodeVersion.codeUri "Uri where code is located", 2025-12-01).
    planned = plan_of(sample())
    group = one(planned, "azure-native:resources:ResourceGroup")["inputs"]["resourceGroupName"]
    workspace = one(planned, ML + "Workspace")["inputs"]["workspaceName"]
    for model in of_type(planned, ML + "ModelVersion"):
        assert model["inputs"]["properties"]["modelUri"] == (
            f"azureml://subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{group}/workspaces/"
            f"{workspace}/datastores/twinserveassets/paths/models/iris/{model['inputs']['version']}/"
        )
    account = one(planned, "azure-native:storage:StorageAccount")["inputs"]["accountName"]
    code = one(planned, ML + "CodeVersion")["inputs"]["properties"]["codeUri"]
    assert code.startswith(f"https://{account}.blob.core.windows.net/twinserve-assets/code/batch-driver/")


@pytest.mark.parametrize("container_change", [{"port": 9090}, {"scoring_path": "/predict"}, {"readiness_path": "/ok"}])
def test_an_environment_version_changes_whenever_what_it_is_sent_with_changes(sample_model, container_change):
    # Environment versions are immutable: a PUT of an existing version with other content is refused, so
    # the version must change with anything sent with it, not only with the build context's files.
    before = serving_ml_environment(plan_of(sample()))["inputs"]["version"]
    raw = sample()
    raw["container"].update(container_change)
    assert serving_ml_environment(plan_of(raw))["inputs"]["version"] != before
    assert serving_ml_environment(plan_of(sample()))["inputs"]["version"] == before  # and only then


@pytest.mark.parametrize("env", ("dev", "prod"))
def test_alerts_use_aggregations_the_metrics_support(plan, env):
    # RequestsPerMinute and RequestLatency_P99 support the Average aggregation only
    # (https://learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-machinelearningservices-workspaces-onlineendpoints-metrics):
    # declared so, Azure validates the alert instead of skipping the check. The workspace's Failed Runs
    # (the drift check's alert) supports Total (microsoft-machinelearningservices-workspaces-metrics).
    supported = {"RequestsPerMinute": "Average", "RequestLatency_P99": "Average", "Failed Runs": "Total"}
    alarms = load_spec(DEPLOY_SPEC).environment(env).alarms
    for alert in of_type(plan(DEPLOY_SPEC, env), "azure-native:monitor:MetricAlert"):
        (criterion,) = alert["inputs"]["criteria"]["allOf"]
        assert criterion["timeAggregation"] == supported[criterion["metricName"]]
        assert "skipMetricValidation" not in criterion
        if criterion["metricName"] == "RequestsPerMinute":
            # errors_5xx per period, as the per-minute rate the metric reports
            assert criterion["threshold"] == alarms.errors_5xx * 60 / alarms.period_seconds


def test_managed_only_settings_are_not_sent_to_kubernetes_endpoints(sample_model):
    # Endpoint publicNetworkAccess "is applicable only for managed endpoints", and Kubernetes deployments
    # have no egress switch (https://learn.microsoft.com/azure/machine-learning/reference-yaml-endpoint-online,
    # reference-yaml-deployment-kubernetes-online).
    raw = sample()
    raw["defaults"]["azure"] = {"public_network_access": False}
    groups = {
        g["deployments"][0]["inputs"]["properties"]["endpointComputeType"]: g for g in endpoint_groups(plan_of(raw))
    }
    managed, kubernetes = groups["Managed"], groups["Kubernetes"]
    assert managed["template"]["properties"]["publicNetworkAccess"] == "Disabled"
    # A private network always has the workspace managed network (a spec rule refuses it without), and with
    # one the deployments' egress flag - the legacy per-deployment isolation - "no longer applies": twinserve
    # leaves it to the SDK's default, as the managed-network examples do
    # (https://learn.microsoft.com/azure/machine-learning/how-to-secure-online-endpoint).
    assert all(d["inputs"]["properties"]["egressPublicNetworkAccess"] == "Enabled" for d in managed["deployments"])
    assert "publicNetworkAccess" not in kubernetes["template"]["properties"]
    # (the SDK fills in its default "Enabled" when nothing is given, as `az ml` sends it)
    assert all(d["inputs"]["properties"]["egressPublicNetworkAccess"] != "Disabled" for d in kubernetes["deployments"])


@pytest.mark.parametrize("env", ("dev", "staging", "prod"))
def test_kubernetes_deployments_that_should_scale_use_a_scale_type_that_scales(plan, env):
    # Kubernetes online deployments: scale type Default is a fixed count, TargetUtilization scales
    # (https://learn.microsoft.com/azure/machine-learning/reference-yaml-deployment-kubernetes-online).
    spec_env = load_spec(DEPLOY_SPEC).environment(env)
    scaling = spec_env.scaling
    live = {v.name for v in spec_env.serving.variants}
    (kubernetes,) = [
        g
        for g in endpoint_groups(plan(DEPLOY_SPEC, env))
        if g["deployments"][0]["inputs"]["properties"]["endpointComputeType"] == "Kubernetes"
    ]
    for deployment in kubernetes["deployments"]:
        settings = deployment["inputs"]["properties"]["scaleSettings"]
        if scaling.enabled and deployment["inputs"]["deploymentName"] in live:
            assert settings["scaleType"] == "TargetUtilization"
            assert (settings["minInstances"], settings["maxInstances"], settings["targetUtilizationPercentage"]) == (
                scaling.min_instances,
                scaling.max_instances,
                scaling.cpu_scale_out_percent,
            )
            assert deployment["options"]["ignore_changes"] == ["sku.capacity"]
        else:
            assert settings == {"scaleType": "Default"}


def test_every_pulumi_up_reads_the_live_autoscaled_capacity_first(repo_root):
    # ignore_changes keeps the state's value and re-sends it on the next update of the resource; only a
    # refresh brings the live value into the state (https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/).
    project = yaml.safe_load((repo_root / "Pulumi.yaml").read_text())
    assert project["options"]["refresh"] == "always"


def test_clients_get_each_endpoints_scoring_uri_and_its_keys_as_secrets(sample_model):
    exports: dict = {}
    plan_of(sample(), exports=exports)
    assert set(exports["scoring_uris"]) == {"managed", "k8s"}
    assert all(uri.startswith("https://") and uri.endswith("/score") for uri in exports["scoring_uris"].values())
    keys = exports["endpoint_keys"]["$secret"]  # auth_mode key: listKeys, never in plain text
    assert set(keys) == {"managed", "k8s"} and set(keys["managed"]) == {"primary", "secondary"}
    raw = copy.deepcopy(sample())
    raw["defaults"]["azure"] = {"auth_mode": "aml_token"}
    raw["pipeline"]["smoke_test"] = False  # the pipeline's smoke test cannot get per-endpoint Azure ML tokens
    exports = {}
    plan_of(raw, exports=exports)
    assert "endpoint_keys" not in exports  # token auth: no keys to hand out


def test_the_pipeline_is_told_which_endpoints_it_cannot_reach(sample_model):
    # Private managed endpoints (public network access disabled) and Kubernetes endpoints (an internal
    # load balancer) cannot be scored from the pipeline's CodeBuild, outside the VNet: the stack says
    # so, and the smoke test skips them with the reason (stacks/pipeline_scripts/smoke_test.py).
    # https://learn.microsoft.com/azure/machine-learning/concept-secure-online-endpoint
    exports: dict = {}
    plan_of(sample(), env="dev", exports=exports)
    assert set(exports["unreachable_endpoints"]) == {"k8s"}  # dev is public: managed is reachable
    exports = {}
    plan_of(sample(), env="prod", exports=exports)
    assert set(exports["unreachable_endpoints"]) == {"managed", "k8s"}  # prod is private
    assert "public network access is disabled" in exports["unreachable_endpoints"]["managed"]
