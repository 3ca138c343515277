"""The `twinserve` command."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .spec import SpecError, load_spec

DEFAULT_SPEC = Path("deploy/twinserve.yaml")


def _cmd_validate(args: argparse.Namespace) -> int:
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.spec}: valid - deployment {spec.name!r}, model {spec.model.name} v{spec.model.version}")
    for name, env in spec.environments.items():
        variants = ", ".join(f"{v.name} {v.weight}%" for v in env.serving.variants)
        shadow = (
            f", shadow {env.serving.shadow.name} {env.serving.shadow.sample_percent}%" if env.serving.shadow else ""
        )
        print(
            f"  {name:<8} targets={'+'.join(env.targets):<10} {env.serving.endpoint_type:<10} "
            f"{env.compute.instance_count} x {_aws_size(env)} / {env.compute.azure_instance_type}; "
            f"variants: {variants}{shadow}; rollout {env.rollout.strategy}"
        )
    for name, env in spec.environments.items():
        for line in _monitoring_lines(name, env):
            print(line)
    return 0


def _aws_size(env) -> str:
    """What one AWS instance is on the environment's platform."""
    if env.aws.platform == "ecs_fargate":
        return f"Fargate {env.aws.fargate.cpu / 1024:g} vCPU/{env.aws.fargate.memory_mib} MiB"
    if env.aws.platform == "lambda":
        return f"Lambda {env.aws.lambda_function.memory_mb} MB"
    return env.compute.aws_instance_type


def _monitoring_lines(env_name: str, env) -> list[str]:
    """What drift monitoring will exist in one environment, per cloud (offline, from the spec)."""
    monitoring = env.monitoring
    if monitoring is None:
        return []
    features = ", ".join(monitoring.features) if monitoring.features else "every column"
    checks = (
        f"numeric {monitoring.numeric.statistic} {'<' if monitoring.numeric.statistic == 'chi_squared' else '>'} "
        f"{monitoring.numeric.threshold:g}, categorical {monitoring.categorical.statistic} "
        f"{'<' if monitoring.categorical.statistic == 'chi_squared' else '>'} {monitoring.categorical.threshold:g}"
    )
    after_drift = "notify" if monitoring.on_drift == "notify" else "notify + start retraining"
    lines = [
        f"  {env_name:<8} monitoring: {monitoring.reference_dataset} ({features}); {checks}; "
        f"min {monitoring.min_rows} rows; {monitoring.schedule}; keep {monitoring.retention_days} days; {after_drift}"
    ]
    per_cloud = {
        "aws": f"data capture {monitoring.sampling_percent}% -> S3 data-capture/; EventBridge Scheduler -> Step "
        "Functions -> SageMaker Processing job (the serving image's drift command) -> twinserve/Drift metrics; "
        "alarms <endpoint>-drift (DriftedFeatures >= 1) and <endpoint>-drift-check-failed -> alarm topic"
        + (
            "; EventBridge rule -> " + monitoring.retrain.aws.kind
            if monitoring.retrain and monitoring.retrain.aws
            else ""
        ),
        "azure": f"data collection {monitoring.sampling_percent}% on live deployments; per online endpoint an Azure ML "
        "schedule -> serverless command job (the serving image's drift command) -> alert on Failed Runs of "
        "twinserve-drift-<endpoint> -> drift action group"
        + (" + retraining webhook" if monitoring.retrain and monitoring.retrain.azure else ""),
    }
    lines += [f"  {'':<8}   {cloud:<5} {per_cloud[cloud]}" for cloud in env.targets]
    return lines


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import Project, format_summary, synth

    started = time.perf_counter()
    try:
        project = Project.find()
        spec_paths = _expand_specs(project.root, args.spec or [str(DEFAULT_SPEC)])
        summary = synth(
            project,
            spec_paths,
            cdk_out=project.root / args.cdk_out,
            pulumi_out=project.root / args.pulumi_out,
            only_env=args.env,
        )
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, KeyError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    plans = "<deployment>/<env>.json" if len(spec_paths) > 1 else "<env>.json"
    print(f"AWS: {args.cdk_out}/   Azure: {args.pulumi_out}/{plans}   ({time.perf_counter() - started:.1f} s)")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    from .change_plan import PlanInputError, make_plan
    from .change_plan.report import render, to_json
    from .synth import Project

    try:
        project = Project.find()
        spec_path = args.spec if args.spec.is_absolute() else project.root / args.spec
        plan = make_plan(project, args.base, spec_path, only_env=args.env)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (PlanInputError, FileNotFoundError, KeyError, RuntimeError, ModuleNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_json(plan) if args.json else render(plan))
    return plan.exit_code


def _expand_specs(root: Path, patterns: list[str]) -> list[Path]:
    """Spec paths relative to the project root; shell-style patterns are expanded (sorted)."""
    paths: list[Path] = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matches = sorted(root.glob(pattern))
            if not matches:
                raise FileNotFoundError(f"--spec {pattern!r} matches no file under {root}")
            paths.extend(matches)
        else:
            path = Path(pattern)
            paths.append(path if path.is_absolute() else root / path)
    return [p.resolve() for p in paths]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twinserve",
        description="One model, one container, one deployment spec: serve it on Amazon SageMaker and Azure ML.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = sub.add_parser(
        "validate",
        help="check a deployment spec file",
        description="Check a deployment spec. Exit 0 and a summary per environment when "
        "valid; exit 2 and every problem (file, field path, value, what is "
        "allowed) when not.",
    )
    validate.add_argument("spec", type=Path, metavar="PATH", help="the spec file, e.g. deploy/twinserve.yaml")
    validate.set_defaults(func=_cmd_validate)

    synth = sub.add_parser(
        "synth",
        help="synthesize both clouds for every environment",
        description="Validate the spec, run `cdk synth` (pinned CDK CLI) into cdk.out/ and "
        "the Pulumi program of every environment under mocks into "
        "pulumi.out/<env>.json, then print resources per environment and cloud. "
        "Run from the project folder (the one with cdk.json and Pulumi.yaml).",
    )
    synth.add_argument(
        "--spec",
        action="append",
        metavar="PATH",
        help=f"spec file, relative to the project folder (default: {DEFAULT_SPEC}); repeat it or "
        "use a quoted pattern such as 'examples/*/*.yaml' to synthesize several at once",
    )
    synth.add_argument("--env", choices=["dev", "staging", "prod"], help="only this environment")
    synth.add_argument("--cdk-out", type=Path, default=Path("cdk.out"), help="cloud assembly folder (default: cdk.out)")
    synth.add_argument(
        "--pulumi-out", type=Path, default=Path("pulumi.out"), help="Azure plan folder (default: pulumi.out)"
    )
    synth.set_defaults(func=_cmd_synth)

    plan = sub.add_parser(
        "plan",
        help="what a spec change would do on each cloud, offline",
        description="Compare the spec at a git revision with the working copy, without credentials: "
        "synthesize both as `twinserve synth` does (the pinned CDK CLI, one run per side, and the Pulumi "
        "program under mocks), then list per environment and cloud what would be created, updated in "
        "place, replaced or deleted, and flag what SageMaker, CloudFormation, Azure or Pulumi would refuse "
        "and what loses data, capacity or serving - each flag with its platform rule and what to do. The "
        "model folder and build context come from the revision where git tracks them, else from the "
        "working tree for both sides (the report says which). Exit 0: nothing refused or disruptive "
        "(leftovers, resources kept in the cloud by design, are listed only); 1: a refused or disruptive "
        "flag; 2: no plan (unknown revision, invalid spec, missing files, failed synth). Run from the "
        "project folder.",
    )
    plan.add_argument("--base", required=True, metavar="REV", help="the git revision to compare with, e.g. main")
    plan.add_argument(
        "--spec",
        type=Path,
        default=DEFAULT_SPEC,
        metavar="PATH",
        help=f"spec file, relative to the project folder (default: {DEFAULT_SPEC}); read at REV with git show",
    )
    plan.add_argument("--env", choices=["dev", "staging", "prod"], help="only this environment")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON (same exit codes)")
    plan.set_defaults(func=_cmd_plan)

    try:
        from .container_commands import add_container_commands
    except ModuleNotFoundError as exc:  # only while the container commands are not installed
        if exc.name != f"{__package__}.container_commands":
            raise
    else:
        add_container_commands(sub)
        from .drift_commands import add_drift_command  # the container's drift check, like local and batch

        add_drift_command(sub)
    from .invoke_command import add_invoke_command  # a deployed endpoint, with the caller's credentials

    add_invoke_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
