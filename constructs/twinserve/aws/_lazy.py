"""A property value rendered when the template is written, from state complete by then.

aws-cdk-lib's own constructs pass ``Lazy.any({produce})`` to an L1 property for this. From Python,
``cdk.Lazy.any`` cannot call back into a producer (jsii cannot hand the resolve context to Python),
so the value is an :class:`~aws_cdk.IResolvable` of our own; the struct it returns is rendered into
CloudFormation's casing like any other property value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import jsii


@jsii.implements(cdk.IResolvable)
class Deferred:
    def __init__(self, render: Callable[[], Any], description: str) -> None:
        self._render = render
        self._description = description

    @property
    def creation_stack(self) -> list[str]:
        return [self._description]

    def resolve(self, context: cdk.IResolveContext) -> Any:
        return self._render()

    def to_string(self) -> str:
        return cdk.Token.as_string(self)
