"""Rules that span several fields of a spec, each reported at the field that has to change.

Only platform facts (``twinserve.platform``, one definition each, shared with the constructs) and
twinserve's documented choices are enforced here. A spec value reaches both clouds as written, or a
rule here rejects it with the reason; nothing is adjusted quietly on one cloud.

An environment is checked by the named rules of ``ENVIRONMENT_RULES``, one concern each.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from twinserve_serving.drift import STATISTICS as DRIFT_STATISTICS  # the container computes them: one table
from twinserve_serving.image_variants import VARIANTS, gpu_build_of, variant_for

from ..image_context import BATCH_DOCKERFILE as AZURE_BATCH_DOCKERFILE
from ..platform import aws as aws_platform
from ..platform import azure as azure_platform
from ..platform import shared as shared_platform
from .errors import MISSING, SpecIssue
from .models import AzureSpec, DeploymentSpec, EnvironmentSpec


def check_deployment(spec: DeploymentSpec) -> list[SpecIssue]:
    """Every cross-field problem of ``spec``, each at its field path."""
    issues = _check_sources(spec)
    for name, env in spec.environments.items():
        issues.extend(check_environment(spec, f"environments.{name}", env))
    if spec.pipeline is not None:
        issues.extend(check_pipeline(spec))
    return issues


def _check_sources(spec: DeploymentSpec) -> list[SpecIssue]:
    """Where the model and the image come from."""
    issues: list[SpecIssue] = []
    artifact = spec.model.artifact
    if (artifact.path is None) == (artifact.s3_uri is None):
        issues.append(
            SpecIssue(
                "model.artifact",
                artifact.model_dump(exclude_none=True),
                "set exactly one of path (local model directory) or s3_uri",
            )
        )
    container = spec.container
    if (container.build is None) == (container.image_uri is None):
        issues.append(
            SpecIssue(
                "container",
                container.model_dump(include={"build", "image_uri"}, exclude_none=True),
                "set exactly one of build (Docker build context) or image_uri",
            )
        )
    if container.azure_batch_image_uri is not None and container.build is not None:
        issues.append(
            SpecIssue(
                "container.azure_batch_image_uri",
                container.azure_batch_image_uri,
                "only with image_uri: with build, the Azure ML batch image is built from "
                f"{AZURE_BATCH_DOCKERFILE} in the build context",
            )
        )
    return issues


def check_pipeline(spec: DeploymentSpec) -> list[SpecIssue]:
    """The promotion pipeline deploys the AWS environments; what it names must be one of them."""
    pipeline = spec.pipeline
    assert pipeline is not None
    issues: list[SpecIssue] = []
    aws_envs = {name: env for name, env in spec.environments.items() if "aws" in env.targets}
    gated = pipeline.manual_approval_before
    for i, name in enumerate(gated):
        if name in gated[:i]:
            issues.append(SpecIssue(f"pipeline.manual_approval_before.{i}", name, "listed twice"))
        elif name not in spec.environments:
            issues.append(
                SpecIssue(
                    f"pipeline.manual_approval_before.{i}",
                    name,
                    f"environment {name!r} is not in the spec; defined: {', '.join(spec.environments)}",
                )
            )
    # CodePipeline acts in another account or region only from a pipeline whose own account/region is known.
    # (aws.regions pins regions too: its first is the primary.)
    pinned_by = {"account": lambda aws: aws.account, "region": lambda aws: aws.primary_region}
    for attribute, pinned_of in pinned_by.items():
        pinned = {name: pinned_of(env.aws) for name, env in aws_envs.items() if pinned_of(env.aws)}
        if pinned and getattr(pipeline, attribute) is None:
            where = ", ".join(f"{name} -> {value}" for name, value in pinned.items())
            issues.append(
                SpecIssue(
                    f"pipeline.{attribute}",
                    MISSING,
                    f"set the pipeline's {attribute}: environments pin aws.{attribute} ({where}), and "
                    f"CodePipeline deploys across {attribute}s only from a pipeline with an explicit "
                    f"{attribute}",
                )
            )
    # Build once: the Azure step imports the image the environment's SageMaker stage published. Fargate
    # and Lambda stages publish an image with the model baked in (stacks/aws/baked_image.py) instead.
    for name, env in aws_envs.items():
        if "azure" in env.targets and env.aws.platform != "sagemaker" and spec.container.build:
            issues.append(
                SpecIssue(
                    f"environments.{name}.aws.platform",
                    env.aws.platform,
                    "in a pipeline, an environment on both clouds serves AWS from sagemaker: the Azure step "
                    "imports the image the SageMaker stage publishes, and ecs_fargate and lambda stages publish "
                    f"one with the model baked in; use sagemaker, or targets [aws] for {name}",
                )
            )
    azure_envs = [name for name, env in spec.environments.items() if "azure" in env.targets]
    if azure_envs and pipeline.azure is None:
        issues.append(
            SpecIssue(
                "pipeline.azure",
                MISSING,
                f"environments {', '.join(azure_envs)} target azure: give the pipeline's Azure sign-in "
                "(tenant_id, client_id), or set their targets to [aws]",
            )
        )
    if pipeline.azure is not None:
        secret = pipeline.azure.client_secret_arn
        if pipeline.azure.sign_in == "client_secret" and secret is None:
            issues.append(
                SpecIssue(
                    "pipeline.azure.client_secret_arn",
                    MISSING,
                    "sign_in client_secret reads the secret from Secrets Manager: give its ARN",
                )
            )
        if pipeline.azure.sign_in == "federated" and secret is not None:
            issues.append(
                SpecIssue(
                    "pipeline.azure.client_secret_arn",
                    secret,
                    "only with sign_in client_secret: a client secret in the environment wins over the "
                    "federated token, so a federated pipeline must not have one",
                )
            )
    if pipeline.smoke_test:
        for name, env in aws_envs.items():
            if env.serving.endpoint_type == "async":
                issues.append(
                    SpecIssue(
                        "pipeline.smoke_test",
                        True,
                        f"environment {name} serves an async endpoint, which the smoke test's "
                        "synchronous invoke-endpoint cannot call; set smoke_test: false",
                    )
                )
        for name in azure_envs:
            if spec.environments[name].azure.auth_mode == "aml_token":
                issues.append(
                    SpecIssue(
                        "pipeline.smoke_test",
                        True,
                        f"environment {name} uses azure.auth_mode aml_token, a token per endpoint that the smoke "
                        "test cannot obtain: use key or aad_token (the test signs in to Entra), or set "
                        "smoke_test: false",
                    )
                )
    return issues


# --------------------------------------------------------------------------- one environment


@dataclass
class EnvironmentCheck:
    """What every environment rule reads, and where it reports."""

    spec: DeploymentSpec
    env: EnvironmentSpec
    at: str
    """The environment's path, ``environments.<name>``."""
    issues: list[SpecIssue] = field(default_factory=list)

    @property
    def aws(self) -> bool:
        return "aws" in self.env.targets

    @property
    def azure(self) -> bool:
        return "azure" in self.env.targets

    def issue(self, path: str, value, message: str) -> None:
        self.issues.append(SpecIssue(f"{self.at}.{path}", value, message))


def _targets(check: EnvironmentCheck) -> None:
    targets = check.env.targets
    if len(set(targets)) != len(targets):
        check.issue("targets", targets, "each target may appear once")
    if check.azure and check.spec.model.artifact.path is None:
        check.issue("targets", targets, "Azure ML needs model.artifact.path (an s3_uri is AWS-only)")


def _variants_and_traffic(check: EnvironmentCheck) -> None:
    variants = check.env.serving.variants
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        check.issue("serving.variants", names, "variant names must be unique")
    total = sum(v.weight for v in variants)
    if total != 100:
        check.issue(
            "serving.variants",
            {v.name: v.weight for v in variants},
            f"variant weights must sum to 100, they sum to {total}",
        )


def _pinned_versions_need_a_versioned_layout(check: EnvironmentCheck) -> None:
    """An s3_uri is one archive, model.version's: there is no versioned layout to find an older one in."""
    spec, serving = check.spec, check.env.serving
    if not check.aws or spec.model.artifact.s3_uri is None:
        return
    pinned = [(f"serving.variants.{i}.model_version", v.model_version) for i, v in enumerate(serving.variants)]
    if serving.shadow is not None:
        pinned.append(("serving.shadow.model_version", serving.shadow.model_version))
    for path, version in pinned:
        if version is not None and version != spec.model.version:
            check.issue(
                path,
                version,
                f"with model.artifact.s3_uri SageMaker serves only model.version "
                f"({spec.model.version!r}); use model.artifact.path so each version is kept at "
                "models/<name>/<version>/ in the artifacts bucket",
            )


def _shadow(check: EnvironmentCheck) -> None:
    serving, shadow = check.env.serving, check.env.serving.shadow
    if shadow is None:
        return
    names = [v.name for v in serving.variants]
    if shadow.name in names:
        check.issue(
            "serving.shadow.name", shadow.name, "a shadow must not also be a live variant; give it its own name"
        )
    if check.aws and len(names) != 1:
        check.issue(
            "serving.variants", names, "a shadow on SageMaker needs exactly one live variant (ShadowProductionVariants)"
        )
    if check.azure and shadow.sample_percent > azure_platform.MAX_MIRROR_PERCENT:
        check.issue(
            "serving.shadow.sample_percent",
            shadow.sample_percent,
            f"Azure ML mirrors at most {azure_platform.MAX_MIRROR_PERCENT} percent of traffic",
        )
    if check.azure and "managed" not in check.env.azure.online_endpoints:
        check.issue(
            "azure.online_endpoints",
            check.env.azure.online_endpoints,
            "mirror traffic (serving.shadow) needs a managed online endpoint; add 'managed'",
        )
    if serving.endpoint_type != "realtime":
        check.issue(
            "serving.shadow", shadow.name, f"a shadow needs endpoint_type realtime, not {serving.endpoint_type}"
        )


def _endpoint_type(check: EnvironmentCheck) -> None:
    """Serverless and async endpoints exist on SageMaker only; SageMaker answers within 60 s."""
    serving = check.env.serving
    if serving.endpoint_type in ("serverless", "async") and check.azure:
        check.issue(
            "serving.endpoint_type",
            serving.endpoint_type,
            "Azure ML has no serverless or asynchronous online endpoint; use realtime, or targets: [aws]",
        )
    limit = aws_platform.INVOCATION_TIMEOUT_SECONDS
    if check.aws and serving.endpoint_type in ("realtime", "serverless") and serving.request_timeout_seconds > limit:
        check.issue(
            "serving.request_timeout_seconds",
            serving.request_timeout_seconds,
            f"SageMaker {serving.endpoint_type} invocations time out after {limit} s; use at most {limit}, "
            "or endpoint_type async for longer requests",
        )


def _serverless(check: EnvironmentCheck) -> None:
    """SageMaker Serverless Inference: its own concurrency and its feature exclusions."""
    env = check.env
    if env.serving.endpoint_type != "serverless":
        return
    serverless = env.serving.serverless
    if (
        serverless.provisioned_concurrency is not None
        and serverless.provisioned_concurrency > serverless.max_concurrency
    ):
        check.issue(
            "serving.serverless.provisioned_concurrency",
            serverless.provisioned_concurrency,
            f"must not exceed serverless.max_concurrency ({serverless.max_concurrency})",
        )
    if env.rollout.strategy != "all_at_once":
        check.issue(
            "rollout.strategy",
            env.rollout.strategy,
            "deployment guardrails (canary, linear, rolling) are not available for serverless endpoints; "
            "use all_at_once",
        )
    if env.scaling.enabled and serverless.provisioned_concurrency is None:
        check.issue(
            "scaling.enabled",
            True,
            "serverless endpoints scale by themselves; scaling applies to provisioned concurrency, so set "
            "serving.serverless.provisioned_concurrency",
        )
    if not check.aws:
        return
    if len(env.serving.variants) > 1:
        check.issue(
            "serving.variants",
            [v.name for v in env.serving.variants],
            "a SageMaker serverless endpoint has exactly one variant",
        )
    if env.aws.vpc is not None:
        check.issue(
            "aws.vpc", "set", "SageMaker serverless endpoints cannot run in a VPC; remove aws.vpc or use realtime"
        )
    if env.aws.network_isolation:
        check.issue("aws.network_isolation", True, "SageMaker serverless endpoints do not support network isolation")
    if env.aws.private_network:
        check.issue("aws.private_network", True, "SageMaker serverless endpoints cannot run in a VPC")
    if env.aws.data_capture.enabled:
        check.issue("aws.data_capture.enabled", True, "SageMaker serverless endpoints do not support data capture")


def _rollout(check: EnvironmentCheck) -> None:
    """What SageMaker deployment guardrails need of the fleet and of the step size."""
    env, rollout = check.env, check.env.rollout
    if check.aws and env.aws.platform == "ecs_fargate":
        # ECS shifts traffic, not instances: any task count; steps within ECS's ranges
        # (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinearConfiguration.html)
        low = {"linear": aws_platform.ECS_LINEAR_STEP_PERCENT[0], "canary": 1}.get(rollout.strategy)
        if low is not None and not low <= rollout.step_percent <= 100:
            check.issue(
                "rollout.step_percent", rollout.step_percent, f"ECS {rollout.strategy} steps are {low}..100 percent"
            )
        return
    if check.aws and env.aws.platform == "lambda":
        # CodeDeploy shifts the alias: 1..99 percent per step, whole minutes between steps
        # (https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-configurations.html)
        if rollout.strategy in ("canary", "linear") and not 1 <= rollout.step_percent <= 99:
            check.issue("rollout.step_percent", rollout.step_percent, "CodeDeploy steps are 1..99 percent of traffic")
        if rollout.strategy in ("canary", "linear") and rollout.wait_seconds % 60:
            check.issue(
                "rollout.wait_seconds", rollout.wait_seconds, "CodeDeploy waits whole minutes: use a multiple of 60"
            )
        return
    needed = aws_platform.MIN_INSTANCES_FOR_ROLLOUT[rollout.strategy]
    if env.serving.endpoint_type != "serverless":
        for i, variant in enumerate(env.serving.variants):
            count = env.instance_count_of(variant)
            if count < needed:
                path = f"serving.variants.{i}.instance_count" if variant.instance_count else "compute.instance_count"
                check.issue(path, count, f"a {rollout.strategy} rollout needs at least {needed} instances per variant")
    if rollout.strategy != "all_at_once" and check.aws and len(env.serving.variants) > 1:
        check.issue(
            "rollout.strategy",
            rollout.strategy,
            "SageMaker deployment guardrails work on single-variant endpoints; use all_at_once for A/B variants",
        )
    steps = aws_platform.ROLLOUT_STEP_PERCENT.get(rollout.strategy)
    if steps is not None and not steps[0] <= rollout.step_percent <= steps[1]:
        what = {"canary": "a canary", "linear": "a linear step", "rolling": "a rolling batch"}[rollout.strategy]
        check.issue(
            "rollout.step_percent", rollout.step_percent, f"{what} must be {steps[0]}..{steps[1]} percent of capacity"
        )
    elif check.aws and env.serving.endpoint_type != "serverless":
        _rollout_fits_its_timeout(check)


def _rollout_fits_its_timeout(check: EnvironmentCheck) -> None:
    """SageMaker: MaximumExecutionTimeoutInSeconds must exceed the update's total waiting time
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html)."""
    rollout, provisioning = check.env.rollout, check.env.aws.container_startup_timeout_seconds
    total = aws_platform.rollout_seconds(
        rollout.strategy, rollout.step_percent, rollout.wait_seconds, rollout.termination_wait_seconds, provisioning
    )
    if total > rollout.max_execution_timeout_seconds:
        steps = aws_platform.rollout_steps(rollout.strategy, rollout.step_percent)
        parts = (
            f"{steps} x ({rollout.wait_seconds} s bake + {provisioning} s start-up)"
            if rollout.strategy == "rolling"
            else f"{steps} x {rollout.wait_seconds} s bake + {rollout.termination_wait_seconds} s termination wait + "
            f"{provisioning} s start-up"
        )
        check.issue(
            "rollout.max_execution_timeout_seconds",
            rollout.max_execution_timeout_seconds,
            f"a {rollout.strategy} rollout may take {total} s ({parts}; start-up is "
            "aws.container_startup_timeout_seconds), and SageMaker rolls back an update that outlasts its timeout: "
            f"use at least {total}, or shorter waits",
        )


def _scaling(check: EnvironmentCheck) -> None:
    env, scaling = check.env, check.env.scaling
    if not scaling.enabled:
        return
    if scaling.min_instances > scaling.max_instances:
        check.issue(
            "scaling.min_instances",
            scaling.min_instances,
            f"must not exceed scaling.max_instances ({scaling.max_instances})",
        )
    elif env.serving.endpoint_type == "realtime":
        # Each live variant starts at its own count, which both clouds then hold within the bounds.
        for i, variant in enumerate(env.serving.variants):
            count = env.instance_count_of(variant)
            if not scaling.min_instances <= count <= scaling.max_instances:
                path = f"serving.variants.{i}.instance_count" if variant.instance_count else "compute.instance_count"
                check.issue(
                    path, count, f"must lie within scaling bounds {scaling.min_instances}..{scaling.max_instances}"
                )
    if (
        check.aws
        and aws_platform.is_burstable(env.compute.aws_instance_type)
        and env.serving.endpoint_type != "serverless"
    ):
        check.issue(
            "compute.aws_instance_type",
            env.compute.aws_instance_type,
            "SageMaker cannot autoscale burstable ml.t* instances; pick e.g. ml.m5.large or disable scaling",
        )
    if scaling.cpu_scale_in_percent >= scaling.cpu_scale_out_percent:
        check.issue(
            "scaling.cpu_scale_in_percent",
            scaling.cpu_scale_in_percent,
            f"must be below scaling.cpu_scale_out_percent ({scaling.cpu_scale_out_percent})",
        )
    if check.azure and "managed" in env.azure.online_endpoints:
        low = azure_platform.AUTOSCALE_COOLDOWN_SECONDS[0]
        for name in ("scale_out_cooldown_seconds", "scale_in_cooldown_seconds"):
            value = getattr(scaling, name)
            if value < low:
                check.issue(
                    f"scaling.{name}",
                    value,
                    f"Azure autoscale waits at least {low} s between scale actions; use {low} or more "
                    "(both clouds take the same value)",
                )


def _batch(check: EnvironmentCheck) -> None:
    batch = check.env.serving.batch
    budget = aws_platform.BATCH_PAYLOAD_BUDGET_MB
    if batch.enabled and batch.max_concurrent_transforms * batch.max_payload_mb > budget:
        check.issue(
            "serving.batch.max_payload_mb",
            batch.max_payload_mb,
            f"max_concurrent_transforms x max_payload_mb must be <= {budget} MB "
            f"({batch.max_concurrent_transforms} x {batch.max_payload_mb})",
        )
    if check.azure and batch.instance_count > check.env.azure.batch_max_nodes:
        check.issue(
            "serving.batch.instance_count",
            batch.instance_count,
            f"must not exceed azure.batch_max_nodes ({check.env.azure.batch_max_nodes}): "
            "a batch job cannot use more nodes than its compute cluster has",
        )


def _budget(check: EnvironmentCheck) -> None:
    """Somebody to tell, within what AWS Budgets and Azure budgets accept (one slot is the forecast alert)."""
    env = check.env
    if env.budget is None:
        return
    if not env.alarms.emails:
        check.issue("alarms.emails", [], "a budget needs at least one e-mail to notify")
    limits = ([("AWS Budgets", aws_platform.BUDGET_MAX_NOTIFICATIONS)] if check.aws else []) + (
        [("Azure budgets", azure_platform.BUDGET_MAX_NOTIFICATIONS)] if check.azure else []
    )
    thresholds = env.budget.notify_at_percent
    allowed = min(limit for _, limit in limits) - 1
    if len(thresholds) > allowed or len(set(thresholds)) != len(thresholds):
        clouds = " and ".join(f"{name} {limit}" for name, limit in limits)
        check.issue(
            "budget.notify_at_percent",
            thresholds,
            f"give at most {allowed} distinct thresholds (notifications per budget: {clouds}; one is the "
            "forecast alert)",
        )
    if check.aws and len(env.alarms.emails) > aws_platform.BUDGET_MAX_SUBSCRIBERS:
        check.issue(
            "alarms.emails",
            env.alarms.emails,
            f"AWS Budgets notifies at most {aws_platform.BUDGET_MAX_SUBSCRIBERS} e-mail addresses",
        )


def _azure_names_and_auth(check: EnvironmentCheck) -> None:
    """Names and settings the Azure components would refuse."""
    if not check.azure:
        return
    serving, azure = check.env.serving, check.env.azure
    named = [(f"serving.variants.{i}.name", v.name) for i, v in enumerate(serving.variants)]
    if serving.shadow is not None:
        named.append(("serving.shadow.name", serving.shadow.name))
    for path, name in named:
        if not azure_platform.DEPLOYMENT_NAME.match(name):
            check.issue(path, name, f"Azure ML deployment names {azure_platform.NAME_HINT}")
    if "kubernetes" in azure.online_endpoints and azure.auth_mode not in azure_platform.KUBERNETES_AUTH_MODES:
        check.issue(
            "azure.auth_mode",
            azure.auth_mode,
            f"Kubernetes online endpoints take {' or '.join(azure_platform.KUBERNETES_AUTH_MODES)}; "
            f"{azure.auth_mode} is for managed endpoints only",
        )


def azure_network_issues(azure: AzureSpec, private: bool) -> list[tuple[str, object, str]]:
    """``(path under the environment, value, message)`` for network settings that cannot work once the
    network is ``private`` (``azure.public_network_access`` false, written or by the environment's default).
    The spec rule calls it when the switch is written; the Azure program again with the environment's
    default, so an unset switch is judged too."""
    issues: list[tuple[str, object, str]] = []
    if private and azure.managed_network == "disabled":
        issues.append(
            (
                "azure.managed_network",
                azure.managed_network,
                "must be allow_only_approved_outbound (or allow_internet_outbound) when the network is private "
                "(azure.public_network_access false, the prod default): managed deployments and the batch cluster "
                "reach the private storage, key vault and registry only through the workspace's managed network; "
                "or set azure.public_network_access: true",
            )
        )
    apim = azure.api_management
    if private and apim.enabled:
        why = {
            "Consumption": "a Consumption API Management has no virtual network",
            "BasicV2": "a BasicV2 API Management has no virtual network integration",
            "StandardV2": "twinserve does not integrate a StandardV2 API Management with its virtual network",
        }[apim.sku]
        issues.append(
            (
                "azure.api_management.enabled",
                True,
                f"{why}, so it cannot reach the managed endpoint, whose public network access is Disabled when "
                "the network is private (azure.public_network_access false, the prod default; "
                f"{azure_platform.APIM_VNET_SOURCE}); set azure.public_network_access: true for this environment "
                "or leave api_management off",
            )
        )
    if private and azure.locations is not None and len(azure.locations) > 1:
        issues.append(
            (
                "azure.locations",
                azure.locations,
                "a second location is reached through Azure Front Door Standard, which connects to origins on "
                "public addresses only (Private Link origins are Front Door Premium: "
                f"{azure_platform.FRONT_DOOR_PRIVATE_LINK_SOURCE}), and the managed endpoints refuse public "
                "traffic when the network is private (azure.public_network_access false, the prod default); set "
                "azure.public_network_access: true for this environment or give one location",
            )
        )
    return issues


def _is_ipv4_cidr(text: str, max_prefix: int = 32) -> bool:
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        return False
    return network.version == 4 and "/" in text and network.prefixlen <= max_prefix


def _azure_network(check: EnvironmentCheck) -> None:
    """Private networking: address ranges, and the combinations a private network cannot work with."""
    if not check.azure:
        return
    azure = check.env.azure
    if (
        not _is_ipv4_cidr(azure.network_address_space, 23)
        or not ipaddress.ip_network(azure.network_address_space).is_private
    ):
        check.issue(
            "azure.network_address_space",
            azure.network_address_space,
            "must be a private IPv4 range in CIDR form of at most /23, e.g. 10.60.0.0/22 (two /24 subnets come "
            "from it: private endpoints and AKS nodes)",
        )
    for i, cidr in enumerate(azure.aks.api_server_authorized_ip_ranges or []):
        if not _is_ipv4_cidr(cidr):
            check.issue(f"azure.aks.api_server_authorized_ip_ranges.{i}", cidr, "must be an IPv4 range in CIDR form")
    if azure.aks.api_server_authorized_ip_ranges == []:
        check.issue(
            "azure.aks.api_server_authorized_ip_ranges",
            [],
            "give at least one range, or leave it unset (0.0.0.0/32 admits only the cluster's own outbound IP)",
        )
    if azure.public_network_access is not None:
        for path, value, message in azure_network_issues(azure, private=not azure.public_network_access):
            check.issue(path, value, message)


def _aks(check: EnvironmentCheck) -> None:
    """Azure ML inference on AKS: node and vCPU minimums, autoscale bounds."""
    if not check.azure:
        return
    aks = check.env.azure.aks
    min_nodes, min_vcpus = azure_platform.AKS_MIN_NODES, azure_platform.AKS_MIN_VCPUS
    if aks.node_count < min_nodes:
        check.issue(
            "azure.aks.node_count", aks.node_count, f"Azure ML inference on AKS needs at least {min_nodes} nodes"
        )
    vcpus = aks.vcpus_per_node or azure_platform.azure_vm_vcpus(aks.vm_size)
    if vcpus is None:
        check.issue(
            "azure.aks.vm_size",
            aks.vm_size,
            "twinserve cannot tell this size's vCPUs from its name; set azure.aks.vcpus_per_node",
        )
    elif vcpus * aks.node_count < min_vcpus:
        check.issue(
            "azure.aks.vm_size",
            aks.vm_size,
            f"{aks.node_count} x {vcpus} vCPU = {vcpus * aks.node_count}; the AKS inference cluster "
            f"needs at least {min_vcpus} vCPU (e.g. 3 x Standard_D4s_v3)",
        )
    low, high = aks.autoscale_min_nodes, aks.autoscale_max_nodes
    if (low is None) != (high is None):
        check.issue(
            "azure.aks",
            {"autoscale_min_nodes": low, "autoscale_max_nodes": high},
            "set both autoscale_min_nodes and autoscale_max_nodes, or neither",
        )
    elif low is not None and high is not None:
        if low < min_nodes:
            check.issue("azure.aks.autoscale_min_nodes", low, f"must be at least {min_nodes}")
        if not low <= aks.node_count <= high:
            check.issue("azure.aks.node_count", aks.node_count, f"must lie within autoscale bounds {low}..{high}")


def _gpu(check: EnvironmentCheck) -> None:
    """GPU serving: CUDA hosts for the GPU image, no GPU hosts for the CPU image (paid for, never
    used), a model and image variant that have a GPU build, and no retired Azure sizes."""
    gpu, spec = check.env.compute.gpu, check.spec
    if gpu and spec.container.build is not None:
        wanted = spec.container.image_variant
        if wanted == "auto" and spec.model.format != "auto":
            wanted = variant_for(spec.model.format, gpu=False).name
        if wanted != "auto" and gpu_build_of(wanted) is None:
            gpu_formats = sorted({f for v in VARIANTS.values() if v.gpu for f in v.formats})
            check.issue(
                "compute.gpu",
                True,
                f"the {wanted} image has no GPU build; GPU images serve {', '.join(gpu_formats)} models "
                "(export the model to ONNX, or serve it on CPU)",
            )
    if check.aws:
        _gpu_on_sagemaker(check, gpu)
    if check.azure:
        _gpu_on_azure(check, gpu)


def _gpu_on_sagemaker(check: EnvironmentCheck, gpu: bool) -> None:
    env = check.env
    serverless = env.serving.endpoint_type == "serverless"
    if gpu and serverless:
        check.issue("compute.gpu", True, "SageMaker serverless endpoints have no GPU; use realtime or async")
    if gpu and env.serving.batch.enabled:
        # TransformResources.TransformAmiVersion selects a CUDA 12 driver, and Step Functions'
        # SageMakerCreateTransformJob task (aws-cdk-lib) cannot set it yet: the job would get driver 470.
        check.issue(
            "serving.batch.enabled",
            True,
            "SageMaker batch transform runs GPU jobs on driver 470 (CUDA 11) unless TransformAmiVersion is set, "
            "which twinserve's Step Functions task cannot set yet: the CUDA 12 image would not start; run batch "
            "in an environment without compute.gpu",
        )
    if serverless and not env.serving.batch.enabled:
        return  # aws_instance_type is unused
    instance_type = env.compute.aws_instance_type
    families = ", ".join(f"ml.{f}" for f in aws_platform.CUDA_INSTANCE_FAMILIES)
    if gpu and not aws_platform.is_cuda_instance(instance_type):
        check.issue(
            "compute.aws_instance_type",
            instance_type,
            f"compute.gpu needs an NVIDIA GPU instance that runs CUDA 12 images: {families}",
        )
    elif not gpu and aws_platform.has_accelerator(instance_type):
        check.issue(
            "compute.aws_instance_type",
            instance_type,
            "this is an accelerated instance, and the CPU image would not use its accelerator; set "
            "compute.gpu: true (NVIDIA only) or pick a CPU type such as ml.m5.large",
        )


def _gpu_on_azure(check: EnvironmentCheck, gpu: bool) -> None:
    env, azure = check.env, check.env.azure
    sizes = ", ".join(azure_platform.GPU_VM_SIZES)
    used = []
    if "managed" in azure.online_endpoints:
        used.append(("compute.azure_instance_type", env.compute.azure_instance_type))
    # the batch endpoint is part of every Azure environment (its cluster scales to zero)
    used.append(("azure.batch_vm_size", azure.batch_vm_size))
    if "kubernetes" in azure.online_endpoints:
        used.append(("azure.aks.vm_size", azure.aks.vm_size))
        if azure.aks.gpu_pool is not None:
            used.append(("azure.aks.gpu_pool.vm_size", azure.aks.gpu_pool.vm_size))
    for path, size in used:
        if azure_platform.RETIRED_VM_SIZE.match(size):
            check.issue(path, size, f"Azure has retired this size; GPU sizes that serve CUDA 12 images: {sizes}")
        elif path == "azure.aks.vm_size":
            if azure_platform.has_gpu(size):
                check.issue(path, size, "the system pool runs Azure ML's services: use a CPU size; GPUs go in gpu_pool")
        elif path == "azure.aks.gpu_pool.vm_size" or gpu:
            if not azure_platform.is_gpu_vm(size):
                check.issue(path, size, f"GPU serving needs one of {sizes}")
        elif azure_platform.has_gpu(size):
            check.issue(
                path,
                size,
                "this is a GPU size, and the CPU image would not use its GPU; set compute.gpu: true or "
                "pick a CPU size such as Standard_DS3_v2",
            )
    pool = azure.aks.gpu_pool
    kubernetes = "kubernetes" in azure.online_endpoints
    if gpu and kubernetes and pool is None:
        check.issue(
            "azure.aks.gpu_pool",
            MISSING,
            "compute.gpu with a Kubernetes endpoint needs a GPU node pool in the AKS cluster",
        )
    if pool is not None and not (gpu and kubernetes):
        check.issue(
            "azure.aks.gpu_pool",
            "set",
            "a GPU node pool is only used by compute.gpu with a Kubernetes endpoint; remove it or set both",
        )
    if pool is not None and azure_platform.is_gpu_vm(pool.vm_size):
        gpus = azure_platform.GPU_VM_SIZES[pool.vm_size]
        if pool.instance_gpus > gpus:
            check.issue(
                "azure.aks.gpu_pool.instance_gpus",
                pool.instance_gpus,
                f"{pool.vm_size} has {gpus} GPU(s); a pod cannot request more",
            )
        vcpus = azure_platform.azure_vm_vcpus(pool.vm_size)
        if vcpus is not None and pool.instance_cpu >= vcpus:
            check.issue(
                "azure.aks.gpu_pool.instance_cpu",
                pool.instance_cpu,
                f"{pool.vm_size} has {vcpus} vCPUs, some of them taken by the node's system pods; request fewer",
            )


_SCHEDULE_RATE = re.compile(f"^{shared_platform.SCHEDULE_RATE_PATTERN}$")
_SCHEDULE_CRON = re.compile(f"^{shared_platform.SCHEDULE_CRON_PATTERN}$")
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}


def schedule_interval_minutes(expression: str) -> int | None:
    """Minutes between runs of a ``rate(...)`` expression; None for ``cron(...)`` (checked by shape)."""
    match = _SCHEDULE_RATE.match(expression)
    return int(match[1]) * _MINUTES[match[2].rstrip("s")] if match else None


def _monitoring(check: EnvironmentCheck) -> None:
    """Drift monitoring: statistics fit their feature kinds, a schedule both clouds run, capture possible."""
    monitoring, env = check.env.monitoring, check.env
    if monitoring is None:
        return
    for kind in ("numeric", "categorical"):
        spec = getattr(monitoring, kind)
        allowed = [name for name, (of, _, _) in DRIFT_STATISTICS.items() if of == kind]
        if spec.statistic not in allowed:
            check.issue(f"monitoring.{kind}.statistic", spec.statistic, f"use one of {', '.join(allowed)}")
            continue
        _, low, high = DRIFT_STATISTICS[spec.statistic]
        if not low < spec.threshold <= high:
            check.issue(
                f"monitoring.{kind}.threshold", spec.threshold, f"{spec.statistic} needs a threshold in ({low}, {high}]"
            )
    if monitoring.features is not None:
        if not monitoring.features:
            check.issue("monitoring.features", [], "name at least one feature, or leave it out to watch every column")
        unknown = [f for f in monitoring.categorical_features if f not in monitoring.features]
        if unknown:
            check.issue("monitoring.categorical_features", unknown, "must be among monitoring.features")
    interval = schedule_interval_minutes(monitoring.schedule)
    if interval is None and not _SCHEDULE_CRON.match(monitoring.schedule):
        check.issue("monitoring.schedule", monitoring.schedule, shared_platform.SCHEDULE_HINT)
    elif interval is not None and interval < shared_platform.MIN_MONITORING_INTERVAL_MINUTES:
        check.issue(
            "monitoring.schedule",
            monitoring.schedule,
            f"run at most every {shared_platform.MIN_MONITORING_INTERVAL_MINUTES} minutes: each check is a batch job",
        )
    elif check.azure and azure_platform.schedule_trigger(monitoring.schedule) is None:
        check.issue(
            "monitoring.schedule",
            monitoring.schedule,
            "Azure ML schedules run whole hours or days, and crons without a year, L, W or #: change it so "
            "both clouds run the same check",
        )
    if check.spec.container.image_uri and not check.spec.container.build:
        check.issue(
            "monitoring",
            "set",
            "the drift check runs the twinserve image's drift command; container.image_uri may not have it: "
            "use container.build",
        )
    if check.aws and env.serving.endpoint_type == "serverless":
        check.issue("monitoring", "set", "SageMaker serverless endpoints do not support data capture: nothing to check")
    capture = env.aws.data_capture
    if check.aws and capture.enabled and capture.sampling_percent != monitoring.sampling_percent:
        check.issue(
            "aws.data_capture.sampling_percent",
            capture.sampling_percent,
            f"monitoring captures {monitoring.sampling_percent}% on both clouds: set the same or drop data_capture",
        )
    retrain = monitoring.retrain
    if monitoring.on_drift == "notify":
        if retrain is not None:
            check.issue("monitoring.retrain", "set", "only used with on_drift: notify_and_retrain")
        return
    for cloud in env.targets:
        if retrain is None or getattr(retrain, cloud) is None:
            check.issue(
                f"monitoring.retrain.{cloud}",
                MISSING,
                f"on_drift notify_and_retrain needs a retraining target on {cloud}",
            )
    if check.aws and retrain is not None and retrain.aws is not None:
        pattern = aws_platform.RETRAIN_TARGET_ARNS[retrain.aws.kind]
        if not re.fullmatch(pattern, retrain.aws.arn):
            check.issue("monitoring.retrain.aws.arn", retrain.aws.arn, f"a {retrain.aws.kind} ARN must match {pattern}")


PLATFORM_FEATURES: dict[str, dict[str, str]] = {
    "ecs_fargate": {
        "serving.endpoint_type": "realtime only (serverless and async are SageMaker endpoint types)",
        "serving.shadow": "no shadow variants (ECS routes to one service)",
        "serving.variants": "one live variant (A/B weights are SageMaker production variants)",
        "compute.gpu": "no GPU on Fargate",
        "monitoring": "drift monitoring reads SageMaker data capture",
        "aws.data_capture.enabled": "data capture is a SageMaker endpoint feature",
    },
    "lambda": {
        "serving.endpoint_type": "realtime only (serverless and async are SageMaker endpoint types)",
        "serving.shadow": "no shadow variants",
        "serving.variants": "one live variant",
        "serving.batch.enabled": "no batch on Lambda (its 15-minute invocations and 6 MB payloads do not fit a batch "
        "run, and the Lambda platform has no VPC for an AWS Batch job): use ecs_fargate (an AWS Batch job on Fargate) "
        "or sagemaker (a batch transform)",
        "compute.gpu": "no GPU on Lambda",
        "monitoring": "drift monitoring reads SageMaker data capture",
        "aws.data_capture.enabled": "data capture is a SageMaker endpoint feature",
        "rollout.strategy": "all_at_once, canary or linear (CodeDeploy shifts an alias; no rolling batches)",
        "scaling.enabled": "Lambda scales by itself: set aws.lambda_function.provisioned_concurrency for warm capacity",
    },
}
"""Per non-SageMaker platform, what the spec may not ask for and why (README's feature table)."""


def _lacks(check: EnvironmentCheck, feature: str) -> bool:
    """Whether the environment asks for ``feature`` (a key of :data:`PLATFORM_FEATURES`)."""
    env = check.env
    return {
        "serving.endpoint_type": env.serving.endpoint_type != "realtime",
        "serving.shadow": env.serving.shadow is not None,
        "serving.variants": len(env.serving.variants) > 1,
        "serving.batch.enabled": env.serving.batch.enabled,
        "compute.gpu": env.compute.gpu,
        "monitoring": env.monitoring is not None,
        "aws.data_capture.enabled": env.aws.data_capture.enabled,
        "rollout.strategy": env.rollout.strategy == "rolling",
        "scaling.enabled": env.scaling.enabled,
    }[feature]


def _aws_network(check: EnvironmentCheck) -> None:
    """One VPC for the SageMaker containers: yours (``aws.vpc``) or twinserve's (``aws.private_network``)."""
    aws = check.env.aws
    if check.aws and aws.private_network and aws.vpc is not None:
        check.issue(
            "aws.private_network",
            True,
            "aws.vpc already names the VPC the containers join; set one of aws.vpc (yours) and "
            "aws.private_network (a VPC twinserve creates)",
        )
    if check.aws and aws.platform != "sagemaker" and aws.private_network:
        where = {
            "ecs_fargate": "the service has a VPC of its own (aws.fargate.vpc_cidr)",
            "lambda": ("the function runs outside a VPC behind its IAM-authorized URL"),
        }[aws.platform]
        check.issue("aws.private_network", True, f"SageMaker containers only: on aws.platform {aws.platform} {where}")


def _aws_regions(check: EnvironmentCheck) -> None:
    """Disaster recovery (``aws.regions``): distinct regions, the primary first, nothing regional pinned."""
    aws = check.env.aws
    if not check.aws or aws.regions is None:
        return
    regions = aws.regions
    if len(regions) < 2 or len(regions) > aws_platform.MAX_REGIONS:
        check.issue(
            "aws.regions",
            regions,
            f"list 2..{aws_platform.MAX_REGIONS} regions, the primary first (one region: use aws.region)",
        )
    seen: set[str] = set()
    for i, region in enumerate(regions):
        if region in seen:
            check.issue(f"aws.regions.{i}", region, "listed twice: each region serves once")
        seen.add(region)
    if aws.region is not None and aws.region != regions[0]:
        check.issue(
            "aws.region",
            aws.region,
            f"with aws.regions the primary is its first, {regions[0]!r}: set aws.region to it or leave it unset",
        )
    # SageMaker reads a model from an S3 bucket and pulls an image from ECR in the endpoint's own region
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html): only what
    # the stacks publish per region (model.artifact.path, container.build) reaches every region.
    if check.spec.model.artifact.s3_uri is not None:
        check.issue(
            "aws.regions",
            regions,
            "model.artifact.s3_uri names a bucket in one region and SageMaker reads the model in its own: use "
            "model.artifact.path (each region's stack uploads its copy)",
        )
    if check.spec.container.image_uri is not None and ".dkr.ecr." in check.spec.container.image_uri:
        check.issue(
            "aws.regions",
            regions,
            "container.image_uri is an ECR image of one region and SageMaker pulls from its own: use "
            "container.build (CDK publishes the image to each region)",
        )
    if aws.vpc is not None:
        check.issue(
            "aws.vpc",
            "set",
            "a VPC exists in one region only, so the secondary regions could not join it: leave aws.vpc unset "
            "(aws.private_network gives each region a VPC of its own) or serve in one region",
        )


def _api_domain(check: EnvironmentCheck) -> None:
    """A custom domain needs the API, its zone, and to be in that zone."""
    api = check.env.aws.api
    if not check.aws or (api.domain_name is None and api.hosted_zone_id is None and api.hosted_zone_name is None):
        return
    if not api.enabled:
        check.issue("aws.api.domain_name", api.domain_name, "a custom domain is the API front's: set aws.api.enabled")
    for setting in ("domain_name", "hosted_zone_id", "hosted_zone_name"):
        if getattr(api, setting) is None:
            check.issue(
                f"aws.api.{setting}",
                MISSING,
                "a custom domain needs all of aws.api.domain_name, hosted_zone_id and hosted_zone_name",
            )
    regions = check.env.aws.regions or []
    if api.domain_name and len(regions) > 2:
        check.issue(
            "aws.regions",
            regions,
            "a failover name has one primary and one secondary record (Route 53): with aws.api.domain_name list "
            "two regions",
        )
    if api.domain_name and api.hosted_zone_name and not api.domain_name.endswith(f".{api.hosted_zone_name}"):
        check.issue(
            "aws.api.domain_name",
            api.domain_name,
            f"must be a name in the hosted zone {api.hosted_zone_name!r} (ending in .{api.hosted_zone_name})",
        )


def _aws_platform(check: EnvironmentCheck) -> None:
    """ECS Fargate and Lambda: only what they can do, with sizes they accept."""
    env, platform = check.env, check.env.aws.platform
    if not check.aws or platform == "sagemaker":
        return
    spec = check.spec
    if not spec.container.build or spec.model.artifact.path is None:
        check.issue(
            "aws.platform",
            platform,
            f"{platform} serves the model baked into twinserve's image: it needs container.build and "
            "model.artifact.path (no model mount there)",
        )
    for feature, reason in PLATFORM_FEATURES[platform].items():
        if _lacks(check, feature):
            value = env.rollout.strategy if feature == "rollout.strategy" else "set"
            check.issue(feature, value, f"aws.platform {platform}: {reason}")
    if platform == "ecs_fargate":
        _fargate_size(check, "aws.fargate", env.aws.fargate.cpu, env.aws.fargate.memory_mib)
    if platform == "lambda":
        function = env.aws.lambda_function
        if function.timeout_seconds < env.serving.request_timeout_seconds:
            check.issue(
                "aws.lambda_function.timeout_seconds",
                function.timeout_seconds,
                f"must be at least serving.request_timeout_seconds ({env.serving.request_timeout_seconds})",
            )
        if env.compute.instance_count != 1:
            check.issue(
                "compute.instance_count",
                env.compute.instance_count,
                "Lambda has no instances (it scales per request): leave 1, or set aws.lambda_function."
                "provisioned_concurrency",
            )


def _fargate_size(check: EnvironmentCheck, path: str, cpu: int, memory_mib: int) -> None:
    """Fargate's CPU/memory pairs (ECS tasks and AWS Batch jobs alike), reported at ``<path>.memory_mib``."""
    allowed = aws_platform.FARGATE_MEMORY_MIB[cpu]
    if memory_mib not in allowed:
        sizes = (
            ", ".join(map(str, allowed))
            if len(allowed) <= 4
            else f"{allowed[0]}..{allowed[-1]} in steps of {allowed[1] - allowed[0]}"
        )
        check.issue(f"{path}.memory_mib", memory_mib, f"with cpu {cpu} Fargate accepts {sizes} MiB")


def _aws_batch_job(check: EnvironmentCheck) -> None:
    """Batch on ecs_fargate: an AWS Batch job on Fargate, one task per run, with Fargate's sizes."""
    env = check.env
    if not check.aws:
        return
    job, batch, platform = env.aws.batch_job, env.serving.batch, env.aws.platform
    if job is not None and platform != "ecs_fargate":
        check.issue(
            "aws.batch_job",
            "set",
            f"only with aws.platform ecs_fargate (aws.platform {platform} "
            + (
                "runs batch as a SageMaker transform job: its settings are serving.batch)"
                if platform == "sagemaker"
                else "has no batch)"
            ),
        )
        return
    if platform != "ecs_fargate":
        return
    if job is not None and not batch.enabled:
        check.issue("aws.batch_job", "set", "describes the batch job of serving.batch: set serving.batch.enabled true")
        return
    if not batch.enabled:
        return
    if batch.instance_count != 1:
        check.issue(
            "serving.batch.instance_count",
            batch.instance_count,
            "aws.platform ecs_fargate runs a batch run as one AWS Batch job on Fargate (one task scoring the whole "
            "input folder): use 1, and size the job with aws.batch_job.cpu/memory_mib",
        )
    if job is None:
        return
    _fargate_size(check, "aws.batch_job", job.cpu, job.memory_mib)
    if job.schedule is not None and not (_SCHEDULE_RATE.match(job.schedule) or _SCHEDULE_CRON.match(job.schedule)):
        check.issue("aws.batch_job.schedule", job.schedule, shared_platform.SCHEDULE_HINT)


def _api_front(check: EnvironmentCheck) -> None:
    """What API Gateway can front: a synchronous endpoint answering within its integration timeout."""
    env = check.env
    if not check.aws or not env.aws.api.enabled:
        return
    if env.serving.endpoint_type == "async":
        check.issue("aws.api.enabled", True, "async endpoints are called with InvokeEndpointAsync, not through the API")
    limit = aws_platform.API_GATEWAY_TIMEOUT_SECONDS
    if env.serving.request_timeout_seconds > limit:
        check.issue(
            "serving.request_timeout_seconds",
            env.serving.request_timeout_seconds,
            f"with aws.api the request must end within API Gateway's {limit} s integration timeout: use at most "
            f"{limit} (the container then answers its own 504 a second earlier)",
        )
    if env.aws.api.daily_quota is not None and env.aws.api.auth != "iam_and_api_key":
        check.issue("aws.api.daily_quota", env.aws.api.daily_quota, "a quota is per API key: set auth iam_and_api_key")


def _azure_api_management(check: EnvironmentCheck) -> None:
    """What the API Management front can call: the managed endpoint, with its own managed identity's token.
    (The network side is in :func:`azure_network_issues`.)"""
    azure = check.env.azure
    apim = azure.api_management
    if not check.azure or not apim.enabled:
        return
    if "managed" not in azure.online_endpoints:
        check.issue(
            "azure.online_endpoints",
            azure.online_endpoints,
            "azure.api_management fronts the managed online endpoint: include managed",
        )
    if azure.auth_mode != "aad_token":
        check.issue(
            "azure.auth_mode",
            azure.auth_mode,
            "with azure.api_management the endpoint must take aad_token (Microsoft Entra tokens): API Management "
            "then calls it with its own managed identity, and no endpoint key or Azure ML token is stored in it",
        )
    if apim.publisher_email is None:
        check.issue(
            "azure.api_management.publisher_email",
            MISSING,
            "required with azure.api_management.enabled: the address API Management sends notifications to",
        )
    if apim.rate_limit_calls_per_minute is not None and not apim.subscription_required:
        check.issue(
            "azure.api_management.rate_limit_calls_per_minute",
            apim.rate_limit_calls_per_minute,
            "a rate limit counts calls per subscription key: set subscription_required: true",
        )
    # The backend timeout (request_timeout_seconds + a margin) always fits: managed deployments end at 180 s.


def _azure_locations(check: EnvironmentCheck) -> None:
    """Disaster recovery locations: valid, unique, few, and only with what the front can fail over (a managed
    endpoint, one credential every location accepts). The primary's match with the stack's
    ``azure-native:location`` is checked by the Azure program, which reads the stack config."""
    azure = check.env.azure
    locations = azure.locations
    if not check.azure or locations is None:
        return
    if not locations:
        check.issue(
            "azure.locations",
            locations,
            "give at least the primary location (the stack's azure-native:location), or leave it unset",
        )
        return
    for i, location in enumerate(locations):
        if not azure_platform.LOCATION_NAME.match(location):
            check.issue(f"azure.locations.{i}", location, azure_platform.LOCATION_HINT)
    seen: set[str] = set()
    for i, location in enumerate(locations):
        if location in seen:
            check.issue(
                f"azure.locations.{i}",
                location,
                "each location once: a location serves from one workspace (locations must be unique)",
            )
        seen.add(location)
    if len(locations) > azure_platform.MAX_LOCATIONS:
        check.issue(
            "azure.locations",
            locations,
            f"at most {azure_platform.MAX_LOCATIONS} locations (the primary and "
            f"{azure_platform.MAX_LOCATIONS - 1} secondaries): each is a whole workspace with its own storage, "
            "registry and managed endpoint",
        )
    if len(locations) < 2:
        return
    if "managed" not in azure.online_endpoints:
        check.issue(
            "azure.online_endpoints",
            azure.online_endpoints,
            "a second location serves from a managed online endpoint: include managed (the Kubernetes endpoint "
            "stays in the primary location only, its inference router listens on an internal load balancer "
            "that Front Door cannot reach)",
        )
    if azure.auth_mode != "aad_token":
        check.issue(
            "azure.auth_mode",
            azure.auth_mode,
            "with a second location the endpoints must take aad_token (Microsoft Entra tokens): Front Door "
            "passes the caller's Authorization header through, and keys and Azure ML tokens belong to one "
            "endpoint, so they would be refused after a failover; one Entra token for https://ml.azure.com is "
            f"accepted by every location ({azure_platform.AUTH_SOURCE})",
        )


ENVIRONMENT_RULES: tuple[Callable[[EnvironmentCheck], None], ...] = (
    _targets,
    _variants_and_traffic,
    _pinned_versions_need_a_versioned_layout,
    _shadow,
    _endpoint_type,
    _serverless,
    _rollout,
    _scaling,
    _batch,
    _aws_batch_job,
    _budget,
    _azure_names_and_auth,
    _azure_network,
    _azure_api_management,
    _azure_locations,
    _aks,
    _gpu,
    _monitoring,
    _aws_platform,
    _aws_network,
    _aws_regions,
    _api_front,
    _api_domain,
)
"""The rules every environment passes, in the order their problems are reported."""


def check_environment(spec: DeploymentSpec, at: str, env: EnvironmentSpec) -> list[SpecIssue]:
    check = EnvironmentCheck(spec, env, at)
    for rule in ENVIRONMENT_RULES:
        rule(check)
    return check.issues
