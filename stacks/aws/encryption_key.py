"""The environment's customer-managed KMS key, the same for every AWS serving platform."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms

from constructs import Construct
from twinserve.spec import EnvironmentSpec

from ..environment_policy import EnvironmentPolicy


def environment_key(
    scope: Construct, env: EnvironmentSpec, policy: EnvironmentPolicy, name: str, *, protects: str
) -> kms.Key | None:
    """``Key`` in ``scope`` (alias ``alias/twinserve/<name>``, rotated, kept with the data) when
    ``aws.encryption`` is ``kms``; ``protects`` says what it encrypts (its description)."""
    if env.aws.encryption != "kms":
        return None
    return kms.Key(
        scope,
        "Key",
        enable_key_rotation=True,
        removal_policy=cdk.RemovalPolicy.RETAIN if policy.keep_data else cdk.RemovalPolicy.DESTROY,
        alias=f"alias/twinserve/{name}",
        description=f"twinserve {name}: {protects}",
    )
