"""evo-nas: evolutionary multi-objective hardware-aware NAS on pymoo."""
