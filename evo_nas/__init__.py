"""evo-nas: evolutionary multi-objective hardware-aware NAS on pymoo."""


def _check_shadowing() -> None:
    """evo-nas ships the top-level packages ``problems`` and ``operators``; a user's file of that
    name next to their script (or in the working directory) would be imported instead, with
    baffling errors later. Say so at once, naming the file."""
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for name in ("problems", "operators"):
        module = sys.modules.get(name)
        try:
            origin = (getattr(module, "__file__", None) if module is not None
                      else getattr(importlib.util.find_spec(name), "origin", None))
        except (ImportError, ValueError):
            continue
        if not origin or origin in ("namespace", "built-in", "frozen"):
            continue
        expected = root / name / "__init__.py"
        if Path(origin).resolve() != expected:
            raise ImportError(
                f"{origin!r} shadows evo-nas's own '{name}' package ({expected}): Python "
                f"imports that file instead; rename it (e.g. my_{name}.py)", name=name,
                path=origin)


_check_shadowing()
