"""Where the data-dependent tests find the shared data files the repository does not ship.

The library reads them only from an argument or an environment variable (``$EVO_NAS_NB201_CSV``,
``$EVO_NAS_CIFAR_NPZ``, ``$EVO_NAS_DATA``: see :mod:`evo_nas.data_paths`). The tests look in one
more place, here and nowhere else: when no variable is set, the shared data folder beside the
checkout (``../shared/data``), where CI's fresh clone finds it. A test whose file is in neither
place is skipped (:func:`nb201_csv`, :func:`cifar_npz`, or ``skipif(NB201_CSV is None)``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evo_nas.data_paths import (
    CIFAR_ENV,
    CIFAR_FILE,
    CIFAR_FOLDER,
    DATA_ENV,
    NB201_ENV,
    NB201_FILE,
    NB201_FOLDER,
)

ROOT = Path(__file__).resolve().parents[1]
SIBLING = ROOT.parent / "shared" / "data"  # the tests' own fallback; the library has none


def _where(env: str, folder: str, filename: str) -> Path:
    """The file the tests would read: ``$env`` (the file or its folder), else
    ``$EVO_NAS_DATA/folder/filename``, else ``../shared/data/folder/filename``."""
    if os.environ.get(env):
        raw = Path(os.environ[env])
        return raw / filename if raw.is_dir() else raw
    base = Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else SIBLING
    return base / folder / filename


NB201_WHERE = _where(NB201_ENV, NB201_FOLDER, NB201_FILE)
CIFAR_WHERE = _where(CIFAR_ENV, CIFAR_FOLDER, CIFAR_FILE)
# the files when they are there (read once, at import: tests that change the env vars later
# do not move them), else None
NB201_CSV: Path | None = NB201_WHERE if NB201_WHERE.is_file() else None
CIFAR_NPZ: Path | None = CIFAR_WHERE if CIFAR_WHERE.is_file() else None


def nb201_csv() -> Path:
    """The full NAS-Bench-201 table, or skip the calling test."""
    if NB201_CSV is None:
        pytest.skip(f"full NAS-Bench-201 table not present at {NB201_WHERE} "
                    f"(set ${NB201_ENV} or ${DATA_ENV})")
    return NB201_CSV


def cifar_npz() -> Path:
    """The CIFAR-10 subset, or skip the calling test."""
    if CIFAR_NPZ is None:
        pytest.skip(f"CIFAR-10 subset not present at {CIFAR_WHERE} "
                    f"(set ${CIFAR_ENV} or ${DATA_ENV})")
    return CIFAR_NPZ
