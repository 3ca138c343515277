"""Spec errors that say where, what and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SpecIssue:
    path: str
    """Dotted field path in the file, e.g. ``environments.prod.compute.instance_count``."""
    value: Any
    message: str
    """What is wrong and what is allowed."""
    inherited_by: tuple[str, ...] = ()
    """Environments that took the bad value from ``defaults``."""

    def render(self, file: str) -> str:
        shown = "(missing)" if self.value is _MISSING else repr(self.value)
        where = f" [inherited by environments {', '.join(self.inherited_by)}]" if self.inherited_by else ""
        return f"{file}: {self.path}: {self.message} (got {shown}){where}"


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - only shown in debugging
        return "(missing)"


_MISSING: Any = _Missing()
MISSING = _MISSING


class SpecError(ValueError):
    """A spec file that cannot be deployed. Carries every issue found, not just the first."""

    def __init__(self, file: str, issues: list[SpecIssue]):
        self.file = file
        self.issues = issues
        lines = [issue.render(file) for issue in issues]
        super().__init__(f"invalid deployment spec, {len(issues)} problem(s):\n  " + "\n  ".join(lines))
