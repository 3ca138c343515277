"""Reads a spec file: YAML -> defaults merged into each environment -> types -> cross-field rules.

The file has six top-level keys::

    name, model, container      # what is deployed (the same in every environment)
    defaults                    # environment settings shared by all environments
    environments                # dev / staging / prod, each overriding parts of defaults
    pipeline                    # optional: the AWS promotion pipeline

An environment's settings are ``defaults`` deep-merged with its own section (mappings merge key by
key; lists and scalars replace). Errors name the key where the bad value was written: under
``environments.<env>`` when the environment set it, under ``defaults`` when it was inherited.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import MISSING, SpecError, SpecIssue
from .models import (
    ENVIRONMENT_NAMES,
    PATTERN_HINTS,
    ContainerSpec,
    DeploymentSpec,
    EnvironmentSpec,
    ModelSpec,
    PipelineSpec,
)
from .rules import check_deployment

TOP_LEVEL_KEYS = {
    "name": None,
    "model": ModelSpec,
    "container": ContainerSpec,
    "defaults": EnvironmentSpec,
    "environments": None,
    "pipeline": PipelineSpec,
}


def spec_label(path: str | Path) -> str:
    """Short unique name of a spec file among several (``examples/aws/canary.yaml`` -> ``aws-canary``),
    used to prefix CDK stage ids and plan folders when several specs are synthesized together."""
    path = Path(path)
    return f"{path.parent.name}-{path.stem}"


def load_spec(path: str | Path) -> DeploymentSpec:
    """Load, merge and validate a spec file. Raises :class:`SpecError` naming every problem."""
    path = Path(path)
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(file, [SpecIssue("(file)", MISSING, "spec file not found")]) from None
    except yaml.YAMLError as exc:
        raise SpecError(file, [SpecIssue("(file)", MISSING, f"not valid YAML: {exc}")]) from None
    return parse_spec(raw, file=file)


def parse_spec(raw: Any, *, file: str = "<spec>") -> DeploymentSpec:
    """Validate an already-parsed spec document (a dict as YAML gives it)."""
    if not isinstance(raw, dict):
        raise SpecError(
            file, [SpecIssue("(file)", raw, "the spec must be a mapping with keys " + _allowed(TOP_LEVEL_KEYS))]
        )
    issues: list[SpecIssue] = []
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            issues.append(SpecIssue(str(key), raw[key], f"unknown field; allowed: {_allowed(TOP_LEVEL_KEYS)}"))

    defaults = raw.get("defaults") or {}
    envs_raw = raw.get("environments")
    if not isinstance(defaults, dict):
        issues.append(SpecIssue("defaults", defaults, "must be a mapping of environment settings"))
        defaults = {}
    if not isinstance(envs_raw, dict) or not envs_raw:
        issues.append(
            SpecIssue(
                "environments",
                envs_raw if envs_raw is not None else MISSING,
                f"must map at least one of {', '.join(ENVIRONMENT_NAMES)} to its settings",
            )
        )
        envs_raw = {}

    merged_envs: dict[str, Any] = {}
    for env_name, overrides in envs_raw.items():
        if env_name not in ENVIRONMENT_NAMES:
            issues.append(
                SpecIssue(
                    f"environments.{env_name}",
                    env_name,
                    f"unknown environment; allowed: {', '.join(ENVIRONMENT_NAMES)}",
                )
            )
            continue
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            issues.append(SpecIssue(f"environments.{env_name}", overrides, "must be a mapping of settings"))
            continue
        merged_envs[env_name] = (_deep_merge(defaults, overrides), overrides)

    document = {k: raw.get(k) for k in ("name", "model", "container", "pipeline") if k in raw}
    document["environments"] = {}
    # Shape and types of the environment-independent part first.
    try:
        DeploymentSpec.model_validate({**document, "environments": {}})
    except ValidationError as exc:
        issues.extend(_issues_from_pydantic(exc, DeploymentSpec))

    validated_envs: dict[str, EnvironmentSpec] = {}
    for env_name, (merged, overrides) in merged_envs.items():
        try:
            validated_envs[env_name] = EnvironmentSpec.model_validate(merged)
        except ValidationError as exc:
            for issue in _issues_from_pydantic(exc, EnvironmentSpec):
                issues.append(_locate(issue, env_name, overrides))

    if issues:
        raise SpecError(file, _dedupe(issues))

    spec = DeploymentSpec.model_validate({**document, "environments": validated_envs})
    rule_issues = check_deployment(spec)
    if rule_issues:
        located = []
        for issue in rule_issues:
            parts = issue.path.split(".")
            if parts[0] == "environments" and parts[1] in merged_envs:
                inner = SpecIssue(".".join(parts[2:]), issue.value, issue.message)
                located.append(_locate(inner, parts[1], merged_envs[parts[1]][1]))
            else:
                located.append(issue)
        raise SpecError(file, _dedupe(located))
    return spec


# --------------------------------------------------------------------------- helpers


def _deep_merge(base: dict, override: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _written_by(overrides: dict, parts: list[str]) -> bool:
    """True when the environment's own section set the value at ``parts`` (or a list/scalar above it)."""
    node: Any = overrides
    for part in parts:
        if not isinstance(node, dict):
            return True  # a list or scalar written whole by the environment
        if part not in node:
            return False
        node = node[part]
    return True


def _locate(issue: SpecIssue, env_name: str, overrides: dict) -> SpecIssue:
    """Point at the key the user wrote: the environment's own section, or defaults."""
    parts = issue.path.split(".") if issue.path else []
    if not parts or _written_by(overrides, parts):
        where = f"environments.{env_name}" + (f".{issue.path}" if parts else "")
        return SpecIssue(where, issue.value, issue.message)
    return SpecIssue(f"defaults.{issue.path}", issue.value, issue.message, inherited_by=(env_name,))


def _issues_from_pydantic(exc: ValidationError, root: type[BaseModel]) -> list[SpecIssue]:
    issues = []
    for err in exc.errors():
        location = [str(part) for part in err["loc"]]
        path = ".".join(location)
        value = err.get("input", MISSING)
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _fields_at(root, location[:-1])
            message = "unknown field" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
        elif kind == "missing":
            message = "required field is missing"
            value = MISSING
        elif kind == "literal_error":
            message = "not an allowed value; " + err["msg"].replace("Input should be", "expected")
        elif kind == "string_pattern_mismatch":
            pattern = err.get("ctx", {}).get("pattern", "")
            message = PATTERN_HINTS.get(pattern, err["msg"])
        else:
            message = err["msg"]
        issues.append(SpecIssue(path, value, message))
    return issues


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    """Names of the fields allowed at ``loc`` inside ``model`` (aliases as written in YAML)."""
    current: Any = model
    for part in loc:
        if part.isdigit():
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = _field_by_key(current, part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _field_by_key(model: type[BaseModel], key: str):
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside ``X``, ``X | None``, ``list[X]`` or ``dict[K, X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    origin = getattr(annotation, "__origin__", None)
    if origin is not None:
        return _model_in(origin)
    return None


def _allowed(keys: dict) -> str:
    return ", ".join(keys)


def _dedupe(issues: list[SpecIssue]) -> list[SpecIssue]:
    """One line per bad key: a default that breaks several environments is reported once."""
    merged: dict[tuple[str, str], SpecIssue] = {}
    for issue in issues:
        key = (issue.path, issue.message)
        if key in merged:
            first = merged[key]
            merged[key] = SpecIssue(first.path, first.value, first.message, first.inherited_by + issue.inherited_by)
        else:
            merged[key] = issue
    return list(merged.values())
