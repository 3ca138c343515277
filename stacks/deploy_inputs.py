"""What one pipeline execution fixes for every environment of both clouds: the model version.

With ``pipeline.model_source: registry`` the pipeline's Build step resolves the newest *Approved*
version of the promotion model package group once (``twinserve resolve-model``), unpacks its
archive and writes this file; the CDK app (every AWS stage) and the Pulumi program (every Azure
step, which gets the Build step's output) read it through ``TWINSERVE_DEPLOY_INPUTS`` and serve
exactly that version and those bytes. Unset (``make synth``, the tests, a pipeline without
registry), the spec is used as written.

    {"model_version": "7", "model_dir": "approved-model/model",
     "model_package_arn": "arn:aws:sagemaker:...:model-package/iris/7"}

``model_dir`` is relative to the file's folder, so the file travels with the Build step's output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from twinserve.spec import DeploymentSpec

DEPLOY_INPUTS_VARIABLE = "TWINSERVE_DEPLOY_INPUTS"
DEPLOY_INPUTS_FILE = "twinserve-deploy-inputs.json"
"""Its name in the Build step's output folder (cdk.out)."""


@dataclass(frozen=True)
class DeployInputs:
    model_version: str
    """The approved package's version number: the spec's ``model.version`` for this execution."""
    model_dir: Path
    """The package's archive, unpacked: the spec's ``model.artifact.path`` for this execution."""
    model_package_arn: str
    """Which package it was (tagged on both clouds' model versions for traceability)."""

    def to_json(self, relative_to: Path) -> str:
        return json.dumps(
            {
                "model_version": self.model_version,
                "model_dir": os.path.relpath(self.model_dir, relative_to),
                "model_package_arn": self.model_package_arn,
            },
            indent=2,
        )


def load_deploy_inputs(environ: Mapping[str, str] = os.environ) -> DeployInputs | None:
    """The inputs ``TWINSERVE_DEPLOY_INPUTS`` names, or None when it is unset."""
    value = environ.get(DEPLOY_INPUTS_VARIABLE)
    if not value:
        return None
    path = Path(value)
    try:
        raw = json.loads(path.read_text())
        inputs = DeployInputs(
            model_version=str(raw["model_version"]),
            model_dir=(path.parent / raw["model_dir"]).resolve(),
            model_package_arn=str(raw["model_package_arn"]),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{DEPLOY_INPUTS_VARIABLE}={value}: not a deploy-inputs file ({exc})") from None
    if not inputs.model_version.isdigit():
        raise ValueError(f"{DEPLOY_INPUTS_VARIABLE}={value}: model_version {inputs.model_version!r} is not a number")
    if not inputs.model_dir.is_dir():
        raise ValueError(f"{DEPLOY_INPUTS_VARIABLE}={value}: model_dir {inputs.model_dir} is not a folder")
    return inputs


def apply_deploy_inputs(spec: DeploymentSpec, inputs: DeployInputs | None) -> DeploymentSpec:
    """``spec`` serving the execution's model version from its folder (variants that pin another
    version keep it)."""
    if inputs is None:
        return spec
    artifact = spec.model.artifact.model_copy(update={"path": str(inputs.model_dir), "s3_uri": None})
    model = spec.model.model_copy(update={"version": inputs.model_version, "artifact": artifact})
    return spec.model_copy(update={"model": model})
