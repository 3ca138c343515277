"""Fixtures for the Azure tests: the sample model on disk, and plans of the Pulumi program.

Plans are made exactly as ``twinserve synth`` makes ``pulumi.out/<env>.json``: the project's Pulumi
entry point runs under the recording mocks of ``twinserve.pulumi_plan`` with the stack's
``Pulumi.<env>.yaml`` config, and the resource graph is exported with ``PlannedResource.as_dict``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure_plan_queries import REPO

from twinserve.synth import Project, plan_azure_environment

SAMPLE_MODEL = REPO / "build" / "sample-model"

_PLANS: dict[tuple[str, str], list[dict]] = {}
# The budget's start date defaults to the current month; fixed here so plans are the same every month.
FIXED_CONFIG = {"twinserve:budgetStartDate": "2026-11-01"}


@pytest.fixture(scope="session")
def sample_model() -> Path:
    """The sample model folder the specs point at, built once if missing."""
    model_dir = SAMPLE_MODEL / "model"
    if not (model_dir / "model.onnx").is_file():
        subprocess.run(
            [
                sys.executable,
                str(REPO / "model_containers" / "sample_model" / "build_sample_model.py"),
                "--out",
                str(SAMPLE_MODEL),
            ],
            check=True,
            cwd=REPO,
        )
    return model_dir


@pytest.fixture(scope="session")
def plan(sample_model):
    """plan(spec_path, env) -> list of resource dicts (cached: each plan runs once per session)."""
    project = Project.find(REPO)

    def make(spec_path: Path, env_name: str) -> list[dict]:
        key = (str(spec_path), env_name)
        if key not in _PLANS:
            cwd = os.getcwd()
            os.chdir(REPO)  # asset paths are recorded relative to the project root, as in synth
            try:
                _PLANS[key] = [
                    r.as_dict()
                    for r in plan_azure_environment(project, env_name, spec_path, config_overrides=FIXED_CONFIG)
                ]
            finally:
                os.chdir(cwd)
        return _PLANS[key]

    return make
