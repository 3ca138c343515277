"""Spec-level rules for Azure: each is reported at the exact field path, before any Pulumi runs."""

from __future__ import annotations

import copy

import pytest

from twinserve.spec import SpecError, parse_spec

BASE = {
    "name": "iris",
    "model": {"name": "iris", "version": "1", "artifact": {"path": "../build/sample-model/model"}},
    "container": {"build": "../model_containers"},
    "defaults": {"targets": ["azure"], "alarms": {"emails": ["a@example.com"]}},
    "environments": {"dev": {}},
}


def dev(**settings) -> dict:
    raw = copy.deepcopy(BASE)
    raw["environments"]["dev"] = settings
    return raw


def test_base_spec_is_valid():
    spec = parse_spec(dev())
    assert spec.environment("dev").azure.online_endpoints == ["managed", "kubernetes"]


@pytest.mark.parametrize(
    "settings, path, fragment",
    [
        (dict(azure={"aks": {"node_count": 2}}), "environments.dev.azure.aks.node_count", "at least 3 nodes"),
        (dict(azure={"aks": {"vm_size": "Standard_D2s_v3"}}), "environments.dev.azure.aks.vm_size", "at least 12 vCPU"),
        (dict(azure={"aks": {"vm_size": "Standard_NC6"}}), "environments.dev.azure.aks.vm_size", "vcpus_per_node"),
        (dict(azure={"aks": {"autoscale_min_nodes": 3}}), "environments.dev.azure.aks", "set both"),
        (
            dict(azure={"aks": {"node_count": 8, "autoscale_min_nodes": 3, "autoscale_max_nodes": 6}}),
            "environments.dev.azure.aks.node_count",
            "autoscale bounds 3..6",
        ),
        (
            dict(serving={"shadow": {"name": "candidate", "sample_percent": 60}}),
            "environments.dev.serving.shadow.sample_percent",
            "at most 50",
        ),
        (
            dict(
                azure={"online_endpoints": ["kubernetes"]},
                serving={"shadow": {"name": "candidate", "sample_percent": 10}},
            ),
            "environments.dev.azure.online_endpoints",
            "managed online endpoint",
        ),
        (
            dict(
                serving={
                    "variants": [{"name": "primary", "weight": 100}],
                    "shadow": {"name": "primary", "sample_percent": 10},
                }
            ),
            "environments.dev.serving.shadow.name",
            "not also be a live variant",
        ),
        (
            dict(serving={"variants": [{"name": "blue", "weight": 60}, {"name": "green", "weight": 30}]}),
            "environments.dev.serving.variants",
            "sum to 100",
        ),
        (
            dict(serving={"variants": [{"name": "ab", "weight": 100}]}),
            "environments.dev.serving.variants.0.name",
            "names must be 3-32",
        ),
        (
            dict(serving={"shadow": {"name": "c", "sample_percent": 10}}),
            "environments.dev.serving.shadow.name",
            "names must be 3-32",
        ),
        (dict(azure={"auth_mode": "aad_token"}), "environments.dev.azure.auth_mode", "managed endpoints only"),
        (
            dict(serving={"batch": {"instance_count": 3}}),
            "environments.dev.serving.batch.instance_count",
            "azure.batch_max_nodes (2)",
        ),
        (
            dict(serving={"endpoint_type": "serverless"}),
            "environments.dev.serving.endpoint_type",
            "no serverless or asynchronous",
        ),
        (
            dict(budget={"monthly_limit_usd": 100}, alarms={"emails": []}),
            "environments.dev.alarms.emails",
            "at least one e-mail",
        ),
    ],
)
def test_azure_rules_report_the_field(settings, path, fragment):
    with pytest.raises(SpecError) as caught:
        parse_spec(dev(**settings))
    matching = [i for i in caught.value.issues if i.path == path]
    assert matching, f"no issue at {path}: {[i.path for i in caught.value.issues]}"
    assert any(fragment in i.message for i in matching), [i.message for i in matching]


def test_aad_token_is_fine_with_managed_endpoints_only():
    spec = parse_spec(dev(azure={"auth_mode": "aad_token", "online_endpoints": ["managed"]}))
    assert spec.environment("dev").azure.auth_mode == "aad_token"


def test_azure_rules_do_not_apply_to_aws_only_environments():
    raw = dev(targets=["aws"], serving={"variants": [{"name": "ab", "weight": 100}]}, azure={"aks": {"node_count": 1}})
    parse_spec(raw)


def test_azure_needs_a_local_artifact():
    raw = dev()
    raw["model"]["artifact"] = {"s3_uri": "s3://bucket/model.tar.gz"}
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert any(i.path.endswith(".targets") and "model.artifact.path" in i.message for i in caught.value.issues)
