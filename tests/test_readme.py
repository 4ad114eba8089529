"""Every code snippet in README.md runs as written.

- ```python blocks run, each with a time limit, in a fresh temporary folder with the installed
  package (no PYTHONPATH). A block runs alone in its own interpreter unless an HTML comment
  right before its fence names a session: ``<!-- readme-test: session=NAME -->``. The blocks of
  one session run in one interpreter, in README order, each in the namespace the earlier ones
  left (a snippet that goes on from the one above, as prose does). Other options in the same
  comment, comma-separated: ``timeout=SECONDS`` (default 120), ``files=A,B`` (files the test
  writes into the folder first: stand-ins for the user's own data, see ``FILES``), and
  ``skip (why)``, which skips the block and says why (keep these few and honest: a GPU, a
  cluster, the shared data folder).
- ```bash/```sh blocks and untagged ``` blocks: every ``evo-nas ...`` line that is a real
  command (no ``[optional]`` / ``a|b`` reference syntax) must parse with the CLI's own parser
  (``evo-nas <cmd> --help``-level: the command and every flag exist and their values parse).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEFAULT_TIMEOUT = 120.0

FENCE = re.compile(r"^(?P<marker><!--\s*readme-test:(?P<opts>.*?)-->\s*\n)?"
                   r"^```(?P<lang>[\w+-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    session: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    files: list[str] = field(default_factory=list)
    skip: str | None = None
    marked: bool = False  # a readme-test comment came right before the fence


def _options(block: Block, text: str) -> None:
    for opt in filter(None, (o.strip() for o in re.split(r",(?![^(]*\))", text))):
        if opt.startswith("skip"):
            block.skip = opt[4:].strip().strip("()").strip() or "no reason given"
            continue
        key, sep, value = opt.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("session", "timeout", "files"):
            raise ValueError(f"README.md line {block.line}: unknown readme-test option {opt!r}")
        if key == "session":
            block.session = value
        elif key == "timeout":
            block.timeout = float(value)
        else:
            block.files = value.split()


def blocks(text: str | None = None) -> list[Block]:
    text = README.read_text() if text is None else text
    out = []
    for m in FENCE.finditer(text):
        b = Block(text[:m.start("lang")].count("\n") + 1, m["lang"], m["code"])
        if m["opts"] is not None:
            b.marked = True
            _options(b, m["opts"])
        out.append(b)
    return out


# ---------------------------------------------------------------- stand-ins for the user's data
def _my_results_csv() -> str:
    """``my_results.csv`` of "Your own table of measurements": every architecture of the
    custom space above it (genes depth, width, kernel3), with an accuracy and a latency."""
    rows = ["depth,width,kernel3,acc,latency_ms"]
    for depth in (1, 2, 3):
        for width in (16, 32, 64):
            for k in ((3, 5) if depth == 3 else (3,)):
                cost = depth * width * k / 100
                rows.append(f"{depth},{width},{k},{100 - 60 / (1 + cost):.2f},{0.4 * cost:.3f}")
    return "\n".join(rows) + "\n"


FILES = {"my_results.csv": _my_results_csv}


# ---------------------------------------------------------------- python blocks
_RUNNER = textwrap.dedent('''
    import json, signal, sys, time, traceback

    class BlockTimeout(Exception):
        pass

    def _alarm(signum, frame):
        raise BlockTimeout()

    signal.signal(signal.SIGALRM, _alarm)
    namespace = {"__name__": "__main__"}
    for line, timeout, code in json.load(open(sys.argv[1])):
        print(f"<<readme-block {line} start>>", flush=True)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except BlockTimeout:
            print(f"<<readme-block {line} timeout {timeout:.0f}>>", flush=True)
            sys.exit(3)
        except BaseException:
            signal.setitimer(signal.ITIMER_REAL, 0)
            traceback.print_exc()
            print(f"<<readme-block {line} failed>>", flush=True)
            sys.exit(1)
        signal.setitimer(signal.ITIMER_REAL, 0)
        print(f"<<readme-block {line} ok {time.perf_counter() - t0:.1f}>>", flush=True)
''')


def _sessions() -> list[list[Block]]:
    """Python blocks grouped into what runs in one interpreter, in README order."""
    groups: dict[str, list[Block]] = {}
    out: list[list[Block]] = []
    for b in blocks():
        if b.lang != "python":
            continue
        if b.session is None:
            out.append([b])
        elif b.session in groups:
            groups[b.session].append(b)
        else:
            groups[b.session] = [b]
            out.append(groups[b.session])
    return out


def _session_id(group: list[Block]) -> str:
    head = group[0].session or "alone"
    return f"{head}-L{'-'.join(str(b.line) for b in group)}"


SESSIONS = _sessions()


def _param(group: list[Block]) -> object:
    """A session is slow when the README gives one of its blocks a longer time limit than the
    default; its xdist ordering weight (tests/conftest.py) is a fifth of those limits."""
    long = [b.timeout for b in group if b.timeout > DEFAULT_TIMEOUT and not b.skip]
    marks = [pytest.mark.slow(seconds=sum(long) / 5)] if long else []
    return pytest.param(group, marks=marks, id=_session_id(group))


@pytest.mark.parametrize("group", [_param(g) for g in SESSIONS])
def test_python_snippets_run(group: list[Block], tmp_path: Path) -> None:
    skipped = [b for b in group if b.skip]
    for b in skipped:  # not run, but still valid Python
        compile(b.code, f"README.md:{b.line}", "exec")
    if skipped:  # a session stops at its first skipped block; later ones would lack its names
        group = group[:group.index(skipped[0])]
    for b in group:
        for name in b.files:
            (tmp_path / name).write_text(FILES[name]())
    plan = [(b.line, b.timeout, b.code) for b in group]
    if plan:
        (tmp_path / ".readme_blocks.json").write_text(json.dumps(plan))
        (tmp_path / ".readme_runner.py").write_text(_RUNNER)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        try:
            out = subprocess.run(
                [sys.executable, ".readme_runner.py", ".readme_blocks.json"], cwd=tmp_path,
                env=env, capture_output=True, text=True,
                timeout=sum(b.timeout for b in group) + 60)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"README blocks at lines {[b.line for b in group]} hung past every "
                        f"time limit: {(e.stdout or b'')[-3000:]!r}")
        log = out.stdout + out.stderr
        done = re.findall(r"<<readme-block (\d+) ok ([\d.]+)>>", out.stdout)
        why = "ran past its time limit" if out.returncode == 3 else f"exit {out.returncode}"
        assert out.returncode == 0, (
            f"README.md python block at line {_current(out.stdout)} does not run as written "
            f"({why}):\n{log[-4000:]}")
        assert [int(n) for n, _ in done] == [b.line for b in group], log[-4000:]
        print("README blocks ran:", ", ".join(f"line {n} in {s} s" for n, s in done))
    if skipped:
        pytest.skip("; ".join(f"README.md line {b.line}: {b.skip}" for b in skipped)
                    + (f" (and the {len(group)} block(s) before it ran)" if group else ""))


def _current(stdout: str) -> str:
    starts = re.findall(r"<<readme-block (\d+) start>>", stdout)
    return starts[-1] if starts else "?"


# ---------------------------------------------------------------- shell blocks
_METASYNTAX = re.compile(r"\[|\||\.\.\.|<[^>]*>")


def evo_nas_commands(text: str | None = None) -> list[tuple[int, list[str]]]:
    """``(line, argv)`` of every runnable ``evo-nas`` command in bash/sh/untagged blocks
    (continuation lines joined, comments dropped)."""
    out = []
    for b in blocks(text):
        if b.lang not in ("bash", "sh", "shell", "console", ""):
            continue
        lines = b.code.splitlines()
        i = 0
        while i < len(lines):
            start, cmd = i, lines[i]
            while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + lines[i]
            i += 1
            argv = shlex.split(cmd, comments=True)
            if not argv or argv[0] != "evo-nas" or _METASYNTAX.search(" ".join(argv)):
                continue
            out.append((b.line + 1 + start, argv[1:]))
    return out


COMMANDS = evo_nas_commands()


def test_readme_has_snippets_to_check() -> None:
    text = README.read_text()
    marked = [b for b in blocks(text) if b.marked]
    assert len(marked) == text.count("readme-test:"), "a readme-test comment is not on the line " \
        "right before a fence"
    python = [b for group in SESSIONS for b in group]
    assert len(python) >= 5 and len(COMMANDS) >= 10, (python, COMMANDS)
    assert not [b.line for b in python if b.skip == "no reason given"]
    # few and honest: skips are for a GPU, a cluster or the shared data folder
    assert len([b for b in python if b.skip]) <= 2, [(b.line, b.skip) for b in python if b.skip]


@pytest.mark.parametrize(("line", "argv"), COMMANDS, ids=[f"L{n}" for n, _ in COMMANDS])
def test_evo_nas_commands_parse(line: int, argv: list[str], capsys) -> None:
    from evo_nas.cli import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        err = capsys.readouterr().err
        pytest.fail(f"README.md line {line}: `evo-nas {shlex.join(argv)}` does not parse "
                    f"(exit {e.code}): {err.strip()}")
    assert args.command == argv[0]


def test_the_console_script_answers_help() -> None:
    """The installed ``evo-nas`` entry point itself, once: every README command starts with it."""
    exe = Path(sys.executable).with_name("evo-nas")
    if not exe.is_file():
        pytest.skip(f"no console script beside {sys.executable}")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for cmd in sorted({argv[0] for _, argv in COMMANDS}):
        assert cmd in out.stdout, (cmd, out.stdout)


def _subparser(parser, name: str):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return None


def reference_lines(text: str | None = None) -> list[tuple[int, list[str]]]:
    """``evo-nas`` lines written in reference syntax (``[--flag X]``, ``a|b``) that the parse
    test above leaves out: their command words and every ``--flag`` are checked instead."""
    out = []
    for b in blocks(text):
        if b.lang not in ("bash", "sh", "shell", "console", ""):
            continue
        last = None  # an indented line goes on with the command above it
        for i, raw in enumerate(b.code.splitlines()):
            words = raw.split("#", 1)[0].split()
            if words[:1] == ["evo-nas"]:
                last = (b.line + 1 + i, words[1:])
                out.append(last)
            elif last is not None and words and raw[:1].isspace():
                last[1].extend(words)
            else:
                last = None
    return [(n, w) for n, w in out if _METASYNTAX.search(" ".join(w))]


REFERENCE = reference_lines()


def unknown_flags(words: list[str]) -> tuple[list[str], list[str]]:
    """``(command path, flags it does not have)`` for the words after ``evo-nas``."""
    from evo_nas.cli import build_parser

    parser, path = build_parser(), []
    for word in words:  # the command, then a sub-command such as `latency build`
        sub = _subparser(parser, word)
        if sub is None:
            break
        parser, path = sub, [*path, word]
    known = {s for a in parser._actions for s in a.option_strings}
    flags = set(re.findall(r"--[a-z][\w-]*", " ".join(words)))
    return path, sorted(flags - known)


@pytest.mark.parametrize(("line", "words"), REFERENCE, ids=[f"L{n}" for n, _ in REFERENCE])
def test_reference_flags_exist(line: int, words: list[str]) -> None:
    path, missing = unknown_flags(words)
    assert path, f"README.md line {line}: no evo-nas command in {words}"
    assert not missing, f"README.md line {line}: `evo-nas {' '.join(path)}` has no {missing}"


def test_the_checks_catch_what_they_are_for() -> None:
    """The extraction itself: markers, sessions, continuation lines, reference syntax."""
    text = textwrap.dedent("""\
        <!-- readme-test: session=s, timeout=5, files=a.csv b.csv -->
        ```python
        x = 1
        ```
        <!-- readme-test: skip (needs a GPU, really) -->
        ```python
        y = 2
        ```
        ```bash
        evo-nas search --budget 3 \\
            --pop-size 4   # a comment
        make test
        ```
        ```
        evo-nas train [--epochs E]
                      [--no-such-flag]
        ```
        """)
    first, second, *_ = blocks(text)
    assert (first.session, first.timeout, first.files) == ("s", 5.0, ["a.csv", "b.csv"])
    assert second.skip == "needs a GPU, really" and second.session is None
    assert evo_nas_commands(text) == [(10, ["search", "--budget", "3", "--pop-size", "4"])]
    assert reference_lines(text) == [(15, ["train", "[--epochs", "E]", "[--no-such-flag]"])]
    assert unknown_flags(["train", "[--epochs", "E]", "[--no-such-flag]"]) == (
        ["train"], ["--no-such-flag"])
    with pytest.raises(ValueError, match="unknown readme-test option"):
        blocks("<!-- readme-test: sesion=s -->\n```python\n```\n")
