"""Session fixture of the AWS tests: one synthesis of everything (see aws_synth.py)."""

from __future__ import annotations

import json

import pytest
from aws_synth import DEPLOY_SPEC, EXAMPLES, REPO, Synth


@pytest.fixture(scope="session")
def synth(sample_model, tmp_path_factory) -> Synth:
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from stacks.aws.app import add_deployment
    from twinserve.spec import load_spec

    outdir = tmp_path_factory.mktemp("cdk.out")
    # The same feature flags as `cdk synth` (cdk.json), so the tests see what the CLI produces.
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    app = cdk.App(outdir=str(outdir), context=context)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    result = Synth(outdir)
    for path in [DEPLOY_SPEC, *EXAMPLES]:
        for stage in add_deployment(app, load_spec(path), path.parent):
            result.stages[stage.node.id] = stage
    try:
        app.synth()
    except Exception as exc:  # noqa: BLE001 - reported by test_cdk_nag, templates are on disk
        result.error = str(exc)
    return result
