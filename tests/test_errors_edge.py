"""User errors at the edges (issue 15): one line naming the field and value, exit 2, raised before
any training or search starts, and nothing the user has is lost or modified."""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

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
    monkeypatch.setattr("evo_nas.fidelity.run_fidelity", started)
    monkeypatch.setattr("evo_nas.latency.build_table", started)
    monkeypatch.setattr("evo_nas.commands.export.export_from_run", started)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    (dst / ".lock").unlink(missing_ok=True)
    return dst


# --------------------------------------------------------------------- the parametrised list
# Every bad input that is one CLI invocation: exit 2, one line naming the field and the value, no
# traceback, before any work (``no_work``), and nothing written or changed. Kept apart below, with
# their reasons: NaN training (it must train to find the NaN), the read-only folder (a real chmod
# in a subprocess that drops root's override capability), library-level errors, resume/interrupt
# (exit 0 / 130, not errors) and module shadowing (an ImportError in a fresh interpreter).

# (id, argv after the command, config text or None, what the line must name); the runner adds
# --runs-dir/--name (and --checkpoint with the small search flags for ``search``)
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




class Evil:
    """Unpickling it would run ``print('pwned')``: a checkpoint that must never be loaded."""

    def __reduce__(self):
        return (print, ("pwned",))


def _batch(tmp_path, ckpt, name):
    spec = tmp_path / "batch.yaml"
    spec.write_text(f"name: {name!r}\nruns_dir: {str(tmp_path / 'bruns')!r}\n"
                    f"checkpoint: {str(ckpt)!r}\n"
                    "base: {search: {pop_size: 4, generations: 1}, eval: {calib_images: 50}}\n")
    return spec


def _lookalike(path: Path, tables: str) -> tuple[bytes, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(tables)
    conn.commit()
    conn.close()
    return path.read_bytes(), path.stat().st_mtime_ns


@dataclass(frozen=True)
class Case:
    """One bad invocation. ``argv`` and ``expect`` may name ``{tmp}`` (the test's folder),
    ``{ckpt}`` (a real checkpoint), ``{afile}`` (``{tmp}/afile``, a file; ``{afile_sub}`` a path
    under it) and ``{run}`` (with ``needs_run``); ``setup(ctx)`` makes the files the invocation
    needs and may return a check run afterwards (files unchanged)."""

    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]  # all in the one line
    absent: tuple[str, ...] = ()  # none in the one line
    not_printed: tuple[str, ...] = ()  # none on stdout
    not_created: tuple[str, ...] = ()  # paths under {tmp} that must not exist afterwards
    setup: Callable[[SimpleNamespace], Callable[[], None] | None] | None = None
    needs_run: bool = False  # ctx.run: a copy of a finished search's run directory
    # False where train_supernet itself reads the input (a resumed state) before its first step,
    # so the no_work stand-in would hide the error
    no_work: bool = True


def _value_case(id_, argv, config, expect) -> Case:
    """A row of CASES as a Case: the runner's flags added, the config written first."""
    extra = ["--runs-dir", "{tmp}/runs", "--name", "r"]
    if config is not None:
        extra += ["--config", "{tmp}/c.yaml"]
    if argv[0] == "search":
        extra += ["--checkpoint", "{ckpt}", *SEARCH]

    def setup(ctx):
        if config is not None:
            (ctx.tmp / "c.yaml").write_text(config)

    return Case(id_, (*argv, *extra), (expect,), not_created=("runs",), setup=setup)


def _binary_config(ctx):
    (ctx.tmp / "run.yaml").write_bytes(b"\x80\x02\xff\xfe binary \x00\x01")


def _afile(ctx):
    """A file where a folder is expected: it must come out unchanged."""
    afile = ctx.tmp / "afile"
    afile.write_text("mine")

    def unchanged():
        assert afile.read_text() == "mine"

    return unchanged


def _batch_spec(name):
    return lambda ctx: _batch(ctx.tmp, ctx.ckpt, name) and None


def _evil(fmt, name):
    return lambda ctx: torch.save({"format": fmt, "x": Evil()}, ctx.tmp / name)


def _zeros(ctx):
    (ctx.tmp / "zeros.pt").write_bytes(b"\x00" * 100)


def _lookalike_archive(tables):
    """An SQLite file where a run's archive goes, that is not an archive: left as it was."""
    def setup(ctx):
        db = ctx.tmp / "runs" / "s" / "archive.db"
        before = _lookalike(db, tables)

        def unchanged():
            assert (db.read_bytes(), db.stat().st_mtime_ns) == before
            assert sorted(p.name for p in db.parent.iterdir() if p.name != ".lock") == [
                "archive.db"]

        return unchanged

    return setup


def _tampered_config(config):
    def setup(ctx):
        conn = sqlite3.connect(ctx.run / "archive.db")
        conn.execute("UPDATE runs SET config=?", (config,))
        conn.commit()
        conn.close()

    return setup


def _no_checkpoint_record(ctx):
    import json

    conn = sqlite3.connect(ctx.run / "archive.db")
    cfg = json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])
    del cfg["checkpoint"]
    conn.execute("UPDATE runs SET config=?", (json.dumps(cfg),))
    conn.commit()
    conn.close()


LOOKALIKES = {"foreign_table": "CREATE TABLE foo (a); INSERT INTO foo VALUES (1);",
              "wrong_columns": "CREATE TABLE meta (k, v); CREATE TABLE evaluations (x, y); "
                               "INSERT INTO meta VALUES (1, 2);"}
TAMPERED = {"not_json": ("{not json", "is not valid JSON"),
            "list": ("[1, 2]", "is a list, not a mapping"),
            "str": ('"text"', "is a str, not a mapping")}
SEARCH_IN = ("--checkpoint", "{ckpt}", *SEARCH)

INVOCATIONS = [
    Case("binary_config_file", ("train", "--config", "{tmp}/run.yaml", "--runs-dir", "{tmp}/runs"),
         ("{tmp}/run.yaml", "not a text file", "0x80"), not_created=("runs",),
         setup=_binary_config),
    *(Case(f"runs_dir_{where}_{cmd[0]}", (*cmd, "--runs-dir", runs),
           (f"runs_dir = {{{where}!r}}", "is a file, not a directory"), setup=_afile)
      for cmd in (("train",), ("search", *SEARCH_IN), ("demo", "--quiet"))
      for where, runs in (("afile", "{afile}"), ("afile_sub", "{afile}/sub"))),
    Case("out_fidelity", ("fidelity", "--quick", "--out", "{afile}/f.json"), ("--out = ",),
         setup=_afile),
    Case("out_latency_build", ("latency", "build", "--out", "{afile}/t.json"), ("--out = ",),
         setup=_afile),
    Case("out_latency_export_parts", ("latency", "export-parts", "--out", "{afile}"),
         ("--out = ",), setup=_afile),
    Case("out_export_is_a_folder", ("export", "{run}", "--out", "{tmp}"), ("--out = ",),
         needs_run=True),
    *(Case(f"batch_name_{i}", ("batch", "{tmp}/batch.yaml"),
           (f"name = {name!r}: must be a plain directory name",),
           not_created=("escape", "bruns"), setup=_batch_spec(name))
      for i, name in enumerate(["../escape", "..", "/tmp/elsewhere", "a/b"])),
    *(Case(f"batch_{i}", ("batch", "{tmp}/batch.yaml", *flags), (expect,),
           not_created=("bruns",), setup=_batch_spec("ok"))
      for i, (flags, expect) in enumerate([
          (("--n-jobs", "0"), "--n-jobs = 0"),
          (("--backend", "nope"), "--backend = 'nope': choose one of"),
          (("--threads", "0"), "--threads = 0"),
          (("--backend", "dask"), "--backend dask needs --scheduler"),
          (("--scheduler", "tcp://127.0.0.1:1"), "needs --backend dask"),
          (("--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"),
           "--scheduler = 'tcp://127.0.0.1:1': no Dask scheduler answers there")])),
    Case("search_scheduler_unreachable",
         ("search", *SEARCH_IN, "--runs-dir", "{tmp}", "--backend", "dask", "--scheduler",
          "tcp://127.0.0.1:1"),
         ("search.scheduler = 'tcp://127.0.0.1:1': no Dask scheduler",)),
    # checkpoints: a pickle that would run code is refused, never loaded, and no message advises
    # weights_only=False (test_no_source_passes_weights_only_false checks the code)
    Case("checkpoint_evil", ("search", "--checkpoint", "{tmp}/evil.pt", "--runs-dir", "{tmp}",
                             *SEARCH),
         ("evil.pt", "refuses to load it"), absent=("weights_only", "can still be loaded"),
         not_printed=("pwned",), setup=_evil("evo-nas-supernet/2", "evil.pt")),
    Case("train_state_evil", ("train", "--state-path", "{tmp}/state.pt", "--resume", "--epochs",
                              "1", "--runs-dir", "{tmp}", "--quiet"),
         ("state.pt",), absent=("weights_only",), not_printed=("pwned",),
         setup=_evil("evo-nas-train-state/1", "state.pt"), no_work=False),
    Case("checkpoint_zeros", ("search", "--checkpoint", "{tmp}/zeros.pt", "--runs-dir", "{tmp}",
                              *SEARCH),
         ("zeros.pt' is corrupt",), absent=("weights_only",), setup=_zeros),
    # archives: a look-alike SQLite file is rejected and left unchanged by every command
    *(Case(f"archive_{kind}_{cmd_id}", argv, (expect,), setup=_lookalike_archive(tables))
      for kind, tables in LOOKALIKES.items()
      for cmd_id, argv, expect in (
          ("search", ("search", *SEARCH_IN, "--runs-dir", "{tmp}/runs", "--name", "s"),
           "is an SQLite file but not an evo-nas archive"),
          ("report", ("report", "{tmp}/runs/s"), "not an evo-nas archive"),
          ("resume", ("search", "--resume", "{tmp}/runs/s"), "not an evo-nas archive"))),
    *(Case(f"archive_config_{kind}_{cmd[0]}", (*cmd, "{run}"), ("runs.config of run", expect),
           setup=_tampered_config(config), needs_run=True)
      for kind, (config, expect) in TAMPERED.items()
      for cmd in (("report",), ("search", "--resume"))),
    Case("archive_without_checkpoint_record", ("search", "--resume", "{run}"),
         ("records no checkpoint",), setup=_no_checkpoint_record, needs_run=True),
]

ALL_CASES = [_value_case(*c) for c in CASES] + INVOCATIONS


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_values_fail_in_one_line_before_work(case, ckpt, tmp_path, capsys, request):
    ctx = SimpleNamespace(tmp=tmp_path, ckpt=ckpt, run=None)
    if case.needs_run:  # the finished search first: no_work would stop it
        ctx.run = _copy(request.getfixturevalue("searched")[1], tmp_path / "s")
    if case.no_work:
        request.getfixturevalue("no_work")
    after = case.setup(ctx) if case.setup is not None else None
    names = {"tmp": str(tmp_path), "ckpt": str(ckpt), "afile": str(tmp_path / "afile"),
             "afile_sub": str(tmp_path / "afile" / "sub"), "run": str(ctx.run)}
    code, out, err = run(capsys, *(a.format(**names) for a in case.argv))
    assert code == 2
    line = one_line(err)
    for expect in case.expect:
        assert expect.format(**names) in line
    for absent in case.absent:
        assert absent not in line
    for text in case.not_printed:
        assert text not in out
    for rel in case.not_created:
        assert not (tmp_path / rel).exists()  # nothing was written
    if after is not None:
        after()


def test_no_source_passes_weights_only_false():
    source = "".join(p.read_text() for p in Path("evo_nas").rglob("*.py"))
    assert "weights_only=False" not in source


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
