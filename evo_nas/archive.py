"""SQLite archive of evaluations and search state: a cache across runs and the basis of resume.

One file holds every evaluation (keyed by run, space and canonical genome, committed one by one,
so a kill loses at most the architecture being evaluated) and the search state at every
generation boundary (population, RNG state, counters). WAL mode lets readers (``evo-nas report``)
look while a search writes. Everything is plain JSON in SQLite: readable without evo-nas.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evo_nas.errors import EvoNasError

__all__ = ["Archive", "ArchiveError"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run TEXT NOT NULL,
    scope TEXT NOT NULL,          -- space + evaluator identity: what makes a cached value valid
    key TEXT NOT NULL,            -- canonical genome, '-'-joined
    genome TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,        -- {name: value}; NaN stored as null
    feasible INTEGER NOT NULL,
    status TEXT NOT NULL,         -- ok | failed | nan
    error TEXT,
    seconds REAL NOT NULL,
    created REAL NOT NULL,
    UNIQUE (run, key)
);
CREATE INDEX IF NOT EXISTS evaluations_scope_key ON evaluations (scope, key);
CREATE TABLE IF NOT EXISTS states (
    run TEXT NOT NULL,
    generation INTEGER NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (run, generation)
);
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
);
"""


_TABLES = {"meta", "evaluations", "states", "runs", "sqlite_sequence"}
_COLUMNS = {"id", "run", "scope", "key", "genome", "config", "metrics", "feasible", "status",
            "error", "seconds", "created"}


class ArchiveError(EvoNasError):
    """An archive file that is not an evo-nas archive, is corrupt, or is truncated."""


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_default, allow_nan=False)


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return _finite(float(o))
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def _clean_metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: _finite(float(v)) for k, v in metrics.items()}


def _restore_metrics(metrics: dict[str, float | None]) -> dict[str, float]:
    return {k: (float("nan") if v is None else float(v)) for k, v in metrics.items()}


class Archive:
    """An evo-nas SQLite archive at ``path`` (created if missing).

    An existing file is checked to be an intact evo-nas archive before anything is written to
    it. ``readonly`` (default: when the file or its folder is not writable) opens it for
    reading only, so ``evo-nas report`` reads an archive in a read-only folder."""

    def __init__(self, path: str | Path, readonly: bool | None = None) -> None:
        self.path = Path(path)
        existed = self.path.exists() and self.path.stat().st_size > 0
        if readonly is None:
            readonly = existed and not (os.access(self.path, os.W_OK) and os.access(
                self.path.parent, os.W_OK | os.X_OK))
        self.readonly = readonly
        if readonly:
            if not existed:
                raise ArchiveError(f"archive {str(self.path)!r} does not exist")
            self.conn = self._connect_readonly()
            self._check()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0)
            if existed:
                self._check()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                              (str(SCHEMA_VERSION),))
            self.conn.commit()
        except sqlite3.DatabaseError as e:
            raise ArchiveError(f"archive {str(self.path)!r} is corrupt or not an SQLite "
                               f"database: {e}") from None

    def _connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection. A WAL archive in a folder where SQLite cannot create its
        ``-shm`` file opens as immutable (no writer can be at work in such a folder either)."""
        uri = "file:" + urllib.parse.quote(str(self.path.resolve())) + "?mode=ro"
        for extra in ("", "&immutable=1"):
            conn = sqlite3.connect(uri + extra, uri=True, timeout=30.0)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError:
                conn.close()
            except sqlite3.DatabaseError as e:
                conn.close()
                raise ArchiveError(f"archive {str(self.path)!r} is corrupt or not an SQLite "
                                   f"database: {e}") from None
        raise ArchiveError(f"archive {str(self.path)!r} cannot be opened for reading")

    def _check(self) -> None:
        """An intact evo-nas archive, or an ArchiveError; reads only (a foreign SQLite file is
        rejected before anything, even the journal mode, is changed in it)."""
        try:
            ok = self.conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise ArchiveError(f"archive {str(self.path)!r} is corrupt or truncated: {e}") from None
        if ok != "ok":
            raise ArchiveError(f"archive {str(self.path)!r} failed its integrity check: {ok}")
        foreign = ArchiveError(f"archive {str(self.path)!r} is an SQLite file but not an evo-nas "
                               f"archive (tables: {sorted(tables)}); it was left unchanged")
        if "evaluations" not in tables or "meta" not in tables:
            raise foreign
        try:
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(evaluations)")}
            schema = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError:
            raise foreign from None
        if not _COLUMNS <= columns:
            raise foreign
        # no schema row: a creation killed before its last commit, if every table is ours
        if schema is None and not tables <= _TABLES:
            raise foreign
        if schema is not None and str(schema[0]) != str(SCHEMA_VERSION):
            raise ArchiveError(f"archive {str(self.path)!r} has schema {schema[0]!r}; this "
                               f"evo-nas reads schema {SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- runs
    def start_run(self, run: str, config: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs VALUES (?, ?, 'running', ?) ON CONFLICT(run) DO UPDATE SET "
                "status='running'", (run, _dumps(config), time.time()))

    def finish_run(self, run: str, status: str = "done") -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET status=? WHERE run=?", (status, run))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT run, config, status, created FROM runs ORDER BY created")
        return [{"run": r, "config": self._run_config(r, c), "status": s, "created": t}
                for r, c, s, t in rows]

    def _run_config(self, run: str, text: str) -> dict[str, Any]:
        try:
            config = json.loads(text)
        except (TypeError, ValueError) as e:
            raise ArchiveError(f"archive {str(self.path)!r}: runs.config of run {run!r} is not "
                               f"valid JSON ({e}); the archive was edited or damaged") from None
        if not isinstance(config, dict):
            raise ArchiveError(f"archive {str(self.path)!r}: runs.config of run {run!r} is a "
                               f"{type(config).__name__}, not a mapping; the archive was edited "
                               f"or damaged")
        return config

    # ----------------------------------------------------------------- evaluations
    def add(self, run: str, scope: str, row: dict[str, Any]) -> None:
        """Commit one evaluation row (``key``, ``genome``, ``config``, ``metrics``,
        ``feasible``, ``status``, ``fault``, ``seconds``)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO evaluations (run, scope, key, genome, config, metrics, "
                "feasible, status, error, seconds, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run, scope, row["key"], _dumps(row["genome"]), _dumps(row["config"]),
                 _dumps(_clean_metrics(row["metrics"])), int(bool(row["feasible"])),
                 row["status"], row.get("fault"), float(row["seconds"]), time.time()))

    def lookup(self, scope: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Successful evaluations of ``keys`` in ``scope`` from any run (the cache)."""
        keys = list(keys)
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, metrics, seconds in self.conn.execute(
                f"SELECT key, metrics, seconds FROM evaluations WHERE scope=? AND status='ok' "
                f"AND key IN ({marks}) ORDER BY id", (scope, *chunk)):
                out.setdefault(key, {"metrics": _restore_metrics(json.loads(metrics)),
                                     "seconds": seconds})
        return out

    def rows(self, run: str) -> list[dict[str, Any]]:
        """Every evaluation of ``run`` in the order it was committed."""
        cur = self.conn.execute(
            "SELECT key, genome, config, metrics, feasible, status, error, seconds FROM "
            "evaluations WHERE run=? ORDER BY id", (run,))
        return [{"key": k, "genome": json.loads(g), "config": json.loads(c),
                 "metrics": _restore_metrics(json.loads(m)), "feasible": bool(f), "status": s,
                 "fault": e, "seconds": t} for k, g, c, m, f, s, e, t in cur]

    def reused_keys(self, run: str, scope: str) -> set[str]:
        """Keys of ``run`` whose row was a cache hit: an earlier run had already evaluated them
        successfully in ``scope`` (so they cost this run no real evaluation)."""
        cur = self.conn.execute(
            "SELECT e.key FROM evaluations e WHERE e.run=? AND EXISTS (SELECT 1 FROM "
            "evaluations o WHERE o.scope=? AND o.key=e.key AND o.status='ok' AND o.id<e.id "
            "AND o.run<>e.run)", (run, scope))
        return {k for (k,) in cur}

    def count(self, run: str) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM evaluations WHERE run=?",
                                 (run,)).fetchone()[0]

    # ----------------------------------------------------------------- search state
    def save_state(self, run: str, generation: int, state: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?)",
                              (run, generation, _dumps(state), time.time()))

    def last_state(self, run: str) -> tuple[int, dict[str, Any]] | None:
        row = self.conn.execute("SELECT generation, state FROM states WHERE run=? "
                                "ORDER BY generation DESC LIMIT 1", (run,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None
