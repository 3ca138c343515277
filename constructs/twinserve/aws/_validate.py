"""Prop checks of the AWS constructs: :class:`twinserve.checks.Checks` with CDK tokens skipped, since
a value known only at deploy time (a ``Ref``, a parameter) cannot be judged at synth time."""

from __future__ import annotations

import aws_cdk as cdk

from ..checks import Checks

S3_URI = r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?"


def checks(props_class: str) -> Checks:
    """The checks of one props class, e.g. ``checks("SageMakerEndpointProps")``."""
    return Checks(props_class, skip=cdk.Token.is_unresolved)
