"""Where evo-nas finds the data files it does not ship: from an argument, else from an environment
variable, never from a path guessed outside the repository.

* ``$EVO_NAS_DATA``: the shared data folder, holding ``nb201/nb201_cifar10.csv`` (the
  NAS-Bench-201 table) and ``cifar10-subset/cifar10_subset.npz`` (the CIFAR-10 subset).
* ``$EVO_NAS_NB201_CSV``: the NAS-Bench-201 table itself (the CSV or its folder); it wins over
  ``$EVO_NAS_DATA``.
* ``$EVO_NAS_CIFAR_NPZ``: the CIFAR-10 subset itself (the ``.npz`` or its folder); it wins over
  ``$EVO_NAS_DATA``.

When neither an argument nor a variable names the file, or the named file is missing, the error
is one line (:class:`~evo_nas.errors.DataError`) naming where the path came from, the path, the
argument to pass and the variables to set, before any work starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from evo_nas.errors import DataError

__all__ = [
    "CIFAR_ENV",
    "CIFAR_FILE",
    "CIFAR_FOLDER",
    "DATA_ENV",
    "NB201_ENV",
    "NB201_FILE",
    "NB201_FOLDER",
    "env_data_path",
    "resolve_data_path",
    "resolve_nb201_path",
    "shared_data_dir",
]

DATA_ENV = "EVO_NAS_DATA"
# env vars naming the files, and the files' names inside their folders of $EVO_NAS_DATA
NB201_ENV, NB201_FILE, NB201_FOLDER = "EVO_NAS_NB201_CSV", "nb201_cifar10.csv", "nb201"
CIFAR_ENV, CIFAR_FILE, CIFAR_FOLDER = "EVO_NAS_CIFAR_NPZ", "cifar10_subset.npz", "cifar10-subset"


def shared_data_dir() -> Path | None:
    """The shared data folder ``$EVO_NAS_DATA`` names (holding ``nb201/`` and
    ``cifar10-subset/``), or None when it is unset. Nothing outside the repository is guessed."""
    raw = os.environ.get(DATA_ENV)
    return Path(raw) if raw else None


def env_data_path(env: str, folder: str) -> tuple[str, Path] | None:
    """``(source, path)`` from the environment: ``$env`` (a file or the folder holding it), else
    the folder ``$EVO_NAS_DATA/folder``; None when neither is set."""
    if os.environ.get(env):
        return f"${env}", Path(os.environ[env])
    shared = shared_data_dir()
    if shared is not None:
        return f"${DATA_ENV}/{folder}", shared / folder
    return None


def resolve_data_path(given: str | Path | None, field_name: str, env: str, filename: str,
                      folder: str, data_dir: str | Path | None = None,
                      what: str = "data file", data_dir_name: str | None = None,
                      argument: str | None = None) -> Path:
    """The data file to read: ``given`` (a file, or a folder holding ``filename``), else
    ``data_dir/folder``, else ``$env``, else ``$EVO_NAS_DATA/folder``. Neither, or a missing
    file, is a one-line :class:`DataError` naming where the path came from, the path, the
    argument (``argument``, default ``"<field_name> PATH"``; plus ``data_dir_name`` when the
    caller takes a data folder) and the env vars, before any work starts."""
    hint = f"pass {argument or field_name + ' PATH'} (the file or its folder)"
    if data_dir_name is not None:
        hint += f" or {data_dir_name} DIR (the folder holding {folder}/)"
    hint += f", or set ${env} or ${DATA_ENV} (the folder holding {folder}/)"
    if given is not None:
        source, raw = field_name, Path(given)
    elif data_dir is not None:
        source, raw = data_dir_name or "data_dir", Path(data_dir) / folder
    else:
        found = env_data_path(env, folder)
        if found is None:
            raise DataError(f"{field_name}: no {what} given; {hint}")
        source, raw = found
    path = raw / filename if raw.is_dir() else raw
    if not path.is_file():
        where = f"{str(raw)!r}" if path == raw else f"{str(raw)!r} (no {filename} in it)"
        raise DataError(f"{source} = {where}: {what} not found; {hint}")
    return path


def resolve_nb201_path(path: str | Path | None = None, field_name: str = "path",
                       argument: str | None = None) -> Path:
    """The NAS-Bench-201 table (``nb201_cifar10.csv``): ``path`` (the CSV or its folder), else
    ``$EVO_NAS_NB201_CSV``, else ``$EVO_NAS_DATA/nb201``; a one-line :class:`DataError` naming
    ``field_name`` and both variables when none is given or the file is missing."""
    return resolve_data_path(path, field_name, NB201_ENV, NB201_FILE, NB201_FOLDER,
                             what="NAS-Bench-201 table", argument=argument)
