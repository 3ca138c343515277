"""Data drift: captured requests compared with a baseline from the training (reference) dataset.

Standard library and numpy only: this runs inside the serving image, as a scheduled job on both
clouds (``python -m twinserve_serving drift``), and on the developer's machine (``twinserve drift``).
It knows nothing of the spec; the baseline document carries every setting the check needs.

The pieces, in the order a check uses them:

    compute_baseline(columns, ...)  reference columns -> baseline document (JSON), at synth time
    read_table(path)                a reference dataset: CSV with a header, JSON Lines, .npy
    read_capture(dir, baseline)     captured requests of either cloud -> rows in the baseline's order
    check_drift(baseline, rows)     the results document: per feature statistic, threshold, drifted
    write_report(results, out_dir)  drift.json and drift-report.md, written atomically

Statistics (``STATISTICS``: the one table, imported by the spec rules):

numeric features are binned on the reference's deciles (duplicate edges dropped, the outer bins
open-ended, so a shifted capture still lands in a bin) and compared bin by bin:

* ``psi`` - Population Stability Index, ``sum((c - r) * ln(c / r))`` over the bins. The industry's
  usual score for a shifted numeric distribution (credit risk, and most monitoring tools), with a
  well-known rule of thumb: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 significant.
  Unbounded; empty bins are smoothed with ``EPSILON`` so it stays finite.
* ``jensen_shannon`` - Jensen-Shannon *distance* with base-2 logarithms: the square root of the
  divergence, symmetric, and bounded in [0, 1] (0 identical, 1 disjoint), so one threshold reads the
  same on every feature. Needs no smoothing.

categorical features are compared by the proportion of each category; categories the reference
never had count together as one more category, ``UNSEEN``:

* ``linf`` - L-infinity distance, the largest absolute difference of one category's proportion, in
  [0, 1]. What SageMaker Model Monitor uses for categorical features, and easy to say aloud ("the
  share of 'red' moved by 12 points").
* ``chi_squared`` - Pearson's chi-squared test of homogeneity on the 2 x k table (reference counts,
  captured counts); the *threshold is a p-value* and a feature drifts when ``p < threshold``. The
  reference is a sample too, so a two-sample test is the honest one, and it copes with categories
  one side lacks. The survival function is computed here (regularized upper incomplete gamma),
  without scipy.

Every feature gets a ``score`` that reads the same whatever the statistic: ``value / threshold`` for
psi, jensen_shannon and linf, ``threshold / p`` for chi_squared. A feature has drifted exactly when
its score is above 1 (its statistic crossed the threshold); the results' ``max_score`` is the highest.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .content import CSV, JSON, NPY, parse_media_type
from .errors import ServingError
from .payload import Batch, decode, from_json

FORMAT_VERSION = 1

STATISTICS: dict[str, tuple[str, float, float]] = {
    "psi": ("numeric", 0.0, 10.0),
    "jensen_shannon": ("numeric", 0.0, 1.0),
    "linf": ("categorical", 0.0, 1.0),
    "chi_squared": ("categorical", 0.0, 0.5),
}
"""Drift statistic -> (feature kind, threshold range exclusive of the low end): PSI is unbounded but a
threshold above 10 never fires; Jensen-Shannon distance (base 2) and L-infinity lie in 0-1; a chi-squared
threshold is a p-value (drift below it)."""

DEFAULT_NUMERIC = ("psi", 0.2)
DEFAULT_CATEGORICAL = ("linf", 0.1)
EPSILON = 1e-4
"""Smallest proportion a bin or category is given in PSI, so an empty bin does not make it infinite."""
UNSEEN = "(unseen)"
"""The category that counts every captured value the reference never had."""
MAX_SCORE = 1e9
"""Scores are capped here (a chi-squared p-value of 0 would make it infinite, which JSON cannot hold)."""
TOP_CATEGORIES = 5
RESULTS_NAME = "drift.json"
REPORT_NAME = "drift-report.md"


class DriftInputError(ValueError):
    """A baseline, dataset or setting that cannot be used; the message names it and what is allowed."""


# ---------------------------------------------------------------------------- statistics
def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population Stability Index of two proportion vectors (smoothed with EPSILON, renormalised)."""
    r, c = _smoothed(reference), _smoothed(current)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(reference: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon distance, base 2: in [0, 1]."""
    p, q = _normalised(reference), _normalised(current)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


def linf(reference: Sequence[float], current: Sequence[float]) -> float:
    """Largest absolute difference of one category's proportion."""
    return float(np.max(np.abs(_normalised(reference) - _normalised(current))))


def chi_squared_test(reference_counts: Sequence[float], current_counts: Sequence[float]) -> tuple[float, int, float]:
    """Pearson's chi-squared test of homogeneity on the 2 x k table: (statistic, degrees of freedom, p)."""
    table = np.asarray([reference_counts, current_counts], dtype=float)
    table = table[:, table.sum(axis=0) > 0]  # a category neither side has tells nothing
    dof = table.shape[1] - 1
    if dof < 1 or table.sum(axis=1).min() <= 0:
        return 0.0, max(dof, 0), 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, dof, chi2_sf(statistic, dof)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-squared variable with ``dof`` degrees of freedom: Q(dof/2, x/2)."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1 (got {dof})")
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x): the series below a + 1, Lentz's continued fraction above."""
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def _normalised(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    total = array.sum()
    return array / total if total > 0 else array


def _smoothed(values: Sequence[float]) -> np.ndarray:
    array = np.maximum(_normalised(values), EPSILON)
    return array / array.sum()


# ---------------------------------------------------------------------------- values
def _as_number(value: Any) -> float | None:
    """A finite float, or None for what is not a number (bools are categories, not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def category_of(value: Any) -> str:
    """One spelling per category, whichever way a value arrives: 1, 1.0 and "1" are all "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    number = _as_number(value)
    if number is not None:
        return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)
    return str(value).strip()


# ---------------------------------------------------------------------------- baseline
def compute_baseline(
    columns: Mapping[str, Sequence[Any]],
    categorical: Iterable[str] = (),
    numeric_check: tuple[str, float] = DEFAULT_NUMERIC,
    categorical_check: tuple[str, float] = DEFAULT_CATEGORICAL,
    min_rows: int = 100,
    bins: int = 10,
    features: Sequence[str] | None = None,
) -> dict:
    """The baseline document of a reference dataset, JSON-serialisable.

    ``columns`` are every column of the dataset, in the model's input order (positional requests
    are matched to them); ``features`` the watched ones (default all); ``categorical`` the features
    compared as categories, the others numeric.
    """
    names = list(columns)
    watched = list(features) if features is not None else names
    categorical = set(categorical)
    unknown = [f for f in watched if f not in columns]
    if unknown:
        raise DriftInputError(f"features {unknown} are not columns of the dataset; it has: {', '.join(names)}")
    unwatched = sorted(categorical - set(watched))
    if unwatched:
        raise DriftInputError(f"categorical features {unwatched} are not among the watched features {watched}")
    checks = {
        "numeric": _check_setting("numeric", numeric_check),
        "categorical": _check_setting("categorical", categorical_check),
    }
    if not isinstance(min_rows, int) or min_rows < 1:
        raise DriftInputError(f"min_rows must be a whole number >= 1 (got {min_rows!r})")
    if bins < 2:
        raise DriftInputError(f"bins must be >= 2 (got {bins})")
    out = []
    for name in watched:
        kind = "categorical" if name in categorical else "numeric"
        statistic, threshold = checks[kind]
        entry: dict[str, Any] = {"name": name, "kind": kind, "statistic": statistic, "threshold": threshold}
        values = list(columns[name])
        entry.update(_numeric_reference(name, values, bins) if kind == "numeric" else _categorical_reference(values))
        out.append(entry)
    return {"format_version": FORMAT_VERSION, "columns": names, "min_rows": min_rows, "features": out}


def _check_setting(kind: str, check: tuple[str, float]) -> tuple[str, float]:
    try:
        statistic, threshold = check
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise DriftInputError(f"{kind} check must be (statistic, threshold) (got {check!r})") from None
    allowed = [name for name, (of, _, _) in STATISTICS.items() if of == kind]
    if statistic not in allowed:
        raise DriftInputError(f"{kind} statistic {statistic!r} is not one of {', '.join(allowed)}")
    _, low, high = STATISTICS[statistic]
    if not low < threshold <= high:
        raise DriftInputError(f"{statistic} needs a threshold in ({low}, {high}] (got {threshold})")
    return statistic, threshold


def _numeric_reference(name: str, values: list, bins: int) -> dict:
    numbers = []
    for value in values:
        number = _as_number(value)
        if number is None and value is not None and value != "":
            raise DriftInputError(
                f"feature {name!r} has the non-numeric value {value!r}: list it among the categorical features"
            )
        if number is not None:
            numbers.append(number)
    if not numbers:
        raise DriftInputError(f"feature {name!r} has no numeric values in the reference dataset")
    array = np.asarray(numbers)
    # Edges are reference values (inverted CDF), so a column of few distinct values bins on them exactly.
    inner = np.quantile(array, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    edges = [float(e) for e in np.unique(inner)]
    return {
        "edges": edges,
        "proportions": _bin_proportions(array, edges),
        "count": int(array.size),
        "mean": float(array.mean()),
        "std": float(array.std()),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def _bin_proportions(array: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Proportion per bin (-inf, e1], (e1, e2], ..., (ek, inf)."""
    counts = np.bincount(np.searchsorted(np.asarray(edges), array, side="left"), minlength=len(edges) + 1)
    return [float(c) for c in counts / max(array.size, 1)]


def _categorical_reference(values: list) -> dict:
    counts = Counter(category_of(v) for v in values)
    total = sum(counts.values())
    if not total:
        raise DriftInputError("a categorical feature has no values in the reference dataset")
    return {"categories": {k: n / total for k, n in counts.most_common()}, "count": total}


def validate_baseline(doc: Any, where: str = "baseline") -> dict:
    """The baseline document, checked enough that a check cannot fail half-way; DriftInputError if not."""
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
        raise DriftInputError(
            f"{where} is not a twinserve drift baseline (format_version {FORMAT_VERSION} with features); "
            "write one with twinserve's write_baseline or pass a reference dataset"
        )
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise DriftInputError(f"{where}: features must be a non-empty list")
    for i, feature in enumerate(features):
        if not isinstance(feature, dict):
            raise DriftInputError(f"{where}: features[{i}] must be an object")
        kind, statistic = feature.get("kind"), feature.get("statistic")
        if statistic not in STATISTICS or STATISTICS[statistic][0] != kind:
            raise DriftInputError(f"{where}: features[{i}] has statistic {statistic!r} for kind {kind!r}")
        needed = ("edges", "proportions", "count") if kind == "numeric" else ("categories", "count")
        missing = [k for k in ("name", "threshold", *needed) if k not in feature]
        if missing:
            raise DriftInputError(f"{where}: features[{i}] lacks {', '.join(missing)}")
    doc.setdefault("columns", [f["name"] for f in features])
    doc.setdefault("min_rows", 1)
    return doc


def load_baseline(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DriftInputError(f"baseline {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DriftInputError(f"baseline {path} is not readable JSON: {exc}") from None
    return validate_baseline(doc, f"baseline {path}")


# ---------------------------------------------------------------------------- reference datasets
TABLE_SUFFIXES = (".csv", ".jsonl", ".npy")


def read_table(path: str | Path) -> dict[str, list]:
    """Columns of a reference dataset: CSV with a header, JSON Lines of objects, or a 2-D .npy
    (columns f0, f1, ...). Numbers become floats, other values stay strings, empty cells None."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DriftInputError(f"dataset {path}: use a {', '.join(TABLE_SUFFIXES)} file (got {suffix or 'no suffix'})")
    if not path.is_file():
        raise DriftInputError(f"dataset {path} does not exist")
    try:
        if suffix == ".npy":
            return _read_npy(path)
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DriftInputError(f"dataset {path} cannot be read: {exc}") from None
    table = _read_csv(text) if suffix == ".csv" else _read_jsonl(text, path)
    if not table or not any(table.values()):
        raise DriftInputError(f"dataset {path} has no rows")
    return table


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _as_number(value)
    return number if number is not None else (value if isinstance(value, (str, bool)) else json.dumps(value))


def _read_csv(text: str) -> dict[str, list]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return {}
    names = [h.strip() for h in header]
    table: dict[str, list] = {name: [] for name in names}
    for row in reader:
        if not row:
            continue
        for name, value in zip(names, row + [None] * (len(names) - len(row)), strict=False):
            table[name].append(_cell(value))
    return table


def _read_jsonl(text: str, path: Path) -> dict[str, list]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DriftInputError(f"dataset {path} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DriftInputError(f"dataset {path} line {number}: expected an object of column -> value")
        records.append(record)
    names = list(dict.fromkeys(name for record in records for name in record))
    return {name: [_cell(record.get(name)) for record in records] for name in names}


def _read_npy(path: Path) -> dict[str, list]:
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2:
        raise DriftInputError(f"dataset {path}: expected a 2-D array (got shape {list(array.shape)})")
    return {f"f{i}": [_cell(v) for v in array[:, i].tolist()] for i in range(array.shape[1])}


# ---------------------------------------------------------------------------- captured requests
@dataclass
class Capture:
    """Rows in the baseline's column order, and what was left out and why."""

    rows: list[list[Any]] = field(default_factory=list)
    records: int = 0  # captured requests read (lines that were records of a request)
    outside_window: int = 0  # records before ``since``
    skipped: Counter = field(default_factory=Counter)  # reason -> records or rows skipped
    files: int = 0


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_capture(capture_dir: str | Path, baseline: dict, since: datetime | None = None) -> Capture:
    """Every captured request under ``capture_dir`` (``*.jsonl``, recursively, sorted), decoded into
    rows of ``baseline["columns"]``. Bad lines and rows are counted in ``skipped``, never raised."""
    capture_dir = Path(capture_dir)
    if not capture_dir.is_dir():
        raise DriftInputError(f"capture folder {capture_dir} does not exist")
    columns = list(baseline["columns"])
    capture = Capture()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    files = sorted(p for p in capture_dir.rglob("*.jsonl") if p.is_file())
    for path in files:
        capture.files += 1
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            capture.skipped["unreadable_file"] += 1
            continue
        for line in lines:
            if line.strip():
                _read_line(line, columns, since, capture)
    return capture


def _read_line(line: str, columns: list[str], since: datetime | None, capture: Capture) -> None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        capture.skipped["invalid_json_line"] += 1
        return
    try:
        if not isinstance(record, dict):
            raise _Skip("unknown_layout")
        if "captureData" in record:
            body, media, when = _sagemaker_body(record)
        elif "specversion" in record or str(record.get("type", "")).startswith("azureml.inference"):
            body, media, when = _azure_body(record)
        else:
            raise _Skip("unknown_layout")
        capture.records += 1
        if since is not None:
            if when is None:
                raise _Skip("no_timestamp")
            if when < since:
                capture.outside_window += 1
                return
        batch = body.batch() if isinstance(body, _AzureData) else _decode_body(body, media)
        rows = _rows_for(batch, columns)
    except _Skip as skip:
        capture.skipped[skip.reason] += 1
        return
    for row in rows:
        if len(row) != len(columns):
            capture.skipped["width_mismatch"] += 1
        else:
            capture.rows.append(row)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _sagemaker_body(record: dict) -> tuple[Any, str, datetime | None]:
    """SageMaker data capture: captureData.endpointInput {observedContentType, mode, data, encoding}."""
    data = record.get("captureData")
    source = data.get("endpointInput") if isinstance(data, dict) else None
    if not isinstance(source, dict) or "data" not in source:
        raise _Skip("no_request_captured")
    when = _parse_time((record.get("eventMetadata") or {}).get("inferenceTime"))
    payload, encoding = source.get("data"), str(source.get("encoding", "")).upper()
    media = str(source.get("observedContentType") or "")
    if not isinstance(payload, str):
        raise _Skip("invalid_capture_record")
    if encoding == "BASE64":
        body = _b64(payload)
    elif encoding in ("CSV", "JSON"):
        body = payload.encode()
        media = media or (CSV if encoding == "CSV" else JSON)
    else:
        raise _Skip("unknown_encoding")
    return body, media, when


def _azure_body(record: dict) -> tuple[Any, str, datetime | None]:
    """Azure ML data collector, payload logging: CloudEvents-style fields, the body in ``data``."""
    kind = str(record.get("type", ""))
    if kind and kind != "azureml.inference.request":
        raise _Skip("not_a_request")
    when = _parse_time(record.get("time"))
    media = str(record.get("datacontenttype") or JSON)
    if "data" not in record:
        # Payloads over 4 MB are written to a separate blob the event points at ("dataref").
        raise _Skip("payload_stored_separately" if "dataref" in record else "no_request_captured")
    if _truncated(record.get("contentrange")):
        raise _Skip("truncated_payload")
    return _AzureData(record["data"], media), media, when


@dataclass
class _AzureData:
    """The ``data`` field, decoded only for records inside the time window."""

    data: Any
    media: str

    def batch(self) -> Batch:
        data, essence = self.data, parse_media_type(self.media).essence if _valid_media(self.media) else ""
        if not isinstance(data, str):  # a JSON body, logged as JSON
            return _from_json_or_skip(data)
        if essence == JSON:
            try:
                return _from_json_or_skip(json.loads(data))
            except json.JSONDecodeError:
                pass  # not JSON text: base64 of the body, as for binary payloads
        elif essence == CSV and not _looks_base64(data):
            return _decode_body(data.encode(), self.media)
        return _decode_body(_b64(data), self.media)


def _from_json_or_skip(document: Any) -> Batch:
    try:
        return from_json(document)
    except ServingError:
        raise _Skip("undecodable_body") from None


def _truncated(content_range: Any) -> bool:
    """``bytes 0-59/80``: only part of the body was logged. ``/*`` (total unknown) is not truncation."""
    if not isinstance(content_range, str) or "/" not in content_range:
        return False
    span, _, total = content_range.removeprefix("bytes").strip().partition("/")
    try:
        end = int(span.split("-")[1])
        return total.strip() != "*" and end + 1 < int(total)
    except (IndexError, ValueError):
        return False


def _looks_base64(text: str) -> bool:
    stripped = text.strip()
    if not stripped or any(ch in stripped for ch in ",\n. "):
        return False
    try:
        base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Skip("invalid_base64") from None


def _valid_media(media: str) -> bool:
    try:
        parse_media_type(media)
    except ServingError:
        return False
    return True


def _decode_body(body: bytes, media: str) -> Batch:
    if not _valid_media(media):
        raise _Skip("unsupported_content_type")
    parsed = parse_media_type(media)
    if parsed.essence not in (JSON, CSV, NPY):
        raise _Skip("unsupported_content_type")
    try:
        return decode(body, parsed)
    except ServingError:
        raise _Skip("undecodable_body") from None


def _rows_for(batch: Batch, columns: list[str]) -> list[list[Any]]:
    rows = batch.rows.tolist() if isinstance(batch.rows, np.ndarray) else list(batch.rows)
    rows = [row if isinstance(row, list) else [row] for row in rows]
    if batch.columns is None:
        return rows
    given = {name: i for i, name in enumerate(batch.columns)}
    if not any(name in given for name in columns):
        # A CSV whose first row is all text reads as a header; if none of it names a column, it is data.
        return [list(batch.columns), *rows]
    missing = [name for name in columns if name not in given]
    if missing:
        raise _Skip("missing_feature")
    order = [given[name] for name in columns]
    try:
        return [[row[i] for i in order] for row in rows]
    except IndexError:
        raise _Skip("width_mismatch") from None


# ---------------------------------------------------------------------------- the check
def check_drift(
    baseline: dict, rows: Sequence[Sequence[Any]] | Capture, skipped: Mapping[str, int] | None = None
) -> dict:
    """The results document of ``rows`` (in ``baseline["columns"]`` order, or a Capture) against ``baseline``."""
    baseline = validate_baseline(baseline)
    capture = rows if isinstance(rows, Capture) else None
    columns = list(baseline["columns"])
    skipped_records = Counter(capture.skipped if capture is not None else {})
    skipped_records.update(skipped or {})
    given = capture.rows if capture is not None else [list(r) for r in rows]
    rows = [row for row in given if len(row) == len(columns)]
    skipped_records["width_mismatch"] += len(given) - len(rows)
    skipped_records = +skipped_records  # drop zero counts
    index = {name: i for i, name in enumerate(columns)}
    enough = len(rows) >= baseline["min_rows"]
    features = []
    for feature in baseline["features"]:
        values = [row[index[feature["name"]]] for row in rows]
        compare = _compare_numeric if feature["kind"] == "numeric" else _compare_categorical
        features.append(compare(feature, values, enough))
    drifted = [f for f in features if f["drifted"]]
    scores = [f["score"] for f in features if f["score"] is not None]
    status = "insufficient_data" if not enough else ("drift" if drifted else "no_drift")
    results = {
        "format_version": FORMAT_VERSION,
        "status": status,
        "rows": len(rows),
        "min_rows": baseline["min_rows"],
        "skipped_records": dict(sorted(skipped_records.items())),
        "drifted_features": len(drifted),
        "max_score": max(scores) if scores else None,
        "features": features,
    }
    if capture is not None:
        results.update(records=capture.records, outside_window=capture.outside_window, files=capture.files)
    return results


def _score(statistic: str, value: float, threshold: float) -> float:
    if statistic == "chi_squared":  # value is the p-value: smaller means more drift
        return MAX_SCORE if value <= 0 else min(MAX_SCORE, threshold / value)
    return min(MAX_SCORE, value / threshold)


def _result(feature: dict, value: float | None, valid: int, invalid: int, enough: bool, **compare: Any) -> dict:
    score = _score(feature["statistic"], value, feature["threshold"]) if value is not None and enough else None
    return {
        "name": feature["name"],
        "kind": feature["kind"],
        "statistic": feature["statistic"],
        "value": value if enough else None,
        "threshold": feature["threshold"],
        "drifted": score is not None and score > 1,
        "score": score,
        "values": valid,
        "invalid_values": invalid,
        **compare,
    }


def _compare_numeric(feature: dict, values: list, enough: bool) -> dict:
    numbers = [n for n in (_as_number(v) for v in values) if n is not None]
    array = np.asarray(numbers, dtype=float)
    reference = feature["proportions"]
    current = _bin_proportions(array, feature["edges"]) if numbers else None
    value = None
    if current is not None:
        value = psi(reference, current) if feature["statistic"] == "psi" else jensen_shannon(reference, current)
    comparison = {
        "reference": {"mean": feature.get("mean"), "std": feature.get("std"), "proportions": reference},
        "current": {
            "mean": float(array.mean()) if numbers else None,
            "std": float(array.std()) if numbers else None,
            "proportions": current,
        },
        "edges": feature["edges"],
    }
    return _result(feature, value, len(numbers), len(values) - len(numbers), enough, **comparison)


def _compare_categorical(feature: dict, values: list, enough: bool) -> dict:
    reference: dict[str, float] = feature["categories"]
    counts = Counter(category if (category := category_of(v)) in reference else UNSEEN for v in values)
    total = sum(counts.values())
    names = [*reference, UNSEEN]
    ref_props = [reference.get(name, 0.0) for name in names]
    cur_counts = [counts.get(name, 0) for name in names]
    value = None
    if total:
        if feature["statistic"] == "linf":
            value = linf(ref_props, cur_counts)
        else:
            value = chi_squared_test([p * feature["count"] for p in ref_props], cur_counts)[2]
    current = {name: n / total for name, n in counts.most_common()} if total else {}
    top = sorted(set(list(reference)[:TOP_CATEGORIES]) | set(list(current)[:TOP_CATEGORIES]), key=names.index)
    comparison = {
        "categories": [
            {"category": name, "reference": reference.get(name, 0.0), "current": current.get(name, 0.0)} for name in top
        ],
        "unseen": current.get(UNSEEN, 0.0),
    }
    return _result(feature, value, total, 0, enough, **comparison)


# ---------------------------------------------------------------------------- the report
def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def markdown_table(results: dict) -> str:
    lines = [
        "| feature | kind | statistic | value | threshold | score | drifted |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in results["features"]:
        lines.append(
            f"| {f['name']} | {f['kind']} | {f['statistic']} | {_number(f['value'])} | {_number(f['threshold'])} "
            f"| {_number(f['score'])} | {'**yes**' if f['drifted'] else 'no'} |"
        )
    return "\n".join(lines)


def render_markdown(results: dict) -> str:
    status = results["status"]
    headline = {
        "drift": f"**Drift**: {results['drifted_features']} of {len(results['features'])} features drifted.",
        "no_drift": "**No drift**: every feature is within its threshold.",
        "insufficient_data": f"**Insufficient data**: {results['rows']} rows, fewer than the {results['min_rows']} "
        "a check needs; no feature is judged.",
    }[status]
    skipped = results["skipped_records"]
    skipped_text = "\n".join(f"- {reason}: {count}" for reason, count in skipped.items()) if skipped else "- none"
    read = f"{results['rows']} rows"
    if "records" in results:
        read += f" from {results['records']} captured requests in {results['files']} files"
        if results.get("outside_window"):
            read += f" ({results['outside_window']} requests before the time window left out)"
    return (
        f"# Drift report\n\n{headline}\n\nRead: {read}; max score {_number(results['max_score'])}.\n\n"
        f"{markdown_table(results)}\n\n## Skipped\n\n{skipped_text}\n\n"
        "## How to read it\n\n"
        "Each feature's statistic compares the captured values with the reference dataset's. The score puts them "
        "on one scale: value / threshold for psi, jensen_shannon and linf, threshold / p-value for chi_squared; a "
        "score above 1 means the feature drifted. psi: 0.1-0.25 moderate, above 0.25 significant shift; "
        "jensen_shannon and linf: 0 identical, 1 disjoint; chi_squared: the value is a p-value, drift below the "
        "threshold. Skipped lists captured records or rows that could not be used, by reason; "
        "drift.json has the per-bin and per-category comparison.\n"
    )


def write_report(results: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """drift.json and drift-report.md in ``out_dir`` (created), each written to a temporary name and renamed."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / RESULTS_NAME, out_dir / REPORT_NAME
    _write_atomically(json_path, json.dumps(results, indent=2) + "\n")
    _write_atomically(md_path, render_markdown(results))
    return json_path, md_path


def summary_line(results: dict, output: str | Path) -> str:
    """The one JSON line a scheduled job prints (and an alert can parse)."""
    return json.dumps(
        {
            "event": "twinserve.drift",
            "status": results["status"],
            "rows": results["rows"],
            "drifted_features": results["drifted_features"],
            "max_score": results["max_score"],
            "output": str(output),
        }
    )
