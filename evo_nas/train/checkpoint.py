"""Supernet checkpoints: weights + the spec they belong to, loaded with weights_only=True."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from evo_nas.errors import CheckpointError
from evo_nas.spaces.mobilenet import MobileNetSpec

FORMAT = "evo-nas-supernet/1"


def _save(path: str | Path, blob: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def _load(path: str | Path, fmt: str, what: str, map_location: str) -> dict[str, Any]:
    """A dict saved with format tag ``fmt``; anything else is a CheckpointError naming ``what``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise CheckpointError(f"{what} {str(path)!r} is corrupt or not a torch file: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{what} {str(path)!r} has format {found!r}, expected {fmt!r}")
    return blob


def save_checkpoint(path: str | Path, net: torch.nn.Module, meta: dict[str, Any] | None = None
                    ) -> Path:
    """Weights, the spec they belong to and ``meta``, written atomically."""
    return _save(path, {"format": FORMAT, "spec": net.spec.to_dict(), "meta": meta or {},
                        "state_dict": net.state_dict()})


def load_checkpoint(path: str | Path, map_location: str = "cpu"):
    """Return ``(supernet, meta)``; any unreadable or foreign file is a CheckpointError."""
    from evo_nas.nn import Supernet

    blob = _load(path, FORMAT, "checkpoint", map_location)
    try:
        spec = MobileNetSpec.from_dict(blob["spec"])
        net = Supernet(spec)
        net.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match its spec: "
                              f"{str(e).splitlines()[0]}") from None
    return net, blob.get("meta", {})


# ---------------------------------------------------------------------- training state (resume)
STATE_FORMAT = "evo-nas-train-state/1"


def save_train_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write the full training state of one finished epoch atomically (temp file + rename).

    ``state`` holds tensors, tensor dicts and plain Python values only (the trainer puts the numpy
    Generator state in as JSON text), so it loads back with ``weights_only=True``.
    """
    return _save(path, {"format": STATE_FORMAT, **state})


def load_train_state(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """The state written by :func:`save_train_state`; anything else is a CheckpointError."""
    return _load(path, STATE_FORMAT, "training state", map_location)
