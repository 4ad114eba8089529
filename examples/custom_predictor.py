"""Plug a scikit-learn regressor that evo-nas does not ship into the surrogate-assisted search.

The plug-in is the few lines between the markers: any object with ``fit``/``predict`` works, and
evo-nas puts a genome encoder (plus, for NAS-Bench-201, cell-graph features) in front of it. The
rest prints how well it ranks held-out architectures, next to the default predictor.

    python examples/custom_predictor.py [--quick] [--data PATH/TO/nb201_cifar10.csv]

The full table is ``--data``, else ``$EVO_NAS_NB201_CSV``, else
``$EVO_NAS_DATA/nb201/nb201_cifar10.csv``; ``--quick`` (or no table named at all) uses the 58-row
NAS-Bench-201 slice in tests/data, and a named table that is missing is a one-line error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evo_nas.data_paths import resolve_nb201_path
from evo_nas.errors import DataError
from evo_nas.predictors import as_predictor, make_predictor, predictor_report
from problems.tabular import default_nb201_path, load_nb201, nb201_space

SLICE = Path(__file__).resolve().parents[1] / "tests" / "data" / "nb201_slice.csv"
SUB = {"op0": ("skip_connect", "nor_conv_1x1", "nor_conv_3x3"), "op1": ("none", "nor_conv_3x3"),
       "op2": ("nor_conv_3x3",), "op3": ("skip_connect", "avg_pool_3x3", "nor_conv_3x3"),
       "op4": ("none", "skip_connect", "nor_conv_3x3"), "op5": ("nor_conv_3x3",)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="nb201_cifar10.csv or its folder (default "
                                              "$EVO_NAS_NB201_CSV, else $EVO_NAS_DATA/nb201)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    quick = args.quick or (args.data is None and default_nb201_path() is None)
    data = None
    if not quick:
        try:
            data = resolve_nb201_path(args.data, "--data")
        except DataError as e:
            ap.error(str(e))
    problem = (load_nb201(SLICE, space=nb201_space(SUB)) if quick
               else load_nb201(data, objectives=("error", "flops")))
    budget, n_initial = (24, 8) if quick else (150, 50)

    # ---- the plug-in: any scikit-learn regressor ------------------------------------------
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    from evo_nas.algorithms.surrogate import SurrogateAssistedSearch

    svr = make_pipeline(StandardScaler(), SVR(C=3.0, epsilon=0.1))
    search = SurrogateAssistedSearch(predictor=svr, budget=budget, n_initial=n_initial)
    result = search.run(problem, seed=0)
    # ----------------------------------------------------------------------------------------

    print(result.table())
    print(f"HV over real evaluations: {[round(h, 3) for _, h in result.info['hv_curve']]}")

    # How well does it rank architectures it never saw? (fit on the search's evaluations)
    X = np.array([h["genome"] for h in problem.history])
    y = np.array([h["error"] for h in problem.history])
    seen = {tuple(g) for g in X.tolist()}
    test = np.array([g for g in problem.genomes.tolist() if tuple(g) not in seen])
    if len(test) >= 20:
        truth = problem.lookup(test, ["error"])["error"]
        for name, model in [("SVR (plug-in)", as_predictor(svr, problem.space,
                                                           features=problem.features)),
                            ("default", make_predictor("default", problem.space,
                                                       features=problem.features))]:
            rep = predictor_report(truth, model.fit(X, y).predict(test))
            print(f"{name:>14}: " + ", ".join(f"{k} {v:.3f}" for k, v in rep.items()))


if __name__ == "__main__":
    main()
