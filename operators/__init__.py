"""pymoo operators that know only the search space."""

from pymoo.operators.crossover.ux import UniformCrossover

from operators.budget import (
    BudgetRepair,
    BudgetSampling,
    budget_cost,
    cheap_budgets,
    operator_stats,
)
from operators.duplicates import CanonicalDuplicateElimination
from operators.mutation import ChoiceMutation
from operators.repair import CanonicalRepair
from operators.sampling import ChoiceSampling

__all__ = [
    "BudgetRepair",
    "BudgetSampling",
    "CanonicalDuplicateElimination",
    "CanonicalRepair",
    "ChoiceMutation",
    "ChoiceSampling",
    "UniformCrossover",
    "budget_cost",
    "cheap_budgets",
    "operator_stats",
]
