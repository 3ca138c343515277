"""The optional `pipeline` section: its shapes and the rules that tie it to the environments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from twinserve.spec import SpecError, load_spec, parse_spec

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "deploy" / "twinserve.yaml"
EXAMPLE = REPO_ROOT / "examples" / "aws" / "pipeline.yaml"
CONNECTION = "arn:aws:codeconnections:eu-west-1:123456789012:connection/00000000-0000-0000-0000-000000000000"


AZURE_SIGN_IN = {
    "tenant_id": "00000000-0000-0000-0000-000000000000",
    "client_id": "11111111-1111-1111-1111-111111111111",
}
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:twinserve/azure-AbCdEf"


@pytest.fixture()
def raw() -> dict:
    """The sample spec (no pinned accounts) with a minimal pipeline instead of its own: the source and,
    since its environments target Azure too, the pipeline's Azure sign-in."""
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["pipeline"] = {
        "source": {"connection_arn": CONNECTION, "repository": "my-org/twinserve"},
        "azure": dict(AZURE_SIGN_IN),
    }
    return doc


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(raw, file="spec.yaml")
    return [issue.render("spec.yaml") for issue in info.value.issues]


def only(raw: dict) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    return found[0]


def test_pipeline_is_optional_and_defaults_gate_prod_with_a_smoke_test(raw):
    without = dict(raw)
    del without["pipeline"]
    assert parse_spec(without, file="spec.yaml").pipeline is None
    pipeline = parse_spec(raw, file="spec.yaml").pipeline
    assert pipeline.source.branch == "main"
    assert pipeline.manual_approval_before == ["prod"] and pipeline.smoke_test is True
    assert pipeline.account is None and pipeline.region is None
    assert pipeline.model_source == "spec" and pipeline.azure.sign_in == "federated"


def test_the_sample_promotes_both_clouds_from_the_registry_keyless():
    pipeline = load_spec(SAMPLE).pipeline
    assert pipeline.model_source == "registry" and pipeline.azure.sign_in == "federated"
    assert pipeline.azure.client_secret_arn is None


def test_azure_environments_need_the_pipelines_azure_sign_in(raw):
    del raw["pipeline"]["azure"]
    assert only(raw) == (
        "spec.yaml: pipeline.azure: environments dev, staging, prod target azure: give the pipeline's Azure "
        "sign-in (tenant_id, client_id), or set their targets to [aws] (got (missing))"
    )
    raw["defaults"]["targets"] = ["aws"]
    parse_spec(raw, file="spec.yaml")


def test_a_client_secret_sign_in_names_its_secret_and_a_federated_one_has_none(raw):
    raw["pipeline"]["azure"]["sign_in"] = "client_secret"
    assert only(raw).startswith("spec.yaml: pipeline.azure.client_secret_arn: sign_in client_secret reads the secret")
    raw["pipeline"]["azure"]["client_secret_arn"] = SECRET
    parse_spec(raw, file="spec.yaml")
    raw["pipeline"]["azure"]["sign_in"] = "federated"
    assert "a client secret in the environment wins over the federated token" in only(raw)


@pytest.mark.parametrize("field,value", [("tenant_id", "not-a-guid"), ("client_secret_arn", "arn:aws:s3:::bucket")])
def test_azure_sign_in_ids_are_checked(raw, field, value):
    raw["pipeline"]["azure"][field] = value
    assert only(raw).startswith(f"spec.yaml: pipeline.azure.{field}: must be a")


def test_the_example_is_valid():
    spec = load_spec(EXAMPLE)
    assert spec.pipeline.account == "123456789012" and spec.pipeline.source.repository == "my-org/twinserve"


def test_legacy_codestar_connection_arn_is_accepted(raw):
    raw["pipeline"]["source"]["connection_arn"] = CONNECTION.replace("codeconnections", "codestar-connections")
    parse_spec(raw, file="spec.yaml")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:codeconnections:eu-west-1:123456789012:connection/not-a-uuid",
        "arn:aws:codecommit:eu-west-1:123456789012:twinserve",
        "connection/00000000-0000-0000-0000-000000000000",
    ],
)
def test_connection_arn_pattern(raw, arn):
    raw["pipeline"]["source"]["connection_arn"] = arn
    msg = only(raw)
    assert msg.startswith("spec.yaml: pipeline.source.connection_arn: must be a CodeConnections")
    assert f"(got {arn!r})" in msg


@pytest.mark.parametrize("repo", ["twinserve", "my-org/twinserve/extra", "https://github.com/my-org/twinserve"])
def test_repository_is_owner_slash_name(raw, repo):
    raw["pipeline"]["source"]["repository"] = repo
    assert only(raw).startswith("spec.yaml: pipeline.source.repository: must be a repository as owner/name")


def test_source_is_required_and_unknown_fields_are_errors(raw):
    raw["pipeline"] = {"manual_approval_before": ["prod"], "smoke_tests": False}
    found = problems(raw)
    assert "spec.yaml: pipeline.source: required field is missing (got (missing))" in found
    assert any(
        m.startswith(
            "spec.yaml: pipeline.smoke_tests: unknown field; allowed: source, account, region, "
            "manual_approval_before, smoke_test"
        )
        for m in found
    ), found


def test_manual_approval_before_names_an_environment_of_the_spec(raw):
    del raw["environments"]["staging"]
    raw["pipeline"]["manual_approval_before"] = ["staging", "prod"]
    assert only(raw) == (
        "spec.yaml: pipeline.manual_approval_before.0: environment 'staging' is not in the spec; "
        "defined: dev, prod (got 'staging')"
    )


def test_manual_approval_before_only_allows_known_environment_names(raw):
    raw["pipeline"]["manual_approval_before"] = ["qa"]
    msg = only(raw)
    assert msg.startswith("spec.yaml: pipeline.manual_approval_before.0: not an allowed value")


def test_manual_approval_may_gate_an_environment_on_azure_only(raw):
    raw["environments"]["staging"]["targets"] = ["azure"]
    raw["pipeline"]["manual_approval_before"] = ["staging", "prod"]
    assert parse_spec(raw, file="spec.yaml").pipeline.manual_approval_before == ["staging", "prod"]


def test_manual_approval_before_lists_each_environment_once(raw):
    raw["pipeline"]["manual_approval_before"] = ["prod", "prod"]
    assert only(raw) == "spec.yaml: pipeline.manual_approval_before.1: listed twice (got 'prod')"


def test_a_pipeline_may_promote_azure_environments_only(raw):
    raw["defaults"]["targets"] = ["azure"]
    assert parse_spec(raw, file="spec.yaml").pipeline is not None


def test_pinned_environment_accounts_need_the_pipeline_account(raw):
    raw["environments"]["prod"].setdefault("aws", {})["account"] = "333333333333"
    assert only(raw) == (
        "spec.yaml: pipeline.account: set the pipeline's account: environments pin aws.account "
        "(prod -> 333333333333), and CodePipeline deploys across accounts only from a pipeline "
        "with an explicit account (got (missing))"
    )
    raw["pipeline"]["account"] = "123456789012"
    parse_spec(raw, file="spec.yaml")


def test_pinned_environment_regions_need_the_pipeline_region(raw):
    raw["defaults"]["aws"] = {"region": "eu-west-1"}
    assert only(raw).startswith(
        "spec.yaml: pipeline.region: set the pipeline's region: environments pin "
        "aws.region (dev -> eu-west-1, staging -> eu-west-1, prod -> eu-west-1)"
    )
    raw["pipeline"]["region"] = "eu-west-1"
    parse_spec(raw, file="spec.yaml")


def test_smoke_test_cannot_call_an_async_endpoint(raw):
    raw["environments"]["dev"]["targets"] = ["aws"]
    raw["environments"]["dev"]["serving"] = {"endpoint_type": "async"}
    assert only(raw) == (
        "spec.yaml: pipeline.smoke_test: environment dev serves an async endpoint, which the "
        "smoke test's synchronous invoke-endpoint cannot call; set smoke_test: false (got True)"
    )
    raw["pipeline"]["smoke_test"] = False
    parse_spec(raw, file="spec.yaml")


def test_the_smoke_test_cannot_get_an_aml_token(raw):
    # Azure ML tokens are per endpoint and short-lived; keys and Entra tokens the test can obtain
    # (https://learn.microsoft.com/azure/machine-learning/how-to-authenticate-online-endpoint)
    raw["environments"]["dev"]["azure"] = {"auth_mode": "aml_token", "online_endpoints": ["managed"]}
    assert only(raw).startswith("spec.yaml: pipeline.smoke_test: environment dev uses azure.auth_mode aml_token")
    raw["environments"]["dev"]["azure"]["auth_mode"] = "aad_token"
    assert parse_spec(raw, file="spec.yaml").environment("dev").azure.auth_mode == "aad_token"
