"""The pipeline's Build step, with ``pipeline.model_source: registry``: which model version this execution
promotes.

    python3 -m stacks.pipeline_scripts.resolve_model --group iris --out build/approved-model [--region R]

Reads the newest *Approved* package of the promotion model package group, downloads its archive
(``InferenceSpecification.Containers[0].ModelDataUrl``, a SageMaker ``model.tar.gz``) and unpacks it to
``OUT/model``, then writes ``OUT/twinserve-deploy-inputs.json`` (stacks/deploy_inputs.py) naming the
package's version. The CDK synth of this step and every Azure step of the execution read that file, so
every environment of both clouds serves the same version and the same bytes, even if another version
is approved while the execution runs. With no approved version yet, nothing is written and the spec's
model is deployed.

Exit 0 done (or nothing approved), 1 the package or its archive cannot be read.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

from ..deploy_inputs import DEPLOY_INPUTS_FILE, DeployInputs

RESOLUTION_FILE = "resolution.txt"
"""What was resolved, in words (the output folder always holds it)."""


class ResolveError(Exception):
    pass


def newest_approved(sagemaker, group: str) -> dict | None:
    """The newest Approved package of ``group`` (DescribeModelPackage's answer), or None."""
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )["ModelPackageSummaryList"]
    if not listed:
        return None
    return sagemaker.describe_model_package(ModelPackageName=listed[0]["ModelPackageArn"])


def model_data_url(package: dict) -> str:
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl", "").startswith("s3://"):
        raise ResolveError(
            f"{package['ModelPackageArn']}: no InferenceSpecification.Containers[0].ModelDataUrl in S3; register the "
            "version with its model.tar.gz (docs/aws.md, 'Model promotion')"
        )
    return containers[0]["ModelDataUrl"]


def unpack(archive: bytes, into: Path) -> None:
    """A model.tar.gz into ``into`` (no absolute paths, links or parent escapes: the data filter)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(into, filter="data")
    if not any(into.iterdir()):
        raise ResolveError("the model archive is empty")


def resolve(sagemaker, s3, group: str, out: Path) -> DeployInputs | None:
    package = newest_approved(sagemaker, group)
    if package is None:
        return None
    url = model_data_url(package)
    bucket, _, key = url.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    unpack(body, out / "model")
    inputs = DeployInputs(
        model_version=str(package["ModelPackageVersion"]),
        model_dir=(out / "model").resolve(),
        model_package_arn=package["ModelPackageArn"],
    )
    (out / DEPLOY_INPUTS_FILE).write_text(inputs.to_json(relative_to=out.resolve()))
    return inputs


def main(argv: list[str] | None = None, session=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m stacks.pipeline_scripts.resolve_model", description=__doc__)
    parser.add_argument("--group", required=True, help="the promotion model package group")
    parser.add_argument("--out", type=Path, required=True, help="where the model and the inputs file go")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    if session is None:
        import boto3  # noqa: PLC0415 - the tests pass a session

        session = boto3.Session(region_name=args.region)
    # The folder is the Build step's second output: CodeBuild needs it to exist and hold a file.
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESOLUTION_FILE).write_text(f"newest Approved version of model package group {args.group}:\n")
    try:
        inputs = resolve(session.client("sagemaker"), session.client("s3"), args.group, args.out)
    except ResolveError as exc:
        print(f"resolve-model: {exc}", file=sys.stderr)
        return 1
    if inputs is None:
        said = f"no Approved version in model package group {args.group}: the spec's model is deployed"
    else:
        said = f"{inputs.model_package_arn} (version {inputs.model_version}) -> {inputs.model_dir}"
    with open(args.out / RESOLUTION_FILE, "a") as resolution:
        resolution.write(said + "\n")
    print(f"resolve-model: {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
