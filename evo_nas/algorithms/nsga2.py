"""pymoo's NSGA-II with operators that respect the search space and know ordered genes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from evo_nas.algorithms.options import (
    OptionContext,
    OptionSchema,
    check_in_pop,
    check_int,
    check_operator,
    check_unit,
    is_number,
    make_repair,
    make_sampling,
    problem_and_space,
)
from operators import (
    CanonicalDuplicateElimination,
    MixedCrossover,
    NeighbourMutation,
    RankTournament,
)
from operators.adaptive import AdaptiveRate
from operators.crossover import CATEGORICAL_CROSSOVERS

__all__ = ["NSGA2_OPTIONS", "AdaptiveNSGA2", "check_nsga2_options", "make_nsga2"]


class AdaptiveNSGA2(NSGA2):
    """pymoo's NSGA-II whose crossover rate (``rate``, an :class:`~operators.adaptive.
    AdaptiveRate` shared with the crossover) is updated after each survival from which of the
    generation's children entered the population, crossed or not. Its state is saved and
    restored with the search's (``extra_state``), so a resumed run continues exactly."""

    def __init__(self, rate: AdaptiveRate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate

    def _advance(self, infills: Any = None, **kwargs: Any) -> Any:
        out = super()._advance(infills=infills, **kwargs)
        if infills is not None and len(infills):
            tags = infills.get("crossed")
            known = np.array([t is not None for t in tags], dtype=bool)
            if known.any():
                alive = {id(ind) for ind in self.pop}  # survival keeps the same individuals
                survived = np.array([id(ind) in alive for ind in infills], dtype=bool)
                crossed = np.array([bool(t) for t in tags[known]], dtype=bool)
                self.rate.update(crossed, survived[known])
        return out

    def extra_state(self) -> dict[str, Any]:
        return {"adaptive_rate": self.rate.state()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.rate.load_state(state["adaptive_rate"])

    def run_info(self) -> dict[str, Any]:
        """For the result's ``info``: the crossover rate the run ended with (what it learnt)."""
        return {"crossover_rate": round(self.rate.p, 4)}


def check_nsga2_options(options: Mapping[str, Any], ctx: OptionContext) -> None:
    """Check the given NSGA-II options (see :func:`make_nsga2`); absent ones keep defaults."""
    if "pop_size" in options:
        check_int(ctx, "pop_size", options["pop_size"], 2)
    pop_size = options.get("pop_size", ctx.pop_size)
    check_in_pop(ctx, "n_offsprings", options.get("n_offsprings"), 1, pop_size,
                 ": the children of one generation")
    check_in_pop(ctx, "tournament_size", options.get("tournament_size"), 2, pop_size,
                 ": members per parent tournament")
    if "crossover_prob" in options and options["crossover_prob"] != "adaptive":
        check_unit(ctx, "crossover_prob", options["crossover_prob"], " or 'adaptive'")
    if options.get("mutation_prob_var") is not None:
        check_unit(ctx, "mutation_prob_var", options["mutation_prob_var"])
    if "mutation_genes" in options:
        v = options["mutation_genes"]
        if not is_number(v) or v < 0:
            ctx.fail("mutation_genes", v, "must be a number >= 0 (genes mutated per child, on "
                                          "average)")
    if "mutation_decay" in options:
        v = options["mutation_decay"]
        if not is_number(v) or not 0 < v <= 1:
            ctx.fail("mutation_decay", v, "must be a number in (0, 1]")
    if "crossover_categorical" in options:
        v = options["crossover_categorical"]
        if v not in CATEGORICAL_CROSSOVERS:
            ctx.fail("crossover_categorical", v, f"choose one of {CATEGORICAL_CROSSOVERS} (SBX on "
                                                 f"the cost-ordered index, or uniform swaps)")
    for name in ("repair", "sampling"):
        if name in options:
            check_operator(ctx, name, options[name])


NSGA2_OPTIONS = OptionSchema(("crossover_categorical", "crossover_prob", "mutation_decay",
                              "mutation_genes", "mutation_prob_var", "n_offsprings", "repair",
                              "sampling", "tournament_size"),
                             check_nsga2_options)


def make_nsga2(problem: Any, pop_size: int = 20, crossover_prob: float | str = "adaptive",
               mutation_prob_var: float | None = None, mutation_genes: float = 0.3,
               mutation_decay: float = 0.5, repair: str | Repair = "canonical",
               sampling: str | Sampling = "choice", crossover_categorical: str = "sbx",
               n_offsprings: int | None = None, tournament_size: int | None = None) -> NSGA2:
    """NSGA-II with choice sampling, :class:`~operators.MixedCrossover` (pymoo's SBX on the
    option indices of ordered genes, and on the cost-ordered indices of categorical ones) at
    a learnt rate,
    :class:`~operators.NeighbourMutation`, canonical repair and duplicate elimination on canonical
    genomes (pymoo handles constraints feasibility-first).

    ``problem``: the problem the algorithm will search (a :class:`SearchSpace` alone also works,
    for everything but the budget operators). ``repair = "budget"`` repairs every child into the
    problem's budgets on cheap metrics (:class:`~operators.BudgetRepair`), ``sampling =
    "budget"`` draws the initial population inside them (:class:`~operators.BudgetSampling`); see
    :mod:`evo_nas.algorithms.options`.

    Each generation makes ``n_offsprings`` children (default ``pop_size // 4``, at least 1: the
    same ratio as regularized and tournament evolution) from parents picked by tournaments of
    ``tournament_size`` members (default 3, or ``pop_size`` if smaller;
    :class:`~operators.selection.RankTournament`); the
    survivors are NSGA-II's (rank, then crowding). ``generations`` therefore count these smaller
    steps; ``n_offsprings = pop_size, tournament_size = 2`` is the generational textbook form.
    Measured against that form at 300 real evaluations (100 paired seeds): on the seven
    ``bench_operators`` tables +0.0004..+0.0016 HV ratio, every table ahead; on the NB201 space
    as a user defines it from the CSV (``bench_search``) +0.0006..+0.0019 on all five; at 1,000
    evaluations (50 seeds) level (-0.0003..+0.0005). Tournament evolution, steady-state with
    strong tournaments, had been ahead of NSGA-II there (+0.0012..+0.0032 on four of five).
    Apart: fewer children alone moved nothing (-0.0004..+0.0008), tournaments of 3 alone about
    half as much (+0.0003..+0.0012 on the tables), of 5 lost on four tables, and dropping
    crossover moved nothing.

    ``crossover_prob`` is, by default, ``"adaptive"``: each mating crosses with a probability
    learnt from which children survive (:class:`~operators.adaptive.AdaptiveRate`, probability
    matching with forgetting, between 0.1 and 0.9, starting at 0.5; :class:`AdaptiveNSGA2`
    updates it after each survival and a resumed search continues with it), and a child of a
    mating that did not cross changes at least one gene (``force_uncrossed``), or it would be
    its parent. A number fixes the rate (0.9 was the default before). Whether crossing pays
    depends on the space: on NB201 as a user defines it from the CSV, whose genes are operation
    codes numbered by the benchmark's convention, no crossover with one forced step per child
    beat SBX on the code order by +0.0003..+0.0021 on all five problems, while on the same
    cells with options listed cheapest first (``bench_operators``) it lost on six of seven
    tables (-0.0024..-0.0002). The learnt rate against 0.9, 100 paired seeds at 300
    evaluations: user-defined NB201 +0.0005, +0.0015, +0.0008, -0.0002, +0.0009 (FLOPs,
    eyeriss, fpga, raspi4, pixel3); the seven ``bench_operators`` tables +0.0006, +0.0011,
    -0.0007, +0.0003, +0.0004, +0.0005, +0.0012; at 1,000 evaluations (50 seeds) level
    (-0.0003..+0.0008). Runs end near 0.5 on all twelve (10-seed medians 0.45-0.58; the rate a
    run ended with is ``info["crossover_rate"]``), and the rate frozen at 0.5 with the same
    forced step measured level with the learnt one (100 paired seeds, -0.0009..+0.0009): the
    gain is crossing about half the time, not a rate that differs per space.

    Mutation is gentle by default: ``mutation_genes`` = 0.3 genes per child on average
    (``mutation_prob_var`` sets a per-gene probability instead), with no forced change, since
    duplicate elimination already discards children identical to a member. An ordered gene of
    many options counts for less than a whole gene (``range_rate``: a gene of 8 options, whose
    steps are mostly to a neighbour, mutates 4.1 times as often as a categorical one), so a
    space of wide ordered genes still moves. ``mutation_decay`` is how fast the chance of an
    ordered gene's step falls with its size.

    Measured at 300 real evaluations (``benchmarks/bench_operators.py``), the old
    one-gene-always mutation left NSGA-II 0.002-0.005 HV ratio below pymoo's integer NSGA-II on
    NB201 (40 seeds); 0.3 genes per child closed that gap. On the ``widths`` table (6 genes of 8
    ordered options) the contracting crossover and flat 0.3-gene rate left it far below
    (median of 200 seeds 0.9710 vs 0.9791); SBX on ordered genes brings it to 0.9782 and the
    range-scaled rate to 0.9788 (that last step is within the noise, about 0.001), while
    ``mbv3`` (2-3 options per gene) stays at 0.9752 (pymoo 0.9737). The first population is
    anchored at both ends of the cost axis by free lookups of the cheap objectives
    (:class:`~operators.ChoiceSampling` with 50 candidates per member): widths 0.9782 -> 0.9832
    and mbv3 0.9769 -> 0.9782 (100 seeds), NB201 level. NB201's genes are categorical
    (operation names); uniform swaps only recombine the parents' operations, so the middle of
    the cost axis (1x1-convolution cells) was found late. SBX on their index, which lists them
    cheapest first, makes those children: NB201 FLOPs -0.0001 -> +0.0017 HV ratio against pymoo
    (paired mean of 400 seeds), the four latencies +0.0020..+0.0024 (were +0.0005..+0.0019);
    mbv3 and widths have no categorical gene and are unchanged. With options in a random order
    the same SBX gains +0.001 on FLOPs and nothing on latencies; ``crossover_categorical =
    "swap"`` brings back uniform swaps for genes whose options follow no cost order.
    """
    problem, space = problem_and_space(problem)
    ctx = OptionContext("nsga2", pop_size=pop_size, space=space, problem=problem)
    check_nsga2_options({"pop_size": pop_size, "crossover_prob": crossover_prob,
                         "mutation_prob_var": mutation_prob_var, "mutation_genes": mutation_genes,
                         "mutation_decay": mutation_decay, "repair": repair,
                         "sampling": sampling, "crossover_categorical": crossover_categorical,
                         "n_offsprings": n_offsprings, "tournament_size": tournament_size},
                        ctx)
    adaptive = crossover_prob == "adaptive"
    rate = AdaptiveRate() if adaptive else None
    parts = dict(
        pop_size=pop_size,
        n_offsprings=max(1, pop_size // 4) if n_offsprings is None else n_offsprings,
        selection=RankTournament(min(3, pop_size) if tournament_size is None else tournament_size),
        sampling=make_sampling(sampling, space, problem, ctx, anchors=50),  # cost-axis anchors
        crossover=MixedCrossover(space, prob=1.0 if adaptive else crossover_prob,
                                 categorical=crossover_categorical, rate=rate),
        mutation=NeighbourMutation(space, prob_var=mutation_prob_var, n_genes=mutation_genes,
                                   decay=mutation_decay, range_rate=True,
                                   force_uncrossed=adaptive),
        repair=make_repair(repair, space, problem, ctx),
        eliminate_duplicates=CanonicalDuplicateElimination(space),
    )
    return AdaptiveNSGA2(rate, **parts) if adaptive else NSGA2(**parts)
