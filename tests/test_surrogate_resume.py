"""The surrogate loop is a first-class run: its state lives in the archive, and a run killed at
any moment (a real SIGKILL included) resumes to spend exactly the remaining budget and end with
the front of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import TOY8 as SPACE
from helpers import Stop, dies_at
from helpers import count_rows as _count
from helpers import toy_cost as f_cost  # noqa: F401
from helpers import toy_error as f_error
from helpers import toy_problem as make_problem
from threadpoolctl import threadpool_limits

from evo_nas.algorithms.surrogate import SurrogateAssistedSearch
from evo_nas.archive import Archive
from evo_nas.errors import ConfigError

BUDGET = 30
OPTIONS = {"predictor": "rf", "n_initial": 10, "batch_size": 5, "inner_pop_size": 16,
           "inner_generations": 4}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield




def run(problem, progress=False, **kw):
    return SurrogateAssistedSearch(budget=BUDGET, **{**OPTIONS, **kw}).run(
        problem, seed=3, progress=progress)


def front_keys(result):
    return sorted(SPACE.key(r["genome"]) for r in result.pareto)


@pytest.mark.parametrize("stop_at", [1, 7, 11, 13, 21, 30])
def test_interrupted_loop_resumes_to_the_same_front(tmp_path, stop_at):
    full = run(make_problem())
    dying = dies_at(stop_at, f_error)
    count = {"after": 0}

    def counting(configs):
        count["after"] += 1
        return f_error(configs)

    with Archive(tmp_path / "a.db") as archive:
        with pytest.raises(Stop):
            run(make_problem(dying).attach(archive, "r"))
        assert archive.count("r") == stop_at - 1
        resumed = run(make_problem(counting).attach(archive, "r"))
        assert resumed.info["resumed_from_round"] is not None
        assert count["after"] == BUDGET - (stop_at - 1)  # exactly the remaining budget
        assert archive.count("r") == BUDGET == resumed.info["real_evaluations"]
    assert [r["genome"] for r in resumed.history] == [r["genome"] for r in full.history]
    assert front_keys(resumed) == front_keys(full)
    assert resumed.info["hv_curve"] == full.info["hv_curve"]
    # the resumed run replays its interrupted round's lookups (operators' own caches aside)
    assert resumed.info["cheap_lookups"] >= 0.9 * full.info["cheap_lookups"] > 0


def test_a_finished_run_is_not_run_again_and_other_settings_are_refused(tmp_path):
    with Archive(tmp_path / "a.db") as archive:
        first = run(make_problem().attach(archive, "r"))
        again = run(make_problem().attach(archive, "r"))
        assert archive.count("r") == BUDGET and again.info["real_evaluations"] == BUDGET
        assert front_keys(again) == front_keys(first)
        with pytest.raises(ConfigError, match="was started with"):
            run(make_problem().attach(archive, "r"), batch_size=6)


def test_progress_bar_counts_real_evaluations(capsys):
    run(make_problem(), progress=True)
    err = capsys.readouterr().err
    assert "surrogate" in err and f"/{BUDGET}" in err and "eval" in err


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from threadpoolctl import threadpool_limits
    from test_surrogate_resume import make_problem, f_error, run
    from evo_nas.archive import Archive

    def slow(configs):
        time.sleep(0.02)
        return f_error(configs)

    with threadpool_limits(1):
        archive = Archive(sys.argv[1])
        run(make_problem(slow).attach(archive, "r"))
    print("finished")
""")


def test_sigkill_at_a_random_moment_then_resume(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(__file__)))
    db = tmp_path / "kill.db"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE,
                            env=env)
    # wait for the first committed rows, then kill at a random moment (mid-round, mostly)
    target = int(np.random.default_rng().integers(3, BUDGET - 3))
    deadline = time.time() + 120
    while time.time() < deadline and (not db.exists() or _count(db) < target):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Archive(db) as archive:
        before = archive.rows("r")
        assert len(before) < BUDGET  # it was killed before the end
        calls = {"n": 0}

        def counting(configs):
            calls["n"] += 1
            return f_error(configs)

        resumed = run(make_problem(counting).attach(archive, "r"))
        after = archive.rows("r")
    full = run(make_problem())
    assert [r["key"] for r in after[: len(before)]] == [r["key"] for r in before]  # none lost
    assert calls["n"] == BUDGET - len(before)  # spends exactly the remaining budget
    assert len(after) == BUDGET == resumed.info["real_evaluations"]
    assert [r["genome"] for r in resumed.history] == [r["genome"] for r in full.history]
    assert front_keys(resumed) == front_keys(full)


