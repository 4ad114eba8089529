"""SQLite archive: caching, fault recording, resume after interruption and after SIGKILL."""

import os
import signal
import sqlite3
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

from evo_nas.archive import Archive, ArchiveError
from evo_nas.search import search


def front_keys(result):
    return sorted(SPACE.key(r["genome"]) for r in result.pareto)


def test_rows_are_committed_and_reused_across_runs(tmp_path):
    with Archive(tmp_path / "a.db") as archive:
        p1 = make_problem().attach(archive, "run1")
        r1 = search(p1, pop_size=10, generations=4, seed=0)
        assert archive.count("run1") == r1.n_evals
        calls = []

        def counting(configs):
            calls.append(len(configs))
            return f_error(configs)

        p2 = make_problem(counting).attach(archive, "run2", scope=p1.scope)
        r2 = search(p2, pop_size=10, generations=4, seed=0)
        assert calls == []  # every architecture came from the archive
        assert front_keys(r1) == front_keys(r2)


@pytest.mark.parametrize("stop_at", [4, 15, 37, 52, 66])
def test_interrupted_run_resumes_to_the_same_front(tmp_path, stop_at):
    # 10 + 35 generations of 2 children (pop_size // 4) = 80 evaluations, killed at stop_at
    full = search(make_problem(), pop_size=10, generations=36, seed=3)
    dying = dies_at(stop_at, f_error)
    with Archive(tmp_path / "a.db") as archive:
        with pytest.raises(Stop):
            search(make_problem(dying).attach(archive, "r"), pop_size=10, generations=36, seed=3)
        assert archive.count("r") == stop_at - 1
        resumed_problem = make_problem().attach(archive, "r")
        resumed = search(resumed_problem, pop_size=10, generations=36, seed=3)
        assert (resumed.info["resumed_from_generation"] is not None) == (stop_at > 10)
        assert archive.count("r") == full.n_evals == resumed.n_evals
    assert front_keys(resumed) == front_keys(full)
    assert [r["genome"] for r in resumed.history] == [r["genome"] for r in full.history]


def test_resume_with_other_settings_is_refused(tmp_path):
    from evo_nas.errors import ConfigError

    with Archive(tmp_path / "a.db") as archive:
        search(make_problem().attach(archive, "r"), pop_size=10, generations=2, seed=0)
        with pytest.raises(ConfigError, match="was started with"):
            search(make_problem().attach(archive, "r"), pop_size=12, generations=2, seed=0)


def test_faults_are_recorded_and_the_search_goes_on(tmp_path):
    def flaky(configs):
        c = configs[0]
        if c["g0"] == 3:
            raise RuntimeError(f"out of memory for g0={c['g0']}")
        if c["g1"] == 3:
            return [float("nan")]
        return f_error(configs)

    with Archive(tmp_path / "a.db") as archive:
        problem = make_problem(flaky).attach(archive, "r")
        result = search(problem, pop_size=12, generations=5, seed=0)
        failed = problem.failures()
        assert result.info["failed_evaluations"] == len(failed) > 0
        assert {r["status"] for r in failed} == {"failed", "nan"}
        assert all(r["fault"] for r in failed)
        assert all(r["config"]["g0"] != 3 and r["config"]["g1"] != 3 for r in result.pareto)
        rows = archive.rows("r")
        assert any(r["status"] == "failed" and "out of memory" in r["fault"] for r in rows)
        assert all(np.isnan(r["metrics"]["error"]) for r in rows if r["status"] != "ok")


def test_corrupt_truncated_and_foreign_files(tmp_path):
    good = tmp_path / "good.db"
    with Archive(good) as archive:
        search(make_problem().attach(archive, "r"), pop_size=10, generations=3, seed=0)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    for path, match in ((truncated, "corrupt|truncated|integrity"),
                        (garbage, "is corrupt"),
                        (foreign, "not an evo-nas archive")):
        with pytest.raises(ArchiveError, match=match):
            Archive(path)


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_archive import make_problem, f_error
    from evo_nas.archive import Archive
    from evo_nas.search import search

    def slow(configs):
        time.sleep(0.004)
        return f_error(configs)

    archive = Archive(sys.argv[1])
    search(make_problem(slow).attach(archive, "r"), pop_size=10, generations=12, seed=7)
    print("finished")
""")


def test_sigkill_at_a_random_moment_then_resume(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(__file__)))
    db = tmp_path / "kill.db"
    proc = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE)
    # wait for the first committed rows, then kill at a random moment
    deadline = time.time() + 60
    while time.time() < deadline and (not db.exists() or _count(db) < 5):
        time.sleep(0.05)
    time.sleep(float(np.random.default_rng().uniform(0.0, 0.3)))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Archive(db) as archive:
        before = archive.rows("r")
        resumed = search(make_problem().attach(archive, "r"), pop_size=10, generations=12, seed=7)
        after = archive.rows("r")
    full = search(make_problem(), pop_size=10, generations=12, seed=7)
    assert [r["key"] for r in after[: len(before)]] == [r["key"] for r in before]  # none lost
    assert len(after) == full.n_evals
    assert front_keys(resumed) == front_keys(full)


