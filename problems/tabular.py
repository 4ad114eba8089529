r"""TabularProblem: search over a table of real measured results, with the true front known.

Tabular benchmarks (NAS-Bench-201, HW-NAS-Bench, or a user's own measurements) let a search be
scored against the exact Pareto front, found by enumerating the table. A ``TabularProblem`` is a
:class:`NASProblem`, so :func:`evo_nas.search.search` and the surrogate-assisted loop run on it
unchanged, and every lookup is an evaluation in its history (that is what budgets count).

Build one from any column store: a dict of lists, a pandas DataFrame, or a CSV file. From a CSV,
numeric columns arrive as float arrays (so metric functions can do arithmetic on them) and gene
cells are matched to options by value (``"2"``, ``"2.0"`` and ``2`` all mean option ``2``)::

    >>> import tempfile
    >>> from pathlib import Path
    >>> from evo_nas.space import Choice, SearchSpace
    >>> from problems.tabular import TabularProblem
    >>> csv_path = Path(tempfile.mkdtemp()) / "my_results.csv"
    >>> _ = csv_path.write_text("depth,width,acc,latency\n2,16,70.1,1.2\n2,32,74.0,2.5\n"
    ...                         "3,16,72.3,1.9\n3,32,76.8,3.9\n")
    >>> space = SearchSpace([Choice("depth", (2, 3)), Choice("width", (16, 32))])
    >>> problem = TabularProblem.from_csv(
    ...     csv_path, space,
    ...     metrics={"error": lambda t: 100 - t["acc"], "ms": "latency"},
    ...     objectives=["error", "ms"], budgets={"ms": 3.0}, cheap=["ms"])
    >>> for row in problem.true_front():
    ...     print(row["config"], round(row["error"], 1), row["ms"])
    {'depth': 2, 'width': 32} 26.0 2.5
    {'depth': 3, 'width': 16} 27.7 1.9
    {'depth': 2, 'width': 16} 29.9 1.2
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from evo_nas.cell import CellGraph
from evo_nas.data_paths import (
    NB201_ENV,
    NB201_FILE,
    NB201_FOLDER,
    env_data_path,
    resolve_nb201_path,
)
from evo_nas.errors import ConfigError, DataError, GenomeError
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces.nb201 import NB201_CODES, NB201_EDGES
from problems.nas import NASProblem

__all__ = [
    "NB201_CODES",
    "NB201_COLUMNS",
    "NB201_OPS",
    "NB201_OP_CODE",
    "TabularProblem",
    "default_nb201_path",
    "load_nb201",
    "nb201_features",
    "nb201_space",
    "read_csv_columns",
]

ColumnSpec = str | Callable[[Any], Any]
"""A metric is a column name, or a function of the whole table returning one value per row."""


def read_csv_columns(path: str | Path, comment: str = "#") -> dict[str, list[str]]:
    """Columns of a CSV file as lists of strings; lines starting with ``comment`` are skipped
    (so a data file can carry its attribution in a header).

    Every fault is a one-line :class:`~evo_nas.errors.DataError` naming the file, the line and the
    column: no header or no data rows, binary content, empty or repeated column names, rows of
    the wrong length, empty cells. A UTF-8 byte-order mark (Excel's "CSV UTF-8") is accepted.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"table file {str(p)!r} does not exist")
    raw = p.read_bytes()
    nul = raw.find(b"\x00", 0, 65536)
    if nul >= 0:
        raise DataError(f"table file {str(p)!r} is binary (NUL byte at offset {nul}), not a "
                        f"CSV text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"table file {str(p)!r} is not UTF-8 text (byte {e.start}: "
                        f"{raw[e.start:e.start + 1]!r}); save it as CSV (UTF-8)") from None
    numbered = [(i + 1, ln) for i, ln in enumerate(text.splitlines())
                if ln.strip() and not ln.lstrip().startswith(comment)]
    rows = [next(csv.reader([ln])) for _, ln in numbered]  # one record per line
    if not rows:
        raise DataError(f"table file {str(p)!r} has no header row (empty, or only comments)")
    head = [h.strip() for h in rows[0]]
    where = f"table file {str(p)!r}, header (line {numbered[0][0]})"
    for j, h in enumerate(head):
        if not h:
            raise DataError(f"{where}: column {j + 1} has an empty name")
        if h in head[:j]:
            raise DataError(f"{where}: column name {h!r} appears twice (columns "
                            f"{head.index(h) + 1} and {j + 1})")
    if len(rows) == 1:
        raise DataError(f"table file {str(p)!r} has a header but no data rows")
    cols: dict[str, list[str]] = {h: [] for h in head}
    for (line, _), row in zip(numbered[1:], rows[1:], strict=True):
        if len(row) != len(head):
            raise DataError(f"table file {str(p)!r}, line {line}: {len(row)} cells, header has "
                            f"{len(head)}")
        for h, v in zip(head, row, strict=True):
            v = v.strip()
            if not v:
                raise DataError(f"table file {str(p)!r}, line {line}: empty cell in column "
                                f"{h!r}")
            cols[h].append(v)
    return cols


def _numeric_columns(cols: Mapping[str, list[str]], keep: Iterable[str] = ()) -> dict[str, Any]:
    """CSV columns whose every cell parses as a number become float arrays (so metric functions
    can compute with them: ``100 - t["acc"]``); ``keep`` columns (genes) stay as text."""
    keep = set(keep)
    out: dict[str, Any] = {}
    for name, col in cols.items():
        if name in keep:
            out[name] = col
            continue
        try:
            out[name] = np.asarray(col, dtype=float)
        except ValueError:
            out[name] = col
    return out


class _Lookup:
    """A cheap-or-not metric that reads one column of a table by canonical genome."""

    def __init__(self, table: TabularProblem, name: str, cheap: bool) -> None:
        self.table = table
        self.name = name
        self.cheap = cheap

    def __call__(self, configs: list[dict[str, Any]]) -> np.ndarray:
        return self.table._column_for(configs, self.name)


class TabularProblem(NASProblem):
    """A :class:`NASProblem` whose metrics are looked up in a table of measured results.

    ``table``: any column store (``table[column]`` gives a sequence; dicts and DataFrames work).
    ``gene_columns``: gene name -> column holding it (default: the gene's own name).
    ``genes_as``: ``"option"`` when cells hold option values (strings from a CSV are matched by
    ``str``), ``"index"`` when they hold option indices.
    ``metrics``: metric name -> column name or function of the table; default every non-gene
    column that parses as numbers.
    ``cheap``: metric names that are cheap to compute without a real evaluation (analytic FLOPs,
    a latency lookup table); surrogates use them exactly and budgets on them are checked early.
    Every other metric counts as expensive (measured) and is what predictors learn.
    ``missing``: a genome not in the table gets ``"nan"`` metrics (recorded as a failed, infeasible
    evaluation) or raises (``"error"``). ``on_unknown``: table rows whose genes are not in
    ``space`` raise (``"error"``) or are dropped (``"drop"``, to search a sub-space of a table).
    ``features``: optional genome feature function that predictors may use for this space.
    """

    def __init__(
        self,
        space: SearchSpace,
        table: Any,
        objectives: Sequence[str],
        budgets: Mapping[str, float] | None = None,
        metrics: Mapping[str, ColumnSpec] | None = None,
        gene_columns: Mapping[str, str] | None = None,
        genes_as: str = "option",
        cheap: Iterable[str] = (),
        missing: str = "nan",
        on_unknown: str = "error",
        features: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if genes_as not in ("option", "index"):
            raise ConfigError(f"genes_as = {genes_as!r}: 'option' or 'index'")
        if missing not in ("nan", "error"):
            raise ConfigError(f"missing = {missing!r}: 'nan' or 'error'")
        if on_unknown not in ("error", "drop"):
            raise ConfigError(f"on_unknown = {on_unknown!r}: 'error' or 'drop'")
        if isinstance(objectives, str):
            objectives = [objectives]
        self.missing = missing
        self.features = features
        gene_columns = {n: n for n in space.names} | dict(gene_columns or {})
        columns = _column_names(table)
        for g, col in gene_columns.items():
            if g not in space.names:
                raise ConfigError(f"gene_columns: {g!r} is not a gene of space {space.name!r}")
            if col not in columns:
                raise DataError(f"table has no column {col!r} for gene {g!r} "
                                f"(columns: {columns})")
        genomes, keep = self._genomes(space, table, gene_columns, genes_as, on_unknown)
        if metrics is None:
            metrics = {c: c for c in columns if c not in gene_columns.values()
                       and _numeric(table[c])}
        values: dict[str, np.ndarray] = {}
        for name, spec in metrics.items():
            raw = spec(table) if callable(spec) else _get(table, spec, f"metric {name!r}")
            try:
                arr = np.asarray(raw, dtype=float).reshape(-1)
            except (TypeError, ValueError):
                raise DataError(f"metric {name!r}: column is not numeric") from None
            if arr.shape[0] != len(keep):
                raise DataError(f"metric {name!r} has {arr.shape[0]} values for {len(keep)} rows")
            values[name] = arr[keep]
        for name in objectives:
            if name not in values:
                raise ConfigError(f"objective {name!r} is not a table metric "
                                  f"(known: {sorted(values)})")
        cheap = set(cheap)
        unknown = cheap - set(values)
        if unknown:
            raise ConfigError(f"cheap: {sorted(unknown)} are not table metrics "
                              f"(known: {sorted(values)})")
        self.genomes = space.canonical(genomes) if len(genomes) else genomes
        self.values = values
        self._row: dict[bytes, int] = {}
        for i, row in enumerate(self.genomes):
            k = row.tobytes()
            if k in self._row:
                raise DataError(f"table rows {self._row[k]} and {i} describe the same "
                                f"architecture {space.key(row)}")
            self._row[k] = i
        self._by_values: dict[tuple, int] = {}
        for i, row in enumerate(self.genomes):
            try:
                self._by_values[tuple(c.options[int(v)] for c, v in
                                      zip(space.choices, row, strict=True))] = i
            except TypeError:  # unhashable option values: the encode path handles them
                self._by_values = {}
                break
        self._last: tuple[list[dict[str, Any]], np.ndarray] | None = None
        lookups = {n: _Lookup(self, n, n in cheap) for n in values}
        super().__init__(space, {n: lookups[n] for n in objectives}, budgets=budgets,
                         metrics={n: f for n, f in lookups.items() if n not in objectives})

    # ----------------------------------------------------------------- construction helpers
    @classmethod
    def from_csv(cls, path: str | Path, space: SearchSpace, objectives: Sequence[str],
                 **kwargs: Any) -> TabularProblem:
        """Read ``path`` (``#`` comment lines skipped, see :func:`read_csv_columns`) and build the
        problem; see the class. Numeric columns become float arrays, gene columns stay text and
        match options by value, and a cell that names no option is reported with its line."""
        if not isinstance(space, SearchSpace):
            raise ConfigError(f"TabularProblem.from_csv: space must be a SearchSpace, got "
                              f"{type(space).__name__}")
        cols = read_csv_columns(path)
        genes = {n: n for n in space.names} | dict(kwargs.get("gene_columns") or {})
        try:
            return cls(space, _numeric_columns(cols, keep=genes.values()), objectives, **kwargs)
        except DataError as e:
            raise DataError(f"table file {str(path)!r}: {_csv_lines(e)}") from None

    @staticmethod
    def _genomes(space: SearchSpace, table: Any, gene_columns: Mapping[str, str], genes_as: str,
                 on_unknown: str) -> tuple[np.ndarray, np.ndarray]:
        cols = [list(_get(table, gene_columns[g], f"gene {g!r}")) for g in space.names]
        n = len(cols[0]) if cols else 0
        X = np.zeros((n, space.n_var), dtype=np.int64)
        ok = np.ones(n, dtype=bool)
        for j, (choice, col) in enumerate(zip(space.choices, cols, strict=True)):
            lookup = _option_lookup(choice, genes_as)
            for i, v in enumerate(col):
                idx = _find_option(lookup, v)
                if idx is None:
                    if on_unknown == "drop":
                        ok[i] = False
                        continue
                    raise DataError(f"table row {i}: gene {choice.name!r} = {v!r} is not "
                                    f"{'an option' if genes_as == 'option' else 'an index'} of "
                                    f"{choice.options}")
                X[i, j] = idx
        return X[ok], ok

    # ----------------------------------------------------------------- lookups
    def _rows_of(self, X: np.ndarray) -> np.ndarray:
        """Row index per genome, -1 where the table lacks it."""
        X = np.atleast_2d(self.space.canonical(X))
        return np.array([self._row.get(r.tobytes(), -1) for r in X], dtype=np.int64)

    def _column_for(self, configs: list[dict[str, Any]], name: str) -> np.ndarray:
        if self._last is not None and self._last[0] is configs:
            rows = self._last[1]
        else:
            rows = np.array([self._row_of_config(c) for c in configs], dtype=np.int64)
            self._last = (configs, rows)
        if self.missing == "error" and (rows < 0).any():
            i = int(np.flatnonzero(rows < 0)[0])
            raise GenomeError(f"architecture {configs[i]} is not in the table")
        col = self.values[name]
        return np.where(rows >= 0, col[np.maximum(rows, 0)], np.nan)

    def _row_of_config(self, config: dict[str, Any]) -> int:
        """Row of one config: a dict hit on its option values (configs from ``decode`` are
        canonical and complete), else the general encode path."""
        try:
            return self._by_values.get(tuple(config[n] for n in self.space.names), -1)
        except (KeyError, TypeError):
            return int(self._rows_of(self.space.encode(config)[None])[0])

    def lookup(self, X: np.ndarray, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Metrics of genomes straight from the table, *without* recording an evaluation (for
        analysis and benchmarks; searches must go through :meth:`measure`)."""
        rows = self._rows_of(X)
        out = {}
        for n in names or list(self.values):
            out[n] = np.where(rows >= 0, self.values[n][np.maximum(rows, 0)], np.nan)
        return out

    def __len__(self) -> int:
        return len(self.genomes)

    # ----------------------------------------------------------------- true front
    def true_front(self, objectives: Sequence[str] | None = None, feasible_only: bool = True
                   ) -> list[dict[str, Any]]:
        """The exact Pareto front by enumerating the table (no evaluations recorded): feasible
        (under the problem's budgets) non-dominated rows, one per distinct objective vector,
        sorted by the first objective. Each row has ``genome``, ``config`` and every metric."""
        objectives = list(objectives or self.objective_names)
        for o in objectives:
            if o not in self.values:
                raise ConfigError(f"true_front: {o!r} is not a table metric "
                                  f"(known: {sorted(self.values)})")
        F = np.column_stack([self.values[o] for o in objectives])
        ok = np.all(np.isfinite(F), axis=1)
        if feasible_only:
            for name, bound in self.budgets.items():
                ok &= self.values[name] <= bound
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return []
        _, first = np.unique(F[idx], axis=0, return_index=True)
        idx = idx[np.sort(first)]
        front = idx[NonDominatedSorting().do(F[idx], only_non_dominated_front=True)]
        front = front[np.lexsort(F[front].T[::-1])]
        rows = []
        for i in front:
            rec: dict[str, Any] = {"genome": self.genomes[i].tolist(),
                                   "config": self.space.decode(self.genomes[i])}
            rec.update({n: float(v[i]) for n, v in self.values.items()})
            rows.append(rec)
        return rows


def _column_names(table: Any) -> list[str]:
    if hasattr(table, "columns"):
        return [str(c) for c in table.columns]
    if hasattr(table, "keys"):
        return [str(c) for c in table.keys()]
    raise DataError(f"table of type {type(table).__name__} has no columns (use a dict of "
                    f"columns, a DataFrame, or TabularProblem.from_csv)")


def _get(table: Any, col: str, what: str) -> Any:
    try:
        return table[col]
    except (KeyError, IndexError):
        raise DataError(f"{what}: table has no column {col!r}") from None


def _numeric(col: Any) -> bool:
    try:
        np.asarray(col, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def _find_option(lookup: Mapping[Any, int], v: Any) -> int | None:
    """Option index of cell ``v``: by value, by text, or by number (``"2.0"`` is option 2)."""
    try:
        idx = lookup.get(v)
    except TypeError:  # unhashable cell
        idx = None
    if idx is None:
        idx = lookup.get(str(v).strip())
    if idx is None:
        try:
            f = float(str(v).strip())
        except ValueError:
            return None
        if np.isfinite(f):
            idx = lookup.get(int(f)) if f.is_integer() else lookup.get(f)
    return idx


def _csv_lines(e: DataError) -> str:
    """A table error's "table row i" as the CSV's data row number (1 = first row after the
    header), so the message points into the file."""
    return re.sub(r"table rows? (\d+)(?: and (\d+))?", lambda m: "data row" +
                  ("s " if m.group(2) else " ") + str(int(m.group(1)) + 1) +
                  (f" and {int(m.group(2)) + 1}" if m.group(2) else ""), str(e))


def _option_lookup(choice: Choice, genes_as: str) -> dict[Any, int]:
    if genes_as == "index":
        idx = {i: i for i in range(len(choice.options))}
        return idx | {str(i): i for i in range(len(choice.options))}
    out: dict[Any, int] = {}
    for i, o in enumerate(choice.options):
        try:
            out[o] = i
        except TypeError:
            pass
        out.setdefault(str(o), i)
    return out


# --------------------------------------------------------------------- NAS-Bench-201

NB201_OPS = ("none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3")
"""NB201 operations in the order our genome uses: cheapest first (FLOPs), so index 0 everywhere
is the smallest cell. NB201's own codes (CSV ``op*`` columns) are 0 none, 1 skip_connect,
2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3 (:data:`NB201_OP_CODE`, :data:`NB201_CODES`);
the loader maps them by name."""
NB201_OP_CODE: dict[str, int] = {name: code for code, name in enumerate(NB201_CODES)}
"""NB201 operation name -> code (the shared table's ``op*`` cells): ``none`` 0,
``skip_connect`` 1, ``nor_conv_1x1`` 2, ``nor_conv_3x3`` 3, ``avg_pool_3x3`` 4. The reverse,
code -> name, is :data:`NB201_CODES` (``NB201_CODES[3] == "nor_conv_3x3"``)."""
_NB201_CODES = NB201_CODES  # old private name, kept for callers
_NB201_EDGES = NB201_EDGES  # (from, to) of op0..op5
_NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))  # edges on each input -> output path
NB201_COLUMNS: dict[str, str] = {
    "flops": "flops_m", "params": "params_mb", "latency_raspi4": "hwnb_raspi4_ms",
    "latency_pixel3": "hwnb_pixel3_ms", "latency_eyeriss": "hwnb_eyeriss_ms",
    "latency_fpga": "hwnb_fpga_ms",
}
"""Metric name -> column of the shared NB201 table that :func:`load_nb201` knows by name."""
_NB201_COLUMNS = NB201_COLUMNS


def nb201_space(ops: Sequence[str] | Mapping[str, Sequence[str]] = NB201_OPS) -> SearchSpace:
    """The NB201 cell: genes ``op0..op5`` (edges in NB201's ``arch_str`` order). ``ops`` restricts
    the operations, for all edges or per gene (``{"op0": ("nor_conv_3x3", "skip_connect"), ...}``)
    to search a sub-space. The space declares its cell graph (edges, ``none`` as the zero op)
    for predictors' live-path features."""
    per = {f"op{i}": tuple(ops.get(f"op{i}", NB201_OPS)) if isinstance(ops, Mapping)
           else tuple(ops) for i in range(6)}
    for g, opts in per.items():
        bad = [o for o in opts if o not in NB201_OPS]
        if bad:
            raise ConfigError(f"nb201_space: {g} options {bad} are not NB201 ops {NB201_OPS}")
    zero = "none" if any("none" in o for o in per.values()) else None
    return SearchSpace([Choice(g, o) for g, o in per.items()], name="nb201",
                       cell=CellGraph(dict(zip(per, NB201_EDGES, strict=True)), zero=zero))


def nb201_features(space: SearchSpace | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Cell-graph features of NB201 genomes, for predictors (``GenomeEncoder(features=...)``).

    Op counts; which of the four input->output paths are alive (no ``none`` edge) and whether any
    is; op counts over edges that lie on a live path (edges elsewhere do not touch the output);
    convolutions (all, and 3x3) on each live path, their maximum (effective depth) and how many
    live paths carry exactly 0..3 of them; a
    one-hot of the effective cell (dead edges read as ``none``); and a one-hot of ops on edges
    fed by the input (they cost time even when they lead nowhere). These lift Kendall tau on NB201
    accuracy from ~0.45 (one-hot) to ~0.75 at 100 training architectures.
    """
    space = space or nb201_space()
    if space.names != [f"op{i}" for i in range(6)]:
        raise GenomeError(f"nb201_features needs genes op0..op5, space {space.name!r} has "
                          f"{space.names}")
    # genome index -> NB201 op name index (into NB201_OPS), per gene
    table = np.full((6, int(space.n_options.max())), -1, dtype=np.int64)
    for g, c in enumerate(space.choices):
        for k, o in enumerate(c.options):
            table[g, k] = NB201_OPS.index(o)

    def features(X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        ops = table[np.arange(6)[None, :], X]  # (n, 6) op ids, 0 = none, 3/4 = convs
        conv = (ops == 3) | (ops == 4)
        alive = np.column_stack([np.all(ops[:, list(p)] != 0, axis=1) for p in _NB201_PATHS])
        on_live = np.zeros_like(ops, dtype=bool)
        for j, p in enumerate(_NB201_PATHS):
            on_live[:, list(p)] |= alive[:, [j]]
        eff = np.where(on_live, ops, 0)
        counts = np.stack([(ops == k).sum(1) for k in range(5)], 1)
        eff_counts = np.stack([(eff == k).sum(1) for k in range(1, 5)], 1)
        path_conv = np.column_stack([np.where(alive[:, j], conv[:, list(p)].sum(1), -1)
                                     for j, p in enumerate(_NB201_PATHS)])
        path_c3 = np.column_stack([np.where(alive[:, j], (ops[:, list(p)] == 4).sum(1), -1)
                                   for j, p in enumerate(_NB201_PATHS)])
        eff_onehot = np.eye(5)[eff].reshape(len(X), -1)
        # edges whose source node carries the input signal do real work even when they lead
        # nowhere (measured latency counts them): one-hot of ops on such edges
        fed = np.zeros((len(X), 4), dtype=bool)
        fed[:, 0] = True
        for e, (a, b) in enumerate(_NB201_EDGES):  # edges are listed in topological order
            fed[:, b] |= fed[:, a] & (ops[:, e] != 0)
        src_fed = fed[:, [a for a, _ in _NB201_EDGES]]
        fed_onehot = np.eye(5)[np.where(src_fed, ops, 0)].reshape(len(X), -1)
        # depth profile: how many live paths carry exactly j convolutions (j 3x3 convolutions)
        profile = [((path_conv == j).sum(1), (path_c3 == j).sum(1)) for j in range(4)]
        return np.column_stack([counts, alive, alive.any(1), alive.sum(1), eff_counts, path_conv,
                                path_c3, path_conv.max(1), path_c3.max(1), eff_onehot,
                                fed_onehot, *(c for pair in profile for c in pair)]
                               ).astype(float)

    return features


def default_nb201_path() -> Path | None:
    """The NAS-Bench-201 table the environment names: ``$EVO_NAS_NB201_CSV`` (the CSV or its
    folder), else ``$EVO_NAS_DATA/nb201/nb201_cifar10.csv``; None when neither is set. No path
    outside the repository is guessed: the shared data folder is named by ``$EVO_NAS_DATA``."""
    found = env_data_path(NB201_ENV, NB201_FOLDER)
    if found is None:
        return None
    source, raw = found
    return raw / NB201_FILE if raw.is_dir() or source != f"${NB201_ENV}" else raw


def load_nb201(
    path: str | Path | None = None,
    objectives: Sequence[str] = ("error", "flops"),
    budgets: Mapping[str, float] | None = None,
    accuracy: str = "test",
    space: SearchSpace | None = None,
    cheap: Iterable[str] | None = None,
    keep_disconnected: bool = True,
    columns: Mapping[str, str] | Sequence[str] | None = None,
) -> TabularProblem:
    """NAS-Bench-201 on CIFAR-10 as a :class:`TabularProblem` (15,625 cells).

    Only the gene columns ``op0..op5`` (codes as in :data:`NB201_CODES`) are required. Metrics:
    ``error`` = 100 - accuracy (``accuracy="test"``: ``c10_test_acc``; ``"valid"``:
    ``c10valid_valid_acc``, with ``test_error`` kept for reporting) when that column is present,
    then ``columns``: ``None`` takes every known column present (:data:`NB201_COLUMNS`: ``flops``
    (M), ``params`` (M), ``latency_{raspi4,pixel3,eyeriss,fpga}`` (ms, HW-NAS-Bench)) plus every
    other numeric column under its own name (a latency you measured yourself, say
    ``jetson_ms``); a list of column names or a ``{metric: column}`` mapping takes exactly
    those (a missing one is an error naming it). ``cheap`` defaults to ``flops`` and ``params``
    where present (analytic in NB201); accuracy and latency are measured, so surrogates predict
    them.

    Disconnected cells (no live input->output path, ~10 % accuracy) are **kept** by default: a
    real search meets them, and the true fronts then match NB201's published counts (18 points
    vs FLOPs, 47 vs raspi4 latency). ``keep_disconnected=False`` drops them (they then read as
    missing). ``space`` may restrict ops (see :func:`nb201_space`); rows outside it are dropped.

    ``path`` is the CSV or its folder; without it the table is ``$EVO_NAS_NB201_CSV``, else
    ``$EVO_NAS_DATA/nb201/nb201_cifar10.csv``. Neither, or a missing file, is a one-line
    :class:`~evo_nas.errors.DataError` naming ``path`` and both variables.
    """
    if accuracy not in ("test", "valid"):
        raise ConfigError(f"accuracy = {accuracy!r}: 'test' or 'valid'")
    p = resolve_nb201_path(path, "path", argument="load_nb201(path=...)")
    cols = read_csv_columns(p)
    genes = [f"op{i}" for i in range(6)]
    missing = [c for c in genes if c not in cols]
    if missing:
        raise DataError(f"NAS-Bench-201 table {str(p)!r} lacks gene columns {missing}")
    table: dict[str, Any] = {}
    for g in genes:
        codes = []
        for r, v in enumerate(cols[g]):
            code = _find_option(NB201_OP_CODE | {str(i): i for i in range(5)} |
                                {i: i for i in range(5)}, v)
            if code is None:
                raise DataError(f"{str(p)!r}: column {g}, data row {r + 1}: {v!r} is not an "
                                f"NB201 op code 0..4 or name {NB201_CODES}")
            codes.append(NB201_CODES[code])
        table[g] = codes
    numeric = _numeric_columns({c: v for c, v in cols.items() if c not in genes})
    acc_col = "c10_test_acc" if accuracy == "test" else "c10valid_valid_acc"
    metrics: dict[str, ColumnSpec] = {}
    if acc_col in numeric:
        metrics["error"] = lambda t: 100.0 - np.asarray(t[acc_col], float)
        if accuracy == "valid" and "c10_test_acc" in numeric:
            metrics["test_error"] = lambda t: 100.0 - np.asarray(t["c10_test_acc"], float)
    if columns is None:
        known = set(NB201_COLUMNS.values()) | {"idx", "c10_test_acc", "c10valid_valid_acc"}
        chosen = {m: c for m, c in NB201_COLUMNS.items() if c in numeric}
        chosen |= {c: c for c, v in numeric.items()
                   if c not in known and isinstance(v, np.ndarray) and c not in metrics}
    else:
        chosen = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
        absent = [c for c in chosen.values() if c not in numeric]
        if absent:
            raise DataError(f"NAS-Bench-201 table {str(p)!r} lacks columns {absent} "
                            f"(has {sorted(cols)})")
        bad = [c for c in chosen.values() if not isinstance(numeric[c], np.ndarray)]
        if bad:
            raise DataError(f"NAS-Bench-201 table {str(p)!r}: columns {bad} are not numeric")
    metrics |= chosen
    for c in set(chosen.values()) | {"c10_test_acc", "c10valid_valid_acc"}:
        if c in numeric:
            table[c] = numeric[c]
    if cheap is None:
        cheap = [m for m in ("flops", "params") if m in metrics]
    space = space or nb201_space()
    if not keep_disconnected:
        feats = nb201_features(nb201_space())
        X = nb201_space().encode_many({f"op{i}": table[f"op{i}"][r] for i in range(6)}
                                      for r in range(len(table["op0"])))
        live = feats(X)[:, 9] > 0  # column 9: any live path
        table = {k: [v for v, keep in zip(col, live, strict=True) if keep]
                 for k, col in table.items()}
    return TabularProblem(space, table, objectives, budgets=budgets, metrics=metrics,
                          cheap=cheap, on_unknown="drop", features=nb201_features(space))
