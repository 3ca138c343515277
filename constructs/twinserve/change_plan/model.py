"""What a plan says: per environment and cloud, the changes and the flags; and the helpers both clouds'
comparisons share (property paths, how a value is shown)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("replace", "delete", "update", "create")
"""Actions in the order the report lists them (riskiest first)."""
SEVERITIES = {
    "refused": "the platform refuses it: the deployment fails",
    "disruptive": "it goes through, but loses data, capacity or serving",
    "leftover": "something is left behind in the cloud",
}
"""Flag severities, most severe first. Every flag makes ``twinserve plan`` exit 1."""

Path = tuple[str | int, ...]
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "(absent)"})()
"""A property that one side does not have."""


BLOCKING_SEVERITIES = ("refused", "disruptive")
"""Severities that make `twinserve plan` exit 1; a leftover (kept in the cloud by design) is only reported."""


@dataclass
class Change:
    """One resource's planned action."""

    action: str
    """create, update (in place), replace or delete."""
    id: str
    """AWS: ``<stack>/<logical id>``; Azure: the Pulumi logical name."""
    type: str
    """CloudFormation type or Pulumi type token."""
    why: str
    """The properties that differ and what that means."""
    changed: list[str] = field(default_factory=list)
    """Paths of the properties (AWS) or inputs (Azure) that differ."""


@dataclass
class Flag:
    """A change a platform refuses, or one that loses something."""

    severity: str
    """refused, disruptive or leftover (:data:`SEVERITIES`)."""
    rule: str
    """Short name of the platform rule (docs/change-plan.md lists them)."""
    message: str
    """What happens, in this plan's terms."""
    todo: str
    """What to do about it."""
    source: str
    """The platform's documentation of the rule."""
    resources: list[str] = field(default_factory=list)
    """The resources concerned (ids as in the changes)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Machine-readable extras (``--json``), e.g. Pulumi URNs to unprotect."""


@dataclass
class Section:
    """One environment on one cloud."""

    deployment: str
    """The spec's ``name``."""
    environment: str
    """dev, staging, prod, or ``pipeline`` (the AWS promotion pipeline stack)."""
    cloud: str
    """aws or azure."""
    target: str
    """What is deployed: the CloudFormation stacks or the Pulumi stack."""
    changes: list[Change] = field(default_factory=list)
    """Every resource that changes."""
    flags: list[Flag] = field(default_factory=list)
    """What the platforms refuse or what loses something."""
    notes: list[str] = field(default_factory=list)
    """The story of the change in a sentence or two (what a new image or model version does)."""

    def counts(self) -> dict[str, int]:
        return {a: n for a in ACTIONS if (n := sum(1 for c in self.changes if c.action == a))}

    def flag(self, flag: Flag) -> None:
        """Add ``flag``, merged into an equal flag of other resources."""
        for known in self.flags:
            if (known.rule, known.message, known.todo) == (flag.rule, flag.message, flag.todo):
                known.resources.extend(r for r in flag.resources if r not in known.resources)
                for key, value in flag.details.items():
                    known.details.setdefault(key, [])
                    known.details[key].extend(value if isinstance(value, list) else [value])
                return
        self.flags.append(flag)


def show_path(path: Path) -> str:
    """``("ProductionVariants", 0, "InstanceType")`` -> ``ProductionVariants[0].InstanceType``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_path(text: str) -> Path:
    """Pulumi property path (``sku.capacity``, ``agentPoolProfiles[*].count``) -> parts, ``*`` kept."""
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[[^\]]*\]", text):
        if token.startswith("["):
            inner = token[1:-1].strip("\"'")
            parts.append(int(inner) if inner.isdigit() else inner)
        else:
            parts.append(token)
    return tuple(parts)


def path_matches(pattern: Path, path: Path) -> bool:
    """True when one is a prefix of the other (``*`` matches any part): a change below, at or above a
    listed property counts as a change of it."""
    return all(p == "*" or p == q for p, q in zip(pattern, path, strict=False))


def path_under(pattern: Path, path: Path) -> bool:
    """True when ``path`` is ``pattern`` or below it (``*`` matches any part)."""
    return len(path) >= len(pattern) and path_matches(pattern, path)


NAME_KEYS = ("VariantName", "name", "Name")
"""Keys that name the items of a list (production variants, node pools): lists of such items are
shown by their names."""


def show_value(value: Any, limit: int = 40) -> str:
    if value is MISSING:
        return "(absent)"
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        key = next((k for k in NAME_KEYS if all(k in v for v in value)), None)
        if key:
            return "[" + ", ".join(str(v[key]) for v in value) + "]"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_change(old: Any, new: Any) -> str:
    """``old -> new``, or ``changed`` when both are too long to tell apart."""
    before, after = show_value(old), show_value(new)
    return "changed" if before == after else f"{before} -> {after}"


def summarize(items: list[str], most: int = 3) -> str:
    unique = list(dict.fromkeys(items))
    shown = "; ".join(unique[:most])
    return shown + (f"; and {len(unique) - most} more" if len(unique) > most else "")


@dataclass
class ChangePlan:
    """Everything ``twinserve plan`` found."""

    spec: str
    """The working copy's spec file."""
    base: str
    """``REV:path`` of the base spec."""
    commit: str
    """The base revision's commit id."""
    folders: list[dict[str, Any]]
    """Where the base side's model folder and build context came from."""
    sections: list[Section]
    """Per environment and cloud."""
    seconds: float = 0.0
    """Wall time of the plan (both sides synthesized)."""

    @property
    def flags(self) -> list[tuple[Section, Flag]]:
        return [(s, f) for s in self.sections for f in s.flags]

    @property
    def exit_code(self) -> int:
        return 1 if any(flag.severity in BLOCKING_SEVERITIES for _, flag in self.flags) else 0
