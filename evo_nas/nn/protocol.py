"""The weight-sharing supernet protocol, and the registry that rebuilds supernets from settings.

Training, every sampler, BN re-calibration, :class:`~evo_nas.objectives.SupernetAccuracy`,
checkpoints, export and latency talk to a supernet only through :class:`WeightSharingSupernet`,
so a MobileNet-style elastic supernet, a choice block per layer (SPOS/FairNAS) and a
NAS-Bench-201 cell supernet are used the same way, and so is a user's own.

What a supernet provides:

* ``space``: its :class:`~evo_nas.space.SearchSpace`; configs are ``space.decode`` dicts.
* ``set_active(config)`` then ``forward(x)``: run one sub-network on a batch already shaped as
  ``input_shape(config)`` (:func:`prepare_input` resizes when the space searches resolution).
* ``extract(config)``: a static ``nn.Module`` holding copies of the inherited weights and BN
  statistics, equal in eval mode to the supernet running ``config``.
* ``costs(config)``: exact ``(MACs, params)`` of the extracted sub-network, from the torch-free
  cost function in ``space.meta['costs']`` (analytic, or counted once per candidate by hooks).
* ``settings()``: a JSON-able dict with a ``kind`` that :func:`build_supernet` turns back into an
  untrained supernet of the same shape; checkpoints store it next to the weights.

Optional, for per-part latency lookup tables (:func:`evo_nas.latency.build_table`); without them
latency is measured network by network (:class:`~evo_nas.latency.MeasuredLatency`):

* ``latency_keys(config)``: ``(part name, key)`` of each part of the sub-network in execution
  order, cheap (a table calls it for every prediction); equal keys are the same computation.
* ``latency_parts(config)``: ``(key, static module, input (C, H, W))`` of the same parts, in the
  same order; each part's output is the next part's input, so a chain of them can be timed.
* ``latency_configs()``: configs whose parts together include every distinct part of the space.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from evo_nas.costs import cost_function
from evo_nas.errors import CheckpointError, ConfigError, GenomeError, LatencyTableError
from evo_nas.space import SearchSpace

__all__ = [
    "WeightSharingSupernet",
    "SupernetBase",
    "build_supernet",
    "prepare_input",
    "register_supernet",
    "supernet_from_preset",
    "SUPERNET_KINDS",
    "supports_latency_table",
]


@runtime_checkable
class WeightSharingSupernet(Protocol):
    """What every weight-sharing supernet offers (see the module docstring)."""

    space: SearchSpace
    in_channels: int
    num_classes: int

    def set_active(self, config: Mapping[str, Any]) -> None: ...

    @property
    def active_config(self) -> dict[str, Any]: ...

    def extract(self, config: Mapping[str, Any] | None = None) -> nn.Module: ...

    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]: ...

    def costs(self, config: Mapping[str, Any]) -> tuple[int, int]: ...

    def settings(self) -> dict[str, Any]: ...

    def __call__(self, x: Tensor) -> Tensor: ...


class SupernetBase(nn.Module):
    """Shared plumbing of the built-in supernets: the active config, the extremes, costs.

    Subclasses set ``space``, ``in_channels`` and ``num_classes``, implement ``_activate``
    (given a canonical config), ``forward``, ``extract`` and ``settings``, and override
    ``input_shape`` when their space searches the resolution.
    """

    space: SearchSpace
    in_channels: int
    num_classes: int
    image_size: int

    def set_active(self, config: Mapping[str, Any]) -> None:
        """Select the sub-network of ``config``; raises GenomeError naming a bad gene."""
        cfg = self.space.decode(self.space.encode(config))
        self._activate(cfg)
        self._config = cfg

    def _activate(self, config: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def active_config(self) -> dict[str, Any]:
        return dict(self._config)

    def set_largest(self) -> None:
        self.set_active(self.space.decode(self.space.largest()))

    def set_smallest(self) -> None:
        self.set_active(self.space.decode(self.space.smallest()))

    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    def costs(self, config: Mapping[str, Any]) -> tuple[int, int]:
        cfg = self.space.decode(self.space.encode(config))
        return cost_function(self.space)(cfg)

    def canonical_config(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        if config is None:
            return dict(self._config)
        return self.space.decode(self.space.encode(config))

    # ------------------------------------------------ optional: per-part latency tables
    def _no_latency_parts(self, method: str) -> Exception:
        return LatencyTableError(
            f"{type(self).__name__} has no {method}(): per-part latency tables need a supernet "
            "that splits a sub-network into parts (latency_keys, latency_parts, "
            "latency_configs); measure its sub-networks with MeasuredLatency instead")

    def latency_keys(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(part name, key)`` of each part of ``config``; default: derived from
        :meth:`latency_parts` (extracts modules, so override it when that is slow)."""
        return [(k, k) for k, _, _ in self.latency_parts(config)]

    def latency_parts(self, config: Mapping[str, Any]
                      ) -> list[tuple[str, nn.Module, tuple[int, int, int]]]:
        """``(key, static module, input (C, H, W))`` per part, chained; none by default."""
        raise self._no_latency_parts("latency_parts")

    def latency_configs(self) -> list[dict[str, Any]]:
        """Configs that together contain every distinct part; none by default."""
        raise self._no_latency_parts("latency_configs")


def supports_latency_table(net: Any) -> bool:
    """Whether ``net`` splits sub-networks into parts (a per-part latency table applies)."""
    parts = getattr(type(net), "latency_parts", None)
    configs = getattr(type(net), "latency_configs", None)
    return (callable(parts) and callable(configs) and hasattr(net, "latency_keys")
            and parts is not SupernetBase.latency_parts
            and configs is not SupernetBase.latency_configs)


def prepare_input(net: Any, x: Tensor, config: Mapping[str, Any]) -> Tensor:
    """``x`` resized (bilinear) to the spatial size ``net.input_shape(config)`` asks for."""
    from evo_nas.nn.layers import resize

    _, h, w = net.input_shape(config)
    if x.shape[-2] == h and x.shape[-1] == w:
        return x
    if h != w:
        raise GenomeError(f"input_shape {(h, w)} is not square: resize the data beforehand")
    return resize(x, h)


# ---------------------------------------------------------------------- registry
# Each supernet module registers its kind when it is imported. This module imports none of them
# (they import it: the dependency goes one way); the built-in kinds are registered by the package
# evo_nas.nn, whose __init__ imports every supernet module and always runs before any of its
# submodules, this one included, can be used.
SUPERNET_KINDS: dict[str, Callable[..., nn.Module]] = {}


def register_supernet(kind: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``build_supernet({'kind': kind, **kwargs})`` call ``builder(**kwargs)``."""
    SUPERNET_KINDS[kind] = builder


def _import(path: str) -> Callable[..., nn.Module]:
    mod, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise CheckpointError(f"supernet builder {path!r} cannot be imported: {e}") from None


def build_supernet(settings: Mapping[str, Any]) -> nn.Module:
    """An untrained supernet from ``settings()`` of another: built-in kinds by name, a user's
    own by the ``builder`` import path (``'package.module:function'``) it recorded."""
    settings = dict(settings)
    kind = settings.pop("kind", None)
    builder_path = settings.pop("builder", None)
    if builder_path:
        builder = _import(builder_path)
    elif kind in SUPERNET_KINDS:
        builder = SUPERNET_KINDS[kind]
    else:
        raise CheckpointError(
            f"supernet kind {kind!r} is not registered (known: {sorted(SUPERNET_KINDS)}) and no "
            "builder was recorded: build the supernet yourself and pass it as supernet=")
    try:
        return builder(**settings)
    except TypeError as e:
        raise CheckpointError(f"supernet kind {kind!r} cannot be built from its settings: "
                              f"{e}") from None


def supernet_from_preset(preset: str, **options: Any) -> nn.Module:
    """The built-in supernet of a preset name: a MobileNet preset (``tiny``, ``cifar``, ...)
    or ``nb201`` (options ``C``, ``N``, ``num_classes``, ...)."""
    from evo_nas.spaces import PRESETS

    if preset == "nb201":
        return SUPERNET_KINDS["nb201"](**options)
    if preset in PRESETS:
        if options:
            raise ConfigError(f"supernet options {sorted(options)} apply to the nb201 preset "
                              f"only, not to {preset!r}")
        return SUPERNET_KINDS["mobilenet"](spec=PRESETS[preset].to_dict())
    raise ConfigError(f"preset = {preset!r}: choose one of {sorted([*PRESETS, 'nb201'])}")

