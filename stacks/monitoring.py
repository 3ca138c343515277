"""What both clouds' drift checks are given, from an environment's ``monitoring``: the baseline file
(computed here, at synth time, from the reference dataset) and the window of captured requests
each check compares (the schedule's interval)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from twinserve.drift_baseline import baseline_for_monitoring
from twinserve.spec.models import MonitoringSpec
from twinserve.spec.rules import schedule_interval_minutes

from .model_image import staging_dir

BASELINE_NAME = "baseline.json"
CRON_WINDOW_HOURS = 24
"""A cron schedule's interval is not read from the expression: its checks look at the last day."""


def drift_baseline_file(monitoring: MonitoringSpec, spec_dir: Path) -> Path:
    """``<staging dir>/drift-baselines/<content hash>/baseline.json``: one folder per distinct baseline,
    so an asset (AWS) or a blob (Azure) changes exactly when the baseline does."""
    document = json.dumps(baseline_for_monitoring(monitoring, spec_dir), indent=2, sort_keys=True).encode()
    folder = staging_dir().parent / "drift-baselines" / hashlib.sha256(document).hexdigest()[:16]
    path = folder / BASELINE_NAME
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{BASELINE_NAME}.partial"
        partial.write_bytes(document)
        partial.replace(path)
    return path


def drift_window_hours(monitoring: MonitoringSpec) -> int:
    """Hours of captured requests one check compares: the schedule's interval (rounded up), so every
    request is checked once."""
    minutes = schedule_interval_minutes(monitoring.schedule)
    return CRON_WINDOW_HOURS if minutes is None else max(1, -(-minutes // 60))
