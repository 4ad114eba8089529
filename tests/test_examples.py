"""Every example runs as a newcomer would run it (small sizes)."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script, *args, cwd):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_custom_space_example(tmp_path):
    out = _run("custom_space.py", "--evals", "100", cwd=tmp_path)
    assert "Pareto front:" in out and "most accurate within budget" in out


def test_digits_search_example(tmp_path):
    out = _run("digits_search.py", "--epochs", "2", "--evals", "16", "--pop-size", "8",
               "--budget", "1.5", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "most accurate:" in out
    assert (tmp_path / "run" / "pareto.json").exists()


def test_choice_supernet_example(tmp_path):
    out = _run("choice_supernet.py", "--quick", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert "Pareto front:" in out and "most accurate:" in out and "extracted" in out
    assert (tmp_path / "run" / "pareto.json").exists()
