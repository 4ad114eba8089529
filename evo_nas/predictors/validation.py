"""Input checks shared by predictors and the surrogate loop (messages name the object and value)."""

from __future__ import annotations

from typing import Any

import numpy as np

from evo_nas.errors import EvoNasError

__all__ = ["PredictorError", "check_predictor", "check_targets"]


class PredictorError(EvoNasError, ValueError):
    """A predictor, encoding or training target that cannot be used."""


def check_targets(y: Any, n: int | None = None, owner: str = "predictor") -> np.ndarray:
    """``y`` as a finite float vector, or raise naming how many values are bad and the first."""
    try:
        arr = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as e:
        raise PredictorError(f"{owner}: targets y are not numeric ({e})") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise PredictorError(f"{owner}: targets y must be one value per genome, got shape "
                             f"{arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise PredictorError(f"{owner}: {arr.shape[0]} targets for {n} genomes")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise PredictorError(f"{owner}: targets y hold {int(bad.sum())} non-finite values "
                             f"(first y[{first}] = {arr[first]}); drop failed evaluations first")
    return arr


def check_predictor(obj: Any, name: str = "predictor") -> Any:
    """Fail early, naming the type, when ``obj`` is not a regressor with ``fit`` and ``predict``."""
    missing = [m for m in ("fit", "predict") if not callable(getattr(obj, m, None))]
    if missing or isinstance(obj, type):
        what = f"class {obj.__name__}" if isinstance(obj, type) else type(obj).__name__
        hint = " (pass an instance, not the class)" if isinstance(obj, type) else ""
        raise PredictorError(f"{name} = {what} lacks {' and '.join(missing) or 'an instance'}: "
                             f"a predictor needs fit(X, y) and predict(X){hint}")
    return obj
