"""Session fixture of the AWS tests: one synthesis of everything (see aws_synth.py)."""

from __future__ import annotations

import json

import pytest
from aws_synth import DEPLOY_SPEC, EXAMPLES, REPO, Synth


@pytest.fixture(scope="session")
def synth(sample_model, tmp_path_factory) -> Synth:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from stacks.aws.app import add_deployment, add_pipeline
    from twinserve.spec import load_spec

    outdir = tmp_path_factory.mktemp("cdk.out")
    # The same feature flags as `cdk synth` (cdk.json), so the tests see what the CLI produces.
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context=context)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    result = Synth(outdir)
    for path in [DEPLOY_SPEC, *EXAMPLES]:
        spec = load_spec(path)
        for stage in add_deployment(app, spec, path.parent):
            result.stages[stage.node.id] = stage
        pipeline = add_pipeline(app, spec, path)  # the app adds one where the spec has a pipeline section
        if pipeline is not None:
            result.pipelines[pipeline.node.id] = pipeline
    try:
        app.synth()
    except Exception as exc:  # noqa: BLE001 - reported by test_cdk_nag, templates are on disk
        result.error = str(exc)
    return result
