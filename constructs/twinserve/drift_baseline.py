"""The drift baseline of one environment's ``monitoring`` section, computed at synth time.

The CDK and Pulumi stacks call :func:`baseline_for_monitoring` and ship the document it returns
(:func:`write_baseline`) beside the scheduled check; the check itself is the container's code
(``twinserve_serving.drift``), so the baseline and the check cannot disagree on a statistic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from twinserve_serving.drift import DriftInputError, compute_baseline, read_table

from .spec.models import MonitoringSpec


def baseline_from_table(columns: dict[str, list], monitoring: MonitoringSpec) -> dict:
    """The baseline of a dataset already read, with the environment's features, statistics and thresholds."""
    if monitoring.features is not None:
        unknown = [name for name in monitoring.features if name not in columns]
        if unknown:
            raise DriftInputError(
                f"monitoring.features: {unknown} not in the reference dataset; its columns are: {', '.join(columns)}"
            )
    return compute_baseline(
        columns,
        categorical=monitoring.categorical_features,
        numeric_check=(monitoring.numeric.statistic, monitoring.numeric.threshold),
        categorical_check=(monitoring.categorical.statistic, monitoring.categorical.threshold),
        min_rows=monitoring.min_rows,
        features=monitoring.features,
    )


def baseline_for_monitoring(monitoring: MonitoringSpec, spec_dir: Path) -> dict:
    """Read ``monitoring.reference_dataset`` (relative to the spec's folder) and compute its baseline.

    Raises ``DriftInputError`` naming the field (``monitoring.reference_dataset``,
    ``monitoring.features``) and what is allowed.
    """
    path = Path(monitoring.reference_dataset)
    path = path if path.is_absolute() else Path(spec_dir) / path
    try:
        columns = read_table(path)
    except DriftInputError as exc:
        raise DriftInputError(f"monitoring.reference_dataset: {exc}") from None
    return baseline_from_table(columns, monitoring)


def write_baseline(doc: dict, path: str | Path) -> Path:
    """Write the baseline JSON (features in their order) to ``path``: a temporary name, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
