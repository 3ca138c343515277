"""The promotion pipeline (spec ``pipeline``): CDK Pipelines deploying each AWS environment's
ServingStage in order dev -> staging -> prod.

    Source     the repository through a CodeConnections connection (a push to the branch starts it)
    Build      the project's own setup (`make setup sample-model`: Python deps + `npm ci`), the spec
               validated, then `cdk synth -c nag=true` of this spec: a cdk-nag finding stops promotion
    UpdatePipeline  self-mutation: the pipeline first updates itself to what was just synthesized
    Assets     the model archive and the inference image, published into every environment's CDK
               bootstrap asset bucket and container-assets repository (they exist before the first
               run, unlike anything a stage creates: every asset is published before any stage deploys)
    <name>-dev, <name>-staging, <name>-prod
               `pre`: a manual approval for the environments in ``manual_approval_before``;
               the stage's Registry and Serving stacks; `post`: a smoke test that invokes the
               endpoint named by the Serving stack's ``EndpointName`` output with a sample request.

The tools the pipeline installs itself (the CDK CLI of self-mutation, cdk-assets of the asset jobs)
are pinned to package.json's versions.

The stages are the same ServingStage, with the same ids, as the app's top-level stages, so the
pipeline deploys exactly the CloudFormation stacks `cdk deploy '<name>-<env>/*'` would. Their cloud
assemblies are nested under the pipeline's (``assembly-<pipeline id>-<name>-<env>``).
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines

from constructs import Construct
from twinserve.aws._nag import acknowledge, arn_text, nag_text, objects_of
from twinserve.spec import ENVIRONMENT_NAMES, DeploymentSpec

from .serving_stack import smoke_test_caller_role_name, smoke_test_role_name
from .serving_stage import ServingStage

SMOKE_TEST_PAYLOAD = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
"""The sample request (one iris flower) the smoke test sends to every environment's endpoint."""

# CodeBuild's standard 7.0 image has Python 3.11 and Node.js 20: what the Makefile needs (README).
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}
TOOL_VERSIONS: dict[str, str] = json.loads((Path(__file__).resolve().parents[2] / "package.json").read_text())[
    "devDependencies"
]
"""The npm tools the pipeline installs, pinned once in package.json (the versions the tests run): the
CDK CLI of self-mutation and cdk-assets of the asset jobs, both readers of this aws-cdk-lib's cloud
assembly schema (an unpinned cdk-assets@latest may not read it)."""
QUIET_JSII = {"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1"}


def pipeline_stack_id(spec: DeploymentSpec, prefix: str = "") -> str:
    return f"{prefix}{spec.name}-pipeline"


def promoted_environments(spec: DeploymentSpec) -> list[str]:
    """The AWS environments of the spec in promotion order."""
    return [n for n in ENVIRONMENT_NAMES if n in spec.environments and "aws" in spec.environments[n].targets]


def synth_commands(spec_path: str) -> list[str]:
    """What the pipeline's build runs from the repository root: the Makefile's setup, then the app."""
    return [
        "make setup sample-model",
        f".venv/bin/twinserve validate {spec_path}",
        f"node_modules/.bin/cdk synth --quiet -c spec={spec_path} -c nag=true",
    ]


def smoke_test_commands(region: str | None) -> list[str]:
    """Assume the environment's smoke-test role, invoke the endpoint once, require predictions.

    invoke-endpoint exits non-zero unless SageMaker answers 2xx (a model error is a 4xx/5xx), so a
    failing command fails the build and the pipeline stops before the next environment."""
    where = f" --region {region}" if region else ""
    return [
        'aws configure set profile.target.role_arn "$SMOKE_TEST_ROLE_ARN"',
        "aws configure set profile.target.credential_source EcsContainer",
        f'aws sagemaker-runtime invoke-endpoint --profile target{where} --endpoint-name "$ENDPOINT_NAME"'
        " --content-type application/json --accept application/json --cli-binary-format raw-in-base64-out"
        f" --body '{SMOKE_TEST_PAYLOAD}' response.json",
        'python3 -c \'import json; r = json.load(open("response.json")); p = r.get("predictions") '
        'if isinstance(r, dict) else None; assert isinstance(p, list) and p, "no predictions: %r" % (r,); '
        'print("smoke test passed:", r)\'',
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
        self.environments = promoted_environments(spec)
        # Stages in other accounts need the artifact bucket under a KMS key they can be granted.
        self.cross_account = any(
            spec.environments[n].aws.account not in (None, pipeline_spec.account) for n in self.environments
        )
        src = pipeline_spec.source
        self.source = pipelines.CodePipelineSource.connection(
            src.repository, src.branch, connection_arn=src.connection_arn, trigger_on_push=True
        )
        synth = pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            commands=synth_commands(spec_path),
            env=QUIET_JSII,
            primary_output_directory="cdk.out",
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
            ),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"twinserve-{spec.name}",
            synth=synth,
            pipeline_type=codepipeline.PipelineType.V2,
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
        if pipeline_spec.smoke_test:
            self.smoke_test_role = iam.Role(
                self,
                "SmokeTestRole",
                role_name=smoke_test_caller_role_name(spec),
                assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
                description=f"twinserve {spec.name}: pipeline smoke tests, assume each environment's smoke-test role",
            )

        self.stages: dict[str, ServingStage] = {}
        for env_name in self.environments:
            env = spec.environments[env_name]
            stage = ServingStage(
                self, f"{prefix}{spec.name}-{env_name}", spec=spec, env_name=env_name, spec_dir=spec_dir
            )
            self.stages[env_name] = stage
            pre: list[pipelines.Step] = []
            if env_name in pipeline_spec.manual_approval_before:
                pre.append(
                    pipelines.ManualApprovalStep(
                        "Approve",
                        comment=f"Deploy {spec.name} to {env_name}? The previous environment passed its smoke test.",
                    )
                )
            post: list[pipelines.Step] = []
            if self.smoke_test_role is not None:
                account = env.aws.account or pipeline_spec.account or self.account
                self.smoke_test_role.add_to_policy(
                    iam.PolicyStatement(
                        actions=["sts:AssumeRole"],
                        resources=[f"arn:{self.partition}:iam::{account}:role/{smoke_test_role_name(spec, env_name)}"],
                    )
                )
                serving = stage.serving
                assert serving.smoke_test_role_output is not None
                post.append(
                    pipelines.CodeBuildStep(
                        "SmokeTest",
                        role=self.smoke_test_role,
                        commands=smoke_test_commands(env.aws.region),
                        env_from_cfn_outputs={
                            "ENDPOINT_NAME": serving.endpoint_name_output,
                            "SMOKE_TEST_ROLE_ARN": serving.smoke_test_role_output,
                        },
                    )
                )
            self.pipeline.add_stage(stage, pre=pre, post=post)
        self.pipeline.build_pipeline()  # the constructs exist from here on: acknowledge their findings
        self._acknowledge_nag_findings()
        # cfn-lint (tests/aws/test_aws_templates.py lists both with the reason): W3005, aws-cdk-lib's Pipeline
        # depends on its role although RoleArn already references it; E3703, the cross-account deploy actions'
        # RoleArn is an Fn::Join (arn:${AWS::Partition}:iam::<account>:role/cdk-...), which cfn-lint cannot match
        # against the role ARN format.
        self.pipeline.pipeline.node.default_child.add_metadata(
            "cfn-lint", {"config": {"ignore_checks": ["W3005", "E3703"]}}
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
        ):
            if scope is None:
                continue
            for action in actions:
                acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", artifact_grants)
            acknowledge(scope, f"AwsSolutions-IAM5[{objects_of(bucket, '*')}]", artifact_objects)
        build_logs(self.pipeline, [p for p in projects if p not in smoke])
        if self.smoke_test_role is not None:
            build_logs(self.smoke_test_role, smoke)
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
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "The pipeline's artifact store, read and written only by this pipeline's roles (KMS-encrypted "
            "across accounts); server access logs would need a second bucket for CodePipeline's own traffic. "
            "Use CloudTrail data events to audit it.",
        )
