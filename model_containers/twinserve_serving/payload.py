"""Request shapes -> one ``Batch`` (rows, and the column names the request gave), and a batch ->
the model's input. Written once for every model format.

JSON bodies, as the two platforms and MLflow send them:

    {"instances": X}  {"inputs": X}  {"data": X}  {"input_data": X}  or X itself, where X is
        [[...], ...]                         rows
        [{"name": value, ...}, ...]          records
        {"name": [...], ...}                 columns
        {"columns": [...], "data": [[...]]}  pandas "split" (Azure's input_data; "index" ignored)
        [...] or {"name": value, ...}        one row
    {"dataframe_split": {"columns": [...], "data": [[...]]}}   MLflow
    {"dataframe_records": [{"name": value, ...}, ...]}         MLflow

CSV: one row per line; a first line none of whose cells is a number is the header (column names).
NPY: a 1-D or 2-D array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .content import CSV, JSON, NPY, MediaType, decode_csv, decode_json, decode_npy
from .errors import BadRequest, UnsupportedMediaType

REQUEST_TYPES = (JSON, CSV, NPY)
# Keys whose value is rows/records/columns/split (SageMaker and TF-Serving, Azure examples, Azure's
# MLflow no-code input_data); the two dataframe_* keys are MLflow's own and take one shape each.
ROW_KEYS = ("instances", "inputs", "data", "input_data")
DATAFRAME_KEYS = ("dataframe_split", "dataframe_records")


@dataclass
class Batch:
    """A request's rows, positional, with the column names the request gave (None: positional)."""

    rows: list | np.ndarray  # 2-D once decoded: rows of values, or an array
    columns: list[str] | None = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # A user predict_fn written against the old default input_fn (which returned the rows) can
        # still np.asarray() what it is given.
        return np.asarray(self.rows, dtype=dtype)


@dataclass(frozen=True)
class Signature:
    """What a model says about its input; every field is optional."""

    names: tuple[str, ...] | None = None  # feature names, in the model's order
    width: int | None = None  # number of features
    dtype: Any = np.float32  # numpy dtype the model takes


# ---------------------------------------------------------------------------- decoding
def decode(body: bytes, media: MediaType) -> Batch:
    if media.essence == JSON:
        return from_json(decode_json(body, media))
    if media.essence == CSV:
        return _from_csv(decode_csv(body, media))
    if media.essence == NPY:
        array = decode_npy(body)
        return Batch(array.reshape(1, -1) if array.ndim == 1 else array)
    raise UnsupportedMediaType(
        f"Content-Type {media.essence} is not supported by the default handler", allowed=REQUEST_TYPES
    )


def from_json(document: Any) -> Batch:
    if isinstance(document, dict):
        if "dataframe_split" in document:
            return _from_split(document["dataframe_split"], "dataframe_split")
        if "dataframe_records" in document:
            return _from_records(
                _non_empty_list(document["dataframe_records"], "dataframe_records"), "dataframe_records"
            )
        for key in ROW_KEYS:
            if key in document:
                return _from_value(document[key], key)
        if document and all(_is_scalar(v) for v in document.values()):
            return _from_records([document], "body")  # one row of named features
        keys = ROW_KEYS + DATAFRAME_KEYS
        raise BadRequest(
            "JSON object has none of the keys " + ", ".join(repr(k) for k in keys),
            allowed=[f'{{"{k}": [[...], ...]}}' for k in keys] + ["[[...], ...]"],
        )
    return _from_value(document, "body")


def _from_value(value: Any, where: str) -> Batch:
    if isinstance(value, dict):
        if "data" in value and ("columns" in value or "index" in value):
            return _from_split(value, where)
        if value and all(isinstance(v, list) for v in value.values()):
            return _from_columns(value, where)
        if value and all(_is_scalar(v) for v in value.values()):
            return _from_records([value], where)
        raise BadRequest(f"{where}: an object must map column names to lists (columns) or to values (one row)")
    rows = _non_empty_list(value, where)
    if isinstance(rows[0], dict):
        return _from_records(rows, where)
    if not isinstance(rows[0], list):
        return Batch([rows])  # one row
    return Batch(rows)


def _from_split(split: Any, where: str) -> Batch:
    if not isinstance(split, dict) or not isinstance(split.get("data"), list):
        raise BadRequest(f'{where} must be {{"columns": [...], "data": [[...], ...]}}')
    columns = split.get("columns")
    if columns is not None and not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
        raise BadRequest(f"{where}.columns must be a list of names")
    rows = _non_empty_list(split["data"], f"{where}.data")
    if not isinstance(rows[0], list):
        rows = [rows]
    return Batch(rows, columns)


def _from_records(records: list, where: str) -> Batch:
    columns = list(records[0])
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise BadRequest(f"{where}: row {i} is not an object like row 0")
        if len(record) != len(columns) or any(name not in record for name in columns):
            missing = [c for c in columns if c not in record]
            if missing:
                raise BadRequest(f"{where}: row {i} lacks feature {missing[0]!r}; expected keys: {', '.join(columns)}")
            extra = next(name for name in record if name not in columns)
            raise BadRequest(
                f"{where}: row {i} has column {extra!r} that row 0 has not; expected keys: {', '.join(columns)}"
            )
    return Batch([[record[name] for name in columns] for record in records], columns)


def _from_columns(columns: dict[str, list], where: str) -> Batch:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise BadRequest(f"{where}: columns differ in length: " + ", ".join(f"{k}={v}" for k, v in lengths.items()))
    if not next(iter(lengths.values())):
        raise BadRequest(f"{where}: expected a non-empty list of rows")
    return Batch([list(row) for row in zip(*columns.values(), strict=True)], list(columns))


def _from_csv(rows: list[list[str]]) -> Batch:
    if any(_is_number(cell) for cell in rows[0]):
        return Batch(rows)
    if len(rows) == 1:
        raise BadRequest("CSV body has a header line but no rows")
    return Batch(rows[1:], [cell.strip() for cell in rows[0]])


def _non_empty_list(value: Any, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{where}: expected a non-empty list of rows")
    return value


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (list, dict))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- to the model's input
def ordered_rows(batch: Batch, signature: Signature) -> list | np.ndarray:
    """The batch's rows with the columns in the model's order, checked against its names and width."""
    rows = batch.rows
    if batch.columns is not None:
        if signature.names is None:
            raise BadRequest(
                f"the request names its columns ({', '.join(batch.columns)}) but the model carries no "
                'feature names; send rows as lists, or list the names in metadata.json "features"'
            )
        rows = _reorder(batch, signature.names)
    width = len(rows[0]) if isinstance(rows, list) else (rows.shape[1] if rows.ndim == 2 else None)
    expected = signature.width or (len(signature.names) if signature.names else None)
    if expected is not None and width != expected:
        raise BadRequest(f"expected rows of {_features(signature)}; got an array of shape {_shape(rows)}")
    return rows


def to_array(batch: Batch, signature: Signature) -> np.ndarray:
    """The model's 2-D input array: ordered, checked, converted to its dtype."""
    rows = ordered_rows(batch, signature)
    try:
        array = np.asarray(rows, dtype=signature.dtype)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"rows must be equal-length lists of numbers: {exc}") from None
    if array.ndim != 2 or array.shape[0] == 0:
        raise BadRequest(f"expected rows of {_features(signature)}; got an array of shape {list(array.shape)}")
    return array


def _reorder(batch: Batch, names: Sequence[str]) -> list:
    given = {name: i for i, name in enumerate(batch.columns or ())}
    unknown = [name for name in given if name not in names]
    if unknown:
        raise BadRequest(f"unknown column {unknown[0]!r}; the model's features are: {', '.join(names)}")
    missing = [name for name in names if name not in given]
    if missing:
        raise BadRequest(f"the request lacks feature {missing[0]!r}; the model's features are: {', '.join(names)}")
    if list(given) == list(names):
        return list(batch.rows)
    order = [given[name] for name in names]
    try:
        return [[row[i] for i in order] for row in batch.rows]
    except (IndexError, TypeError):
        raise BadRequest(f"every row must have {len(given)} values, one per column ({', '.join(given)})") from None


def _features(signature: Signature) -> str:
    width = signature.width or (len(signature.names) if signature.names else None)
    text = f"{width} features" if width else "features"
    return f"{text} ({', '.join(signature.names)})" if signature.names else text


def _shape(rows: list | np.ndarray) -> list[int]:
    if isinstance(rows, np.ndarray):
        return list(rows.shape)
    return [len(rows), len(rows[0]) if isinstance(rows[0], list) else 1]
