"""The deployment spec: load it with :func:`load_spec`; every error is a :class:`SpecError`."""

from .errors import SpecError, SpecIssue
from .loader import load_spec, parse_spec, spec_label
from .models import ENVIRONMENT_NAMES, DeploymentSpec, EnvironmentSpec

__all__ = [
    "ENVIRONMENT_NAMES",
    "DeploymentSpec",
    "EnvironmentSpec",
    "SpecError",
    "SpecIssue",
    "load_spec",
    "parse_spec",
    "spec_label",
]
