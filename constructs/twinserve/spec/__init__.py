"""The deployment spec: load it with :func:`load_spec`; every error is a :class:`SpecError`."""

from .errors import SpecError, SpecIssue
from .loader import load_spec, parse_spec, spec_label
from .models import ENVIRONMENT_NAMES, DeploymentSpec, EnvironmentSpec
from .stage_ids import aws_stage_id, aws_stage_ids

__all__ = [
    "ENVIRONMENT_NAMES",
    "DeploymentSpec",
    "EnvironmentSpec",
    "SpecError",
    "SpecIssue",
    "aws_stage_id",
    "aws_stage_ids",
    "load_spec",
    "parse_spec",
    "spec_label",
]
