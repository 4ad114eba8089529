"""SQLite archive of evaluations and search state: a cache across runs and the basis of resume.

One file holds every evaluation (keyed by run, space and canonical genome, committed one by one,
so a kill loses at most the architecture being evaluated) and the search state at every
generation boundary (population, RNG state, counters). WAL mode lets readers (``evo-nas report``)
look while a search writes. Everything is plain JSON in SQLite: readable without evo-nas.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
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
    """An evo-nas SQLite archive at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size > 0
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

    def _check(self) -> None:
        try:
            ok = self.conn.execute("PRAGMA quick_check").fetchone()[0]
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise ArchiveError(f"archive {str(self.path)!r} is corrupt or truncated: {e}") from None
        if ok != "ok":
            raise ArchiveError(f"archive {str(self.path)!r} failed its integrity check: {ok}")
        if "evaluations" not in tables or "meta" not in tables:
            raise ArchiveError(f"archive {str(self.path)!r} is an SQLite file but not an evo-nas "
                               f"archive (tables: {sorted(tables)})")

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
        return [{"run": r, "config": json.loads(c), "status": s, "created": t}
                for r, c, s, t in rows]

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
