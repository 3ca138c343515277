"""Rules that span several fields of a spec, each reported at the field that has to change.

Only platform facts and twinserve's documented choices are enforced here; sources are in
docs/spec.md next to each rule.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import MISSING, SpecIssue
from .models import DeploymentSpec, EnvironmentSpec

# Deployment guardrails on SageMaker shift traffic between instances of one variant; with fewer
# than three instances a canary or linear step is the whole fleet (AWS's own project templates
# require three). A rolling update needs a second instance to roll onto.
MIN_INSTANCES_FOR_ROLLOUT = {"all_at_once": 1, "canary": 3, "linear": 3, "rolling": 2}
AKS_MIN_NODES = 3
AKS_MIN_VCPUS = 12
AZURE_MAX_MIRROR_PERCENT = 50
AZURE_BATCH_DOCKERFILE = "Dockerfile.azureml-batch"
"""In a ``container.build`` context: the image Azure ML batch deployments run (the serving image plus
the batch runtime packages Azure ML requires)."""

# vCPUs of common Azure sizes whose name does not carry the core count.
_AZURE_VCPUS = {
    "Standard_DS2_v2": 2, "Standard_DS3_v2": 4, "Standard_DS4_v2": 8, "Standard_DS5_v2": 16,
    "Standard_D2_v2": 2, "Standard_D3_v2": 4, "Standard_D4_v2": 8, "Standard_D5_v2": 16,
    "Standard_F2s_v2": 2, "Standard_F4s_v2": 4, "Standard_F8s_v2": 8, "Standard_F16s_v2": 16,
}
# From the v3 generation on (and Fsv2), the number after the family letters is the vCPU count.
_VCPU_IN_NAME = re.compile(r"^Standard_[A-Z]+(\d+)[a-z]*_v[3-9]$")


def azure_vm_vcpus(vm_size: str) -> int | None:
    """vCPUs of an Azure VM size, or None when the name does not say."""
    if vm_size in _AZURE_VCPUS:
        return _AZURE_VCPUS[vm_size]
    match = _VCPU_IN_NAME.match(vm_size)
    return int(match.group(1)) if match else None


def check_deployment(spec: DeploymentSpec, base_dir: Path | None = None) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    artifact = spec.model.artifact
    if (artifact.path is None) == (artifact.s3_uri is None):
        issues.append(SpecIssue("model.artifact", artifact.model_dump(exclude_none=True),
                                "set exactly one of path (local model directory) or s3_uri"))
    container = spec.container
    if (container.build is None) == (container.image_uri is None):
        issues.append(SpecIssue("container", container.model_dump(include={"build", "image_uri"}, exclude_none=True),
                                "set exactly one of build (Docker build context) or image_uri"))
    if container.azure_batch_image_uri is not None and container.build is not None:
        issues.append(SpecIssue("container.azure_batch_image_uri", container.azure_batch_image_uri,
                                "only with image_uri: with build, the Azure ML batch image is built from "
                                f"{AZURE_BATCH_DOCKERFILE} in the build context"))
    for name, env in spec.environments.items():
        issues.extend(check_environment(spec, f"environments.{name}", env))
    if spec.pipeline is not None:
        issues.extend(check_pipeline(spec))
    return issues


def check_pipeline(spec: DeploymentSpec) -> list[SpecIssue]:
    """The promotion pipeline deploys the AWS environments; what it names must be one of them."""
    pipeline = spec.pipeline
    assert pipeline is not None
    issues: list[SpecIssue] = []
    aws_envs = {name: env for name, env in spec.environments.items() if "aws" in env.targets}
    if not aws_envs:
        issues.append(SpecIssue("pipeline", "set", "no environment targets aws; the pipeline would deploy nothing"))
    gated = pipeline.manual_approval_before
    for i, name in enumerate(gated):
        if name in gated[:i]:
            issues.append(SpecIssue(f"pipeline.manual_approval_before.{i}", name, "listed twice"))
        elif name not in spec.environments:
            issues.append(SpecIssue(f"pipeline.manual_approval_before.{i}", name,
                                    f"environment {name!r} is not in the spec; defined: {', '.join(spec.environments)}"))
        elif name not in aws_envs:
            issues.append(SpecIssue(f"pipeline.manual_approval_before.{i}", name,
                                    f"environment {name!r} does not target aws; the pipeline deploys AWS environments only"))
    # CodePipeline acts in another account or region only from a pipeline whose own account/region is known.
    for field, label in (("account", "account"), ("region", "region")):
        pinned = {name: getattr(env.aws, field) for name, env in aws_envs.items() if getattr(env.aws, field)}
        if pinned and getattr(pipeline, field) is None:
            where = ", ".join(f"{name} -> {value}" for name, value in pinned.items())
            issues.append(SpecIssue(f"pipeline.{field}", MISSING,
                                    f"set the pipeline's {label}: environments pin aws.{field} ({where}), and "
                                    f"CodePipeline deploys across {label}s only from a pipeline with an explicit {label}"))
    if pipeline.smoke_test:
        for name, env in aws_envs.items():
            if env.serving.endpoint_type == "async":
                issues.append(SpecIssue("pipeline.smoke_test", True,
                                        f"environment {name} serves an async endpoint, which the smoke test's "
                                        "synchronous invoke-endpoint cannot call; set smoke_test: false"))
    return issues


def check_environment(spec: DeploymentSpec, at: str, env: EnvironmentSpec) -> list[SpecIssue]:
    issues: list[SpecIssue] = []

    def issue(path: str, value, message: str) -> None:
        issues.append(SpecIssue(f"{at}.{path}", value, message))

    aws, azure = "aws" in env.targets, "azure" in env.targets
    serving, rollout, scaling = env.serving, env.rollout, env.scaling
    variants = serving.variants

    if len(set(env.targets)) != len(env.targets):
        issue("targets", env.targets, "each target may appear once")
    if azure and spec.model.artifact.path is None:
        issue("targets", env.targets, "Azure ML needs model.artifact.path (an s3_uri is AWS-only)")

    # ---- variants and traffic
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        issue("serving.variants", names, "variant names must be unique")
    weights = [v.weight for v in variants]
    if sum(weights) != 100:
        issue("serving.variants", {v.name: v.weight for v in variants},
              f"variant weights must sum to 100, they sum to {sum(weights)}")
    # An s3_uri is one archive, model.version's: there is no versioned layout to find an older one in.
    if aws and spec.model.artifact.s3_uri is not None:
        pinned = [(f"serving.variants.{i}.model_version", v.model_version) for i, v in enumerate(variants)]
        if serving.shadow is not None:
            pinned.append(("serving.shadow.model_version", serving.shadow.model_version))
        for path, version in pinned:
            if version is not None and version != spec.model.version:
                issue(path, version, f"with model.artifact.s3_uri SageMaker serves only model.version "
                      f"({spec.model.version!r}); use model.artifact.path so each version is kept at "
                      "models/<name>/<version>/ in the artifacts bucket")

    # ---- shadow / mirror
    shadow = serving.shadow
    if shadow is not None:
        if shadow.name in names:
            issue("serving.shadow.name", shadow.name,
                  "a shadow must not also be a live variant; give it its own name")
        if aws and len(variants) != 1:
            issue("serving.variants", names,
                  "a shadow on SageMaker needs exactly one live variant (ShadowProductionVariants)")
        if azure and shadow.sample_percent > AZURE_MAX_MIRROR_PERCENT:
            issue("serving.shadow.sample_percent", shadow.sample_percent,
                  f"Azure ML mirrors at most {AZURE_MAX_MIRROR_PERCENT} percent of traffic")
        if azure and "managed" not in env.azure.online_endpoints:
            issue("azure.online_endpoints", env.azure.online_endpoints,
                  "mirror traffic (serving.shadow) needs a managed online endpoint; add 'managed'")
        if serving.endpoint_type != "realtime":
            issue("serving.shadow", shadow.name, f"a shadow needs endpoint_type realtime, not {serving.endpoint_type}")

    # ---- endpoint types that exist on one cloud only
    if serving.endpoint_type in ("serverless", "async") and azure:
        issue("serving.endpoint_type", serving.endpoint_type,
              "Azure ML has no serverless or asynchronous online endpoint; use realtime, or targets: [aws]")
    if serving.endpoint_type == "serverless":
        sl = serving.serverless
        if sl.provisioned_concurrency is not None and sl.provisioned_concurrency > sl.max_concurrency:
            issue("serving.serverless.provisioned_concurrency", sl.provisioned_concurrency,
                  f"must not exceed serverless.max_concurrency ({sl.max_concurrency})")
        if rollout.strategy != "all_at_once":
            issue("rollout.strategy", rollout.strategy,
                  "deployment guardrails (canary, linear, rolling) are not available for serverless endpoints; use all_at_once")
        if scaling.enabled and sl.provisioned_concurrency is None:
            issue("scaling.enabled", True,
                  "serverless endpoints scale by themselves; scaling applies to provisioned concurrency, so set serving.serverless.provisioned_concurrency")
        # SageMaker Serverless Inference feature exclusions.
        if aws and len(variants) > 1:
            issue("serving.variants", names, "a SageMaker serverless endpoint has exactly one variant")
        if aws and env.aws.vpc is not None:
            issue("aws.vpc", "set", "SageMaker serverless endpoints cannot run in a VPC; remove aws.vpc or use realtime")
        if aws and env.aws.network_isolation:
            issue("aws.network_isolation", True, "SageMaker serverless endpoints do not support network isolation")
        if aws and env.aws.data_capture.enabled:
            issue("aws.data_capture.enabled", True, "SageMaker serverless endpoints do not support data capture")

    # ---- SageMaker answers real-time and serverless invocations within 60 s, whatever the container does
    if aws and serving.endpoint_type in ("realtime", "serverless") and serving.request_timeout_seconds > 60:
        issue("serving.request_timeout_seconds", serving.request_timeout_seconds,
              f"SageMaker {serving.endpoint_type} invocations time out after 60 s; use at most 60, "
              "or endpoint_type async for longer requests")

    # ---- rollout needs
    needed = MIN_INSTANCES_FOR_ROLLOUT[rollout.strategy]
    for i, variant in enumerate(variants):
        count = variant.instance_count or env.compute.instance_count
        if serving.endpoint_type != "serverless" and count < needed:
            path = f"serving.variants.{i}.instance_count" if variant.instance_count else "compute.instance_count"
            issue(path, count, f"a {rollout.strategy} rollout needs at least {needed} instances per variant")
    if rollout.strategy != "all_at_once" and aws and len(variants) > 1:
        issue("rollout.strategy", rollout.strategy,
              "SageMaker deployment guardrails work on single-variant endpoints; use all_at_once for A/B variants")
    if rollout.strategy == "canary" and rollout.step_percent > 50:
        issue("rollout.step_percent", rollout.step_percent, "a canary may take at most 50 percent of capacity")
    if rollout.strategy == "linear" and not 10 <= rollout.step_percent <= 50:
        issue("rollout.step_percent", rollout.step_percent, "a linear step must be 10..50 percent of capacity")
    if rollout.strategy == "rolling" and rollout.step_percent > 50:
        issue("rollout.step_percent", rollout.step_percent, "a rolling batch may be at most 50 percent of capacity")

    # ---- autoscaling
    if scaling.enabled:
        if scaling.min_instances > scaling.max_instances:
            issue("scaling.min_instances", scaling.min_instances,
                  f"must not exceed scaling.max_instances ({scaling.max_instances})")
        if serving.endpoint_type == "realtime" and not (
            scaling.min_instances <= env.compute.instance_count <= scaling.max_instances
        ):
            issue("compute.instance_count", env.compute.instance_count,
                  f"must lie within scaling bounds {scaling.min_instances}..{scaling.max_instances}")
        if aws and env.compute.aws_instance_type.startswith("ml.t") and serving.endpoint_type != "serverless":
            issue("compute.aws_instance_type", env.compute.aws_instance_type,
                  "SageMaker cannot autoscale burstable ml.t* instances; pick e.g. ml.m5.large or disable scaling")
        if scaling.cpu_scale_in_percent >= scaling.cpu_scale_out_percent:
            issue("scaling.cpu_scale_in_percent", scaling.cpu_scale_in_percent,
                  f"must be below scaling.cpu_scale_out_percent ({scaling.cpu_scale_out_percent})")

    # ---- batch
    batch = serving.batch
    if batch.enabled and batch.max_concurrent_transforms * batch.max_payload_mb > 100:
        issue("serving.batch.max_payload_mb", batch.max_payload_mb,
              f"max_concurrent_transforms x max_payload_mb must be <= 100 MB "
              f"({batch.max_concurrent_transforms} x {batch.max_payload_mb})")

    # ---- budget needs somebody to tell
    if env.budget is not None and not env.alarms.emails:
        issue("alarms.emails", [], "a budget needs at least one e-mail to notify")
    # AWS Budgets: 5 notifications per budget (twinserve adds a forecast alert), 10 subscribers each.
    if env.budget is not None and aws:
        thresholds = env.budget.notify_at_percent
        if len(thresholds) > 4 or len(set(thresholds)) != len(thresholds):
            issue("budget.notify_at_percent", thresholds,
                  "give at most 4 distinct thresholds (AWS Budgets allows 5 notifications; one is the forecast alert)")
        if len(env.alarms.emails) > 10:
            issue("alarms.emails", env.alarms.emails, "AWS Budgets notifies at most 10 e-mail addresses")

    # ---- Azure ML names and settings the Azure components would refuse
    if azure:
        for i, variant in enumerate(variants):
            if len(variant.name) < 3:
                issue(f"serving.variants.{i}.name", variant.name,
                      "Azure ML deployment names need at least 3 characters")
        if shadow is not None and len(shadow.name) < 3:
            issue("serving.shadow.name", shadow.name, "Azure ML deployment names need at least 3 characters")
        if env.azure.auth_mode == "aad_token" and "kubernetes" in env.azure.online_endpoints:
            issue("azure.auth_mode", "aad_token",
                  "Kubernetes online endpoints take key or aml_token; aad_token is for managed endpoints only")
        if batch.instance_count > env.azure.batch_max_nodes:
            issue("serving.batch.instance_count", batch.instance_count,
                  f"must not exceed azure.batch_max_nodes ({env.azure.batch_max_nodes}): "
                  "a batch job cannot use more nodes than its compute cluster has")

    # ---- Azure Kubernetes inference cluster
    if azure:
        aks = env.azure.aks
        if aks.node_count < AKS_MIN_NODES:
            issue("azure.aks.node_count", aks.node_count,
                  f"Azure ML inference on AKS needs at least {AKS_MIN_NODES} nodes")
        vcpus = aks.vcpus_per_node or azure_vm_vcpus(aks.vm_size)
        if vcpus is None:
            issue("azure.aks.vm_size", aks.vm_size,
                  "twinserve cannot tell this size's vCPUs from its name; set azure.aks.vcpus_per_node")
        elif vcpus * aks.node_count < AKS_MIN_VCPUS:
            issue("azure.aks.vm_size", aks.vm_size,
                  f"{aks.node_count} x {vcpus} vCPU = {vcpus * aks.node_count}; the AKS inference cluster "
                  f"needs at least {AKS_MIN_VCPUS} vCPU (e.g. 3 x Standard_D4s_v3)")
        lo, hi = aks.autoscale_min_nodes, aks.autoscale_max_nodes
        if (lo is None) != (hi is None):
            issue("azure.aks", {"autoscale_min_nodes": lo, "autoscale_max_nodes": hi},
                  "set both autoscale_min_nodes and autoscale_max_nodes, or neither")
        elif lo is not None and hi is not None:
            if lo < AKS_MIN_NODES:
                issue("azure.aks.autoscale_min_nodes", lo, f"must be at least {AKS_MIN_NODES}")
            if not lo <= aks.node_count <= hi:
                issue("azure.aks.node_count", aks.node_count, f"must lie within autoscale bounds {lo}..{hi}")
    return issues
