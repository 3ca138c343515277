"""Argument checks with one message shape for both construct libraries - the spec's own shape:

    ``<Props or Args class>.<field>: <what is allowed> (got <value>)``

A construct (CDK) or component (Pulumi) validates its props first thing in its constructor, before
it creates anything, through one :class:`Checks` per props class. SDK-free: the AWS constructs pass
``skip=cdk.Token.is_unresolved`` so values only known at deploy time are not judged at synth time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NoReturn


class Checks:
    """The checks of one props/args class, e.g. ``Checks("SageMakerEndpointProps")``."""

    def __init__(self, owner: str, *, skip: Callable[[Any], bool] | None = None) -> None:
        self.owner = owner
        self._skip = skip or (lambda value: False)

    def fail(self, field: str, value: Any, allowed: str) -> NoReturn:
        raise ValueError(f"{self.owner}.{field}: {allowed} (got {value!r})")

    def that(self, condition: bool, field: str, value: Any, allowed: str) -> None:
        if not condition:
            self.fail(field, value, allowed)

    def range(self, field: str, value: float | None, low: float, high: float, unit: str = "") -> None:
        """``low <= value <= high``; ``None`` (unset) passes."""
        if value is None or self._skip(value):
            return
        if not low <= value <= high:
            self.fail(field, value, f"must be {low:g}..{high:g}{unit}")

    def pattern(self, field: str, value: str | None, regex: str | re.Pattern[str], allowed: str) -> None:
        """``value`` matches ``regex`` whole; ``None`` (unset) passes."""
        if value is None or self._skip(value):
            return
        if not re.fullmatch(regex, value):
            self.fail(field, value, allowed)

    def one_of(self, field: str, value: Any, choices: Iterable[Any]) -> None:
        choices = tuple(choices)
        if value not in choices:
            self.fail(field, value, f"must be one of {', '.join(map(str, choices))}")

    def unique(self, field: str, values: list[Any], what: str = "values") -> None:
        if len(set(values)) != len(values):
            self.fail(field, values, f"{what} must be unique")
