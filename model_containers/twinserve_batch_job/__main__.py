"""``python -m twinserve_batch_job``: one AWS Batch run of the serving image's batch mode.

1. every object under ``--input`` (``s3://bucket/prefix/``) is downloaded to a local folder, keeping its
   path below the prefix (folder markers and keys that would leave the folder are skipped);
2. the image's own batch mode scores the folder (``twinserve_serving.batch``: one ``<file>.out`` or
   ``<file>.error.json`` per input, ``_manifest.json``);
3. every file it wrote is uploaded under ``--output`` + ``<run id>/`` (``AWS_BATCH_JOB_ID``, which AWS
   Batch sets in the job's container, or a UTC timestamp outside AWS Batch) - also when some files
   failed, so the manifest and the error files say which.

Exit codes (the job definition's retry strategy reads them): 0 every file scored, 1 some files failed,
2 bad settings or a model that does not load (retrying cannot help), 3 an S3 transfer failed (retried).
The bucket's default encryption (the environment's KMS key) applies to the uploads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from twinserve_serving import logs
from twinserve_serving.__main__ import main as serving_main

INPUT_ENV = "TWINSERVE_BATCH_INPUT_URI"
OUTPUT_ENV = "TWINSERVE_BATCH_OUTPUT_URI"
RUN_ID_ENV = "AWS_BATCH_JOB_ID"
EXIT_OK, EXIT_FAILED_FILES, EXIT_BAD_INPUT, EXIT_TRANSFER = 0, 1, 2, 3
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>(?:[^/]+/)*)$")


class TransferError(Exception):
    """An S3 call failed (permissions, throttling, the network): the run may be retried."""


def parse_s3_prefix(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b/")``; a prefix names a folder, so it ends with '/'."""
    match = _S3_URI.match(uri or "")
    if match is None:
        raise ValueError(f"{uri!r}: an s3://bucket/prefix/ ending with '/' is allowed")
    return match["bucket"], match["prefix"]


def download_prefix(s3, bucket: str, prefix: str, folder: Path) -> int:
    """Every object under ``prefix`` into ``folder`` (its path below the prefix kept); the file count."""
    count = 0
    token = None
    try:
        while True:
            page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            for item in page.get("Contents", []):
                relative = PurePosixPath(item["Key"][len(prefix) :])
                if item["Key"].endswith("/") or not relative.parts or ".." in relative.parts:
                    continue  # folder markers; keys that would escape the folder
                target = folder.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                with target.open("wb") as out:
                    shutil.copyfileobj(body, out)
                count += 1
            if not page.get("IsTruncated"):
                return count
            token = page["NextContinuationToken"]
    except Exception as exc:  # botocore's ClientError, EndpointConnectionError...: all retryable here
        raise TransferError(f"reading s3://{bucket}/{prefix}: {type(exc).__name__}: {exc}") from exc


def upload_folder(s3, folder: Path, bucket: str, prefix: str) -> int:
    """Every file under ``folder`` to ``prefix`` + its relative path; the file count."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    try:
        for path in files:
            with path.open("rb") as body:
                s3.put_object(Bucket=bucket, Key=prefix + path.relative_to(folder).as_posix(), Body=body)
    except Exception as exc:
        raise TransferError(f"writing s3://{bucket}/{prefix}: {type(exc).__name__}: {exc}") from exc
    return len(files)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m twinserve_batch_job", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=env.get(INPUT_ENV), help=f"s3://bucket/prefix/ to score (or {INPUT_ENV})")
    parser.add_argument(
        "--output",
        default=env.get(OUTPUT_ENV),
        help=f"s3://bucket/prefix/ the run's folder goes under (or {OUTPUT_ENV})",
    )
    parser.add_argument("--run-id", default=env.get(RUN_ID_ENV), help=f"the run's folder name (or {RUN_ID_ENV})")
    parser.add_argument("--model-dir", help="model folder (default as for the image's serve)")
    parser.add_argument("--content-type", help="media type of every input (default: by file extension)")
    parser.add_argument("--accept", help="media type of the outputs (default application/json)")
    parser.add_argument("--work-dir", type=Path, help="local scratch folder (default: a temporary one)")
    return parser


def main(argv: list[str] | None = None, *, s3=None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    try:
        source, target = parse_s3_prefix(args.input), parse_s3_prefix(args.output)
    except ValueError as exc:
        logs.error("batch_job_failed", reason=f"--input/--output {exc}")
        return EXIT_BAD_INPUT
    run_id = args.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id):
        logs.error("batch_job_failed", reason=f"--run-id {run_id!r}: letters, digits, '.', '_' and '-' are allowed")
        return EXIT_BAD_INPUT
    if s3 is None:
        import boto3  # only here: the tests pass a stubbed client

        s3 = boto3.client("s3")
    work = Path(tempfile.mkdtemp(prefix="twinserve-batch-", dir=args.work_dir))
    inputs, outputs = work / "input", work / "output"
    inputs.mkdir()
    try:
        files = download_prefix(s3, *source, inputs)
        logs.info("batch_job_downloaded", files=files, input=args.input)
        batch_argv = ["batch", str(inputs), str(outputs)]
        for flag in ("model_dir", "content_type", "accept"):
            if getattr(args, flag):
                batch_argv += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
        code = serving_main(batch_argv)
        written = upload_folder(s3, outputs, target[0], f"{target[1]}{run_id}/") if outputs.is_dir() else 0
        output = f"s3://{target[0]}/{target[1]}{run_id}/"
        logs.info("batch_job_done", exit_code=code, files=files, uploaded=written, output=output)
        return code
    except TransferError as exc:
        logs.error("batch_job_transfer_failed", exc)
        return EXIT_TRANSFER
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
