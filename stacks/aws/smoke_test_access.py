"""The promotion pipeline's smoke-test access to an environment, the same for every AWS platform.

The pipeline's smoke test runs in the pipeline's account and calls the environment's serving in the
environment's account through a role the Serving stack creates: SageMaker endpoints, Lambda function
URLs with IAM auth and the Fargate service's in-VPC probe all take IAM principals of the same account.
Each Serving stack grants the role exactly what calling its serving takes (InvokeEndpoint; the URL and
function invoke of the ``live`` alias; invoking the probe), whether the stage is deployed by the
pipeline or by hand: the stack is the same either way.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from constructs import Construct
from twinserve.spec import DeploymentSpec

from .placement import PRIMARY, RegionPlacement

SMOKE_TEST_TARGETS = {
    "sagemaker": ("sagemaker --endpoint-name", "ENDPOINT_NAME"),
    "lambda": ("lambda --function-url", "FUNCTION_URL"),
    "ecs_fargate": ("fargate --probe-function", "PROBE_FUNCTION"),
}
"""Per ``aws.platform``: the smoke test's mode and target argument (stacks/pipeline_scripts/smoke_test.py),
and the variable the pipeline fills from the Serving stack's ``smoke_test_target_output``."""


def smoke_test_role_name(spec: DeploymentSpec, env_name: str) -> str:
    """The role in an environment's account that the pipeline's smoke test assumes to call its serving."""
    return f"twinserve-{spec.name}-{env_name}-smoke-test"


def smoke_test_caller_role_name(spec: DeploymentSpec) -> str:
    """The pipeline's smoke-test CodeBuild role, the one principal allowed to assume the roles above."""
    return f"twinserve-{spec.name}-pipeline-smoke-test"


def smoke_test_role(
    stack: cdk.Stack, spec: DeploymentSpec, env_name: str, does: str, placement: RegionPlacement = PRIMARY
) -> tuple[iam.Role | None, cdk.CfnOutput | None]:
    """``SmokeTestRole`` (and its ARN as the ``SmokeTestRoleArn`` output) in ``stack`` when the spec's
    pipeline runs smoke tests; ``does`` completes its description, and the caller grants what it takes."""
    if spec.pipeline is None or not spec.pipeline.smoke_test:
        return None, None
    caller_account = spec.pipeline.account or stack.account  # unset: every stage is in the pipeline's account
    caller = f"arn:{stack.partition}:iam::{caller_account}:role/{smoke_test_caller_role_name(spec)}"
    scope: Construct = stack
    role = iam.Role(
        scope,
        "SmokeTestRole",
        role_name=placement.global_name(smoke_test_role_name(spec, env_name)),  # IAM names are global
        assumed_by=iam.AccountPrincipal(caller_account).with_conditions({"ArnEquals": {"aws:PrincipalArn": caller}}),
        description=f"twinserve {spec.name}-{env_name}: the promotion pipeline's smoke test {does}",
    )
    return role, cdk.CfnOutput(scope, "SmokeTestRoleArn", value=role.role_arn)
