"""Pool every committed fidelity study: does any sampler rank better than uniform, and does the
supernet rank better than FLOPs or parameters alone?

One study (14 architectures) cannot tell samplers apart: its tau CI is about +-0.2. This script
reads every ``benchmarks/results/fidelity*.json`` (other data seeds, FLOPs-spread and
same-size sets), computes each sampler's paired tau difference to uniform in every study, and
averages the studies of one kind of architecture set, and all of them; the CI averages one
bootstrap replicate per study. Ranking by FLOPs or parameters alone enters the same way, as a
"supernet" whose score is minus the size. Trains nothing; about a minute. Writes
``benchmarks/results/fidelity_summary.json``.

    .venv/bin/python benchmarks/fidelity_summary.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evo_nas.fidelity import pooled_tau_difference
from evo_nas.machine import machine_info

RESULTS = Path(__file__).parent / "results"
N_BOOT = 2000


def _study_kind(settings: dict) -> str:
    # the first band studies predate the --band option; their band was the fixed +-15 %
    if settings["spacing"] == "band":
        return f"band +-{round(100 * settings.get('band', 0.15))} %"
    return f"{settings['spacing']}-spread"


def _arrays(result: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Stand-alone losses (k, seeds) and per sampler / size proxy a (rows, k) score array."""
    archs = result["architectures"]
    sa = np.array([a["standalone_loss"] for a in archs])
    scores = {name: np.array([a["supernet_loss"][name] for a in archs]).T
              for name in archs[0]["supernet_loss"]}
    scores["flops alone"] = -np.array([[a["mflops"] for a in archs]])
    scores["params alone"] = -np.array([[a["mparams"] for a in archs]])
    return sa, scores


def summarise(paths: list[Path]) -> dict:
    studies, groups = [], {}
    for path in paths:
        result = json.loads(path.read_text())
        sa, scores = _arrays(result)
        kind = _study_kind(result["settings"])
        row = {"file": path.name, "kind": kind, "data_seed": result["settings"]["seed"],
               "standalone_seeds": int(sa.shape[1]),
               "seed_vs_seed_tau": result["noise_ceiling"]["loss_tau_between_seeds"],
               "tau": {r["sampler"]: r["loss"]["kendall_tau"] for r in result["table"]}}
        row["tau"].update({f"{k} alone": v["loss"]["kendall_tau"]
                           for k, v in result.get("baselines", {}).items()})
        studies.append(row)
        groups.setdefault(kind, []).append((sa, scores))
        groups.setdefault("all studies", []).append((sa, scores))

    pooled = {}
    for kind, members in groups.items():
        entries = {}
        names = sorted({n for _, sc in members for n in sc
                        if n != "uniform" and not n.endswith(" alone")})
        for name in names:
            pairs = [(sc[name], sc["uniform"], sa) for sa, sc in members
                     if name in sc and "uniform" in sc]
            if not pairs:
                continue
            d, lo, hi = pooled_tau_difference(pairs, N_BOOT, 0)
            entries[f"{name} minus uniform"] = {"studies": len(pairs), "mean": d,
                                                "ci95": [lo, hi]}
        for proxy in ("flops alone", "params alone"):
            pairs = [(sc["uniform"], sc[proxy], sa) for sa, sc in members if "uniform" in sc]
            d, lo, hi = pooled_tau_difference(pairs, N_BOOT, 0)
            entries[f"uniform minus {proxy}"] = {"studies": len(pairs), "mean": d,
                                                 "ci95": [lo, hi]}
        pooled[kind] = entries
    return {"benchmark": "fidelity summary",
            "method": "tau on validation cross-entropy; per study a paired bootstrap over "
                      "architectures, stand-alone seeds and supernet seeds; pooled = mean over "
                      "the studies of one kind, CI from averaging one replicate per study",
            "n_boot": N_BOOT, "studies": studies, "pooled": pooled,
            "machine": machine_info()}


def main() -> None:
    paths = sorted(p for p in RESULTS.glob("fidelity*.json")
                   if p.name not in ("fidelity_summary.json", "fidelity_quick.json"))
    out = summarise(paths)
    for s in out["studies"]:
        taus = ", ".join(f"{k} {v:.3f}" for k, v in s["tau"].items())
        print(f"{s['file']:<30} {s['kind']:<13} seed {s['data_seed']}: {taus}")
    for kind, entries in out["pooled"].items():
        print(f"\n{kind} (pooled):")
        for name, e in entries.items():
            lo, hi = e["ci95"]
            print(f"  {name:<34} {e['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]  ({e['studies']} studies)")
    path = RESULTS / "fidelity_summary.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
