"""Samplers: what each one trains per step, and how the trainer wires them (incl. distillation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evo_nas.costs import CostModel
from evo_nas.errors import ConfigError
from evo_nas.nn import Supernet
from evo_nas.space import Choice, SearchSpace
from evo_nas.spaces import mobilenet_space
from evo_nas.train import (
    AttentiveSampler,
    FairSampler,
    FlopsBuckets,
    FlopsBucketSampler,
    SandwichSampler,
    TrainConfig,
    UniformSampler,
    batch_loss_scorer,
    make_sampler,
    restrict,
    train_supernet,
)


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return mobilenet_space("tiny")


@pytest.fixture(scope="module")
def small_data():
    from evo_nas.data import Split, load_dataset

    d = load_dataset("digits", seed=0, max_train=96)
    d.val = Split(d.val.x[:40], d.val.y[:40])
    return d


def _flops(space: SearchSpace):
    model = CostModel(space)
    return lambda c: model.costs(c)[0]


def test_unknown_sampler_and_option_name_the_culprit():
    with pytest.raises(ConfigError, match="train.sampler = 'fare'"):
        make_sampler("fare")
    with pytest.raises(ConfigError, match="sampler_options.n_rnd: sampler 'sandwich' takes"):
        make_sampler("sandwich", n_rnd=3)
    with pytest.raises(ConfigError, match="train.sampler = 'fare'"):
        TrainConfig(sampler="fare").validate()
    with pytest.raises(ConfigError, match="mode = 'best'"):
        TrainConfig(sampler="attentive", sampler_options={"mode": "best"}).validate()


def test_samplers_are_chosen_by_name_in_config():
    from evo_nas.config import load_config

    cfg = load_config({"train": {"sampler": "uniform", "sampler_options": {"n": 3}}})
    assert isinstance(make_sampler(cfg.train.sampler, **cfg.train.sampler_options),
                      UniformSampler)
    for name, cls in [("fair", FairSampler), ("flops_bucket", FlopsBucketSampler),
                      ("attentive", AttentiveSampler), ("sandwich", SandwichSampler)]:
        assert isinstance(make_sampler(name), cls)


def test_uniform_and_sandwich(space):
    rng = np.random.default_rng(0)
    X = UniformSampler(n=5)(space, rng)
    assert X.shape == (5, space.n_var)
    assert np.array_equal(X, space.canonical(X))
    S = SandwichSampler(n_random=3)(space, rng)
    assert S.shape == (5, space.n_var)
    assert np.array_equal(S[0], space.largest()) and np.array_equal(S[1], space.smallest())


def _assert_fair(space: SearchSpace, X: np.ndarray) -> None:
    k = int(space.n_options.max())
    assert X.shape == (k, space.n_var)
    assert np.array_equal(X, space.canonical(X))
    active = space.active(X)
    for i, c in enumerate(space.choices):
        m = len(c.options)
        rows = np.flatnonzero(active[:, i])
        counts = np.bincount(X[rows, i], minlength=m)
        if c.active_if is None:
            assert rows.size == k
        if rows.size >= m:  # every option at least once, counts differ by at most one
            assert counts.min() >= 1 and counts.max() - counts.min() <= 1, (c.name, counts)
        else:  # fewer slots than options: no option twice
            assert counts.max() <= 1, (c.name, counts)
        if m == k and c.active_if is None:
            assert np.array_equal(np.sort(X[:, i]), np.arange(k)), c.name  # exactly once


def test_fair_trains_every_choice_of_every_gene_once_per_step(space):
    rng = np.random.default_rng(1)
    sampler = FairSampler()
    for _ in range(30):
        _assert_fair(space, sampler(space, rng))


def test_fair_respects_conditional_genes():
    space = SearchSpace([
        Choice("d", (1, 2, 3, 4)),
        Choice("k0", (3, 5)),
        Choice("k2", (3, 5, 7), active_if=("d", (3, 4))),
        Choice("k3", (3, 5), active_if=("d", (4,))),
    ])
    rng = np.random.default_rng(2)
    for _ in range(30):
        X = FairSampler()(space, rng)
        _assert_fair(space, X)
        # d takes 1, 2, 3, 4 once each: k2 is active in two rows, k3 in one
        assert sorted(X[:, 0]) == [0, 1, 2, 3]
        assert space.active(X)[:, 2].sum() == 2 and space.active(X)[:, 3].sum() == 1


def test_fair_on_a_shrinking_phase_only_moves_unlocked_genes(space):
    phase = restrict(space, ["kernel"])
    X = FairSampler()(phase, np.random.default_rng(3))
    configs = phase.decode_many(X)
    assert len(configs) == 2  # kernels have 2 options
    full = space.decode(space.largest())
    for c in configs:
        assert all(c[g] == full[g] for g in c if not g.endswith(".k"))
    assert {c["s0.b0.k"] for c in configs} == {3, 5}


def test_flops_bucket_samples_fall_in_their_bucket(space):
    cost = _flops(space)
    sampler = FlopsBucketSampler(n_random=3, n_buckets=4, cost=cost)
    rng = np.random.default_rng(4)
    seen = set()
    for _ in range(25):
        X = sampler(space, rng)
        assert np.array_equal(X[0], space.largest()) and np.array_equal(X[1], space.smallest())
        fb = sampler.buckets(space)
        for genome, b in zip(X[2:], sampler.last_buckets, strict=True):
            f = cost(space.decode(genome))
            assert fb.edges[b] <= f <= fb.edges[b + 1], (f, b, fb.edges)
        seen.update(sampler.last_buckets)
    assert seen == {0, 1, 2, 3}  # the uniform FLOPs target reaches every bucket
    assert sampler.buckets(space).n_fallbacks == 0


def test_flops_bucket_rejection_is_bounded_on_an_empty_bucket():
    space = SearchSpace([Choice("a", (0, 1)), Choice("b", (0, 1))])
    cost = lambda c: {0: 0.0, 1: 10.0, 2: 11.0}[c["a"] + c["b"]]  # noqa: E731 nothing in 2.5..5
    fb = FlopsBuckets(space, n_buckets=4, cost=cost, batch=8, max_rounds=3)
    X = fb.draw(1, 2, np.random.default_rng(0))  # bucket [2.75, 5.5] holds no architecture
    assert X.shape == (2, 2) and fb.n_fallbacks == 2


def test_attentive_picks_the_predicted_best_or_worst(space):
    cost = _flops(space)
    predictor = lambda configs: [cost(c) for c in configs]  # noqa: E731 "bigger = worse"
    for mode, pick in (("bestup", np.argmin), ("worstup", np.argmax)):
        s = AttentiveSampler(n_random=3, n_candidates=5, mode=mode, scorer=predictor, cost=cost)
        X = s(space, np.random.default_rng(5))
        assert np.array_equal(X[0], space.largest()) and np.array_equal(X[1], space.smallest())
        for row, cands, scores, chosen in zip(X[2:], s.last_candidates, s.last_scores,
                                              s.last_picks, strict=True):
            assert len(cands) == 5 and chosen == int(pick(scores))
            assert np.array_equal(row, cands[chosen])
            assert scores[chosen] == (scores.min() if mode == "bestup" else scores.max())


def test_attentive_without_scorer_is_an_error_outside_the_trainer(space):
    with pytest.raises(ConfigError, match="no scorer"):
        AttentiveSampler()(space, np.random.default_rng(0))


def test_batch_loss_scorer_is_cross_entropy_and_leaves_bn_stats_alone(space, small_data):
    torch.manual_seed(0)
    net = Supernet("tiny")
    x, y = small_data.train.x[:32], small_data.train.y[:32]
    configs = space.decode_many(space.sample(3, 0))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    scores = batch_loss_scorer(net, x, y)(configs)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    from evo_nas.nn import resize

    net.train()
    for c, s in zip(configs, scores, strict=True):
        net.set_active(c)
        with torch.no_grad():
            ref = torch.nn.functional.cross_entropy(net(resize(x, c["res"])), y)
        assert s == pytest.approx(float(ref), rel=1e-5)


def test_trainer_installs_the_mini_batch_loss_for_attentive(small_data):
    torch.manual_seed(0)
    net = Supernet("tiny")
    sampler = make_sampler("attentive", n_random=1, n_candidates=2, mode="worstup")
    train_supernet(net, small_data, TrainConfig(epochs=1, batch_size=48, seed=0),
                   sampler=sampler)
    assert sampler.scorer is not None
    assert len(sampler.last_scores) == 1 and len(sampler.last_scores[0]) == 2
    assert sampler.last_picks[0] == int(np.argmax(sampler.last_scores[0]))


class _Recorder:
    """Wraps a sampler and records the configs the supernet is set to during training."""

    def __init__(self, net: Supernet) -> None:
        self.calls: list[dict] = []
        original = net.set_active

        def spy(config):
            self.calls.append(dict(config))
            return original(config)

        net.set_active = spy


@pytest.mark.parametrize("distill", [True, False])
def test_distillation_prepends_the_teacher_and_uses_soft_targets(small_data, monkeypatch,
                                                                 distill):
    import evo_nas.train.trainer as trainer

    kl_calls = []
    real_kl = trainer.F.kl_div

    def counting_kl(*args, **kwargs):
        kl_calls.append(1)
        return real_kl(*args, **kwargs)

    monkeypatch.setattr(trainer.F, "kl_div", counting_kl)
    torch.manual_seed(0)
    net = Supernet("tiny")
    rec = _Recorder(net)
    space = net.space
    smallest = space.decode(space.smallest())
    only_smallest = lambda sp, rng: sp.smallest()[None]  # noqa: E731
    train_supernet(net, small_data, TrainConfig(epochs=1, batch_size=48, distill=distill,
                                                seed=0), sampler=only_smallest)
    steps = 2  # 96 images / 48
    trained = rec.calls[:-1]  # the trainer ends by selecting the largest
    largest = space.decode(space.largest())
    if distill:
        assert trained == [largest, smallest] * steps
        assert len(kl_calls) == steps  # the student learns from the teacher only
    else:
        assert trained == [smallest] * steps
        assert not kl_calls


def test_distillation_is_on_by_default_and_switchable_in_config():
    from evo_nas.config import load_config

    assert TrainConfig().distill is True
    assert load_config({"train": {"distill": False}}).train.distill is False


@pytest.mark.parametrize("distill", [True, False])
@pytest.mark.parametrize("name", ["uniform", "sandwich", "fair", "flops_bucket", "attentive",
                                  "flops_bucket_plain"])
def test_a_sampler_says_how_many_sub_networks_a_training_step_trains(small_data, name, distill):
    """``subnets_per_step`` (what the fidelity study equalises) is what the trainer really runs:
    the sampler's picks plus the teacher it prepends when distilling."""
    torch.manual_seed(0)
    net = Supernet("tiny")
    space = net.space
    if name == "attentive":  # a fixed scorer: the batch-loss one would also call set_active
        sampler = AttentiveSampler(n_random=2, scorer=lambda cs: [len(str(c)) for c in cs])
    elif name == "flops_bucket_plain":
        sampler = FlopsBucketSampler(n_random=3, sandwich=False)
    else:
        sampler = make_sampler(name, **({"n": 3} if name == "uniform" else
                                        {} if name == "fair" else {"n_random": 2}))
    fixed = {"uniform": int(distill), "fair": int(distill), "flops_bucket_plain": int(distill)
             }.get(name, 2)  # sandwich, flops_bucket, attentive lead with largest + smallest
    assert sampler.fixed_subnets(distill) == fixed
    assert sampler.subnets_per_step(space, distill) == fixed + sampler.random_subnets(space)
    if name == "fair":
        assert sampler.random_subnets(space) == int(space.n_options.max())
    rec = _Recorder(net)
    train_supernet(net, small_data, TrainConfig(epochs=1, batch_size=96, distill=distill,
                                                seed=0), sampler=sampler)
    assert len(rec.calls) - 1 == sampler.subnets_per_step(space, distill)  # 1 step, + largest
