"""The Pulumi program for every environment of deploy/twinserve.yaml and every Azure example:
a snapshot of the declared resource graph, and the properties that graph must have."""

from __future__ import annotations

import pytest
from azure_plan_queries import (
    DEPLOY_SPEC,
    EXAMPLES,
    ML,
    REPO,
    batch_ml_environment,
    build_context_hash,
    by_name,
    children,
    endpoint_groups,
    of_type,
    one,
    serving_ml_environment,
    snapshot_view,
)
from syrupy.extensions.json import JSONSnapshotExtension

from twinserve.azure.model_environment import build_context_files, content_hash
from twinserve.azure.monitoring import iso_duration
from twinserve.platform.azure import (
    AKS_MIN_NODES,
    AKS_MIN_VCPUS,
    AUTH_MODES,
    KUBERNETES_DEFAULT_INSTANCE_TYPE,
    azure_vm_vcpus,
)
from twinserve.spec import SpecError, load_spec

ENVS = ("dev", "staging", "prod")
CASES = [(DEPLOY_SPEC, env) for env in ENVS] + [
    (path, env) for path in EXAMPLES for env in load_spec(path).environments
]


def case_id(case) -> str:
    path, env = case
    return f"{path.stem}-{env}"


@pytest.fixture
def json_snapshot(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_resource_graph_snapshot(plan, case, json_snapshot):
    path, env = case
    planned = plan(path, env)
    assert snapshot_view(planned) == json_snapshot


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_holds_the_whole_serving_stack(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    types = {r["type"] for r in planned}
    for required in [
        "azure-native:resources:ResourceGroup",
        ML + "Workspace",
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:applicationinsights:Component",
        "azure-native:operationalinsights:Workspace",
        "azure-native:containerregistry:Registry",
        "azure-native:containerservice:ManagedCluster",
        "azure-native:kubernetesconfiguration:Extension",
        ML + "Compute",
        ML + "ModelVersion",
        ML + "EnvironmentVersion",
        ML + "OnlineEndpoint",
        ML + "OnlineDeployment",
        ML + "BatchEndpoint",
        ML + "BatchDeployment",
        "azure-native:monitor:MetricAlert",
        "azure-native:monitor:ActionGroup",
        "azure-native:consumption:Budget",
        "azure-native:authorization:RoleAssignment",
        "azure-native:monitor:DiagnosticSetting",
    ]:
        assert required in types, f"{env}: no {required}"
    kinds = {g["deployments"][0]["inputs"]["properties"]["endpointComputeType"] for g in endpoint_groups(planned)}
    assert kinds == {"Managed", "Kubernetes"}
    if env != "dev":  # scaling is enabled in staging and prod
        assert of_type(planned, "azure-native:monitor:AutoscaleSetting")


@pytest.mark.parametrize("env", ENVS)
def test_aks_has_three_nodes_and_twelve_vcpus_with_extension_and_attached_compute(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    aks = load_spec(DEPLOY_SPEC).environment(env).azure.aks
    cluster = one(planned, "azure-native:containerservice:ManagedCluster")
    (pool,) = cluster["inputs"]["agentPoolProfiles"]
    assert (pool["count"], pool["vmSize"]) == (aks.node_count, aks.vm_size)
    # Azure ML inference on AKS: at least 3 nodes and 12 vCPU
    assert pool["count"] >= AKS_MIN_NODES and pool["count"] * azure_vm_vcpus(pool["vmSize"]) >= AKS_MIN_VCPUS
    assert cluster["inputs"]["identity"] == {"type": "SystemAssigned"}
    assert cluster["inputs"]["enableRBAC"] is True
    # "Disabling local accounts for AKS is not supported by Azure Machine Learning"
    # (https://learn.microsoft.com/azure/machine-learning/how-to-deploy-kubernetes-extension#limitations)
    assert cluster["inputs"]["disableLocalAccounts"] is False

    extension = one(planned, "azure-native:kubernetesconfiguration:Extension")
    assert extension["inputs"]["extensionType"] == "Microsoft.AzureML.Kubernetes"
    assert extension["inputs"]["clusterName"] == cluster["inputs"]["resourceName"]
    assert extension["inputs"]["configurationSettings"]["enableInference"] == "True"
    # Plain HTTP to the router is only acceptable on a private IP: the switch the chart reads is set.
    assert extension["inputs"]["configurationSettings"]["scoringFe.serviceType.internalLoadBalancer"] == "True"
    assert cluster["name"] in extension["depends_on"]

    compute = one(planned, ML + "Compute", **{"inputs.properties.computeType": "Kubernetes"})
    assert compute["inputs"]["properties"]["resourceId"] == f"{cluster['name']}-id"
    assert extension["name"] in compute["depends_on"]
    # Azure refuses in-place updates of an attached Kubernetes compute: any change replaces it.
    assert compute["options"] == {"replace_on_changes": ["*"], "delete_before_replace": True}
    # Attaching does not create the namespace, and workloads fail without it
    # (https://learn.microsoft.com/azure/machine-learning/how-to-attach-kubernetes-to-workspace): an AKS
    # managed namespace exists before the attach, open to the AzureML router's traffic.
    namespace = one(planned, "azure-native:containerservice:ManagedNamespace")
    assert namespace["inputs"]["managedNamespaceName"] == compute["inputs"]["properties"]["properties"]["namespace"]
    assert namespace["inputs"]["resourceName"] == cluster["inputs"]["resourceName"]
    assert namespace["inputs"]["properties"]["defaultNetworkPolicy"]["ingress"] == "AllowAll"
    assert namespace["name"] in compute["depends_on"]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_traffic_names_only_existing_deployments_and_sums_to_100(plan, case):
    path, env = case
    planned = plan(path, env)
    spec_env = load_spec(path).environment(env)
    for group in endpoint_groups(planned):
        endpoint, template, traffic = group["endpoint"], group["template"], group["traffic"]
        names = {d["inputs"]["deploymentName"] for d in group["deployments"]}
        live = template["properties"]["traffic"]
        assert sum(live.values()) == 100
        assert set(live) <= names
        assert live == {**{n: 0 for n in names}, **{v.name: v.weight for v in spec_env.serving.variants}}
        assert set(template["properties"]["mirrorTraffic"]) <= names
        # The endpoint is created with no traffic and never rewritten by Pulumi ...
        assert endpoint["inputs"]["properties"]["traffic"] == {}
        assert endpoint["options"]["ignore_changes"] == ["identity", "properties", "tags"]
        # ... the deployments wait for it, and the traffic template waits for every deployment.
        for d in group["deployments"]:
            assert d["inputs"]["endpointName"] == endpoint["inputs"]["endpointName"]
        first = [d for d in group["deployments"] if endpoint["name"] in d["depends_on"]]
        assert len(first) == 1  # the first deployment waits for the endpoint, the others for each other
        assert {d["name"] for d in group["deployments"]} <= set(traffic["depends_on"])
        assert template["name"].endswith("/" + endpoint["inputs"]["endpointName"])
        assert template["type"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
        assert traffic["inputs"]["properties"]["mode"] == "Incremental"


def test_mirror_traffic_goes_to_the_shadow_on_the_managed_endpoint_only(plan):
    shadow = load_spec(DEPLOY_SPEC).environment("staging").serving.shadow  # staging mirrors to a candidate
    planned = plan(DEPLOY_SPEC, "staging")
    groups = {
        g["endpoint"]["inputs"]["properties"].get("compute") is None and "managed" or "k8s": g
        for g in endpoint_groups(planned)
    }
    managed, k8s = groups["managed"], groups["k8s"]
    assert managed["template"]["properties"]["mirrorTraffic"] == {shadow.name: shadow.sample_percent}
    assert managed["template"]["properties"]["traffic"][shadow.name] == 0  # a deployment is live or mirror
    assert shadow.name in {d["inputs"]["deploymentName"] for d in managed["deployments"]}
    # mirror traffic exists on managed online endpoints only
    assert k8s["template"]["properties"]["mirrorTraffic"] == {}
    assert shadow.name not in {d["inputs"]["deploymentName"] for d in k8s["deployments"]}
    for env in ("dev", "prod"):
        for group in endpoint_groups(plan(DEPLOY_SPEC, env)):
            assert group["template"]["properties"]["mirrorTraffic"] == {}


def test_traffic_split_example_serves_blue_and_green_from_their_model_versions(plan):
    variants = load_spec(REPO / "examples/azure/traffic-split.yaml").environment("staging").serving.variants
    planned = plan(REPO / "examples/azure/traffic-split.yaml", "staging")
    versions = {m["inputs"]["version"]: m["name"] for m in of_type(planned, ML + "ModelVersion")}
    assert set(versions) == {"1", "2"}  # blue's pinned version stays declared, so Pulumi keeps it
    for group in endpoint_groups(planned):
        models = {d["inputs"]["deploymentName"]: d["inputs"]["properties"]["model"] for d in group["deployments"]}
        assert models == {"blue": f"{versions['1']}-id", "green": f"{versions['2']}-id"}
        assert group["template"]["properties"]["traffic"] == {v.name: v.weight for v in variants}


@pytest.mark.parametrize("env", ENVS)
def test_environment_routes_match_the_container(plan, env):
    routes = pytest.importorskip("twinserve_serving.routes")
    planned = plan(DEPLOY_SPEC, env)
    config = serving_ml_environment(planned)["inputs"]["properties"]["inferenceConfig"]
    assert config == {
        "livenessRoute": {"path": routes.LIVENESS_PATH, "port": routes.DEFAULT_PORT},
        "readinessRoute": {"path": routes.READINESS_PATH, "port": routes.DEFAULT_PORT},
        "scoringRoute": {"path": routes.SCORING_PATH, "port": routes.DEFAULT_PORT},
    }


def test_image_context_is_uploaded_file_by_file_and_built_by_azure_ml(plan):
    planned = plan(DEPLOY_SPEC, "dev")
    context = (REPO / "model_containers").resolve()
    files = build_context_files(context)
    env = serving_ml_environment(planned)
    content = build_context_hash(planned)
    assert content == content_hash(context, files)
    blobs = [r for r in of_type(planned, "azure-native:storage:Blob") if "-image-context-" in r["name"]]
    prefix = f"images/iris-serving/{content}/"
    assert sorted(b["inputs"]["blobName"] for b in blobs) == sorted(
        prefix + f.relative_to(context).as_posix() for f in files
    )
    assert {b["name"] for b in blobs} <= set(env["depends_on"])
    assert "Dockerfile" in {f.name for f in files} and not any("__pycache__" in str(f) for f in files)
    # BuildContext.contextUri "Supports blob URIs on environment creation" (machinelearningservices
    # 2025-12-01, mfe.json): the https URL of the uploaded folder in the asset container.
    blob_endpoint = f"https://{one(planned, 'azure-native:storage:StorageAccount')['inputs']['accountName']}"
    context_uri = f"{blob_endpoint}.blob.core.windows.net/twinserve-assets/{prefix}"
    assert env["inputs"]["properties"]["build"] == {"contextUri": context_uri, "dockerfilePath": "Dockerfile"}
    # The batch ML environment is built by Azure ML from the same uploaded context, with its own Dockerfile.
    batch = batch_ml_environment(planned)
    assert batch["inputs"]["name"] == "iris-batch"
    assert batch["inputs"]["properties"]["build"] == {
        "contextUri": context_uri,
        "dockerfilePath": "Dockerfile.azureml-batch",
    }
    assert {b["name"] for b in blobs} <= set(batch["depends_on"])
    assert {"Dockerfile.azureml-batch", "requirements-azureml-batch.txt"} <= {f.name for f in files}


@pytest.mark.parametrize("dockerfile", sorted((REPO / "model_containers").glob("Dockerfile*")), ids=lambda p: p.name)
def test_every_file_a_dockerfile_copies_survives_the_dockerignore(dockerfile):
    context = (REPO / "model_containers").resolve()
    uploaded = {f.relative_to(context).as_posix() for f in build_context_files(context)}
    sources = [
        line.split()[1:-1]
        for line in dockerfile.read_text().splitlines()
        if line.startswith(("COPY ", "ADD ")) and " --from=" not in f" {line}"  # --from: another image's files
    ]
    assert sources
    for source in (s for group in sources for s in group):
        assert source in uploaded or any(u.startswith(source.rstrip("/") + "/") for u in uploaded), source


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_batch_deployment_runs_the_batch_environment_and_online_deployments_the_serving_one(plan, case):
    planned = plan(*case)
    batch = batch_ml_environment(planned)
    # one serving environment per workspace (a second location has its own: azure.locations)
    serving_of = {
        r["inputs"]["workspaceName"]: r
        for r in of_type(planned, ML + "EnvironmentVersion")
        if r["inputs"]["name"].endswith("-serving")
    }
    assert all("inferenceConfig" in serving["inputs"]["properties"] for serving in serving_of.values())
    assert "inferenceConfig" not in batch["inputs"]["properties"]  # batch calls the entry script, not HTTP
    deployment = one(planned, ML + "BatchDeployment")
    assert deployment["inputs"]["properties"]["environmentId"] == f"{batch['name']}-id"
    for group in endpoint_groups(planned):
        for online in group["deployments"]:
            serving = serving_of[online["inputs"]["workspaceName"]]
            assert online["inputs"]["properties"]["environmentId"] == f"{serving['name']}-id"


@pytest.mark.parametrize("env", ENVS)
def test_endpoint_identity_can_pull_the_image_and_read_the_model(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    identity = one(planned, "azure-native:managedidentity:UserAssignedIdentity")
    roles = {
        r["inputs"]["roleDefinitionId"].rsplit("/", 1)[-1]: r
        for r in of_type(planned, "azure-native:authorization:RoleAssignment")
        if r["inputs"]["principalId"] == "00000000-0000-0000-0000-00000000a001"
    }  # the endpoints' identity (the drift check's role is the workspace's: test_azure_drift_monitor.py)
    acr_pull = roles["7f951dda-4ed3-4680-a7ca-43fe172d538d"]
    assert acr_pull["inputs"]["scope"] == f"{one(planned, 'azure-native:containerregistry:Registry')['name']}-id"
    assert acr_pull["inputs"]["principalId"] == "00000000-0000-0000-0000-00000000a001"
    assert "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1" in roles  # Storage Blob Data Reader
    for group in endpoint_groups(planned):
        assert group["endpoint"]["inputs"]["identity"]["userAssignedIdentities"] == [f"{identity['name']}-id"]
        (first,) = [d for d in group["deployments"] if group["endpoint"]["name"] in d["depends_on"]]
        assert {r["name"] for r in roles.values()} <= set(first["depends_on"])


@pytest.mark.parametrize("env", ENVS)
def test_secure_defaults(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    account = one(planned, "azure-native:storage:StorageAccount")["inputs"]
    assert account["minimumTlsVersion"] == "TLS1_2" and account["allowBlobPublicAccess"] is False
    assert account["enableHttpsTrafficOnly"] is True
    vault = one(planned, "azure-native:keyvault:Vault")["inputs"]["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault.get("enablePurgeProtection") is (True if env == "prod" else None)
    assert one(planned, "azure-native:containerregistry:Registry")["inputs"]["adminUserEnabled"] is False
    workspace = one(planned, ML + "Workspace")["inputs"]
    assert workspace["identity"] == {"type": "SystemAssigned"}
    diagnosed = {d["inputs"]["resourceUri"] for d in of_type(planned, "azure-native:monitor:DiagnosticSetting")}
    for typ in (ML + "Workspace", "azure-native:keyvault:Vault", ML + "OnlineEndpoint"):
        for r in of_type(planned, typ):
            assert f"{r['name']}-id" in diagnosed, f"{r['name']} has no diagnostic setting"


def test_prod_protects_model_artifacts_and_images(plan):
    prod = plan(DEPLOY_SPEC, "prod")
    kept = [
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobContainer",
        "azure-native:containerregistry:Registry",
    ]
    for typ in kept:
        for r in of_type(prod, typ):
            assert r["options"].get("protect") is True and r["options"].get("retain_on_delete") is True, r["name"]
    dev = plan(DEPLOY_SPEC, "dev")
    for typ in kept:
        for r in of_type(dev, typ):
            assert not r["options"].get("protect"), f"dev {r['name']} should stay deletable"


@pytest.mark.parametrize("env", ENVS)
def test_model_files_and_asset_versions_are_kept_but_never_protected(plan, env):
    # A model bump or image change drops the old version's blobs and asset versions from the program:
    # `protect` would make that `pulumi up` fail ("resource ... cannot be deleted because it is protected").
    # They are retained instead: Azure keeps them (versions are immutable, and a pinned variant or the
    # history may still need them).
    for typ in ("azure-native:storage:Blob", ML + "ModelVersion", ML + "EnvironmentVersion", ML + "CodeVersion"):
        for r in of_type(plan(DEPLOY_SPEC, env), typ):
            assert r["options"].get("retain_on_delete") is True and not r["options"].get("protect"), r["name"]


@pytest.mark.parametrize("env", ENVS)
def test_alerts_use_the_spec_thresholds_and_emails(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    alarms = load_spec(DEPLOY_SPEC).environment(env).alarms
    group = by_name(planned, f"iris-{env}-monitoring-actions")
    assert [r["emailAddress"] for r in group["inputs"]["emailReceivers"]] == alarms.emails
    # the drift check's alert has its own action group (tests/azure/test_drift_monitor.py)
    alerts = [a for a in of_type(planned, "azure-native:monitor:MetricAlert") if "-drift-" not in a["name"]]
    endpoints = {f"{e['name']}-id" for e in of_type(planned, ML + "OnlineEndpoint")}
    assert {a["inputs"]["scopes"][0] for a in alerts} == endpoints
    for alert in alerts:
        (criterion,) = alert["inputs"]["criteria"]["allOf"]
        expected = {"RequestLatency_P99": alarms.model_latency_p99_ms, "RequestsPerMinute": alarms.errors_5xx}
        assert criterion["threshold"] == expected[criterion["metricName"]]
        assert alert["inputs"]["actions"] == [{"actionGroupId": f"{group['name']}-id"}]
    assert len(alerts) == 2 * len(endpoints)


@pytest.mark.parametrize("env", ENVS)
def test_autoscale_of_managed_deployments_follows_the_spec(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    spec_env = load_spec(DEPLOY_SPEC).environment(env)
    scaling = spec_env.scaling
    settings = of_type(planned, "azure-native:monitor:AutoscaleSetting")
    managed = {
        d["inputs"]["deploymentName"]: d
        for d in of_type(planned, ML + "OnlineDeployment")
        if d["inputs"]["properties"]["endpointComputeType"] == "Managed"
    }
    live = {v.name for v in spec_env.serving.variants}
    # The live variants autoscale on both clouds; a shadow keeps its instance count on both (SageMaker
    # scales production variants only), so Azure does not scale it either.
    assert {s["inputs"]["targetResourceUri"] for s in settings} == {f"{managed[n]['name']}-id" for n in live}
    for setting in settings:
        (profile,) = setting["inputs"]["profiles"]
        assert profile["capacity"]["minimum"] == str(scaling.min_instances)
        assert profile["capacity"]["maximum"] == str(scaling.max_instances)
        assert profile["capacity"]["default"] == str(spec_env.compute.instance_count)
        rules = {
            (r["metricTrigger"]["metricName"], r["scaleAction"]["direction"]): r["metricTrigger"]["threshold"]
            for r in profile["rules"]
        }
        assert rules == {
            ("CpuUtilizationPercentage", "Increase"): scaling.cpu_scale_out_percent,
            ("RequestLatency", "Increase"): scaling.latency_scale_out_ms,
            ("CpuUtilizationPercentage", "Decrease"): scaling.cpu_scale_in_percent,
        }
        # the spec's cooldowns reach Azure as written (a rule rejects what Azure cannot take)
        cooldowns = {r["scaleAction"]["direction"]: r["scaleAction"]["cooldown"] for r in profile["rules"]}
        assert cooldowns == {
            "Increase": iso_duration(scaling.scale_out_cooldown_seconds),
            "Decrease": iso_duration(scaling.scale_in_cooldown_seconds),
        }
    for name, d in managed.items():  # the autoscaler owns a live deployment's instance count from then on
        assert d["options"].get("ignore_changes") == (["sku.capacity"] if name in live else None)
    assert settings, "every environment of the sample spec autoscales"


def test_cooldowns_are_sent_to_the_second():
    assert [iso_duration(s) for s in (60, 90, 300, 3600)] == ["PT1M", "PT1M30S", "PT5M", "PT60M"]


def test_no_autoscale_setting_when_scaling_is_off(plan):
    spec = REPO / "examples/azure/traffic-split.yaml"
    assert not load_spec(spec).environment("staging").scaling.enabled
    assert not of_type(plan(spec, "staging"), "azure-native:monitor:AutoscaleSetting")


@pytest.mark.parametrize("env", ENVS)
def test_budget_amount_and_notifications(plan, env):
    budget_spec = load_spec(DEPLOY_SPEC).environment(env).budget
    budget_resource = one(plan(DEPLOY_SPEC, env), "azure-native:consumption:Budget")
    # Azure accepts the start month only at creation: later runs must never try to move it
    assert budget_resource["options"]["ignore_changes"] == ["timePeriod.startDate"]
    budget = budget_resource["inputs"]
    assert budget["amount"] == budget_spec.monthly_limit_usd
    assert budget["timeGrain"] == "Monthly" and budget["timePeriod"]["startDate"] == "2026-11-01T00:00:00Z"
    actual = sorted(n["threshold"] for n in budget["notifications"].values() if n["thresholdType"] == "Actual")
    assert actual == sorted(budget_spec.notify_at_percent)


@pytest.mark.parametrize("env", ENVS)
def test_instance_counts_and_types_follow_the_spec(plan, env):
    spec_env = load_spec(DEPLOY_SPEC).environment(env)
    serving = spec_env.serving
    for d in of_type(plan(DEPLOY_SPEC, env), ML + "OnlineDeployment"):
        assert d["inputs"]["sku"]["capacity"] == spec_env.compute.instance_count
        props = d["inputs"]["properties"]
        # Kubernetes deployments name an instance type of the attached cluster, not a VM size
        managed = props["endpointComputeType"] == "Managed"
        expected = spec_env.compute.azure_instance_type if managed else KUBERNETES_DEFAULT_INSTANCE_TYPE
        assert props["instanceType"] == expected
        assert props["requestSettings"]["requestTimeout"] == f"PT{serving.request_timeout_seconds}S"
        assert (
            props["requestSettings"]["maxConcurrentRequestsPerInstance"] == serving.max_concurrent_requests_per_instance
        )
        # The container answers its own 504 before Azure ML's 408 (its deadline is inside the request
        # timeout), with as many predicting threads as Azure ML sends concurrent requests.
        environment = props["environmentVariables"]
        assert set(environment) == {"SCORING_TIMEOUT_MS", "TWINSERVE_THREADS"}
        assert 0 < int(environment["SCORING_TIMEOUT_MS"]) < serving.request_timeout_seconds * 1000
        assert environment["TWINSERVE_THREADS"] == str(serving.max_concurrent_requests_per_instance)


def test_batch_example_maps_the_batch_settings(plan):
    spec_env = load_spec(REPO / "examples/azure/batch.yaml").environment("dev")
    batch = spec_env.serving.batch
    planned = plan(REPO / "examples/azure/batch.yaml", "dev")
    cluster = one(planned, ML + "Compute", **{"inputs.properties.computeType": "AmlCompute"})
    scale = cluster["inputs"]["properties"]["properties"]["scaleSettings"]
    # the cluster scales to zero when idle, up to the spec's size
    assert scale == {
        "maxNodeCount": spec_env.azure.batch_max_nodes,
        "minNodeCount": 0,
        "nodeIdleTimeBeforeScaleDown": "PT120S",
    }
    deployment = one(planned, ML + "BatchDeployment")["inputs"]["properties"]
    assert deployment["resources"]["instanceCount"] == batch.instance_count
    assert deployment["miniBatchSize"] == batch.mini_batch_size
    assert deployment["maxConcurrencyPerInstance"] == batch.max_concurrent_transforms
    assert deployment["compute"] == f"{cluster['name']}-id"
    assert deployment["codeConfiguration"]["scoringScript"] == "batch_score.py"
    endpoint = one(planned, ML + "BatchEndpoint")
    defaults = by_name(planned, endpoint["parent"] + "-defaults")
    (template,) = defaults["inputs"]["properties"]["template"]["resources"]
    assert template["properties"]["defaults"] == {"deploymentName": "default"}
    assert one(planned, ML + "BatchDeployment")["name"] in defaults["depends_on"]


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_holds_a_batch_endpoint(plan, env):
    planned = plan(DEPLOY_SPEC, env)
    assert one(planned, ML + "BatchEndpoint")["inputs"]["properties"]["authMode"] == "AADToken"
    assert one(planned, ML + "BatchDeployment")


def test_kubernetes_example_scales_the_node_pool(plan):
    aks = load_spec(REPO / "examples/azure/kubernetes-endpoint.yaml").environment("dev").azure.aks
    planned = plan(REPO / "examples/azure/kubernetes-endpoint.yaml", "dev")
    (pool,) = one(planned, "azure-native:containerservice:ManagedCluster")["inputs"]["agentPoolProfiles"]
    assert (pool["count"], pool["minCount"], pool["maxCount"], pool["enableAutoScaling"]) == (
        aks.node_count,
        aks.autoscale_min_nodes,
        aks.autoscale_max_nodes,
        True,
    )
    assert not of_type(planned, "azure-native:monitor:AutoscaleSetting")
    kinds = {d["inputs"]["properties"]["endpointComputeType"] for d in of_type(planned, ML + "OnlineDeployment")}
    assert kinds == {"Kubernetes"}


def test_managed_example_has_no_aks(plan):
    azure = load_spec(REPO / "examples/azure/managed-endpoint.yaml").environment("prod").azure
    planned = plan(REPO / "examples/azure/managed-endpoint.yaml", "prod")
    assert not of_type(planned, "azure-native:containerservice:ManagedCluster")
    endpoint = one(planned, ML + "OnlineEndpoint")
    assert endpoint["inputs"]["properties"]["authMode"] == AUTH_MODES[azure.auth_mode]


def test_components_are_children_of_their_component(plan):
    planned = plan(DEPLOY_SPEC, "dev")
    components = {r["name"] for r in planned if not r["custom"]}
    for r in planned:
        if r["custom"] and r["type"] != "azure-native:resources:ResourceGroup":
            assert r["parent"] in components, f"{r['name']} is not inside a component"
    assert children(planned, "iris-dev")  # the workspace component


def _plan_spec(raw: dict, spec_dir, env: str = "dev") -> list[dict]:
    from stacks.azure.program import build_environment
    from twinserve.pulumi_plan import plan_program
    from twinserve.spec import parse_spec

    spec = parse_spec(raw)
    return [
        r.as_dict()
        for r in plan_program(
            lambda: build_environment(
                spec, env, location="westeurope", spec_dir=spec_dir, budget_start_date="2026-11-01"
            ),
            project="twinserve",
            stack=env,
        )
    ]


def _raw(**container) -> dict:
    return {
        "name": "iris",
        "model": {"name": "iris", "version": "1", "artifact": {"path": "build/sample-model/model"}},
        "container": container,
        "defaults": {"targets": ["azure"], "alarms": {"emails": ["a@example.com"]}},
        "environments": {"dev": {}},
    }


def test_prebuilt_image_is_used_as_is(plan, sample_model):
    image = "myregistry.azurecr.io/twinserve-serving:1.4.0"
    planned = _plan_spec(_raw(image_uri=image), REPO)
    (env,) = of_type(planned, ML + "EnvironmentVersion")  # no batch environment without azure_batch_image_uri
    assert env["inputs"]["properties"]["image"] == image and "build" not in env["inputs"]["properties"]
    assert not [r for r in planned if "-image-context-" in r["name"]]
    # Batch runs image_uri too, which must then carry azureml-core and azureml-dataset-runtime[fuse].
    assert one(planned, ML + "BatchDeployment")["inputs"]["properties"]["environmentId"] == f"{env['name']}-id"


def test_prebuilt_batch_image_gets_its_own_environment(plan, sample_model):
    image, batch_image = (
        "myregistry.azurecr.io/twinserve-serving:1.4.0",
        "myregistry.azurecr.io/twinserve-azureml-batch:1.4.0",
    )
    planned = _plan_spec(_raw(image_uri=image, azure_batch_image_uri=batch_image), REPO)
    serving, batch = serving_ml_environment(planned), batch_ml_environment(planned)
    assert serving["inputs"]["properties"]["image"] == image
    assert batch["inputs"]["properties"]["image"] == batch_image and batch["inputs"]["name"] == "iris-batch"
    assert batch["inputs"]["version"] != serving["inputs"]["version"]
    assert one(planned, ML + "BatchDeployment")["inputs"]["properties"]["environmentId"] == f"{batch['name']}-id"
    for group in endpoint_groups(planned):
        assert {d["inputs"]["properties"]["environmentId"] for d in group["deployments"]} == {f"{serving['name']}-id"}


def test_build_context_without_the_batch_dockerfile_is_refused_before_synth_for_azure(tmp_path, sample_model):
    from twinserve.spec import parse_spec
    from twinserve.synth import check_artifacts

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    raw = _raw(build=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"container.build: no Dockerfile.azureml-batch in .*azureml-core"):
        check_artifacts(parse_spec(raw), REPO)
    raw["defaults"]["targets"] = ["aws"]  # SageMaker has no use for it
    check_artifacts(parse_spec(raw), REPO)


def test_missing_model_folder_is_a_clear_error(tmp_path, sample_model):
    raw = _raw(image_uri="x.azurecr.io/y:1")
    raw["model"]["artifact"]["path"] = "nowhere/model"
    with pytest.raises(SpecError, match=r"model\.artifact\.path: .*nowhere/model does not exist"):
        _plan_spec(raw, tmp_path)


def test_aws_only_environment_declares_nothing_on_azure(sample_model):
    raw = _raw(image_uri="x.azurecr.io/y:1")
    raw["defaults"]["targets"] = ["aws"]
    assert _plan_spec(raw, REPO) == []
