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


@pytest.fixture()
def raw() -> dict:
    """The sample spec (no pipeline, no pinned accounts) with a minimal pipeline added."""
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["pipeline"] = {"source": {"connection_arn": CONNECTION, "repository": "my-org/twinserve"}}
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
    assert load_spec(SAMPLE).pipeline is None
    pipeline = parse_spec(raw, file="spec.yaml").pipeline
    assert pipeline.source.branch == "main"
    assert pipeline.manual_approval_before == ["prod"] and pipeline.smoke_test is True
    assert pipeline.account is None and pipeline.region is None


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


def test_manual_approval_before_an_environment_that_does_not_target_aws(raw):
    raw["environments"]["staging"]["targets"] = ["azure"]
    raw["pipeline"]["manual_approval_before"] = ["staging", "prod"]
    assert only(raw) == (
        "spec.yaml: pipeline.manual_approval_before.0: environment 'staging' does not target aws; "
        "the pipeline deploys AWS environments only (got 'staging')"
    )


def test_manual_approval_before_lists_each_environment_once(raw):
    raw["pipeline"]["manual_approval_before"] = ["prod", "prod"]
    assert only(raw) == "spec.yaml: pipeline.manual_approval_before.1: listed twice (got 'prod')"


def test_a_pipeline_needs_an_aws_environment(raw):
    raw["defaults"]["targets"] = ["azure"]
    raw["pipeline"]["manual_approval_before"] = []
    assert only(raw).startswith("spec.yaml: pipeline: no environment targets aws")


def test_pinned_environment_accounts_need_the_pipeline_account(raw):
    raw["environments"]["prod"]["aws"]["account"] = "333333333333"
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
