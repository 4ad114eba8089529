"""pymoo operators that know only the search space."""

from pymoo.operators.crossover.ux import UniformCrossover

from operators.duplicates import CanonicalDuplicateElimination
from operators.mutation import ChoiceMutation
from operators.repair import CanonicalRepair
from operators.sampling import ChoiceSampling

__all__ = [
    "CanonicalDuplicateElimination",
    "CanonicalRepair",
    "ChoiceMutation",
    "ChoiceSampling",
    "UniformCrossover",
]
