"""Component arguments: each component checks its args first thing in its constructor, before it
registers anything, and every rule raises a ValueError naming the field, the value and what is
allowed; and the components work on their own, without the twinserve program."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from azure_plan_queries import ML, REPO, of_type, one

from twinserve.azure import (
    AksInferenceCluster,
    AksInferenceClusterArgs,
    AlertRules,
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
    ProbeSettings,
)
from twinserve.azure.model_environment import build_context_files, content_hash
from twinserve.pulumi_plan import plan_program


def workspace(**kw):
    base = dict(resource_group_name="rg", location="westeurope", tenant_id="t", name_prefix="irisdev")
    return MlWorkspaceArgs(**{**base, **kw})


def aks(**kw):
    base = dict(
        resource_group_name="rg",
        location="westeurope",
        workspace_name="w",
        subscription_id="s",
        registry_id="acr-id",
        storage_account_id="st-id",
        cluster_name="iris-aks",
        allow_insecure_connections=True,
    )
    return AksInferenceClusterArgs(**{**base, **kw})


def deployment(name="blue", **kw):
    return OnlineDeploymentSettings(name=name, model_id="m", environment_id="e", instance_type="Standard_DS3_v2", **kw)


def endpoint(**kw):
    base = dict(
        resource_group_name="rg",
        location="westeurope",
        workspace_name="w",
        endpoint_name="iris-online",
        kind="managed",
        identity_id="id",
        deployments=[deployment("blue"), deployment("green")],
        traffic={"blue": 100},
    )
    return OnlineEndpointArgs(**{**base, **kw})


def model_env(sample_model, **kw):
    base = dict(
        resource_group_name="rg",
        location="westeurope",
        subscription_id="s",
        workspace_name="w",
        workspace_id="wid",
        storage_account_name="st",
        storage_account_id="stid",
        storage_blob_endpoint="https://st.blob.core.windows.net/",
        asset_container_name="c",
        asset_datastore_name="d",
        registry_id="r",
        model_name="iris",
        model_version="2",
        model_dir=sample_model,
        ml_environment_name="iris-serving",
        identity_name="iris-id",
        build_context=REPO / "model_containers",
    )
    return ModelEnvironmentArgs(**{**base, **kw})


def batch(**kw):
    base = dict(
        resource_group_name="rg",
        location="westeurope",
        workspace_name="w",
        endpoint_name="iris-batch",
        model_id="m",
        environment_id="e",
        identity_id="i",
        storage_account_name="st",
        storage_blob_endpoint="https://st.blob.core.windows.net/",
        asset_container_name="c",
    )
    return BatchEndpointArgs(**{**base, **kw})


def budget(**kw):
    base = dict(
        scope="/subscriptions/s/resourceGroups/rg",
        budget_name="iris-dev",
        monthly_amount=100,
        emails=["a@example.com"],
        start_date="2026-11-01",
    )
    return CostBudgetArgs(**{**base, **kw})


def monitoring(**kw):
    base = dict(
        resource_group_name="rg",
        location="westeurope",
        action_group_name="iris-alerts",
        emails=["a@example.com"],
        endpoints={"iris": "eid"},
    )
    return EndpointMonitoringArgs(**{**base, **kw})


def _build(component, args) -> list[dict]:
    """Plan one component alone (Pulumi's mock engine: no CLI or cloud here)."""
    return [r.as_dict() for r in plan_program(lambda: component("demo", args), project="demo", stack="dev")]


def test_valid_arguments_build(sample_model):
    for component, args in (
        (MlWorkspace, workspace()),
        (AksInferenceCluster, aks()),
        (OnlineEndpoint, endpoint()),
        (BatchEndpoint, batch()),
        (CostBudget, budget()),
        (EndpointMonitoring, monitoring()),
        (ModelEnvironment, model_env(sample_model)),
    ):
        assert _build(component, args), component.__name__


def _one(name="blue", **kw):
    """An endpoint whose one deployment has ``kw``."""
    return endpoint(deployments=[deployment(name, **kw)], traffic={name: 100})


@pytest.mark.parametrize(
    "make, field, fragment",
    [
        # workspace
        (
            lambda: MlWorkspace("x", workspace(name_prefix="Iris-Dev")),
            "MlWorkspaceArgs.name_prefix",
            "lower-case letters and digits",
        ),
        (lambda: MlWorkspace("x", workspace(name_prefix="a" * 17)), "MlWorkspaceArgs.name_prefix", "1-16"),
        (
            lambda: MlWorkspace("x", workspace(managed_network="open")),
            "MlWorkspaceArgs.managed_network",
            "allow_only_approved_outbound",
        ),
        (lambda: MlWorkspace("x", workspace(registry_sku="Gold")), "MlWorkspaceArgs.registry_sku", "Premium"),
        (
            lambda: MlWorkspace("x", workspace(public_network_access=False)),
            "MlWorkspaceArgs.registry_sku",
            "private endpoints",
        ),
        (lambda: MlWorkspace("x", workspace(log_retention_days=7)), "MlWorkspaceArgs.log_retention_days", "30..730"),
        # AKS
        (lambda: AksInferenceCluster("x", aks(node_count=2)), "AksInferenceClusterArgs.node_count", "at least 3 nodes"),
        (
            lambda: AksInferenceCluster("x", aks(vm_size="Standard_D2s_v3")),
            "AksInferenceClusterArgs.vm_size",
            "3 x 2 vCPU = 6",
        ),
        (
            lambda: AksInferenceCluster("x", aks(vm_size="Standard_NC6")),
            "AksInferenceClusterArgs.vcpus_per_node",
            "set vcpus_per_node",
        ),
        (
            lambda: AksInferenceCluster("x", aks(autoscale_min_nodes=3)),
            "AksInferenceClusterArgs.autoscale_min_nodes",
            "set both",
        ),
        (
            lambda: AksInferenceCluster("x", aks(autoscale_min_nodes=2, autoscale_max_nodes=5)),
            "AksInferenceClusterArgs.autoscale_min_nodes",
            "at least 3",
        ),
        (
            lambda: AksInferenceCluster("x", aks(node_count=7, autoscale_min_nodes=3, autoscale_max_nodes=6)),
            "AksInferenceClusterArgs.node_count",
            "3..6",
        ),
        (lambda: AksInferenceCluster("x", aks(cluster_name="-bad")), "AksInferenceClusterArgs.cluster_name", "2-63"),
        (
            lambda: AksInferenceCluster("x", aks(compute_name="a-very-long-compute-name")),
            "AksInferenceClusterArgs.compute_name",
            "2-16",
        ),
        (
            lambda: AksInferenceCluster("x", aks(sku_tier="Gold")),
            "AksInferenceClusterArgs.sku_tier",
            "Free, Standard, Premium",
        ),
        (
            lambda: AksInferenceCluster("x", aks(router_service_type="Ingress")),
            "AksInferenceClusterArgs.router_service_type",
            "LoadBalancer",
        ),
        (
            lambda: AksInferenceCluster("x", aks(internal_load_balancer=False)),
            "AksInferenceClusterArgs.allow_insecure_connections",
            "internal load balancer",
        ),
        (
            lambda: AksInferenceCluster("x", aks(allow_insecure_connections=False)),
            "AksInferenceClusterArgs.ssl_cname",
            "ssl_cert_pem",
        ),
        # online endpoint and its deployments
        (lambda: OnlineEndpoint("x", endpoint(endpoint_name="x")), "OnlineEndpointArgs.endpoint_name", "3-32"),
        (lambda: OnlineEndpoint("x", endpoint(kind="serverless")), "OnlineEndpointArgs.kind", "managed, kubernetes"),
        (
            lambda: OnlineEndpoint("x", endpoint(kind="kubernetes")),
            "OnlineEndpointArgs.compute_id",
            "attached Kubernetes compute",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(compute_id="c")),
            "OnlineEndpointArgs.compute_id",
            "leave compute_id unset",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(auth_mode="basic")),
            "OnlineEndpointArgs.auth_mode",
            "key, aml_token, aad_token",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(kind="kubernetes", compute_id="c", auth_mode="aad_token")),
            "OnlineEndpointArgs.auth_mode",
            "managed endpoints",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(deployments=[], traffic={})),
            "OnlineEndpointArgs.deployments",
            "at least one",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(deployments=[deployment("blue"), deployment("blue")])),
            "OnlineEndpointArgs.deployments",
            "unique",
        ),
        (lambda: OnlineEndpoint("x", endpoint(traffic={"blue": 50, "red": 50})), "OnlineEndpointArgs.traffic", "'red'"),
        (lambda: OnlineEndpoint("x", endpoint(traffic={"blue": 90})), "OnlineEndpointArgs.traffic", "sums to 90"),
        (
            lambda: OnlineEndpoint("x", endpoint(traffic={"blue": 150, "green": -50})),
            "OnlineEndpointArgs.traffic.blue",
            "0..100",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(mirror_traffic={"green": 60})),
            "OnlineEndpointArgs.mirror_traffic.green",
            "1..50",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(mirror_traffic={"green": 10, "blue": 10})),
            "OnlineEndpointArgs.mirror_traffic",
            "at most one",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(mirror_traffic={"red": 10})),
            "OnlineEndpointArgs.mirror_traffic",
            "'red'",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(mirror_traffic={"blue": 10})),
            "OnlineEndpointArgs.mirror_traffic",
            "live or mirror",
        ),
        (
            lambda: OnlineEndpoint("x", endpoint(kind="kubernetes", compute_id="c", mirror_traffic={"green": 10})),
            "OnlineEndpointArgs.mirror_traffic",
            "managed online endpoints",
        ),
        (lambda: OnlineEndpoint("x", _one("ab")), "OnlineEndpointArgs.deployments[0].name", "3-32"),
        (
            lambda: OnlineEndpoint("x", _one(instance_count=0)),
            "OnlineEndpointArgs.deployments[0].instance_count",
            "1..100",
        ),
        (
            lambda: OnlineEndpoint("x", _one(request_timeout_ms=200_000)),
            "OnlineEndpointArgs.deployments[0].request_timeout_ms",
            "180000",
        ),
        (
            lambda: OnlineEndpoint("x", _one(max_concurrent_requests_per_instance=0)),
            "OnlineEndpointArgs.deployments[0].max_concurrent_requests_per_instance",
            "1..1000",
        ),
        (
            lambda: OnlineEndpoint("x", _one(liveness_probe=ProbeSettings(period_seconds=0))),
            "OnlineEndpointArgs.deployments[0].liveness_probe.period_seconds",
            ">= 1",
        ),
        (
            lambda: OnlineEndpoint("x", _one(readiness_probe=ProbeSettings(timeout_seconds=20, period_seconds=10))),
            "OnlineEndpointArgs.deployments[0].readiness_probe.timeout_seconds",
            "period_seconds",
        ),
        # batch
        (lambda: BatchEndpoint("x", batch(endpoint_name="b")), "BatchEndpointArgs.endpoint_name", "3-32"),
        (lambda: BatchEndpoint("x", batch(deployment_name="d")), "BatchEndpointArgs.deployment_name", "3-32"),
        (lambda: BatchEndpoint("x", batch(compute_name="x")), "BatchEndpointArgs.compute_name", "2-16"),
        (lambda: BatchEndpoint("x", batch(vm_size="DS3")), "BatchEndpointArgs.vm_size", "Standard_"),
        (lambda: BatchEndpoint("x", batch(min_nodes=3, max_nodes=2)), "BatchEndpointArgs.min_nodes", "0..max_nodes"),
        (lambda: BatchEndpoint("x", batch(max_nodes=0, min_nodes=0)), "BatchEndpointArgs.max_nodes", "1..100"),
        (lambda: BatchEndpoint("x", batch(instance_count=3)), "BatchEndpointArgs.instance_count", "max_nodes (2)"),
        (lambda: BatchEndpoint("x", batch(mini_batch_size=0)), "BatchEndpointArgs.mini_batch_size", "1..10000"),
        (
            lambda: BatchEndpoint("x", batch(max_concurrency_per_instance=0)),
            "BatchEndpointArgs.max_concurrency_per_instance",
            "1..100",
        ),
        (lambda: BatchEndpoint("x", batch(error_threshold=-2)), "BatchEndpointArgs.error_threshold", "-1 or more"),
        (lambda: BatchEndpoint("x", batch(output_action="Append")), "BatchEndpointArgs.output_action", "SummaryOnly"),
        (
            lambda: BatchEndpoint("x", batch(idle_seconds_before_scale_down=10)),
            "BatchEndpointArgs.idle_seconds_before_scale_down",
            "60",
        ),
        # monitoring, its alert and autoscale rules
        (
            lambda: EndpointMonitoring("x", monitoring(action_group_name="bad name!")),
            "EndpointMonitoringArgs.action_group_name",
            "1-60",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(emails=["not-an-email"])),
            "EndpointMonitoringArgs.emails",
            "e-mail address",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(emails=["a@example.com", "a@example.com"])),
            "EndpointMonitoringArgs.emails",
            "repeat",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(autoscale_targets=[AutoscaleTarget("blue", "d", "e")])),
            "EndpointMonitoringArgs.autoscale",
            "autoscale rules",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(autoscale=AutoscaleRules(min_instances=3, max_instances=2))),
            "EndpointMonitoringArgs.autoscale.min_instances",
            "max_instances (2)",
        ),
        (
            lambda: EndpointMonitoring(
                "x",
                monitoring(
                    autoscale=AutoscaleRules(),
                    autoscale_targets=[AutoscaleTarget("blue", "d", "e", default_instances=5)],
                ),
            ),
            "EndpointMonitoringArgs.autoscale_targets[0].default_instances",
            "1..2",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(autoscale=AutoscaleRules(cpu_scale_in_percent=80))),
            "EndpointMonitoringArgs.autoscale.cpu_scale_in_percent",
            "below",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(autoscale=AutoscaleRules(latency_scale_out_ms=0))),
            "EndpointMonitoringArgs.autoscale.latency_scale_out_ms",
            ">= 1",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(autoscale=AutoscaleRules(window_seconds=60))),
            "EndpointMonitoringArgs.autoscale.window_seconds",
            "5 minutes",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(autoscale=AutoscaleRules(scale_in_cooldown_seconds=10))),
            "EndpointMonitoringArgs.autoscale.scale_in_cooldown_seconds",
            "1 minute .. 1 week",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(alerts=AlertRules(latency_p99_ms=0))),
            "EndpointMonitoringArgs.alerts.latency_p99_ms",
            ">= 1",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(alerts=AlertRules(errors_5xx=0))),
            "EndpointMonitoringArgs.alerts.errors_5xx",
            ">= 1",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(alerts=AlertRules(period_seconds=120))),
            "EndpointMonitoringArgs.alerts.period_seconds",
            "60, 300",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(alerts=AlertRules(period_seconds=3600, evaluation_periods=25))),
            "EndpointMonitoringArgs.alerts.evaluation_periods",
            "24 hours",
        ),
        (
            lambda: EndpointMonitoring("x", monitoring(alerts=AlertRules(severity=5))),
            "EndpointMonitoringArgs.alerts.severity",
            "0 critical",
        ),
        # budget
        (lambda: CostBudget("x", budget(budget_name="bad name")), "CostBudgetArgs.budget_name", "1-63"),
        (lambda: CostBudget("x", budget(monthly_amount=0)), "CostBudgetArgs.monthly_amount", ">= 1"),
        (lambda: CostBudget("x", budget(emails=[])), "CostBudgetArgs.emails", "at least one e-mail"),
        (lambda: CostBudget("x", budget(emails=["x"])), "CostBudgetArgs.emails", "e-mail address"),
        (lambda: CostBudget("x", budget(start_date="2026-11-15")), "CostBudgetArgs.start_date", "first day of a month"),
        (lambda: CostBudget("x", budget(notify_at_percent=[])), "CostBudgetArgs.notify_at_percent", "at least one"),
        (
            lambda: CostBudget("x", budget(notify_at_percent=[10, 20, 30, 40, 50])),
            "CostBudgetArgs.notify_at_percent",
            "5 notifications",
        ),
        (lambda: CostBudget("x", budget(notify_at_percent=[0])), "CostBudgetArgs.notify_at_percent", "1..1000"),
        (lambda: CostBudget("x", budget(notify_at_percent=[80, 80])), "CostBudgetArgs.notify_at_percent", "repeat"),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v else None,
)
def test_invalid_arguments_name_field_value_and_what_is_allowed(make, field, fragment):
    with pytest.raises(ValueError) as caught:
        make()
    message = str(caught.value)
    assert message.startswith(field + ":"), message
    assert fragment in message
    assert "(got " in message


@pytest.mark.parametrize(
    "kw, field, fragment",
    [
        (dict(model_name="iris model"), "model_name", "asset name"),
        (dict(ml_environment_name="env/1"), "ml_environment_name", "asset name"),
        (dict(routes=InferenceRoutes(port=0)), r"routes\.port", "1..65535"),
        (dict(routes=InferenceRoutes(scoring_path="score")), r"routes\.scoring_path", "starting with '/'"),
        (dict(model_version="v2"), "model_version", "whole number"),
        (dict(pinned_model_versions=["1", "1"]), "pinned_model_versions", "repeat"),
        (dict(model_dir=Path("/nonexistent/model")), "model_dir", "existing, non-empty folder"),
        (dict(image_uri="example.azurecr.io/x:1"), "image_uri", "exactly one"),
        (dict(build_context=None), "image_uri", "exactly one"),
        (dict(build_context=REPO / "docs"), "build_context", "Dockerfile"),
        # the batch environment (Azure ML's batch runtime packages)
        (dict(batch_ml_environment_name="iris batch"), "batch_ml_environment_name", "asset name"),
        (
            dict(batch_ml_environment_name="iris-serving"),
            "batch_ml_environment_name",
            "differ from ml_environment_name",
        ),
        (
            dict(batch_ml_environment_name="iris-batch", batch_dockerfile="Dockerfile.missing"),
            "batch_dockerfile",
            "not excluded by its .dockerignore",
        ),
        (
            dict(batch_ml_environment_name="iris-batch", batch_dockerfile="examples/azure_score/score.py"),
            "batch_dockerfile",
            "not excluded by its .dockerignore",
        ),  # exists, but .dockerignore keeps it out of the upload
        (
            dict(batch_ml_environment_name="iris-batch", batch_image_uri="x.azurecr.io/b:1"),
            "batch_image_uri",
            "only with image_uri",
        ),
        (
            dict(build_context=None, image_uri="x.azurecr.io/s:1", batch_image_uri="x.azurecr.io/b:1"),
            "batch_image_uri",
            "needs batch_ml_environment_name",
        ),
        (
            dict(build_context=None, image_uri="x.azurecr.io/s:1", batch_ml_environment_name="iris-batch"),
            "batch_ml_environment_name",
            "set batch_image_uri too",
        ),
    ],
)
def test_model_environment_arguments(sample_model, kw, field, fragment):
    with pytest.raises(ValueError, match=rf"^ModelEnvironmentArgs\.{field}: .*{fragment}"):
        ModelEnvironment("x", model_env(sample_model, **kw))


def test_model_environment_batch_arguments_that_pass(sample_model):
    assert (
        model_env(sample_model, batch_ml_environment_name="iris-batch").batch_dockerfile == "Dockerfile.azureml-batch"
    )
    for args in (
        model_env(sample_model, batch_ml_environment_name="iris-batch"),
        model_env(
            sample_model,
            build_context=None,
            image_uri="x.azurecr.io/s:1",
            batch_ml_environment_name="iris-batch",
            batch_image_uri="x.azurecr.io/b:1",
        ),
        model_env(sample_model, build_context=None, image_uri="x.azurecr.io/s:1"),
    ):  # batch runs image_uri
        assert _build(ModelEnvironment, args)


def test_aks_args_total_vcpus():
    assert aks().total_vcpus == 12
    assert aks(vm_size="Standard_NC6", vcpus_per_node=6).total_vcpus == 18


def test_full_traffic_lists_every_deployment():
    assert endpoint().full_traffic == {"blue": 100, "green": 0}


def test_alert_window_covers_all_evaluation_periods():
    assert AlertRules(period_seconds=60, evaluation_periods=3).window_size == "PT5M"
    assert AlertRules(period_seconds=300, evaluation_periods=1).window_size == "PT5M"
    assert AlertRules(period_seconds=300, evaluation_periods=3).window_size == "PT15M"
    assert AlertRules(period_seconds=60).evaluation_frequency == "PT1M"


def test_build_context_honours_dockerignore(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n*.md\nexamples\n")
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "a.py").write_text("x")
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "m.pyc").write_bytes(b"x")
    (tmp_path / "pkg" / "m.py").write_text("x")
    files = [p.relative_to(tmp_path).as_posix() for p in build_context_files(tmp_path)]
    assert files == [".dockerignore", "Dockerfile", "pkg/m.py"]
    before = content_hash(tmp_path, build_context_files(tmp_path))
    (tmp_path / "pkg" / "m.py").write_text("y")
    assert content_hash(tmp_path, build_context_files(tmp_path)) != before
    (tmp_path / ".dockerignore").write_text("!keep\n")
    with pytest.raises(ValueError, match="negated pattern"):
        build_context_files(tmp_path)


def test_online_endpoint_component_alone_orders_endpoint_deployments_traffic():
    """The component reused without the twinserve program: traffic is applied after every deployment."""
    args = endpoint(
        deployments=[deployment("blue"), deployment("green"), deployment("shadow")],
        traffic={"blue": 70, "green": 30},
        mirror_traffic={"shadow": 10},
    )

    def program():
        OnlineEndpoint("demo", args)

    planned = [r.as_dict() for r in plan_program(program, project="demo", stack="dev")]
    endpoint_res = one(planned, ML + "OnlineEndpoint")
    deployments = {d["inputs"]["deploymentName"]: d for d in of_type(planned, ML + "OnlineDeployment")}
    traffic = one(planned, "azure-native:resources:Deployment")
    assert endpoint_res["inputs"]["properties"]["traffic"] == {}
    assert deployments["blue"]["depends_on"] == ["demo-endpoint"]
    assert deployments["green"]["depends_on"] == ["demo-blue"]
    assert deployments["shadow"]["depends_on"] == ["demo-green"]
    assert traffic["depends_on"] == ["demo-blue", "demo-endpoint", "demo-green", "demo-shadow"]
    (template,) = traffic["inputs"]["properties"]["template"]["resources"]
    assert template["properties"]["traffic"] == {"blue": 70, "green": 30, "shadow": 0}
    assert template["properties"]["mirrorTraffic"] == {"shadow": 10}
    assert all(r["parent"] == "demo" for r in planned if r["custom"])


def _extension_settings(args):
    def program():
        AksInferenceCluster("demo", args)

    planned = [r.as_dict() for r in plan_program(program, project="demo", stack="dev")]
    return one(planned, "azure-native:kubernetesconfiguration:Extension")["inputs"]


def test_aks_extension_gets_the_settings_the_cli_would_derive():
    """ARM receives the extension's settings as they are: what `az k8s-extension create` derives on the
    client (the internal load balancer switch, the cluster's identity and location, no relay or service
    bus on AKS) must be declared, or the router gets a public IP and the extension lacks its cluster."""
    inputs = _extension_settings(aks())
    settings = inputs["configurationSettings"]
    assert settings["internalLoadBalancerProvider"] == "azure"
    assert settings["scoringFe.serviceType.internalLoadBalancer"] == "True"
    assert settings["clusterId"] == settings["cluster_name"] == "demo-aks-id"
    assert settings["cluster_name_friendly"] == "iris-aks"
    assert settings["location"] == settings["jobSchedulerLocation"] == "westeurope"
    assert settings["relayserver.enabled"] == settings["servicebus.enabled"] == "false"
    assert inputs.get("configurationProtectedSettings") is None

    node_port = _extension_settings(aks(router_service_type="NodePort", internal_load_balancer=False))[
        "configurationSettings"
    ]
    assert node_port["scoringFe.serviceType.nodePort"] == "True"
    assert "internalLoadBalancerProvider" not in node_port


def test_aks_extension_tls_sends_certificate_and_key_as_base64_pem():
    """`sslCertPemFile`/`sslKeyPemFile` are file paths the CLI reads; ARM wants the base64 PEM text."""
    cert, key = "-----BEGIN CERTIFICATE-----\nabc\n", "-----BEGIN PRIVATE KEY-----\nxyz\n"
    inputs = _extension_settings(
        aks(allow_insecure_connections=False, ssl_cname="scoring.example.com", ssl_cert_pem=cert, ssl_key_pem=key)
    )
    assert inputs["configurationSettings"]["sslCname"] == "scoring.example.com"
    assert inputs["configurationSettings"]["allowInsecureConnections"] == "False"
    assert inputs["configurationProtectedSettings"] == {  # sent as a secret
        "$secret": {
            "scoringFe.sslCert": base64.b64encode(cert.encode()).decode(),
            "scoringFe.sslKey": base64.b64encode(key.encode()).decode(),
        }
    }
