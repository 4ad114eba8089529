"""A choice-block supernet (SPOS / FairNAS / ProxylessNAS style): one candidate op per layer.

Each layer holds its own candidate modules with their own weights; a sub-network picks one per
layer. Unlike the elastic MobileNet supernet nothing is sliced, so the candidates can be any
modules the user writes, as long as every candidate of a layer maps the layer's input shape to
the same output shape (checked once at construction, where the error is still easy to read).

Costs are counted once per candidate by forward hooks (:func:`~evo_nas.costs.count_with_hooks`)
on its own module and stored as plain integers in :class:`ChoiceCosts`, so a search can price
any sub-network exactly (stem + chosen candidates + head) without touching torch.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from evo_nas.costs import count_with_hooks
from evo_nas.errors import ConfigError, GenomeError
from evo_nas.nn.protocol import SupernetBase
from evo_nas.space import Choice, SearchSpace

__all__ = ["ChoiceCosts", "ChoiceSupernet", "spos_supernet", "SPOS_OPS"]

Factory = Callable[[], nn.Module] | nn.Module
Layer = Mapping[str, Factory] | Sequence[tuple[str, Factory]]


class ChoiceCosts:
    """``config -> (MACs, params)`` of a choice supernet's extracted sub-networks.

    Holds plain ints only (``fixed`` for stem + head, ``table[layer][candidate]``), so it pickles
    to worker processes and prices configs without torch. Configs are trusted (decoded).
    """

    def __init__(self, fixed: tuple[int, int], table: Mapping[str, Mapping[str, tuple[int, int]]]
                 ) -> None:
        self.fixed = (int(fixed[0]), int(fixed[1]))
        self.table = {layer: {c: (int(m), int(p)) for c, (m, p) in cands.items()}
                      for layer, cands in table.items()}

    def __call__(self, config: Mapping[str, Any]) -> tuple[int, int]:
        macs, n = self.fixed
        for layer, cands in self.table.items():
            try:
                m, p = cands[config[layer]]
            except KeyError:
                if layer not in config:
                    raise GenomeError(f"architecture config lacks gene {layer!r}") from None
                raise GenomeError(f"gene {layer!r} = {config[layer]!r} is not one of its options "
                                  f"{tuple(cands)}") from None
            macs, n = macs + m, n + p
        return macs, n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChoiceCosts) and (self.fixed, self.table) == (other.fixed,
                                                                                other.table)


def _module(obj: Factory, what: str) -> nn.Module:
    """A module instance from a module or a zero-argument factory (class or function)."""
    if isinstance(obj, nn.Module):
        return obj
    if not callable(obj):
        raise ConfigError(f"{what}: expected an nn.Module or a zero-argument factory, "
                          f"got {type(obj).__name__}")
    try:
        mod = obj()
    except TypeError as e:
        raise ConfigError(f"{what}: factory {obj!r} cannot be called without arguments: {e}"
                          ) from None
    if not isinstance(mod, nn.Module):
        raise ConfigError(f"{what}: factory returned {type(mod).__name__}, not an nn.Module")
    return mod


def _probe(mod: nn.Module, in_shape: tuple[int, ...], what: str) -> tuple[int, ...]:
    """Output shape (without batch) of one eval-mode forward of zeros; modes are restored."""
    modes = [(m, m.training) for m in mod.modules()]
    p = next(mod.parameters(), None)
    x = torch.zeros((1, *in_shape), device=p.device if p is not None else None,
                    dtype=p.dtype if p is not None else None)
    try:
        mod.eval()
        with torch.no_grad():
            out = mod(x)
    except Exception as e:  # a user's module: report what failed, and where
        raise ConfigError(f"{what} fails on input shape {in_shape}: {type(e).__name__}: {e}"
                          ) from e
    finally:
        for m, training in modes:
            m.training = training
    if not isinstance(out, Tensor):
        raise ConfigError(f"{what} returns {type(out).__name__}, not a tensor")
    return tuple(out.shape[1:])


def _builder_path(builder: str | Callable[..., nn.Module]) -> str:
    if isinstance(builder, str):
        if ":" not in builder:
            raise ConfigError(f"builder {builder!r}: expected an import path 'package.module:"
                              "function'")
        return builder
    qual = getattr(builder, "__qualname__", "")
    if not qual or "<" in qual:
        raise ConfigError(f"builder {builder!r} is not importable (a lambda or a local function): "
                          "pass a module-level function or its 'package.module:function' path")
    return f"{builder.__module__}:{qual}"


class ChoiceSupernet(SupernetBase):
    """A supernet with one choice block per layer: ``stem -> one candidate per layer -> head``.

    ``layers`` lists the layers; each is a mapping ``{candidate name: factory}`` or a list of
    ``(name, factory)`` pairs, where a factory is a zero-argument callable returning a module
    (``nn.Identity`` makes a skip candidate) or a module. One gene per layer, named by ``names``
    (default ``l0``, ``l1``, ...), its options the candidate names in the given order. ``stem``
    (default: none) and ``head`` are fixed modules or factories; the head must end in logits of
    ``num_classes`` (default head: global average pool + linear, which needs ``num_classes``).
    ``input_shape`` is ``(C, H, W)`` of one image.

    ``builder`` (a module-level function or its ``'package.module:function'`` path) and
    ``builder_kwargs`` say how to build this same supernet again, so a checkpoint can rebuild it
    with :func:`~evo_nas.nn.protocol.build_supernet`; without one, loading a checkpoint needs
    the user's own instance. ``extremes`` of the space are the per-layer cheapest and dearest
    candidates by (MACs, params), so the sandwich rule trains the real smallest and largest.
    """

    def __init__(self, layers: Sequence[Layer], stem: Factory | None = None,
                 head: Factory | None = None, *, input_shape: Sequence[int],
                 num_classes: int | None = None, names: Sequence[str] | None = None,
                 builder: str | Callable[..., nn.Module] | None = None,
                 builder_kwargs: Mapping[str, Any] | None = None, name: str = "choice") -> None:
        super().__init__()
        shape = tuple(int(v) for v in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"input_shape = {tuple(input_shape)}: expected (C, H, W) of one "
                              "image, all positive")
        if isinstance(layers, Mapping) or not len(layers):
            raise ConfigError("layers: expected a non-empty list of layers, each a mapping "
                              "{candidate name: factory} or a list of (name, factory)")
        names = [f"l{i}" for i in range(len(layers))] if names is None else list(names)
        if len(names) != len(layers):
            raise ConfigError(f"names has {len(names)} entries for {len(layers)} layers")
        for n in names:
            if not isinstance(n, str) or not n:
                raise ConfigError(f"layer name {n!r}: expected a non-empty string")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"layer names {dup} are repeated")
        self._input_shape = shape
        self.in_channels, self.image_size = shape[0], shape[1]

        seen: dict[int, str] = {}

        def own(mod: nn.Module, what: str) -> nn.Module:
            # one instance in two places would tie weights the costs and extraction treat apart
            if id(mod) in seen:
                raise ConfigError(f"{what} is the same module instance as {seen[id(mod)]}: give "
                                  "a factory that builds a new module each time")
            seen[id(mod)] = what
            return mod

        self.stem = own(_module(stem, "stem"), "stem") if stem is not None else nn.Identity()
        cur = _probe(self.stem, shape, "stem")
        table: dict[str, dict[str, tuple[int, int]]] = {}
        self.choices = nn.ModuleList()
        self._candidates: list[list[str]] = []
        for lname, layer in zip(names, layers, strict=True):
            pairs = list(layer.items()) if isinstance(layer, Mapping) else list(layer)
            if not pairs:
                raise ConfigError(f"layer {lname!r} has no candidates")
            cnames = []
            for pair in pairs:
                if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                    raise ConfigError(f"layer {lname!r}: expected (name, factory) pairs, got "
                                      f"{pair!r}")
                cnames.append(pair[0])
            for c in cnames:
                if not isinstance(c, str) or not c:
                    raise ConfigError(f"layer {lname!r}: candidate name {c!r} is not a non-empty "
                                      "string")
            dup = sorted({c for c in cnames if cnames.count(c) > 1})
            if dup:
                raise ConfigError(f"layer {lname!r} repeats candidate names {dup}")
            mods = nn.ModuleList()
            table[lname] = {}
            out: tuple[int, ...] | None = None
            for cname, factory in pairs:
                what = f"layer {lname!r} candidate {cname!r}"
                mod = own(_module(factory, what), what)
                got = _probe(mod, cur, what)
                if out is None:
                    out, first = got, cname
                elif got != out:
                    raise ConfigError(
                        f"layer {lname!r}: candidate {cname!r} maps input {cur} to {got}, but "
                        f"candidate {first!r} maps it to {out}; every candidate of a layer must "
                        "give the same output shape")
                table[lname][cname] = count_with_hooks(mod, cur)
                mods.append(mod)
            self.choices.append(mods)
            self._candidates.append(cnames)
            cur = out  # type: ignore[assignment]

        if head is None:
            if num_classes is None:
                raise ConfigError("the default head (average pool + linear) needs num_classes")
            if len(cur) != 3:
                raise ConfigError(f"the default head needs (C, H, W) features, the last layer "
                                  f"gives {cur}: pass head=")
            head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cur[0],
                                                                                 num_classes))
        self.head = own(_module(head, "head"), "head")
        logits = _probe(self.head, cur, "head")
        if len(logits) != 1 or (num_classes is not None and logits[0] != num_classes):
            want = f"({num_classes},)" if num_classes is not None else "(num_classes,)"
            raise ConfigError(f"head maps {cur} to {logits}: it must end in logits of shape "
                              f"{want} per image")
        self.num_classes = int(logits[0])

        stem_c, head_c = count_with_hooks(self.stem, shape), count_with_hooks(self.head, cur)
        self.names = names
        self._index = {n: {c: j for j, c in enumerate(cs)}
                       for n, cs in zip(names, self._candidates, strict=True)}
        small = [min(range(len(cs)), key=lambda j, n=n, cs=cs: table[n][cs[j]])
                 for n, cs in zip(names, self._candidates, strict=True)]
        large = [max(range(len(cs)), key=lambda j, n=n, cs=cs: table[n][cs[j]])
                 for n, cs in zip(names, self._candidates, strict=True)]
        self.cost_fn = ChoiceCosts((stem_c[0] + head_c[0], stem_c[1] + head_c[1]), table)
        self.space = SearchSpace([Choice(n, tuple(cs))
                                  for n, cs in zip(names, self._candidates, strict=True)],
                                 name=name, meta={"costs": self.cost_fn},
                                 extremes=(small, large))

        self._builder = _builder_path(builder) if builder is not None else None
        self._builder_kwargs = dict(builder_kwargs or {})
        if self._builder_kwargs and self._builder is None:
            raise ConfigError("builder_kwargs given without a builder")
        clash = sorted({"kind", "builder"} & set(self._builder_kwargs))
        if clash:
            raise ConfigError(f"builder_kwargs cannot use the reserved keys {clash}")
        try:
            json.dumps(self._builder_kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"builder_kwargs must be JSON-able (checkpoints store them): {e}"
                              ) from None
        self._active: list[nn.Module] = []
        self.set_largest()

    # ----------------------------------------------------------------- protocol
    def _activate(self, cfg: dict[str, Any]) -> None:
        self._active = [mods[self._index[n][cfg[n]]]
                        for n, mods in zip(self.names, self.choices, strict=True)]

    def input_shape(self, config: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input image: the same for every config (resolution is fixed)."""
        return self._input_shape  # type: ignore[return-value]

    def candidates(self, layer: str) -> dict[str, nn.Module]:
        """The candidate modules of one layer by name (they share no weights)."""
        if layer not in self._index:
            raise GenomeError(f"unknown layer {layer!r}: layers are {self.names}")
        mods = self.choices[self.names.index(layer)]
        return {c: mods[j] for c, j in self._index[layer].items()}

    def settings(self) -> dict[str, Any]:
        """How to rebuild this supernet: the recorded builder, else just its genes (which
        :func:`~evo_nas.nn.protocol.build_supernet` refuses with a clear message)."""
        if self._builder is not None:
            return {"kind": "choice", "builder": self._builder, **self._builder_kwargs}
        return {"kind": "choice",
                "genes": {n: list(cs) for n, cs in zip(self.names, self._candidates,
                                                      strict=True)}}

    def extract(self, config: Mapping[str, Any] | None = None) -> nn.Sequential:
        """``nn.Sequential(stem, chosen candidates, head)``, deep copies (weights, BN buffers and
        each module's train/eval mode), equal in eval mode to the supernet running ``config``
        (default: the active one); the supernet's active config is not changed."""
        cfg = self.canonical_config(config)
        chosen = [mods[self._index[n][cfg[n]]]
                  for n, mods in zip(self.names, self.choices, strict=True)]
        sub = nn.Sequential(*[copy.deepcopy(m) for m in (self.stem, *chosen, self.head)])
        sub.training = self.training
        sub.config = cfg
        return sub

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for m in self._active:
            x = m(x)
        return self.head(x)

    # ----------------------------------------------------------------- latency parts
    def latency_keys(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``stem``, ``layer=candidate`` per layer, ``head``: the per-op table of ProxylessNAS /
        FBNet. Candidates share nothing, so a (layer, candidate) pair is one fixed computation
        and the extracted network is exactly this chain."""
        cfg = self.canonical_config(config)
        return [("stem", "stem"), *((n, f"{n}={cfg[n]}") for n in self.names), ("head", "head")]

    def latency_parts(self, config: Mapping[str, Any]
                      ) -> list[tuple[str, nn.Module, tuple[int, int, int]]]:
        """The extracted ``Sequential``'s modules (eval mode) with the input shape of each."""
        sub = self.extract(config)
        shape: tuple[int, ...] = self._input_shape
        out = []
        for (_, key), mod in zip(self.latency_keys(sub.config), sub, strict=True):
            out.append((key, mod.eval(), shape))
            shape = _probe(mod, shape, key)
        return out  # type: ignore[return-value]

    def latency_configs(self) -> list[dict[str, Any]]:
        """Layer ``i`` takes candidate ``(j + s * i) mod n_i``: ``s = 0`` covers every candidate,
        the other shifts put them next to other neighbours (more contexts to time them in)."""
        width = max(len(cs) for cs in self._candidates)
        return [{n: cs[(j + s * i) % len(cs)]
                 for i, (n, cs) in enumerate(zip(self.names, self._candidates, strict=True))}
                for s in range(width) for j in range(width)]


# ---------------------------------------------------------------------- a ready-made space
def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout)]
    if act:
        mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class InvertedResidual(nn.Module):
    """MobileNetV2 block (1x1 expand, depthwise, 1x1 project) with a skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, expand: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(_conv_bn(cin, mid, 1), _conv_bn(mid, mid, kernel, stride, mid),
                                  _conv_bn(mid, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def _op(op: str, cin: int, cout: int, stride: int) -> nn.Module:
    if op == "conv3x3":
        return _conv_bn(cin, cout, 3, stride)
    if op == "conv5x5":
        return _conv_bn(cin, cout, 5, stride)
    if op == "dwsep3x3":
        return nn.Sequential(_conv_bn(cin, cin, 3, stride, cin), _conv_bn(cin, cout, 1))
    if op == "mbconv3_e3":
        return InvertedResidual(cin, cout, 3, 3, stride)
    if op == "skip":
        return nn.Identity()
    raise ConfigError(f"spos op {op!r}: choose from {list(SPOS_OPS)}")


SPOS_OPS = ("conv3x3", "conv5x5", "dwsep3x3", "mbconv3_e3", "skip")


def spos_supernet(num_layers: int = 4, channels: int = 16, in_channels: int = 1,
                  num_classes: int = 10, image_size: int = 16, downsample_at: int | None = None,
                  ops: Sequence[str] = SPOS_OPS) -> ChoiceSupernet:
    """A small SPOS-style :class:`ChoiceSupernet` that trains in seconds on 16 px digits.

    Fixed stem (3x3 conv, ``channels``) and head (average pool + linear); ``num_layers`` choice
    layers over ``ops`` (default :data:`SPOS_OPS`), all stride 1 except layer ``downsample_at``
    (stride 2, no ``skip`` candidate, as a skip cannot halve the size). It records itself as the
    builder, so checkpoints rebuild it from ``settings()``.
    """
    ops = list(ops)
    for op in ops:
        if op not in SPOS_OPS:
            raise ConfigError(f"spos op {op!r}: choose from {list(SPOS_OPS)}")
    if num_layers < 1 or channels < 1:
        raise ConfigError(f"spos_supernet num_layers = {num_layers}, channels = {channels}: "
                          "both must be at least 1")
    if downsample_at is not None and not 0 <= downsample_at < num_layers:
        raise ConfigError(f"downsample_at = {downsample_at}: must be a layer index in "
                          f"0..{num_layers - 1}")
    c = channels
    layers = []
    for i in range(num_layers):
        stride = 2 if i == downsample_at else 1
        layers.append([(op, lambda op=op, s=stride: _op(op, c, c, s))
                       for op in ops if not (stride == 2 and op == "skip")])
    kwargs = {"num_layers": num_layers, "channels": channels, "in_channels": in_channels,
              "num_classes": num_classes, "image_size": image_size,
              "downsample_at": downsample_at, "ops": ops}
    return ChoiceSupernet(layers, stem=_conv_bn(in_channels, c, 3),
                          input_shape=(in_channels, image_size, image_size),
                          num_classes=num_classes, builder="evo_nas.nn.choice:spos_supernet",
                          builder_kwargs=kwargs, name="spos")
