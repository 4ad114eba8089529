"""User errors at the edges (issue 15): one line naming the field and value, exit 2, raised before
any training or search starts, and nothing the user has is lost or modified."""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from evo_nas.cli import main
from evo_nas.errors import ConfigError

CUDA = torch.cuda.is_available()


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("evo-nas: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """An untrained tiny supernet: these tests need a real checkpoint, not a good one."""
    from evo_nas.nn import Supernet
    from evo_nas.train import save_checkpoint

    torch.manual_seed(0)
    net = Supernet("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "supernet.pt"
    save_checkpoint(path, net)
    return path


SEARCH = ("--pop-size", "4", "--generations", "1", "--calib-images", "50", "--quiet")


@pytest.fixture(scope="module")
def searched(ckpt, tmp_path_factory):
    """A finished search: ``(runs_dir, run_dir)`` (copy it before changing it)."""
    runs = tmp_path_factory.mktemp("searched")
    assert main(["search", "--checkpoint", str(ckpt), "--runs-dir", str(runs), "--name", "s",
                 *SEARCH]) == 0
    return runs, runs / "s"


@pytest.fixture
def no_work(monkeypatch):
    """Training, searching or starting a batch now fails the test: checks must come first."""
    def started(*a, **k):
        raise AssertionError("work started before the error was found")

    monkeypatch.setattr("evo_nas.train.train_supernet", started)
    monkeypatch.setattr("evo_nas.search.search", started)
    monkeypatch.setattr("evo_nas.batch.run_batch", started)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


# --------------------------------------------------------------------- the parametrised list
CASES = [
    # (id, argv after the command, config text or None, what the line must name)
    ("max_train_0", ["train"], "data: {max_train: 0}\n", "data.max_train = 0"),
    ("max_train_neg", ["search"], "data: {max_train: -3}\n", "data.max_train = -3"),
    ("eval_batch_0", ["search"], "eval: {batch_size: 0}\n", "eval.batch_size = 0"),
    ("device_bad", ["train", "--device", "cuda:x"], None, "device = 'cuda:x'"),
    ("device_neg", ["search", "--device", "cuda:-1"], None, "device = 'cuda:-1'"),
    ("device_gpu", ["train", "--device", "gpu"], None, "device = 'gpu'"),
    ("seed_neg", ["train", "--seed", "-1"], None, "seed = -1"),
    ("seed_huge", ["search", "--seed", str(2**32)], None, f"seed = {2**32}"),
    ("train_seed_huge", ["train"], "train: {seed: 99999999999}\n", "train.seed = 99999999999"),
    # past torch's 64-bit seed: was a traceback from torch.manual_seed before the range check
    ("seed_past_uint64", ["search", "--seed", str(2**64)], None, f"seed = {2**64}"),
    ("seed_neg_huge", ["train", "--seed", str(-2**64)], None, f"seed = {-2**64}"),
    ("config_seed_past_uint64", ["train"], f"seed: {2**70}\n", f"seed = {2**70}"),
    ("threads_0", ["train", "--threads", "0"], None, "--threads = 0"),
    ("threads_neg", ["search", "--threads", "-2"], None, "--threads = -2"),
    # search --backend: the config's one line, not argparse's usage block
    ("search_backend_unknown", ["search", "--backend", "nope"], None,
     "search.backend = 'nope': choose one of"),
    ("search_workers_0", ["search", "--backend", "loky", "--workers", "0"], None,
     "search.workers = 0"),
    ("nsga2_crossover_5", ["search"], "search: {options: {crossover_prob: 5}}\n",
     "crossover_prob = 5: must be a number in 0..1"),
    ("nsga2_crossover_text", ["search"], "search: {options: {crossover_prob: high}}\n",
     "crossover_prob = 'high'"),
    ("regularized_sample_size", ["search"],
     "search: {algorithm: regularized, options: {sample_size: 9}}\n",
     "sample_size = 9: must be an int in 1..pop_size (4)"),
]
if not CUDA:
    CASES.append(("no_gpu", ["search", "--device", "cuda"], None,
                  "device = 'cuda': no CUDA GPU"))


@pytest.mark.parametrize("argv, config, expect", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_values_fail_in_one_line_before_work(argv, config, expect, ckpt, tmp_path, capsys,
                                                 no_work):
    extra = ["--runs-dir", tmp_path / "runs", "--name", "r"]
    if config is not None:
        (tmp_path / "c.yaml").write_text(config)
        extra += ["--config", tmp_path / "c.yaml"]
    if argv[0] == "search":
        extra += ["--checkpoint", ckpt, *SEARCH]
    code, _, err = run(capsys, *argv, *extra)
    assert code == 2
    assert expect in one_line(err)
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_binary_config_file(tmp_path, capsys, no_work):
    cfg = tmp_path / "run.yaml"
    cfg.write_bytes(b"\x80\x02\xff\xfe binary \x00\x01")
    code, _, err = run(capsys, "train", "--config", cfg, "--runs-dir", tmp_path / "runs")
    assert code == 2
    line = one_line(err)
    assert str(cfg) in line and "not a text file" in line and "0x80" in line


def test_runs_dir_that_is_a_file_or_under_one(ckpt, tmp_path, capsys, no_work):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for cmd in (["train"], ["search", "--checkpoint", ckpt, *SEARCH], ["demo", "--quiet"]):
        for runs in (afile, afile / "sub"):
            code, _, err = run(capsys, *cmd, "--runs-dir", runs)
            assert code == 2
            line = one_line(err)
            assert f"runs_dir = {str(runs)!r}" in line and "is a file, not a directory" in line
    assert afile.read_text() == "mine"


def test_out_paths_are_checked_before_work(searched, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("evo_nas.fidelity.run_fidelity", lambda *a, **k: 1 / 0)
    monkeypatch.setattr("evo_nas.latency.build_table", lambda *a, **k: 1 / 0)
    monkeypatch.setattr("evo_nas.commands.export.export_from_run", lambda *a, **k: 1 / 0)
    afile = tmp_path / "afile"
    afile.write_text("")
    for argv, expect in (
        (["fidelity", "--quick", "--out", afile / "f.json"], "--out = "),
        (["latency", "build", "--out", afile / "t.json"], "--out = "),
        (["latency", "export-parts", "--out", afile], "--out = "),
        (["export", searched[1], "--out", tmp_path], "--out = "),
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert expect in one_line(err)


# ------------------------------------------------------------------------------- batches
def _batch(tmp_path, ckpt, name):
    spec = tmp_path / "batch.yaml"
    spec.write_text(f"name: {name!r}\nruns_dir: {str(tmp_path / 'bruns')!r}\n"
                    f"checkpoint: {str(ckpt)!r}\n"
                    "base: {search: {pop_size: 4, generations: 1}, eval: {calib_images: 50}}\n")
    return spec


@pytest.mark.parametrize("name", ["../escape", "..", "/tmp/elsewhere", "a/b"])
def test_batch_name_must_stay_inside_runs_dir(name, ckpt, tmp_path, capsys, no_work):
    code, _, err = run(capsys, "batch", _batch(tmp_path, ckpt, name))
    assert code == 2
    assert f"name = {name!r}: must be a plain directory name" in one_line(err)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "bruns").exists()


@pytest.mark.parametrize("flags, expect", [
    (["--n-jobs", "0"], "--n-jobs = 0"),
    (["--backend", "nope"], "--backend = 'nope': choose one of"),
    (["--threads", "0"], "--threads = 0"),
    (["--backend", "dask"], "--backend dask needs --scheduler"),
    (["--scheduler", "tcp://127.0.0.1:1"], "needs --backend dask"),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"],
     "--scheduler = 'tcp://127.0.0.1:1': no Dask scheduler answers there"),
])
def test_batch_options(flags, expect, ckpt, tmp_path, capsys, no_work):
    code, _, err = run(capsys, "batch", _batch(tmp_path, ckpt, "ok"), *flags)
    assert code == 2
    assert expect in one_line(err)
    assert not (tmp_path / "bruns").exists()


def test_unreachable_search_scheduler_fails_fast(ckpt, tmp_path, capsys, no_work):
    code, _, err = run(capsys, "search", "--checkpoint", ckpt, "--runs-dir", tmp_path,
                       "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", *SEARCH)
    assert code == 2
    assert "search.scheduler = 'tcp://127.0.0.1:1': no Dask scheduler" in one_line(err)


# --------------------------------------------------------------------------- training
def test_nan_loss_stops_training_and_writes_no_checkpoint(tmp_path, capsys):
    state = tmp_path / "state.pt"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {max_train: 256}\ntrain: {batch_size: 64, n_random: 1}\n")
    code, _, err = run(capsys, "train", "--config", cfg, "--lr", "1e30", "--epochs", "2",
                       "--runs-dir", tmp_path, "--name", "t", "--state-path", state, "--quiet")
    assert code == 2
    line = one_line(err)
    assert "training diverged: loss = nan" in line and "train.lr = 1e+30" in line
    assert not (tmp_path / "t" / "supernet.pt").exists() and not state.exists()


def test_empty_training_split_is_a_data_error(digits):
    import dataclasses

    from evo_nas.data import Split
    from evo_nas.errors import DataError, EvoNasError
    from evo_nas.nn import Supernet
    from evo_nas.train import TrainConfig, train_supernet

    empty = dataclasses.replace(digits, train=Split(digits.train.x[:0], digits.train.y[:0]))
    with pytest.raises(DataError, match="training split is empty"):
        train_supernet(Supernet("tiny"), empty, TrainConfig(epochs=1))
    from evo_nas.data import load_dataset

    with pytest.raises(EvoNasError, match="max_train = 0"):
        load_dataset("digits", max_train=0)


# --------------------------------------------------------------------------- metrics
@pytest.mark.parametrize("value, shown", [(None, "None (NoneType)"), ("fast", "'fast' (str)"),
                                          ({"m": "1.5"}, "'1.5' (str)")])
def test_metric_returning_none_or_text_is_one_line(value, shown):
    from evo_nas.search import search
    from evo_nas.space import Choice, SearchSpace
    from problems import NASProblem

    space = SearchSpace([Choice("a", (0, 1, 2)), Choice("b", (0, 1))])
    good = lambda cs: [float(c["a"]) for c in cs]  # noqa: E731
    bad = lambda cs: value if isinstance(value, dict) else [value] * len(cs)  # noqa: E731
    problem = NASProblem(space, {"f": good, "m": bad})
    with pytest.raises(ConfigError) as e:
        search(problem, "nsga2", pop_size=4, generations=1, seed=0, progress=False)
    assert "\n" not in str(e.value)
    assert f"metric 'm' returned {shown}" in str(e.value)


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_errors_never_advise_weights_only_false(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pt"
    torch.save({"format": "evo-nas-supernet/2", "x": Evil()}, bad)
    code, out, err = run(capsys, "search", "--checkpoint", bad, "--runs-dir", tmp_path, *SEARCH)
    assert code == 2 and "pwned" not in out
    line = one_line(err)
    assert "weights_only" not in line and "can still be loaded" not in line
    assert "evil.pt" in line and "refuses to load it" in line
    state = tmp_path / "state.pt"
    torch.save({"format": "evo-nas-train-state/1", "x": Evil()}, state)
    code, _, err = run(capsys, "train", "--state-path", state, "--resume", "--epochs", "1",
                       "--runs-dir", tmp_path, "--quiet")
    assert code == 2
    line = one_line(err)
    assert "weights_only" not in line and "state.pt" in line
    garbage = tmp_path / "zeros.pt"
    garbage.write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "search", "--checkpoint", garbage, "--runs-dir", tmp_path, *SEARCH)
    line = one_line(err)
    assert code == 2 and "zeros.pt' is corrupt" in line and "weights_only" not in line
    source = "".join(p.read_text() for p in Path("evo_nas").rglob("*.py"))
    assert "weights_only=False" not in source


# --------------------------------------------------------------------------- archives
def _lookalike(path: Path, tables: str) -> tuple[bytes, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(tables)
    conn.commit()
    conn.close()
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.mark.parametrize("tables", [
    "CREATE TABLE foo (a); INSERT INTO foo VALUES (1);",
    "CREATE TABLE meta (k, v); CREATE TABLE evaluations (x, y); INSERT INTO meta VALUES (1, 2);",
])
def test_lookalike_archive_is_rejected_unchanged(tables, ckpt, tmp_path, capsys):
    db = tmp_path / "runs" / "s" / "archive.db"
    before = _lookalike(db, tables)
    code, _, err = run(capsys, "search", "--checkpoint", ckpt, "--runs-dir", tmp_path / "runs",
                       "--name", "s", *SEARCH)
    assert code == 2
    assert "is an SQLite file but not an evo-nas archive" in one_line(err)
    for cmd in (["report", db.parent], ["search", "--resume", db.parent]):
        code, _, err = run(capsys, *cmd)
        assert code == 2 and "not an evo-nas archive" in one_line(err)
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before
    assert sorted(p.name for p in db.parent.iterdir() if p.name != ".lock") == ["archive.db"]


@pytest.mark.parametrize("config, expect", [("{not json", "is not valid JSON"),
                                            ("[1, 2]", "is a list, not a mapping"),
                                            ('"text"', "is a str, not a mapping")])
def test_tampered_archive_config(config, expect, searched, tmp_path, capsys):
    run_dir = _copy(searched[1], tmp_path / "s")
    conn = sqlite3.connect(run_dir / "archive.db")
    conn.execute("UPDATE runs SET config=?", (config,))
    conn.commit()
    conn.close()
    for cmd in (["report", run_dir], ["search", "--resume", run_dir]):
        code, _, err = run(capsys, *cmd)
        assert code == 2
        line = one_line(err)
        assert "runs.config of run" in line and expect in line


def test_archive_without_checkpoint_record(searched, tmp_path, capsys):
    import json

    run_dir = _copy(searched[1], tmp_path / "s")
    conn = sqlite3.connect(run_dir / "archive.db")
    cfg = json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])
    del cfg["checkpoint"]
    conn.execute("UPDATE runs SET config=?", (json.dumps(cfg),))
    conn.commit()
    conn.close()
    code, _, err = run(capsys, "search", "--resume", run_dir)
    assert code == 2 and "records no checkpoint" in one_line(err)


# ------------------------------------------------------------------ read-only folders (real)
READONLY_SCRIPT = """
import os, sys
from evo_nas.cli import main
ro, ckpt = sys.argv[1], sys.argv[2]
assert not os.access(ro, os.W_OK), "the folder should be read-only here"
search = ["--pop-size", "4", "--generations", "1", "--calib-images", "50", "--quiet"]
codes = [main(["report", ro + "/s"]),
         main(["search", "--checkpoint", ckpt, "--runs-dir", ro, "--name", "new", *search]),
         main(["search", "--checkpoint", ckpt, "--runs-dir", ro, "--name", "s", *search]),
         main(["train", "--runs-dir", ro, "--name", "t", "--quiet"]),
         main(["search", "--resume", ro + "/s"])]
print("CODES", codes)
"""


def test_read_only_run_dir(searched, ckpt, tmp_path):
    """A real read-only folder (as root, without the capability that ignores permissions): an
    intact archive there is reported, not called corrupt; a search or training into it fails
    at once; nothing there changes."""
    ro = tmp_path / "ro"
    run_dir = _copy(searched[1], ro / "s")
    (run_dir / ".lock").unlink(missing_ok=True)
    for p in run_dir.iterdir():
        p.chmod(0o444)
    for d in (run_dir, ro):
        d.chmod(0o555)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    cmd = [sys.executable, "-c", READONLY_SCRIPT, str(ro), str(ckpt)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        for d in (ro, run_dir):
            d.chmod(0o755)
    assert "CODES" in proc.stdout, proc.stderr
    codes = proc.stdout.split("CODES")[1].strip()
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("evo-nas:")]
    assert "Traceback" not in proc.stderr, proc.stderr
    # report: the table from the archive; files it cannot rewrite are named in one line
    assert "Pareto front" in proc.stdout and "corrupt" not in proc.stderr
    assert codes.startswith("[0, 2, 2, 2, 2]"), codes  # report reads; the rest refuse
    assert "read-only" in proc.stdout
    assert all("not writable" in ln for ln in err if "runs_dir" in ln or "run directory" in ln)
    assert sum("not writable (read-only)" in ln for ln in err) == 4, proc.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert not (ro / "new").exists() and not (ro / "t").exists()


# --------------------------------------------------------------------------- resume
def test_resume_names_the_flags_it_ignores(searched, tmp_path, capsys):
    run_dir = _copy(searched[1], tmp_path / "s")
    code, _, err = run(capsys, "search", "--resume", run_dir, "--pop-size", "9",
                       "--budget", "flops=0.5", "--quiet")
    assert code == 0, err
    note = [ln for ln in err.splitlines() if ln.startswith("evo-nas: note:")]
    assert len(note) == 1 and "ignored: --pop-size, --budget" in note[0]


def test_resume_finds_the_checkpoint_from_another_directory(ckpt, tmp_path, capsys, monkeypatch):
    import shutil

    work = tmp_path / "work"
    (work / "models").mkdir(parents=True)
    shutil.copy(ckpt, work / "models" / "supernet.pt")
    monkeypatch.chdir(work)
    assert run(capsys, "search", "--checkpoint", "models/supernet.pt", "--runs-dir", "runs",
               "--name", "s", *SEARCH)[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = run(capsys, "search", "--resume", work / "runs" / "s", "--quiet")
    assert code == 0, err
    monkeypatch.chdir(work / "runs")
    code, _, err = run(capsys, "search", "--resume", "s", "--quiet")
    assert code == 0, err


def test_interrupt_prints_the_resume_command(ckpt, tmp_path, capsys, monkeypatch):
    import evo_nas.search as search_module

    real = search_module.search
    monkeypatch.setattr(search_module, "search",
                        lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = run(capsys, "search", "--checkpoint", ckpt, "--runs-dir", tmp_path,
                       "--name", "s p", *SEARCH)
    assert code == 130
    line = one_line(err.replace("evo-nas: interrupted", "evo-nas: error: interrupted"))
    command = line.split("continue with: ")[1]
    assert command == f"evo-nas search --resume {shlex.quote(str(tmp_path / 's p'))}"
    monkeypatch.setattr(search_module, "search", real)
    code, out, err = run(capsys, *shlex.split(command)[1:], "--quiet")
    assert code == 0, err
    assert "architectures evaluated" in out

    monkeypatch.setattr("evo_nas.train.train_supernet",
                        lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    argv = ["train", "--runs-dir", str(tmp_path), "--state-path", str(tmp_path / "st.pt"),
            "--quiet"]
    code, _, err = run(capsys, *argv)
    assert code == 130
    assert err.strip().endswith(f"continue with: evo-nas {shlex.join([*argv, '--resume'])}")
    code, _, err = run(capsys, "train", "--runs-dir", tmp_path, "--quiet")
    assert code == 130 and "--state-path" in err


# --------------------------------------------------------------------------- shadowing
@pytest.mark.parametrize("name", ["problems", "operators"])
def test_a_user_file_shadowing_our_packages_is_named(name, tmp_path):
    (tmp_path / f"{name}.py").write_text("X = 1\n")
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent("""
        import evo_nas.space
        print("imported")
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "imported" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ")
    assert str(tmp_path / f"{name}.py") in last and f"'{name}' package" in last
