"""`twinserve drift`: the container's drift check (``twinserve_serving.drift``), run on this machine.

Same code as the scheduled job (``python -m twinserve_serving drift``); the exit code differs so CI can
gate on it: 0 no drift (or too few rows to judge), 1 drift found, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twinserve_serving.drift import (
    DEFAULT_CATEGORICAL,
    DEFAULT_NUMERIC,
    TABLE_SUFFIXES,
    DriftInputError,
    check_drift,
    load_baseline,
    markdown_table,
    read_capture,
    read_table,
    write_report,
)

from .spec import SpecError, load_spec
from .spec.models import DriftCheckSpec, MonitoringSpec


def add_drift_command(subparsers) -> None:
    drift = subparsers.add_parser(
        "drift",
        help="compare captured requests with a baseline or reference dataset; write a drift report",
        description="Compare the requests captured under CAPTURE_DIR (SageMaker data capture or Azure ML data "
        "collector payload logging: *.jsonl, read recursively; download them first, e.g. `aws s3 sync` or "
        "`az storage blob download-batch`) with BASELINE, using the container's own drift check. Writes "
        "OUTPUT/drift.json and OUTPUT/drift-report.md and prints the table. Exit 0: no drift, or too few rows "
        "to judge; 1: a feature drifted; 2: bad input. docs/drift.md explains the report.",
    )
    drift.add_argument(
        "baseline",
        type=Path,
        metavar="BASELINE",
        help="a baseline JSON (as the stacks write it), or a reference dataset (" + ", ".join(TABLE_SUFFIXES) + ") "
        "whose baseline is computed now: with --spec/--env from that environment's monitoring settings, else "
        f"the spec's defaults: every column watched, numeric ones with {DEFAULT_NUMERIC[0]} {DEFAULT_NUMERIC[1]}, "
        f"columns holding text as categories with {DEFAULT_CATEGORICAL[0]} {DEFAULT_CATEGORICAL[1]}, min_rows 100",
    )
    drift.add_argument("capture_dir", type=Path, metavar="CAPTURE_DIR", help="folder of captured *.jsonl files")
    drift.add_argument(
        "--output",
        type=Path,
        default=Path("drift-report"),
        metavar="DIR",
        help="report folder (default: ./drift-report)",
    )
    drift.add_argument(
        "--since-hours", type=float, metavar="H", help="only requests captured in the last H hours (default: all)"
    )
    drift.add_argument(
        "--spec",
        type=Path,
        metavar="PATH",
        help="spec whose monitoring settings (features, categorical features, statistics, thresholds, min_rows) "
        "apply to a reference dataset BASELINE",
    )
    drift.add_argument(
        "--env",
        choices=["dev", "staging", "prod"],
        help="the environment of --spec (default: the only one with a monitoring section)",
    )
    drift.set_defaults(func=_cmd_drift)


def _monitoring_from_spec(spec_path: Path, env: str | None) -> MonitoringSpec:
    spec = load_spec(spec_path)
    with_monitoring = [name for name, e in spec.environments.items() if e.monitoring is not None]
    if env is None:
        if len(with_monitoring) != 1:
            raise DriftInputError(
                f"--env: choose the environment of {spec_path} whose monitoring applies; "
                f"environments with monitoring: {', '.join(with_monitoring) or 'none'}"
            )
        env = with_monitoring[0]
    monitoring = spec.environment(env).monitoring
    if monitoring is None:
        raise DriftInputError(
            f"--env {env}: {spec_path} has no monitoring section for it; "
            f"environments with monitoring: {', '.join(with_monitoring) or 'none'}"
        )
    return monitoring


def _baseline(args: argparse.Namespace) -> dict:
    from .drift_baseline import baseline_from_table

    if args.baseline.suffix.lower() == ".json":
        if args.spec is not None:
            raise DriftInputError("--spec applies to a reference dataset BASELINE, not to a baseline JSON")
        return load_baseline(args.baseline)
    if args.baseline.suffix.lower() not in TABLE_SUFFIXES:
        raise DriftInputError(
            f"BASELINE {args.baseline}: use a baseline .json or a reference dataset ({', '.join(TABLE_SUFFIXES)})"
        )
    if args.env is not None and args.spec is None:
        raise DriftInputError("--env needs --spec")
    table = read_table(args.baseline)
    if args.spec is not None:
        monitoring = _monitoring_from_spec(args.spec, args.env)
    else:  # the spec's defaults; a column with any text in it can only be compared as categories
        monitoring = MonitoringSpec(
            reference_dataset=str(args.baseline),
            categorical_features=[
                name for name, values in table.items() if any(isinstance(v, str | bool) for v in values)
            ],
            numeric=DriftCheckSpec(statistic=DEFAULT_NUMERIC[0], threshold=DEFAULT_NUMERIC[1]),
            categorical=DriftCheckSpec(statistic=DEFAULT_CATEGORICAL[0], threshold=DEFAULT_CATEGORICAL[1]),
        )
    return baseline_from_table(table, monitoring)


def _cmd_drift(args: argparse.Namespace) -> int:
    try:
        if args.since_hours is not None and not args.since_hours > 0:
            raise DriftInputError(f"--since-hours {args.since_hours}: a number of hours > 0")
        baseline = _baseline(args)
        if not args.capture_dir.is_dir():
            raise DriftInputError(f"CAPTURE_DIR {args.capture_dir} is not a folder of captured *.jsonl files")
        since = datetime.now(UTC) - timedelta(hours=args.since_hours) if args.since_hours else None
        results = check_drift(baseline, read_capture(args.capture_dir, baseline, since))
        json_path, md_path = write_report(results, args.output)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (DriftInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = results["status"]
    print(f"twinserve drift: {status} - {results['rows']} rows, {results['drifted_features']} drifted features")
    print(markdown_table(results))
    if results["skipped_records"]:
        print("skipped: " + ", ".join(f"{reason} {n}" for reason, n in results["skipped_records"].items()))
    if status == "drift":
        print("drifted: " + ", ".join(f["name"] for f in results["features"] if f["drifted"]))
    print(f"report: {md_path}  results: {json_path}")
    return 1 if status == "drift" else 0
