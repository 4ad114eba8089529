"""pymoo operators that know only the search space."""

from pymoo.operators.crossover.ux import UniformCrossover

from operators.adaptive import AdaptiveRate
from operators.budget import (
    BudgetRepair,
    BudgetSampling,
    budget_cost,
    cheap_budgets,
    operator_stats,
)
from operators.crossover import MixedCrossover
from operators.duplicates import CanonicalDuplicateElimination
from operators.mutation import ChoiceMutation, NeighbourMutation, draw_activated, draw_genes
from operators.repair import CanonicalRepair
from operators.sampling import ChoiceSampling
from operators.selection import RankTournament

__all__ = [
    "AdaptiveRate",
    "BudgetRepair",
    "BudgetSampling",
    "CanonicalDuplicateElimination",
    "CanonicalRepair",
    "ChoiceMutation",
    "ChoiceSampling",
    "MixedCrossover",
    "NeighbourMutation",
    "RankTournament",
    "UniformCrossover",
    "budget_cost",
    "cheap_budgets",
    "draw_activated",
    "draw_genes",
    "operator_stats",
]
