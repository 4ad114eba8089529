"""The search examples run as a newcomer would run them (subprocess, quick mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_tabular_search_example():
    out = run("tabular_search.py", "--quick")
    assert "Pareto front" in out and "truly Pareto-optimal" in out


def test_custom_predictor_example():
    out = run("custom_predictor.py", "--quick")
    assert "SVR (plug-in): kendall_tau" in out and "HV over real evaluations" in out
