"""Search spaces: named categorical genes, integer genomes, and their canonical form.

A genome is a vector of option *indices* (gene ``i`` takes values ``0 .. len(options_i) - 1``),
which is what pymoo searches over (``vtype=int``). A config is the dict ``{gene name: option
value}`` that models and objectives read. Some genes only matter when another gene allows them
(the kernel of a block beyond its stage's depth); the canonical form fixes such inactive genes at
index 0, so two genomes that describe the same network become identical and duplicates are caught.

This module knows nothing of torch: spaces can be searched over lookup tables alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evo_nas.cell import CellGraph
from evo_nas.errors import GenomeError

__all__ = ["Choice", "SearchSpace"]


@dataclass(frozen=True)
class Choice:
    """One categorical gene.

    ``active_if`` makes the gene conditional: ``("s0.d", (3, 4))`` means the gene only matters
    when gene ``s0.d`` takes one of the option *values* 3 or 4. Parents must be unconditional.
    Options are listed from cheapest to most expensive by convention, so index 0 everywhere is
    the smallest architecture and the last index the largest; NSGA-II's crossover relies on it
    to make children of intermediate cost from categorical genes too.

    ``ordered`` says whether neighbouring option indices are similar architectures (kernel 3, 5,
    7; depth 2, 3, 4), which lets operators take small steps instead of random jumps. ``None``
    (the default) infers it: numeric options in ascending or descending order are ordered, any
    other options (strings such as operation names) are categorical. ``True`` or ``False``
    overrides the inference (e.g. operation names listed from cheapest to most expensive).
    """

    name: str
    options: tuple[Any, ...]
    active_if: tuple[str, tuple[Any, ...]] | None = None
    ordered: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if len(self.options) == 0:
            raise GenomeError(f"gene {self.name!r} has no options")
        if len(set(self.options)) != len(self.options):
            raise GenomeError(f"gene {self.name!r} has repeated options {self.options}")
        if self.active_if is not None:
            parent, values = self.active_if
            object.__setattr__(self, "active_if", (parent, tuple(values)))
        if self.ordered is not None and not isinstance(self.ordered, bool | np.bool_):
            raise GenomeError(f"gene {self.name!r}: ordered = {self.ordered!r} must be True, "
                              "False or None (infer from the options)")

    @property
    def is_ordered(self) -> bool:
        """Whether option indices have a meaningful order (see ``ordered``)."""
        if self.ordered is not None:
            return bool(self.ordered)
        return _monotone_numbers(self.options)


@dataclass
class SearchSpace:
    """An ordered list of :class:`Choice` genes with vectorised genome operations.

    Two optional hooks serve spaces whose structure the gene list alone cannot say:
    ``canonicalizer`` maps a validated 2-D genome batch to one representative per equivalence
    class after inactive genes are fixed (NAS-Bench-201 cells that compute the same function
    share a representative, so searches and caches never see twins); it must be a picklable
    module-level function. ``extremes`` is ``(smallest, largest)`` by cost, for spaces whose
    option order is fixed by something else than cost (NAS-Bench-201's operation codes, a
    user's candidate list); without it index 0 everywhere is the smallest, the last the largest.
    ``cell`` declares genes that are the edges of a cell DAG (:class:`~evo_nas.cell.CellGraph`:
    which nodes each edge joins, which option is the zero op), so predictors can read live paths
    instead of guessing them from one-hot codes (:func:`~evo_nas.cell.cell_features`).
    """

    choices: Sequence[Choice]
    name: str = "custom"
    meta: dict[str, Any] = field(default_factory=dict)
    canonicalizer: Callable[[np.ndarray], np.ndarray] | None = None
    extremes: tuple[Sequence[int], Sequence[int]] | None = None
    cell: CellGraph | None = None

    def __post_init__(self) -> None:
        self.choices = tuple(self.choices)
        self.names = [c.name for c in self.choices]
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise GenomeError(f"search space {self.name!r} repeats gene names {dup}")
        self._index = {n: i for i, n in enumerate(self.names)}
        self.n_options = np.array([len(c.options) for c in self.choices], dtype=np.int64)
        self.ordered = np.array([c.is_ordered for c in self.choices], dtype=bool)
        # conditional genes: (child index, parent index, boolean mask over the parent's options)
        self._conditions: list[tuple[int, int, np.ndarray]] = []
        for i, c in enumerate(self.choices):
            if c.active_if is None:
                continue
            parent, values = c.active_if
            if parent not in self._index:
                raise GenomeError(f"gene {c.name!r} depends on unknown gene {parent!r}")
            p = self._index[parent]
            if self.choices[p].active_if is not None:
                raise GenomeError(f"gene {c.name!r} depends on {parent!r}, itself conditional")
            bad = [v for v in values if v not in self.choices[p].options]
            if bad:
                raise GenomeError(
                    f"gene {c.name!r}: active_if values {bad} are not options of {parent!r} "
                    f"{self.choices[p].options}"
                )
            mask = np.array([o in values for o in self.choices[p].options])
            self._conditions.append((i, p, mask))
        if self.cell is not None:
            if not isinstance(self.cell, CellGraph):
                raise GenomeError(f"search space {self.name!r}: cell = {self.cell!r} must be a "
                                  f"CellGraph")
            self.cell.check(self)

    # ----------------------------------------------------------------- basic facts
    @property
    def n_var(self) -> int:
        return len(self.choices)

    @property
    def xl(self) -> np.ndarray:
        return np.zeros(self.n_var, dtype=np.int64)

    @property
    def xu(self) -> np.ndarray:
        return self.n_options - 1

    def __len__(self) -> int:
        return self.n_var

    def __getitem__(self, name: str) -> Choice:
        return self.choices[self._index_of(name)]

    def _index_of(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise GenomeError(_unknown("gene", name, self.names)) from None

    def cardinality(self) -> int:
        """Number of distinct canonical architectures (exact integer).

        With a ``canonicalizer`` the classes are counted by enumerating every genome (up to
        two million; beyond that a GenomeError, rather than an overcount)."""
        if self.canonicalizer is not None:
            return len(self.classes())
        children: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, p, mask in self._conditions:
            children.setdefault(p, []).append((i, mask))
        conditional = {i for i, _, _ in self._conditions}
        total = 1
        for i in range(self.n_var):
            if i in conditional:
                continue
            if i not in children:
                total *= int(self.n_options[i])
                continue
            per_value = 0
            for v in range(int(self.n_options[i])):
                prod = 1
                for child, mask in children[i]:
                    if mask[v]:
                        prod *= int(self.n_options[child])
                per_value += prod
            total *= per_value
        return total

    def classes(self) -> np.ndarray:
        """Every distinct canonical genome, sorted (enumerated once and cached; spaces of up to
        two million genomes, else a GenomeError). Sampling these uniformly gives each
        equivalence class the same chance, whatever its size."""
        cached = self.__dict__.get("_classes")
        if cached is not None:
            return cached
        total = int(np.prod(self.n_options, dtype=object))
        if total > 2_000_000:
            raise GenomeError(f"search space {self.name!r}: {total} genomes are too many to "
                              "enumerate its classes")
        grid = np.indices(tuple(int(n) for n in self.n_options)).reshape(self.n_var, -1).T
        self._classes = np.unique(self.canonical(grid), axis=0)
        return self._classes

    # ----------------------------------------------------------------- genomes
    def validate(self, X: np.ndarray | Sequence[int] | Sequence[Sequence[int]]) -> np.ndarray:
        """Return ``X`` as an int array, or raise naming the first bad gene, index and range."""
        arr = np.asarray(X)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.n_var:
            raise GenomeError(
                f"genome shape {arr.shape} does not fit space {self.name!r}: "
                f"expected ({self.n_var},) or (n, {self.n_var})"
            )
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)):
                r, c = _first(~np.isfinite(np.atleast_2d(arr)))
                raise GenomeError(f"gene {self.names[c]!r} (index {c}) is not finite")
            if not np.all(arr == np.round(arr)):
                r, c = _first(np.atleast_2d(arr) != np.round(np.atleast_2d(arr)))
                val = np.atleast_2d(arr)[r, c]
                raise GenomeError(f"gene {self.names[c]!r} (index {c}) = {val} is not an integer")
        elif arr.dtype.kind not in "iub":
            raise GenomeError(f"genome dtype {arr.dtype} is not integer")
        out = arr.astype(np.int64)
        two = np.atleast_2d(out)
        bad = (two < 0) | (two > self.xu)
        if bad.any():
            r, c = _first(bad)
            raise GenomeError(
                f"gene {self.names[c]!r} (index {c}) = {two[r, c]} is out of range "
                f"0..{self.xu[c]} (options {self.choices[c].options})"
            )
        return out

    def active(self, X: np.ndarray) -> np.ndarray:
        """Boolean mask of genes that matter, same shape as ``X``."""
        X = np.asarray(X)
        two = np.atleast_2d(X)
        act = np.ones(two.shape, dtype=bool)
        for i, p, mask in self._conditions:
            act[:, i] = mask[two[:, p]]
        return act.reshape(X.shape)

    @property
    def plain(self) -> bool:
        """Whether every in-range genome is already canonical (no conditional genes, no
        canonicalizer): hot paths may then skip :meth:`canonical`."""
        return not self._conditions and self.canonicalizer is None

    def canonical(self, X: np.ndarray) -> np.ndarray:
        """Validated copy of ``X`` with every inactive gene fixed at index 0 (vectorised)."""
        out = self.validate(X).copy()
        two = np.atleast_2d(out)
        if self._conditions:
            two[~self.active(two)] = 0
        if self.canonicalizer is not None:
            two = np.asarray(self.canonicalizer(two), dtype=np.int64)
        return two.reshape(out.shape)

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` uniformly random canonical genomes (each gene uniform over its options)."""
        rng = np.random.default_rng(rng)
        X = (rng.random((n, self.n_var)) * self.n_options).astype(np.int64)
        return self.canonical(X)

    def largest(self) -> np.ndarray:
        """The most expensive architecture (``extremes[1]``, else every gene at its last option)."""
        if self.extremes is not None:
            return self.canonical(np.asarray(self.extremes[1]))
        return self.canonical(self.xu.copy())

    def smallest(self) -> np.ndarray:
        """The cheapest architecture (``extremes[0]``, else every gene at option 0)."""
        if self.extremes is not None:
            return self.canonical(np.asarray(self.extremes[0]))
        return self.canonical(self.xl.copy())

    def key(self, x: np.ndarray | Sequence[int]) -> str:
        """Hashable, human-readable identity of one genome (canonicalised first)."""
        return "-".join(str(int(v)) for v in self.canonical(np.asarray(x)))

    def keys(self, X: np.ndarray) -> list[str]:
        """:meth:`key` of every row of a canonical genome matrix (the hot path: no re-checks)."""
        digits = [str(i) for i in range(int(self.xu.max()) + 1)]
        return ["-".join(map(digits.__getitem__, row)) for row in np.atleast_2d(X).tolist()]

    # ----------------------------------------------------------------- configs
    def decode(self, x: np.ndarray | Sequence[int]) -> dict[str, Any]:
        """Config dict of one genome (canonicalised first)."""
        x = self.canonical(np.asarray(x))
        if x.ndim != 1:
            raise GenomeError(f"decode takes one genome, got shape {x.shape}; use decode_many")
        return {c.name: c.options[int(v)] for c, v in zip(self.choices, x, strict=True)}

    def decode_many(self, X: np.ndarray) -> list[dict[str, Any]]:
        X = np.atleast_2d(self.canonical(X))
        return [{c.name: c.options[int(v)] for c, v in zip(self.choices, row, strict=True)}
                for row in X]

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Genome of a config dict. Inactive genes may be omitted; every key must be a gene."""
        if not isinstance(config, Mapping):
            raise GenomeError(f"architecture config must be a mapping, got {type(config).__name__}")
        for k in config:
            if k not in self._index:
                raise GenomeError(_unknown("gene", k, self.names))
        x = np.zeros(self.n_var, dtype=np.int64)
        missing = []
        for i, c in enumerate(self.choices):
            if c.name not in config:
                missing.append(i)
                continue
            value = config[c.name]
            try:
                x[i] = c.options.index(value)
            except ValueError:
                raise GenomeError(
                    f"gene {c.name!r} = {value!r} is not one of its options {c.options}"
                ) from None
        if missing:
            act = self.active(x)
            needed = [self.names[i] for i in missing if act[i]]
            if needed:
                raise GenomeError(f"architecture config lacks active genes {needed}")
        return self.canonical(x)

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        rows = [self.encode(c) for c in configs]
        return np.stack(rows) if rows else np.zeros((0, self.n_var), dtype=np.int64)


def _monotone_numbers(options: Sequence[Any]) -> bool:
    """True for real numbers (not bools) listed in strictly ascending or descending order."""
    if len(options) < 2 or not all(isinstance(o, int | float | np.integer | np.floating)
                                   and not isinstance(o, bool | np.bool_) for o in options):
        return False
    d = np.diff(np.asarray(options, dtype=float))
    return bool(np.all(d > 0) or np.all(d < 0))


def _first(mask: np.ndarray) -> tuple[int, int]:
    r, c = np.argwhere(mask)[0]
    return int(r), int(c)


def _unknown(kind: str, name: object, known: Sequence[str]) -> str:
    msg = f"unknown {kind} {name!r}"
    close = difflib.get_close_matches(str(name), list(known), n=1)
    if close:
        msg += f" (did you mean {close[0]!r}?)"
    return msg
