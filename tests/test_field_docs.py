"""Props, args and spec fields are documented where they are declared (aws-cdk-lib style): a field
without its docstring fails here, in every construct library and in the spec."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from twinserve.spec.models import DeploymentSpec
from twinserve.spec.reference import _models_in

LIBRARY = Path(__file__).resolve().parents[1] / "constructs" / "twinserve"
MODULES = sorted(p for folder in ("aws", "azure", "platform") for p in (LIBRARY / folder).glob("*.py"))


def _dataclasses(path: Path) -> list[ast.ClassDef]:
    tree = ast.parse(path.read_text())
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any("dataclass" in ast.unparse(d) for d in node.decorator_list)
        and not node.name.startswith("_")
    ]


def _undocumented_fields(cls: ast.ClassDef) -> list[str]:
    body = cls.body
    missing = []
    for i, statement in enumerate(body):
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            following = body[i + 1] if i + 1 < len(body) else None
            documented = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            )
            if not documented:
                missing.append(statement.target.id)
    return missing


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_props_and_args_field_has_a_docstring(path):
    found = {cls.name: _undocumented_fields(cls) for cls in _dataclasses(path)}
    assert not {name: fields for name, fields in found.items() if fields}


def test_every_spec_field_is_described():
    models: list = []
    _models_in(DeploymentSpec, models)
    missing = [
        f"{m.__name__}.{name}" for m in models for name, field in m.model_fields.items() if not field.description
    ]
    assert not missing
