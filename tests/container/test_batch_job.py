"""The AWS Batch job's wrapper (``model_containers/twinserve_batch_job``) around the real batch mode,
against botocore's Stubber (a real boto3 S3 client whose calls are checked against the S3 API model;
no network, no credentials needed), and the rule that keeps it outside the server package."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from serving_harness import IRIS_ROWS, REPO_ROOT

from twinserve_batch_job.__main__ import EXIT_BAD_INPUT, EXIT_FAILED_FILES, EXIT_OK, EXIT_TRANSFER, main

BUCKET = "iris-batch-data"
INPUT = f"s3://{BUCKET}/batch/input/"
OUTPUT = f"s3://{BUCKET}/batch/output/"
RUN = "a1b2c3d4-job"


def _client():
    return boto3.client("s3", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="s" * 40)


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def _stub_inputs(stub: Stubber, pages: list[dict[str, bytes]], extra_keys=()) -> None:
    """list_objects_v2 pages (the first also lists ``extra_keys``, which must be skipped), then one
    get_object per listed input in order."""
    for number, page in enumerate(pages):
        keys = [f"batch/input/{name}" for name in page] + (list(extra_keys) if number == 0 else [])
        last = number == len(pages) - 1
        response = {"Contents": [{"Key": key, "Size": 1} for key in keys], "IsTruncated": not last}
        if not last:
            response["NextContinuationToken"] = f"token-{number + 1}"
        expected = {"Bucket": BUCKET, "Prefix": "batch/input/"}
        if number:
            expected["ContinuationToken"] = f"token-{number}"
        stub.add_response("list_objects_v2", response, expected)
        for name, data in page.items():
            stub.add_response("get_object", {"Body": _body(data)}, {"Bucket": BUCKET, "Key": f"batch/input/{name}"})


def _capture_uploads(client) -> dict[str, bytes]:
    uploads: dict[str, bytes] = {}

    def capture(params, **_):
        uploads[params["Key"]] = params["Body"].read()
        params["Body"].seek(0)

    client.meta.events.register("provide-client-params.s3.PutObject", capture)
    return uploads


def _run(client, model_dir: Path, *extra: str) -> int:
    return main(
        ["--input", INPUT, "--output", OUTPUT, "--model-dir", str(model_dir), *extra],
        s3=client,
        env={"AWS_BATCH_JOB_ID": RUN},
    )


def test_a_run_downloads_the_prefix_scores_it_with_the_batch_mode_and_uploads_every_outcome(iris_model):
    client = _client()
    uploads = _capture_uploads(client)
    inputs = {
        "a.json": json.dumps({"instances": IRIS_ROWS}).encode(),
        "nested/c.json": json.dumps([6.7, 3.0, 5.2, 2.3]).encode(),
    }
    with Stubber(client) as stub:
        # two pages (the listing is paginated) and what must not become an input: a folder marker and a
        # key that would leave the scratch folder
        _stub_inputs(
            stub,
            [{"a.json": inputs["a.json"]}, {"nested/c.json": inputs["nested/c.json"], "broken.json": b'{"x": [1'}],
            extra_keys=("batch/input/nested/", "batch/input/../escape.json"),
        )
        run = f"batch/output/{RUN}/"
        for key in ("_manifest.json", "a.json.out", "broken.json.error.json", "nested/c.json.out"):
            stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": run + key, "Body": ANY})
        code = _run(client, iris_model / "model")
        stub.assert_no_pending_responses()
    assert code == EXIT_FAILED_FILES  # one file failed: reported, the others scored and uploaded
    assert [p["label"] for p in json.loads(uploads[run + "a.json.out"])["predictions"]] == ["setosa", "virginica"]
    assert json.loads(uploads[run + "nested/c.json.out"])["predictions"][0]["label"] == "virginica"
    assert json.loads(uploads[run + "broken.json.error.json"])["status"] == 400
    manifest = json.loads(uploads[run + "_manifest.json"])
    assert (manifest["files"], manifest["succeeded"], manifest["failed"]) == (3, 2, 1)


def test_all_scored_exits_0_and_an_empty_prefix_is_an_empty_run(iris_model):
    client = _client()
    uploads = _capture_uploads(client)
    with Stubber(client) as stub:
        _stub_inputs(stub, [{}])
        stub.add_response(
            "put_object", {}, {"Bucket": BUCKET, "Key": f"batch/output/{RUN}/_manifest.json", "Body": ANY}
        )
        assert _run(client, iris_model / "model") == EXIT_OK
    assert json.loads(uploads[f"batch/output/{RUN}/_manifest.json"])["files"] == 0


def test_a_failed_s3_call_exits_3_so_the_job_is_retried(iris_model):
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        assert _run(client, iris_model / "model") == EXIT_TRANSFER


def test_a_model_that_does_not_load_exits_2_and_uploads_nothing(tmp_path):
    client = _client()
    (tmp_path / "model").mkdir()
    with Stubber(client) as stub:
        _stub_inputs(stub, [{"a.json": b"[1, 2, 3, 4]"}])
        assert _run(client, tmp_path / "model") == EXIT_BAD_INPUT  # no put_object stubbed: none may happen
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "argv",
    [
        ["--input", "s3://bucket/no-trailing-slash", "--output", OUTPUT],
        ["--input", INPUT, "--output", "/local/folder/"],
        ["--input", INPUT, "--output", OUTPUT, "--run-id", "../up"],
    ],
)
def test_bad_settings_exit_2_before_any_s3_call(argv, capfd):
    client = _client()
    with Stubber(client):  # any call would fail: nothing is stubbed
        assert main(argv, s3=client, env={}) == EXIT_BAD_INPUT
    assert "batch_job_failed" in capfd.readouterr().out


def test_the_settings_come_from_the_job_definitions_environment(iris_model):
    client = _client()
    with Stubber(client) as stub:
        _stub_inputs(stub, [{}])
        stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": "batch/output/job-7/_manifest.json", "Body": ANY})
        env = {"TWINSERVE_BATCH_INPUT_URI": INPUT, "TWINSERVE_BATCH_OUTPUT_URI": OUTPUT, "AWS_BATCH_JOB_ID": "job-7"}
        assert main(["--model-dir", str(iris_model / "model")], s3=client, env=env) == EXIT_OK


def _imported_modules(package: Path) -> set[str]:
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_the_server_package_stays_sdk_free_and_the_wrapper_carries_the_sdk():
    server = _imported_modules(REPO_ROOT / "model_containers" / "twinserve_serving")
    assert not server & {"boto3", "botocore", "azure", "azureml"}
    assert "boto3" in _imported_modules(REPO_ROOT / "model_containers" / "twinserve_batch_job")


def test_the_wrappers_boto3_pin_is_the_projects():
    pinned = (REPO_ROOT / "model_containers" / "twinserve_batch_job" / "requirements.txt").read_text()
    project = (REPO_ROOT / "pyproject.toml").read_text()
    (line,) = [line for line in pinned.splitlines() if line.startswith("boto3==")]
    assert f'"{line}"' in project
