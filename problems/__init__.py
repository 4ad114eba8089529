"""pymoo problems over evo-nas search spaces."""

from problems.nas import Metric, NASProblem

__all__ = ["Metric", "NASProblem"]
