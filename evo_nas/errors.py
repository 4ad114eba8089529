"""One exception family, so callers (and the CLI) can tell user errors from bugs.

Every message names the offending field and value; the CLI turns these into exit status 2.
"""


class EvoNasError(Exception):
    """Base of every error evo-nas raises on bad input."""


class GenomeError(EvoNasError, ValueError):
    """A genome or architecture config that does not belong to its search space."""


class ConfigError(EvoNasError, ValueError):
    """A run configuration with an unknown key, a wrong type or an impossible value."""


class BudgetError(EvoNasError):
    """A budget that no architecture in the space can meet."""


class DataError(EvoNasError):
    """A dataset that cannot be found or read."""


class CheckpointError(EvoNasError):
    """A checkpoint that is missing, corrupt, or belongs to another space."""


class RunDirBusyError(EvoNasError):
    """A run directory another search is writing to (two writers would interleave rows)."""


class TrainingError(EvoNasError):
    """Training that cannot go on: a NaN or infinite loss (no checkpoint is written)."""


class LatencyTableError(EvoNasError):
    """A latency table that belongs to another space, is malformed, or lacks a part (also
    importable as ``evo_nas.latency.LatencyTableError``)."""
