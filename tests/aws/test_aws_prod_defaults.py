"""Prod's audit and isolation defaults (issue 14, AWS part): an audit trail, and containers without network.

https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-intro.html
(digest files), .../logging-data-events-with-cloudtrail.html (S3 data events),
.../encrypting-cloudtrail-log-files-with-aws-kms.html (the key policy CloudTrail needs).
"""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template


@pytest.fixture(scope="module")
def serving(synth):
    return lambda stage: Template.from_json(synth.template(f"{stage}/Serving"))


def test_prod_has_a_validated_encrypted_multi_region_trail_with_artifact_data_events(serving):
    template = serving("iris-prod")
    (trail,) = template.find_resources("AWS::CloudTrail::Trail").values()
    props = trail["Properties"]
    assert props["EnableLogFileValidation"] is True
    assert props["IsMultiRegionTrail"] is True and props["IncludeGlobalServiceEvents"] is True
    assert props["IsLogging"] is True
    assert "KMSKeyId" in props  # the environment's key
    artifacts = [
        name
        for name, b in template.find_resources("AWS::S3::Bucket").items()
        if any(
            r.get("Prefix") == "data-capture/"
            for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
        )
    ]
    selectors = json.dumps(props["EventSelectors"])
    assert artifacts and artifacts[0] in selectors  # object reads and writes of the model artifacts
    assert '"IncludeManagementEvents": false' in selectors and '"ReadWriteType": "All"' in selectors


def test_the_key_lets_cloudtrail_encrypt_for_this_accounts_trails_only(serving):
    template = serving("iris-prod")
    (key,) = template.find_resources("AWS::KMS::Key").values()
    (statement,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "CloudTrailEncryptLogs"]
    assert statement["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in statement["Condition"]["StringLike"]
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def test_the_trail_bucket_is_kept_and_private(serving):
    template = serving("iris-prod")
    (trail,) = template.find_resources("AWS::CloudTrail::Trail").values()
    bucket_id = trail["Properties"]["S3BucketName"]["Ref"]
    bucket = template.to_json()["Resources"][bucket_id]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_dev_and_staging_rely_on_the_accounts_own_trails(serving):
    for stage in ("iris-dev", "iris-staging"):
        assert serving(stage).find_resources("AWS::CloudTrail::Trail") == {}


def test_prod_containers_run_without_network_and_dev_with(serving):
    # Network isolation: the container gets no network; SageMaker still mounts the model and writes
    # captures and async outputs (https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html).
    # Nothing in the image needs it: model requirements are baked in at build time.
    for stage, isolated in (("iris-prod", True), ("iris-staging", False), ("iris-dev", False)):
        models = serving(stage).find_resources("AWS::SageMaker::Model")
        assert models and all(m["Properties"].get("EnableNetworkIsolation", False) is isolated for m in models.values())
