"""Helpers shared by several test files."""

import sqlite3

import torch
from torch import nn

from evo_nas.space import Choice, SearchSpace
from problems import NASProblem

TOY8 = SearchSpace([Choice(f"g{i}", tuple(range(4))) for i in range(8)], name="toy8")


class Stop(BaseException):
    """Stands in for a kill: not an Exception, so the fault handler does not catch it."""


def dies_at(stop_at, metric):
    """``metric``, except that its ``stop_at``-th call raises :class:`Stop` (a kill mid-run)."""
    count = {"n": 0}

    def dying(configs):
        count["n"] += 1
        if count["n"] == stop_at:
            raise Stop
        return metric(configs)

    return dying


def toy_error(configs):
    return [100.0 / (1 + sum(c[f"g{i}"] * (i + 1) for i in range(8))) for c in configs]


def toy_cost(configs):
    return [float(sum(c[f"g{i}"] ** 2 for i in range(8))) for c in configs]


toy_cost.cheap = True


def toy_problem(error=toy_error):
    """An 8-gene toy problem with a cheap cost budget (search/archive/resume tests)."""
    return NASProblem(TOY8, {"error": error, "cost": toy_cost}, budgets={"cost": 40.0})


def count_rows(db) -> int:
    """Evaluations committed to an archive file so far (0 while it is not readable yet)."""
    try:
        con = sqlite3.connect(db, timeout=1)
        try:
            return con.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def scramble_bn(net: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN affine params and running stats, so a wrong copy changes outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in net.modules():
            if isinstance(bn, nn.BatchNorm2d):
                n = bn.num_features
                if bn.affine:
                    bn.weight.copy_(0.5 + torch.rand(n, generator=g))
                    bn.bias.copy_(0.2 * torch.randn(n, generator=g))
                if bn.track_running_stats:
                    bn.running_mean.copy_(0.3 * torch.randn(n, generator=g))
                    bn.running_var.copy_(0.5 + torch.rand(n, generator=g))
