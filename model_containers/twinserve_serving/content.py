"""Media types: parsing, ``Accept`` negotiation, and the JSON / CSV / NPY codecs.

Media types are compared lowercased and without parameters, so ``Application/JSON; charset=UTF-8``
is ``application/json`` (the AWS toolkits compare exactly and users trip on it). The charset
parameter is kept for decoding text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BadRequest

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class MediaType:
    essence: str  # "type/subtype", lowercased
    params: dict[str, str] = field(default_factory=dict)

    @property
    def charset(self) -> str:
        return self.params.get("charset", "utf-8")

    @property
    def is_bytes(self) -> bool:
        """Media the server does not decode: handed to the handler as raw bytes."""
        return self.essence.startswith(("image/", "audio/", "video/")) or self.essence == OCTET_STREAM

    def __str__(self) -> str:
        return self.essence


_media_cache: dict[str, MediaType] = {}


def parse_media_type(value: str | None, default: str = JSON) -> MediaType:
    """``Text/CSV; Charset="UTF-8"`` -> MediaType("text/csv", {"charset": "utf-8"})."""
    if not value or not value.strip():
        value = default
    cached = _media_cache.get(value)
    if cached is not None:
        return cached
    essence, *raw_params = value.split(";")
    essence = essence.strip().lower()
    if essence.count("/") != 1 or not all(essence.split("/")):
        raise BadRequest(f"Content-Type {value!r} is not a media type of the form type/subtype")
    params = {}
    for raw in raw_params:
        name, _, param = raw.partition("=")
        params[name.strip().lower()] = param.strip().strip('"').lower()
    media = MediaType(essence, params)
    if len(_media_cache) < 256:  # clients send a handful of distinct values; bound it anyway
        _media_cache[value] = media
    return media


def _accept_ranges(accept: str) -> list[tuple[str, float]]:
    """``text/csv;q=0.5, */*`` -> [("text/csv", 0.5), ("*/*", 1.0)]; a malformed q counts as 0."""
    ranges = []
    for item in accept.split(","):
        essence, *params = item.split(";")
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if essence := essence.strip().lower():
            ranges.append((essence, q))
    return ranges


def negotiate(accept: str | None, offered: Sequence[str], default: str) -> str | None:
    """The offered type the client prefers, ``default`` when it has no preference, else None.

    Follows RFC 9110 12.5.1: each offered type takes the q of the most specific range matching it
    (``text/csv;q=0`` excludes CSV even under ``*/*`` or ``text/*``), q=0 excludes; among equal
    q a more specific match wins, then the range listed first, then ``default``.
    """
    if not accept or accept.strip() in ("*/*", ""):
        return default
    ranges = _accept_ranges(accept)
    best, best_rank = None, None
    for candidate in sorted(offered, key=lambda t: t != default):  # default first among equals
        q, specificity, position = 0.0, -1, 0
        for index, (essence, range_q) in enumerate(ranges):
            if essence == candidate:
                match = 2
            elif essence == "*/*":
                match = 0
            elif essence.endswith("/*") and candidate.startswith(essence[:-1]):
                match = 1
            else:
                continue
            if match > specificity:
                q, specificity, position = range_q, match, index
        rank = (q, specificity, -position)
        if q > 0 and (best_rank is None or rank > best_rank):
            best, best_rank = candidate, rank
    return best


def preferred(accept: str | None, default: str) -> str:
    """The concrete type the client prefers most (highest q, then listed first), else ``default``:
    what a handler that chooses its own response type is told the client wants."""
    best, best_q = default, 0.0
    for essence, q in _accept_ranges(accept or ""):
        if q > best_q and "*" not in essence:
            best, best_q = essence, q
    return best


def decode_text(body: bytes, media: MediaType) -> str:
    try:
        return body.decode(media.charset)
    except LookupError:
        raise BadRequest(f"charset {media.charset!r} in Content-Type is not a known encoding") from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not valid {media.charset}: {exc.reason} at byte {exc.start}") from None


def decode_json(body: bytes, media: MediaType) -> Any:
    if not body:
        raise BadRequest("request body is empty; expected a JSON document")
    try:
        return json.loads(decode_text(body, media))
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def decode_csv(body: bytes, media: MediaType) -> list[list[str]]:
    text = decode_text(body, media)
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise BadRequest("CSV body has no rows")
    return rows


def decode_npy(body: bytes) -> Any:
    import numpy as np

    try:
        return np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequest(f"malformed NPY body: {exc}") from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=_json_default).encode()


def encode_csv(rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def encode_npy(array: Any) -> bytes:
    import numpy as np

    out = io.BytesIO()
    np.save(out, np.asarray(array), allow_pickle=False)
    return out.getvalue()
