"""Small helpers that make construct validation errors read the same everywhere:
``<Props>.<prop>: <bad value> - <what is allowed>``."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk


def fail(props: str, prop: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{props}.{prop}: {value!r} is not allowed; {allowed}")


def check_range(props: str, prop: str, value: int | float | None, low: float, high: float) -> None:
    if value is None or cdk.Token.is_unresolved(value):
        return
    if not low <= value <= high:
        fail(props, prop, value, f"must be between {low:g} and {high:g}")


def check_pattern(props: str, prop: str, value: str | None, pattern: str, allowed: str) -> None:
    if value is None or cdk.Token.is_unresolved(value):
        return
    if not re.fullmatch(pattern, value):
        fail(props, prop, value, allowed)


# SageMaker resource names (endpoints, variants, transform jobs): alphanumerics and '-', <= 63.
SAGEMAKER_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
SAGEMAKER_NAME_HINT = "use 1-63 letters, digits and '-' (not first or last)"
INSTANCE_TYPE = r"ml\.[a-z0-9]+\.[a-z0-9]+"
INSTANCE_TYPE_HINT = "use a SageMaker instance type such as 'ml.m5.large'"
S3_URI = r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?"


def is_burstable(instance_type: str) -> bool:
    """ml.t2/ml.t3/... instances cannot be autoscaled by SageMaker."""
    return instance_type.startswith("ml.t")


# Families whose volume is local NVMe instance storage (hardware-encrypted): SageMaker refuses a volume
# KMS key for them, on endpoint configs (KmsKeyId) and transform jobs (VolumeKmsKeyId) alike.
_INSTANCE_STORAGE_FAMILIES = {"g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "inf2", "trn1"}


def has_instance_storage(instance_type: str) -> bool:
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else ""
    return family.endswith("d") or family.endswith("dn") or family in _INSTANCE_STORAGE_FAMILIES


_SIZE = re.compile(r"^(?:(\d+)?xlarge|large|medium|small)$")


def vcpus_of(instance_type: str) -> int:
    """vCPUs of an ml.* instance from its size (large = 2, xlarge = 4, Nxlarge = 4N, medium = 2).

    True for the general purpose, compute and memory optimised families SageMaker hosts on; used to
    normalise CPUUtilization, which CloudWatch reports summed over all cores (0..100 x vCPUs)."""
    size = instance_type.rsplit(".", 1)[-1]
    match = _SIZE.match(size)
    if not match:
        raise ValueError(f"instance_type: {instance_type!r} has a size twinserve cannot read; use e.g. 'ml.m5.large'")
    if size in ("large", "medium", "small"):
        return 2 if size != "small" else 1
    return 4 * int(match.group(1) or 1)
