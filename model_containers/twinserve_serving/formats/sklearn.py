"""scikit-learn estimators: skops files by default; joblib/pickle only when trusted.

A ``.skops`` file is loaded with skops' own trusted set; types beyond it (skops.io's
get_untrusted_types on this very file) are trusted only with TWINSERVE_TRUST_SKOPS=true. Loading a
joblib or pickle file runs whatever code it contains, so it needs TWINSERVE_TRUST_PICKLE=true.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..payload import Batch, Signature, to_array
from . import ModelFormatError, Outputs, metadata_signature


class SklearnModel:
    merges_rows = True  # rows in, one prediction per row out: adaptive batching may merge requests

    def __init__(self, estimator: Any, metadata: dict[str, Any]) -> None:
        self.estimator = estimator
        names = getattr(estimator, "feature_names_in_", None)
        width = getattr(estimator, "n_features_in_", None)
        if names is not None:
            self.signature = Signature(names=tuple(str(n) for n in names), width=len(names), dtype=np.float64)
        else:
            fallback = metadata_signature(metadata, np.float64)
            self.signature = Signature(fallback.names, fallback.width or width, np.float64)
        # The server matches request columns to feature_names_in_ itself and passes an array in that
        # order; sklearn would warn on every call that the array has no names.
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)

    def predict(self, batch: Batch) -> Outputs:
        return Outputs({"predictions": self.estimator.predict(to_array(batch, self.signature))})


def load(path: Path, metadata: dict[str, Any], config: Any) -> SklearnModel:
    if path.suffix.lower() == ".skops":
        return SklearnModel(_load_skops(path, config.trust_skops), metadata)
    if not config.trust_pickle:
        raise ModelFormatError(
            f"{path.name} is a {path.suffix.lstrip('.')} file: loading it runs any code it holds, so "
            "it is refused unless TWINSERVE_TRUST_PICKLE=true (only for a file you trust); "
            "or save the model with skops (skops.io.dump to a .skops file)"
        )
    import joblib  # reads plain pickle files too

    return SklearnModel(joblib.load(path), metadata)


def _load_skops(path: Path, trusted_by_user: bool) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    if untrusted and not trusted_by_user:
        raise ModelFormatError(
            f"{path.name} holds types skops does not trust by default: {', '.join(untrusted)}; "
            "set TWINSERVE_TRUST_SKOPS=true to load them (only for a file you trust)"
        )
    return skops.io.load(path, trusted=untrusted or None)
