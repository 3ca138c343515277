"""Batch scoring of a folder of files, as SageMaker batch transform and Azure ML batch deployments do.

Every file under the input folder (recursively, in sorted order) is one request through the same
handler as the HTTP server. For each input ``a/b.csv`` exactly one of these is written:

    OUTPUT/a/b.csv.out           the response body (SageMaker's naming)
    OUTPUT/a/b.csv.error.json    {"input", "status", "code", "error"} when that file failed

plus ``OUTPUT/_manifest.json`` listing every input with its outcome. A bad file never stops the
others, inputs are never modified, and outputs are written to a temporary name and renamed, so a
killed run leaves no half-written file. Exit code: 0 all scored, 1 some files failed, 2 the model
could not be loaded.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from . import logs
from .config import ServerConfig
from .content import CSV, JSON, NPY, OCTET_STREAM, negotiate, parse_media_type, preferred
from .errors import NotAcceptable, ServingError
from .handler import Handler, RequestContext, load_handler

CONTENT_TYPE_BY_SUFFIX = {".json": JSON, ".csv": CSV, ".npy": NPY}
MANIFEST_NAME = "_manifest.json"


@dataclass
class FileResult:
    input: str
    output: str
    status: int
    error: str | None = None


def content_type_for(path: Path, override: str | None) -> str:
    return override or CONTENT_TYPE_BY_SUFFIX.get(path.suffix.lower(), OCTET_STREAM)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def score_file(
    handler: Handler, path: Path, relative: str, out_dir: Path, content_type: str | None, accept: str
) -> FileResult:
    output, error_output = out_dir / f"{relative}.out", out_dir / f"{relative}.error.json"
    try:
        media = parse_media_type(content_type_for(path, content_type))
        context = RequestContext(request_id=relative, headers={"content-type": media.essence, "accept": accept})
        prediction = handler.handle(path.read_bytes(), media, accept, context)
        _write_atomically(output, prediction.body)  # a failed write is this file's failure too
    except Exception as exc:  # per file: record it and carry on with the others
        status = exc.status if isinstance(exc, ServingError) else 500
        code = exc.code if isinstance(exc, ServingError) else "handler_error"
        message = exc.message if isinstance(exc, ServingError) else f"{type(exc).__name__}: {exc}"
        if status >= 500:
            logs.error("batch_file_failed", exc, input=relative)
        _write_atomically(
            error_output,
            json.dumps({"input": relative, "status": status, "code": code, "error": message}, indent=2).encode(),
        )
        output.unlink(missing_ok=True)  # exactly one outcome per input, also over an earlier run's
        return FileResult(relative, str(error_output.relative_to(out_dir)), status, message)
    error_output.unlink(missing_ok=True)
    return FileResult(relative, str(output.relative_to(out_dir)), 200)


def run_batch(
    input_dir: Path, output_dir: Path, config: ServerConfig, content_type: str | None = None, accept: str | None = None
) -> int:
    input_dir, output_dir = input_dir.resolve(), output_dir.resolve()
    if not input_dir.is_dir():
        logs.error("batch_failed", reason=f"input folder {input_dir} does not exist")
        return 2
    if output_dir == input_dir or input_dir in output_dir.parents:
        logs.error("batch_failed", reason="the output folder must not be inside the input folder")
        return 2
    try:
        handler = load_handler(config.handler, config.model_dir)
        handler.load()
    except Exception as exc:  # noqa: BLE001 - import errors, missing files, the user's model_fn/init
        logs.error("model_load_failed", exc, model_dir=str(config.model_dir))
        return 2
    if handler.response_types is not None:
        chosen = negotiate(accept, handler.response_types, handler.default_response_type)
        if chosen is None:
            logs.error(
                "batch_failed",
                reason=str(NotAcceptable(f"--accept {accept} is not produced", allowed=handler.response_types)),
                allowed=list(handler.response_types),
            )
            return 2
        accept = chosen
    else:
        accept = preferred(accept, handler.default_response_type)
    # Hidden files and folders (.git/, .DS_Store, editors' swap files) are not inputs.
    inputs = sorted(
        p
        for p in input_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(input_dir).parts)
    )
    with ThreadPoolExecutor(config.threads) as pool:
        results = list(
            pool.map(
                lambda p: score_file(handler, p, p.relative_to(input_dir).as_posix(), output_dir, content_type, accept),
                inputs,
            )
        )
    failed = [r for r in results if r.status != 200]
    _write_atomically(
        output_dir / MANIFEST_NAME,
        json.dumps(
            {
                "input_dir": str(input_dir),
                "files": len(results),
                "succeeded": len(results) - len(failed),
                "failed": len(failed),
                "results": [asdict(r) for r in results],
            },
            indent=2,
        ).encode(),
    )
    logs.info(
        "batch_done",
        files=len(results),
        succeeded=len(results) - len(failed),
        failed=len(failed),
        output_dir=str(output_dir),
    )
    return 1 if failed else 0
