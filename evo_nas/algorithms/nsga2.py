"""pymoo's NSGA-II with operators that respect the search space."""

from __future__ import annotations

from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.operators.crossover.ux import UniformCrossover

from evo_nas.space import SearchSpace
from operators import CanonicalDuplicateElimination, CanonicalRepair, ChoiceMutation, ChoiceSampling


def make_nsga2(space: SearchSpace, pop_size: int = 20, crossover_prob: float = 0.9,
               mutation_prob_var: float | None = None) -> NSGA2:
    """NSGA-II with choice sampling, uniform crossover, per-gene mutation, canonical repair and
    duplicate elimination on canonical genomes (pymoo handles constraints feasibility-first)."""
    return NSGA2(
        pop_size=pop_size,
        sampling=ChoiceSampling(space),
        crossover=UniformCrossover(prob=crossover_prob),
        mutation=ChoiceMutation(space, prob_var=mutation_prob_var),
        repair=CanonicalRepair(space),
        eliminate_duplicates=CanonicalDuplicateElimination(space),
    )
