"""Supernet checkpoints: weights + the supernet settings they belong to, loaded with
weights_only=True.

Format 2 stores ``net.settings()`` (a JSON-able dict with the supernet ``kind``), so any
:class:`~evo_nas.nn.WeightSharingSupernet` round-trips; format 1 files (MobileNet spec only,
written before the protocol) still load as MobileNet supernets.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from evo_nas.errors import CheckpointError

FORMAT = "evo-nas-supernet/2"
FORMAT_V1 = "evo-nas-supernet/1"  # MobileNet-only, read for old run directories


def _save(path: str | Path, blob: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def _load(path: str | Path, fmt: str | tuple[str, ...], what: str, map_location: str
          ) -> dict[str, Any]:
    """A dict saved with format tag ``fmt`` (or one of several); anything else is a
    CheckpointError naming ``what``."""
    fmts = (fmt,) if isinstance(fmt, str) else fmt
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as e:
        raise CheckpointError(f"{what} {str(path)!r} {_load_fault(e)}") from None
    if not isinstance(blob, dict) or blob.get("format") not in fmts:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{what} {str(path)!r} has format {found!r}, expected "
                              f"{' or '.join(repr(f) for f in fmts)}")
    return blob


def _load_fault(e: BaseException) -> str:
    """Why torch.load refused a file, in one line. torch's own message for a file holding
    Python objects advises loading it unsafely; that advice is never passed on: such a file
    could run code, and evo-nas files never hold any."""
    text = str(e)
    if "Weights only load failed" in text or "weights_only" in text:
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found:
            return (f"holds Python objects ({found.group(1)}), not only tensors and plain data; "
                    f"evo-nas refuses to load it (a file like this can run code when loaded)")
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        return ("is corrupt or not a torch file: "
                + (detail.group(1).strip() if detail else "unreadable pickle data"))
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return f"is corrupt or not a torch file: {first}"


def save_checkpoint(path: str | Path, net: torch.nn.Module, meta: dict[str, Any] | None = None
                    ) -> Path:
    """Weights, the supernet settings they belong to and ``meta``, written atomically."""
    return _save(path, {"format": FORMAT, "supernet": net.settings(), "meta": meta or {},
                        "state_dict": net.state_dict()})


def load_checkpoint(path: str | Path, map_location: str = "cpu",
                    supernet: torch.nn.Module | None = None) -> tuple[Any, dict[str, Any]]:
    """Return ``(supernet, meta)``; any unreadable or foreign file is a CheckpointError.

    The supernet is rebuilt from the stored settings (built-in kinds, or a user's supernet that
    recorded an importable ``builder``); pass ``supernet`` (an untrained instance of the same
    shape) for one that cannot be rebuilt by name: its settings must match the stored ones.
    """
    from evo_nas.nn.protocol import build_supernet

    blob = _load(path, (FORMAT, FORMAT_V1), "checkpoint", map_location)
    settings = blob.get("supernet")
    if blob["format"] == FORMAT_V1:
        settings = {"kind": "mobilenet", "spec": blob.get("spec")}
    if not isinstance(settings, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} records no supernet settings")
    try:
        if supernet is None:
            net = build_supernet(settings)
        else:
            net = supernet
            mine = json.loads(json.dumps(net.settings()))
            if mine != json.loads(json.dumps(settings)):
                raise CheckpointError(
                    f"checkpoint {str(path)!r} holds supernet {_brief(settings)}, but the given "
                    f"supernet is {_brief(mine)}")
        net.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not match its supernet settings: "
                              f"{str(e).splitlines()[0]}") from None
    return net, blob.get("meta", {})


def _brief(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True)
    return text if len(text) < 160 else text[:157] + "..."


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
