"""The plan as people read it (a table per environment and cloud, then the flags) and as JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from .model import ACTIONS, SEVERITIES, Change, ChangePlan

GROUP_AT = 4
"""Changes of the same kind (action, type, properties) that are shown as one row from this many on."""


def to_json(plan: ChangePlan) -> str:
    doc = {
        "spec": plan.spec,
        "base": plan.base,
        "commit": plan.commit,
        "folders": plan.folders,
        "sections": [asdict(s) | {"counts": s.counts()} for s in plan.sections],
        "flags": len(plan.flags),
        "exit_code": plan.exit_code,
        "seconds": round(plan.seconds, 1),
    }
    return json.dumps(doc, indent=2)


def _rows(changes: list[Change]) -> list[tuple[str, str, str, str]]:
    """Table rows, riskiest action first; many changes of one kind (e.g. one blob per file of a build
    context) become one row ``<common prefix>* (N)``."""
    ordered = sorted(changes, key=lambda c: (ACTIONS.index(c.action), c.id))
    groups: dict[tuple, list[Change]] = {}
    for change in ordered:
        groups.setdefault((change.action, change.type, tuple(change.changed)), []).append(change)
    rows = []
    for (action, kind, _), members in groups.items():
        short = kind.removeprefix("azure-native:")
        if len(members) >= GROUP_AT:
            prefix = os.path.commonprefix([m.id for m in members])
            rows.append((action, f"{prefix}* ({len(members)})", short, members[0].why))
        else:
            rows += [(action, m.id, short, m.why) for m in members]
    return rows


def render(plan: ChangePlan) -> str:
    lines = [f"twinserve plan: {plan.base} ({plan.commit[:12]}) -> working copy {plan.spec}"]
    for folder in plan.folders:
        where = "from the revision" if folder["from_revision"] else "from the working tree on both sides"
        lines.append(f"  {folder['field']}: {where} ({folder['reason']})")
    for section in plan.sections:
        counts = section.counts()
        summary = ", ".join(f"{n} to {a}" for a, n in counts.items()) if counts else "nothing to do"
        title = f"{section.deployment} {section.environment} - {section.cloud.upper()} ({section.target})"
        lines += ["", f"{title}: {summary}"]
        lines += [f"  {note}" for note in section.notes]
        rows = _rows(section.changes)
        if rows:
            header = ("action", "id", "type", "why")
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
            for row in [header, *rows]:
                cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
                lines.append(f"  {cells}  {row[3]}")
    flagged = plan.flags
    lines.append("")
    if not flagged:
        lines.append("No flags: nothing here is refused by the platforms or loses data, capacity or serving.")
    else:
        lines.append(f"Flags ({len(flagged)}):")
        for severity in SEVERITIES:
            for section, flag in flagged:
                if flag.severity != severity:
                    continue
                where = f"{section.deployment} {section.environment} {section.cloud.upper()}"
                more = len(flag.resources) - 3
                shown = ", ".join(flag.resources[:3]) + (f" and {more} more" if more > 0 else "")
                lines.append(f"  [{flag.severity}] {where}: {shown}  ({flag.rule})")
                lines.append(f"      {flag.message}")
                lines.append(f"      do:   {flag.todo}")
                lines.append(f"      rule: {flag.source}")
    lines.append("")
    lines.append(
        f"Planned offline in {plan.seconds:.1f} s (both sides synthesized, the CDK runs beside the Azure plans); "
        f"exit {plan.exit_code}: "
        + (
            "refused or disruptive flags above"
            if plan.exit_code
            else "leftovers only"
            if flagged
            else "nothing flagged"
        )
    )
    return "\n".join(lines)
