"""The promotion pipeline (spec ``pipeline``): CDK Pipelines deploying each environment to both clouds,
in order dev -> staging -> prod, with one manual approval before prod for both.

    Source     the repository through a CodeConnections connection (a push to the branch starts it; so
               does approving a version in the promotion model package group, ``model_source: registry``)
    Build      the project's own setup (`make setup sample-model`: Python deps + `npm ci`), with
               ``model_source: registry`` the newest Approved model version resolved once for the whole
               execution (stacks/pipeline_scripts/resolve_model.py), the spec validated, then
               `cdk synth -c nag=true` of this spec: a cdk-nag finding stops promotion
    UpdatePipeline  self-mutation: the pipeline first updates itself to what was just synthesized
    Assets     the model archive and the inference image, built once and published into every
               environment's CDK bootstrap asset bucket and container-assets repository
    <name>-dev, <name>-staging, <name>-prod  (one stage per environment, whatever its targets)
               `pre`:  AzurePreview (`pulumi preview` of stack <env>) where the environment targets
                       Azure, then the manual approval for the environments in ``manual_approval_before``
                       (it notifies the pipeline topic with a link to the pipeline)
               the stage's Registry and Serving stacks where it targets AWS
               `post`: SmokeTest (the SageMaker endpoint), then AzureDeploy (`pulumi up` of stack <env>:
                       the image this execution built, imported into the workspace registry by digest)
                       and AzureSmokeTest (the Azure endpoints), each after the one before

The Azure steps run the Pulumi program from the same commit with state in a self-managed S3 backend
(PulumiBackend: versioned bucket, KMS key as secrets provider) and a pinned Pulumi CLI; they sign in
to Azure with a token from AWS STS that the Entra app's federated credential trusts (no secret), or a
client secret from Secrets Manager (stacks/pipeline_scripts/azure_deploy.py). Executions are QUEUED:
two never run Pulumi on the same stack at once (the backend's lock also stops a `pulumi up` by hand,
with a clear failure). A failed execution notifies the pipeline topic.

The tools the pipeline installs itself (the CDK CLI of self-mutation, cdk-assets of the asset jobs,
the Pulumi CLI) are pinned to package.json's and pyproject.toml's versions.

The stages are the same ServingStage, with the same ids, as the app's top-level stages, so the
pipeline deploys exactly the CloudFormation stacks `cdk deploy '<name>-<env>/*'` would. Their cloud
assemblies are nested under the pipeline's (``assembly-<pipeline id>-<name>-<env>``).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codestarnotifications as notifications
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import pipelines

from constructs import Construct
from twinserve.aws import ModelRegistry, ModelRegistryProps
from twinserve.aws._nag import acknowledge, acknowledge_checkov, arn_text, nag_text, objects_of
from twinserve.aws.pulumi_backend import PulumiBackend, PulumiBackendProps
from twinserve.platform import aws as aws_platform
from twinserve.platform import azure as azure_platform
from twinserve.spec import ENVIRONMENT_NAMES, DeploymentSpec

from ..pipeline_scripts.azure_deploy import APPROVED_MODEL_DIR
from .placement import secondary_placements, stage_id
from .serving_stack import azure_step_role_name, image_reader_role_name
from .serving_stage import ServingStage
from .smoke_test_access import SMOKE_TEST_TARGETS, smoke_test_caller_role_name, smoke_test_role_name

# CodeBuild's standard 7.0 image has Python 3.11 and Node.js 20: what the Makefile needs (README).
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}
TOOL_VERSIONS: dict[str, str] = json.loads((Path(__file__).resolve().parents[2] / "package.json").read_text())[
    "devDependencies"
]
"""The npm tools the pipeline installs, pinned once in package.json (the versions the tests run): the
CDK CLI of self-mutation and cdk-assets of the asset jobs, both readers of this aws-cdk-lib's cloud
assembly schema (an unpinned cdk-assets@latest may not read it)."""
_PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def _pinned(package: str) -> str:
    """The version pyproject.toml pins ``package`` to (``package==X``)."""
    return next(
        re.fullmatch(rf"{package}==(\S+)", d)[1]
        for d in _PYPROJECT["project"]["dependencies"]
        if d.startswith(f"{package}==")
    )


PULUMI_CLI_VERSION = _pinned("pulumi")
"""The Pulumi CLI of the Azure steps: the version of the Pulumi SDK pinned in pyproject.toml (they are
released together), downloaded from Pulumi's release archive."""
BOTO3_VERSION = _pinned("boto3")
"""boto3 of the SageMaker smoke test (CodeBuild's Python has none), as pinned for the project."""


def runtimes_build_spec() -> codebuild.BuildSpec:
    """The install phase every step of the pipeline's own shares: RUNTIME_VERSIONS."""
    return codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}})


QUIET_JSII = {"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1"}


def pipeline_stack_id(spec: DeploymentSpec, prefix: str = "") -> str:
    return f"{prefix}{spec.name}-pipeline"


def promoted_environments(spec: DeploymentSpec) -> list[str]:
    """The environments of the spec in promotion order (each a stage, whatever its targets)."""
    return [n for n in ENVIRONMENT_NAMES if n in spec.environments]


def promotion_group_name(spec: DeploymentSpec) -> str:
    """The model package group whose Approved versions the pipeline promotes (``model_source: registry``);
    the environments' own groups are ``<name>-<env>``."""
    return spec.name


def synth_commands(spec_path: str, *, registry_group: str | None = None) -> list[str]:
    """What the pipeline's build runs from the repository root: the Makefile's setup, the execution's
    model version (with a registry), then the app."""
    commands = ["make setup sample-model"]
    if registry_group is not None:
        inputs = APPROVED_MODEL_DIR / "twinserve-deploy-inputs.json"
        commands += [
            f".venv/bin/python -m stacks.pipeline_scripts.resolve_model --group {registry_group} "
            f"--out {APPROVED_MODEL_DIR}",
            f'if [ -f {inputs} ]; then export TWINSERVE_DEPLOY_INPUTS="$PWD/{inputs}"; fi',
        ]
    return commands + [
        f".venv/bin/twinserve validate {spec_path}",
        f"node_modules/.bin/cdk synth --quiet -c spec={spec_path} -c nag=true",
    ]


def pulumi_install_commands() -> list[str]:
    """The Pulumi CLI, pinned, and the project's Python environment the program runs in (Pulumi.yaml)."""
    archive = f"https://get.pulumi.com/releases/sdk/pulumi-v{PULUMI_CLI_VERSION}-linux-x64.tar.gz"
    return [
        f"curl -fsSL {archive} | tar -xz -C /tmp",
        'export PATH="/tmp/pulumi:$PATH"',
        "pulumi version",
        "make .venv/.stamp-python",
    ]


def smoke_test_commands(platform: str, region: str | None) -> list[str]:
    """The smoke test (stacks/pipeline_scripts/smoke_test.py) of an ``aws.platform`` environment as its
    smoke-test role: a failing test fails the build, and the pipeline stops before the next environment."""
    where = f" --region {region}" if region else ""
    mode, variable = SMOKE_TEST_TARGETS[platform]
    return [
        f"python3 -m pip install --quiet boto3=={BOTO3_VERSION}",
        f'python3 -m stacks.pipeline_scripts.smoke_test {mode} "${variable}" --role-arn "$SMOKE_TEST_ROLE_ARN"{where}',
    ]


def azure_smoke_test_commands(env_name: str, backend_url: str, entra: str = "") -> list[str]:
    """The same test against every online endpoint of Azure stack ``env_name``: scoring URIs and keys
    from the stack's outputs, read from the state and piped to the test (never on a command line).
    ``entra``: the test's ``--entra-sign-in ...`` arguments for aad_token endpoints, which then runs in the
    project's environment (its Entra sign-in is the Azure step's)."""
    python = ".venv/bin/python" if entra else "python3"
    return [
        f"pulumi login '{backend_url}'",
        f"pulumi stack output --stack {env_name} --json --show-secrets"
        f" | {python} -m stacks.pipeline_scripts.smoke_test azure --stack-outputs -{entra}",
    ]


class PipelineStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        spec: DeploymentSpec,
        spec_path: str,
        spec_dir: Path,
        prefix: str = "",
        **kwargs,
    ) -> None:
        """``spec_path``: the spec file relative to the repository root, as the pipeline's build sees it."""
        pipeline_spec = spec.pipeline
        if pipeline_spec is None:
            raise ValueError(f"spec {spec.name!r} has no pipeline section")
        super().__init__(
            scope, id, env=cdk.Environment(account=pipeline_spec.account, region=pipeline_spec.region), **kwargs
        )
        self.spec, self.spec_path = spec, spec_path
        self.environments = promoted_environments(spec)
        self.aws_environments = [n for n in self.environments if "aws" in spec.environments[n].targets]
        self.azure_environments = [n for n in self.environments if "azure" in spec.environments[n].targets]
        # Stages in other accounts need the artifact bucket under a KMS key they can be granted.
        self.cross_account = any(
            spec.environments[n].aws.account not in (None, pipeline_spec.account) for n in self.aws_environments
        )
        src = pipeline_spec.source
        self.source = pipelines.CodePipelineSource.connection(
            src.repository, src.branch, connection_arn=src.connection_arn, trigger_on_push=True
        )
        self.topic = self._notification_topic()
        self.promotion = self._promotion_registry()
        self.synth = self._synth_step()
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"twinserve-{spec.name}",
            synth=self.synth,
            pipeline_type=codepipeline.PipelineType.V2,
            # One execution at a time, the next queued: two never run Pulumi (or CloudFormation) on the
            # same environment at once, and none is dropped as SUPERSEDED would.
            execution_mode=codepipeline.ExecutionMode.QUEUED,
            cross_account_keys=self.cross_account,
            enable_key_rotation=self.cross_account,
            self_mutation=True,
            cli_version=TOOL_VERSIONS["aws-cdk"],
            cdk_assets_cli_version=TOOL_VERSIONS["cdk-assets"],
            # Synth runs no Docker: the image asset is only a build context until the Assets stage
            # builds it (CDK Pipelines gives that project Docker itself).
            docker_enabled_for_synth=False,
            publish_assets_in_parallel=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE)
            ),
        )

        # One role for every smoke test, with a fixed name: each environment's Serving stack trusts
        # exactly this role to assume its own smoke-test role (docs/aws.md, "Promotion pipeline").
        self.smoke_test_role: iam.Role | None = None
        if pipeline_spec.smoke_test and self.aws_environments:
            self.smoke_test_role = iam.Role(
                self,
                "SmokeTestRole",
                role_name=smoke_test_caller_role_name(spec),
                assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
                description=f"twinserve {spec.name}: pipeline smoke tests, assume each environment's smoke-test role",
            )
        self.backend, self.azure_role = self._azure_access()

        self.stages: dict[str, ServingStage] = {}
        """The primary region's stage of each AWS environment."""
        self.secondary_stages: list[ServingStage] = []
        """The stages of the environments' disaster-recovery regions, in deployment order."""
        for env_name in self.environments:
            self._add_environment(env_name, prefix, spec_dir)
        self.pipeline.build_pipeline()  # the constructs exist from here on: wire and acknowledge them
        self._notify_on_failure()
        if self.promotion is not None:
            self.promotion.on_package_state_change("StartOnApproval", approval_status="Approved").add_target(
                targets.CodePipeline(self.pipeline.pipeline)
            )
        self._acknowledge_nag_findings()
        self._acknowledge_cross_region_support()
        # cfn-lint (tests/aws/test_aws_templates.py lists both with the reason): W3005, aws-cdk-lib's Pipeline
        # depends on its role although RoleArn already references it; E3703, the cross-account deploy actions'
        # RoleArn is an Fn::Join (arn:${AWS::Partition}:iam::<account>:role/cdk-...), which cfn-lint cannot match
        # against the role ARN format.
        self.pipeline.pipeline.node.default_child.add_metadata(
            "cfn-lint", {"config": {"ignore_checks": ["W3005", "E3703"]}}
        )

    # ------------------------------------------------------------------ the pipeline's own resources

    def _notification_topic(self) -> sns.Topic:
        """Approvals and failures reach the people the environments' alarms reach (every alarm e-mail of
        the spec), on a topic of the pipeline's account (the alarm topics live in each environment's)."""
        key = kms.Key(self, "TopicKey", enable_key_rotation=True, description="twinserve pipeline notifications")
        topic = sns.Topic(self, "Notifications", display_name=f"twinserve {self.spec.name} pipeline", master_key=key)
        # CodeStar Notifications publishes failures, encrypted with the key
        key.grant_encrypt_decrypt(iam.ServicePrincipal("codestar-notifications.amazonaws.com"))
        emails = sorted({e for env in self.spec.environments.values() for e in env.alarms.emails})
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _promotion_registry(self) -> ModelRegistry | None:
        """``model_source: registry``: the group whose Approved versions the pipeline promotes, and the
        bucket training pipelines register their archives in (docs/aws.md, "Model promotion")."""
        if self.spec.pipeline.model_source != "registry":
            return None
        registry = ModelRegistry(
            self,
            "PromotionRegistry",
            ModelRegistryProps(
                group_name=promotion_group_name(self.spec),
                description=f"Versions of model {self.spec.model.name} to promote through twinserve deployment "
                f"{self.spec.name}: approving one starts the pipeline",
                retain=True,
            ),
        )
        self.model_bucket = s3.Bucket(
            self,
            "ModelArchives",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=kms.Key(self, "ModelArchivesKey", enable_key_rotation=True),
            bucket_key_enabled=True,
            versioned=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        archives = (
            "Model archives registered by training and read by the pipeline's build; CloudTrail data events "
            "audit it. Server access logs would need a second bucket."
        )
        acknowledge(self.model_bucket, "AwsSolutions-S1", archives)
        acknowledge_checkov(self.model_bucket, "CKV_AWS_18", archives)
        cdk.CfnOutput(self, "PromotionModelPackageGroup", value=registry.group_name)
        cdk.CfnOutput(self, "ModelArchivesBucket", value=self.model_bucket.bucket_name)
        return registry

    def _synth_step(self) -> pipelines.CodeBuildStep:
        group = self.promotion.group_name if self.promotion is not None else None
        policies = []
        if self.promotion is not None:
            packages = self.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*")
            policies = [
                iam.PolicyStatement(
                    actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                    resources=[self.promotion.group_arn, packages],
                ),
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.model_bucket.arn_for_objects("*")]),
                iam.PolicyStatement(actions=["kms:Decrypt"], resources=[self.model_bucket.encryption_key.key_arn]),
            ]
        step = pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            commands=synth_commands(self.spec_path, registry_group=group),
            env=QUIET_JSII,
            primary_output_directory="cdk.out",
            role_policy_statements=policies or None,
            partial_build_spec=runtimes_build_spec(),
        )
        # The execution's model (and its inputs file) for the Azure steps, when the registry is used.
        self.approved_model = step.add_output_directory(str(APPROVED_MODEL_DIR)) if group else None
        return step

    def _azure_access(self) -> tuple[PulumiBackend | None, iam.Role | None]:
        """The Pulumi state backend and the one role of every Azure step: its state and key, a web
        identity token for Entra only (audience and lifetime bounded), or the client secret; and the
        environments' image-reader roles."""
        azure = self.spec.pipeline.azure
        if not self.azure_environments or azure is None:
            return None, None
        backend = PulumiBackend(
            self, "PulumiState", PulumiBackendProps(key_alias=f"alias/twinserve/{self.spec.name}/pulumi")
        )
        role = iam.Role(
            self,
            "AzureStepRole",
            role_name=azure_step_role_name(self.spec),
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"twinserve {self.spec.name}: the pipeline's Azure steps (Pulumi preview and up, smoke test)",
        )
        backend.grant_state(role)
        if azure.sign_in == "federated":
            audience, duration = aws_platform.WEB_IDENTITY_TOKEN_CONDITIONS
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sts:GetWebIdentityToken"],
                    resources=["*"],
                    conditions={
                        "ForAllValues:StringEquals": {audience: azure_platform.FEDERATED_TOKEN_AUDIENCE},
                        "NumericLessThanEquals": {duration: aws_platform.WEB_IDENTITY_TOKEN_SECONDS[1]},
                    },
                )
            )
        else:
            role.add_to_policy(
                iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[azure.client_secret_arn])
            )
        for env_name in self.azure_environments:
            if "aws" in self.spec.environments[env_name].targets and self.spec.container.build:
                role.add_to_policy(
                    iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self._image_reader_arn(env_name)])
                )
        return backend, role

    def _image_reader_arn(self, env_name: str) -> str:
        account = self.spec.environments[env_name].aws.account or self.spec.pipeline.account or self.account
        return f"arn:{self.partition}:iam::{account}:role/{image_reader_role_name(self.spec, env_name)}"

    # ------------------------------------------------------------------ one stage per environment

    def _add_environment(self, env_name: str, prefix: str, spec_dir: Path) -> None:
        spec, pipeline_spec = self.spec, self.spec.pipeline
        env = spec.environments[env_name]
        stage_id = f"{prefix}{spec.name}-{env_name}"
        stage = None
        if "aws" in env.targets:
            stage = ServingStage(self, stage_id, spec=spec, env_name=env_name, spec_dir=spec_dir)
            self.stages[env_name] = stage
        azure = self.azure_role is not None and "azure" in env.targets

        pre: list[pipelines.Step] = []
        preview = self._azure_step("AzurePreview", env_name, stage, "preview") if azure else None
        if preview is not None:
            pre.append(preview)
        if env_name in pipeline_spec.manual_approval_before:
            approval = pipelines.ManualApprovalStep(
                "Approve",
                comment=f"Deploy {spec.name} to {env_name} on {' and '.join(env.targets)}? The previous "
                "environment passed its smoke tests"
                + ("; AzurePreview shows what changes in Azure." if preview is not None else "."),
                notification_topic=self.topic,
                review_url=f"https://{self.region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
                f"twinserve-{spec.name}/view?region={self.region}",
            )
            if preview is not None:
                approval.add_step_dependency(preview)
            pre.append(approval)

        post: list[pipelines.Step] = []
        if stage is not None and self.smoke_test_role is not None:
            post.append(self._aws_smoke_test(env_name, stage))
        if azure:
            deploy = self._azure_step("AzureDeploy", env_name, stage, "up")
            for earlier in post:
                deploy.add_step_dependency(earlier)
            post.append(deploy)
            if pipeline_spec.smoke_test:
                smoke = self._azure_smoke_test(env_name)
                smoke.add_step_dependency(deploy)
                post.append(smoke)
        if stage is not None:
            self.pipeline.add_stage(stage, pre=pre, post=post)
            self._add_secondary_regions(env_name, prefix, spec_dir)
        else:
            self.pipeline.add_wave(stage_id, pre=pre, post=post)

    def _add_secondary_regions(self, env_name: str, prefix: str, spec_dir: Path) -> None:
        """The environment's disaster-recovery regions (``aws.regions``), each a stage with its own smoke
        test, right after the primary's and before the next environment (past the same approval)."""
        for placement in secondary_placements(self.spec, env_name):
            stage = ServingStage(
                self,
                stage_id(self.spec, env_name, placement, prefix),
                spec=self.spec,
                env_name=env_name,
                spec_dir=spec_dir,
                placement=placement,
            )
            self.secondary_stages.append(stage)
            post = [self._aws_smoke_test(env_name, stage)] if self.smoke_test_role is not None else []
            self.pipeline.add_stage(stage, post=post)

    def _aws_smoke_test(self, env_name: str, stage: ServingStage) -> pipelines.CodeBuildStep:
        env = self.spec.environments[env_name]
        account = env.aws.account or self.spec.pipeline.account or self.account
        placement = stage.placement
        role_name = placement.global_name(smoke_test_role_name(self.spec, env_name))
        self.smoke_test_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"],
                resources=[f"arn:{self.partition}:iam::{account}:role/{role_name}"],
            )
        )
        serving = stage.serving
        assert serving.smoke_test_role_output is not None
        _, target_variable = SMOKE_TEST_TARGETS[env.aws.platform]
        return pipelines.CodeBuildStep(
            "SmokeTest",
            input=self.source,  # the test script, from this commit
            role=self.smoke_test_role,
            commands=smoke_test_commands(
                env.aws.platform, env.aws.primary_region if placement.primary else placement.region
            ),
            partial_build_spec=runtimes_build_spec(),
            env_from_cfn_outputs={
                target_variable: serving.smoke_test_target_output,
                "SMOKE_TEST_ROLE_ARN": serving.smoke_test_role_output,
            },
        )

    def _azure_step(self, id: str, env_name: str, stage: ServingStage | None, action: str) -> pipelines.CodeBuildStep:
        """`pulumi preview` or `pulumi up` of stack ``env_name`` from this commit's source, with the Build
        step's output (asset manifests, the execution's model) beside it."""
        azure = self.spec.pipeline.azure
        assert self.backend is not None and azure is not None
        args = [
            f"--env {env_name}",
            f"--spec {self.spec_path}",
            f"--backend-url '{self.backend.login_url}'",
            f"--secrets-provider '{self.backend.secrets_provider}'",
            f"--tenant-id {azure.tenant_id}",
            f"--client-id {azure.client_id}",
            f"--sign-in {azure.sign_in}",
            f"--region {self.region}",
        ]
        env = self.spec.environments[env_name]
        if stage is not None and self.spec.container.build:
            manifest = f"cdk.out/assembly-{self.node.id}-{stage.node.id}/{stage.serving.artifact_id}.assets.json"
            args += [
                f"--assets-manifest {manifest}",
                f"--image-reader-role-arn {self._image_reader_arn(env_name)}",
                f"--image-account {env.aws.account or self.spec.pipeline.account or self.account}",
                f"--image-region {env.aws.primary_region or self.spec.pipeline.region or self.region}",
            ]
        additional = {"cdk.out": self.synth.primary_output}
        if self.approved_model is not None:
            additional[str(APPROVED_MODEL_DIR)] = self.approved_model
        variables = {}
        if azure.sign_in == "client_secret":
            variables["ARM_CLIENT_SECRET"] = codebuild.BuildEnvironmentVariable(
                type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER, value=azure.client_secret_arn
            )
        return pipelines.CodeBuildStep(
            id,
            input=self.source,
            additional_inputs=additional,
            role=self.azure_role,
            env=QUIET_JSII,
            build_environment=codebuild.BuildEnvironment(environment_variables=variables) if variables else None,
            install_commands=pulumi_install_commands(),
            commands=[f".venv/bin/python -m stacks.pipeline_scripts.azure_deploy {action} " + " ".join(args)],
            partial_build_spec=runtimes_build_spec(),
            timeout=cdk.Duration.hours(2),
        )

    def _azure_smoke_test(self, env_name: str) -> pipelines.CodeBuildStep:
        """The same request and check as the SageMaker smoke test, against every online endpoint of the
        environment (scoring URIs and keys from the stack's outputs; with ``aad_token``, a Microsoft Entra
        token from the pipeline's Azure sign-in, and every location's endpoint)."""
        assert self.backend is not None
        azure = self.spec.pipeline.azure
        entra = ""
        variables = {}
        if self.spec.environments[env_name].azure.auth_mode == "aad_token":
            entra = (
                f" --entra-sign-in {azure.sign_in} --tenant-id {azure.tenant_id} --client-id {azure.client_id}"
                f" --region {self.region}"
            )
            if azure.sign_in == "client_secret":
                variables["ARM_CLIENT_SECRET"] = codebuild.BuildEnvironmentVariable(
                    type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER, value=azure.client_secret_arn
                )
        return pipelines.CodeBuildStep(
            "AzureSmokeTest",
            input=self.source,
            role=self.azure_role,
            env=QUIET_JSII if entra else None,
            build_environment=codebuild.BuildEnvironment(environment_variables=variables) if variables else None,
            # the CLI only, unless the test signs in to Entra (the project's environment has that code)
            install_commands=pulumi_install_commands() if entra else pulumi_install_commands()[:3],
            commands=azure_smoke_test_commands(env_name, self.backend.login_url, entra),
            partial_build_spec=runtimes_build_spec(),
        )

    def synth_project_role(self) -> iam.IRole:
        """The Build step's CodeBuild role (aws-cdk-lib creates it with the project)."""
        (project,) = [
            c
            for c in self.pipeline.node.find_all()
            if isinstance(c, codebuild.Project) and "/Build/Synth/" in c.node.path
        ]
        return project.role

    def _notify_on_failure(self) -> None:
        self.pipeline.pipeline.notify_on(
            "NotifyOnFailure",
            self.topic,
            events=[codepipeline.PipelineNotificationEvents.PIPELINE_EXECUTION_FAILED],
            detail_type=notifications.DetailType.FULL,
        )

    def _acknowledge_cross_region_support(self) -> None:
        """A stage in another region (aws.regions) makes CodePipeline add a support stack there
        (``cross-region-stack-<account>:<region>``) with a replication bucket for the pipeline's artifacts."""
        reason = (
            "CodePipeline's cross-region replication bucket (aws-cdk-lib's support stack): it holds this "
            "pipeline's artifacts for the deploy actions in its region only, KMS-encrypted, private and TLS-only."
        )
        for support in self.pipeline.pipeline.cross_region_support.values():
            bucket = support.replication_bucket
            acknowledge(bucket.node.default_child, "AwsSolutions-S1", reason)
            for check_id in ("CKV_AWS_18", "CKV_AWS_21"):
                acknowledge_checkov(bucket.node.default_child, check_id, reason)
            # the pipeline's role reads and writes the artifacts there (a literal ARN: another stack's bucket)
            acknowledge(
                self.pipeline.pipeline.role,
                f"AwsSolutions-IAM5[Resource::{self.resolve(bucket.bucket_arn)}/*]",
                "Pipeline artifacts are objects CodePipeline names per execution; the grant is on this "
                "pipeline's replication bucket in that region only.",
            )

    def _acknowledge_nag_findings(self) -> None:
        """cdk-nag findings on what aws-cdk-lib's CDK Pipelines builds (docs/aws.md lists each)."""
        bucket = self.pipeline.pipeline.artifact_bucket
        artifact_grants = (
            "aws-cdk-lib's read/write grant on the pipeline's artifact bucket (and its KMS key): "
            "CodePipeline and CodeBuild pass every stage's input and output through it."
        )
        artifact_objects = (
            "Pipeline artifacts are objects CodePipeline names per execution; the grant is on "
            "this pipeline's own artifact bucket only."
        )
        projects = [c for c in self.pipeline.node.find_all() if isinstance(c, codebuild.CfnProject)]
        smoke = [p for p in projects if "/SmokeTest/" in p.node.path + "/"]
        azure = [p for p in projects if re.search(r"/Azure(Preview|Deploy|SmokeTest)/", p.node.path + "/")]

        def build_logs(scope, ids) -> None:
            for project in ids:
                name = f"<{self.resolve(self.get_logical_id(project))}>"  # how cdk-nag spells its Ref
                acknowledge(
                    scope,
                    f"AwsSolutions-IAM5[Resource::{arn_text(self, 'logs', f'log-group:/aws/codebuild/{name}:*')}]",
                    "A CodeBuild project writes a log stream per build into its own log group.",
                )
                acknowledge(
                    scope,
                    f"AwsSolutions-IAM5[Resource::{arn_text(self, 'codebuild', f'report-group/{name}-*')}]",
                    "A CodeBuild project may create test report groups, named after the project, per build.",
                )

        for scope, actions in (
            (
                self.pipeline,
                (
                    "s3:GetObject*",
                    "s3:GetBucket*",
                    "s3:List*",
                    "s3:Abort*",
                    "s3:DeleteObject*",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                ),
            ),
            (
                self.smoke_test_role,
                ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "kms:GenerateDataKey*", "kms:ReEncrypt*"),
            ),
            (
                self.azure_role,
                ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "kms:GenerateDataKey*", "kms:ReEncrypt*"),
            ),
        ):
            if scope is None:
                continue
            for action in actions:
                acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", artifact_grants)
            acknowledge(scope, f"AwsSolutions-IAM5[{objects_of(bucket, '*')}]", artifact_objects)
        build_logs(self.pipeline, [p for p in projects if p not in smoke and p not in azure])
        if self.smoke_test_role is not None:
            build_logs(self.smoke_test_role, smoke)
        if self.azure_role is not None:
            build_logs(self.azure_role, azure)
            acknowledge(
                self.azure_role,
                "AwsSolutions-IAM5[Resource::*]",
                "sts:GetWebIdentityToken has no resource; the statement is bounded by its conditions instead: "
                "tokens for Entra's audience only, valid at most an hour.",
            )
            acknowledge(
                self.azure_role,
                f"AwsSolutions-IAM5[{objects_of(self.backend.bucket, '.pulumi/*')}]",
                "Pulumi's S3 backend names its state, history, backup and lock objects per stack and update under "
                ".pulumi/; nothing else in the bucket is granted.",
            )
        if self.promotion is not None:
            synth_role = self.synth_project_role()
            packages = arn_text(self, "sagemaker", f"model-package/{self.promotion.group_name}/*")
            acknowledge(
                synth_role,
                f"AwsSolutions-IAM5[Resource::{packages}]",
                "The build reads the newest Approved version of the promotion group; versions are numbered as "
                "they are registered.",
            )
            acknowledge(
                synth_role,
                f"AwsSolutions-IAM5[{objects_of(self.model_bucket, '*')}]",
                "Training registers each version's archive under a key of its own in this bucket; the build reads "
                "the approved one.",
            )
        acknowledge(
            self.pipeline,
            "AwsSolutions-IAM5[Resource::*]",
            "Self-mutation reads stack status (cloudformation:DescribeStacks) and lists buckets, and the asset "
            "publishing roles start and watch their CodeBuild builds; CDK Pipelines grants these on *.",
        )
        acknowledge(
            self.pipeline,
            f"AwsSolutions-IAM5[Resource::{nag_text(self, f'arn:*:iam::{self.account}:role/*')}]",
            "Self-mutation assumes the CDK bootstrap roles, whose names carry the bootstrap qualifier; the "
            "grant is conditioned on the aws-cdk:bootstrap-role tag (deploy, file- and image-publishing).",
        )
        acknowledge(
            self.pipeline,
            f"AwsSolutions-IAM5[Resource::{arn_text(self, 'logs', 'log-group:/aws/codebuild/*')}]",
            "The asset-publishing role is shared by one CodeBuild project per asset, each with its own log group.",
        )
        acknowledge(
            self.pipeline,
            f"AwsSolutions-IAM5[Resource::{arn_text(self, 'codebuild', 'report-group/*')}]",
            "The asset-publishing role is shared by one CodeBuild project per asset, each with its own report groups.",
        )
        if not self.cross_account:
            acknowledge(
                self.pipeline,
                "AwsSolutions-CB4",
                "Every environment is in the pipeline's account, so no customer-managed key is created "
                "(cross_account_keys off): build artifacts are encrypted with the AWS-managed S3 key; the "
                "key is needed only to share them with other accounts.",
            )
        artifact_store = (
            "The pipeline's artifact store, read and written only by this pipeline's roles (KMS-encrypted "
            "across accounts); server access logs would need a second bucket for CodePipeline's own traffic. "
            "Use CloudTrail data events to audit it."
        )
        acknowledge(bucket, "AwsSolutions-S1", artifact_store)
        acknowledge_checkov(bucket, "CKV_AWS_18", artifact_store)
        acknowledge_checkov(
            bucket,
            "CKV_AWS_21",
            "CDK Pipelines' artifact store: CodePipeline writes each execution's artifacts under new keys and never "
            "overwrites one, so versioning would keep nothing more.",
        )
        for policy in self.pipeline.node.find_all():
            if isinstance(policy, iam.CfnPolicy) and re.search(r"/Assets/\w+Role/DefaultPolicy/", policy.node.path):
                acknowledge_checkov(
                    policy,
                    "CKV_AWS_111",
                    "CDK Pipelines' asset-publishing role starts and stops the builds of its asset projects, one "
                    "per asset with generated names: aws-cdk-lib grants codebuild:StartBuild/StopBuild on '*'.",
                )
