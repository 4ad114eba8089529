"""Export a searched sub-network for deployment: weights inherited from the supernet, plus config.

Three formats, each written with a JSON sidecar ``<model file>.json`` that holds the config,
the space and supernet settings, the input shape, analytic MFLOPs/params and the verification
result:

* ``state_dict``: a torch file with the supernet settings, the config and the static subnet's
  weights; :func:`load_exported` rebuilds the module (needs evo-nas);
* ``torchscript``: a scripted module (the sidecar is also embedded as ``evo_nas.json``); needs only
  torch to run;
* ``onnx``: opset graph with a dynamic batch axis (input ``input``, output ``output``); run it with
  onnxruntime or any ONNX runtime.

After writing, the file is reloaded and its outputs are compared with the supernet's for the same
config on a random batch (``verify=True``); a mismatch raises, so no wrong model is shipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from evo_nas.errors import CheckpointError, ConfigError, EvoNasError

__all__ = ["FORMATS", "SUBNET_FORMAT", "ExportError", "export_subnet", "export_from_run",
           "load_exported", "read_sidecar"]

FORMATS = ("state_dict", "torchscript", "onnx")
SUBNET_FORMAT = "evo-nas-subnet/1"
_SUFFIX = {"state_dict": ".pt", "torchscript": ".torchscript.pt", "onnx": ".onnx"}


class ExportError(EvoNasError):
    """An export that cannot be written, read back or verified."""


def sidecar_path(path: str | Path) -> Path:
    """Where the JSON description of an exported model lives: ``<model file>.json``."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The JSON sidecar of an exported model (config, supernet settings, input shape, ...)."""
    side = sidecar_path(path)
    if not side.is_file():
        raise ExportError(f"exported model {str(path)!r} has no sidecar {str(side)!r}")
    return json.loads(side.read_text())


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r}: choose one of {list(FORMATS)}")


def export_subnet(net: Any, config: Mapping[str, Any], path: str | Path,
                  format: str = "state_dict", verify: bool = True, atol: float = 1e-5,
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``config``'s sub-network of supernet ``net`` to ``path`` and its sidecar JSON.

    Returns the model path. With ``verify`` the written file is loaded back and must reproduce
    the supernet's outputs (eval mode) within ``atol``; ONNX is verified when onnxruntime is
    installed (the sidecar says whether it was).
    """
    _check_format(format)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cfg = net.space.decode(net.space.encode(config))
    sub = net.extract(cfg).eval()
    shape = list(net.input_shape(cfg))
    macs, n_params = net.costs(cfg)
    settings = net.settings()
    meta: dict[str, Any] = {
        "format": SUBNET_FORMAT, "model_format": format, "model_file": path.name,
        "space": net.space.name, "supernet": settings, "config": cfg, "input_shape": shape,
        "MFLOPs": macs / 1e6, "Mparams": n_params / 1e6, "torch": torch.__version__,
        **(dict(extra) if extra else {}),
    }
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    if format == "state_dict":
        torch.save({"format": SUBNET_FORMAT, "supernet": settings, "config": cfg,
                    "state_dict": sub.state_dict()}, path)
    elif format == "torchscript":
        from evo_nas.latency.measure import _quiet_jit

        with _quiet_jit():
            scripted = torch.jit.script(sub)
            torch.jit.save(scripted, str(path),
                           _extra_files={"evo_nas.json": json.dumps(meta, default=str)})
    else:
        from evo_nas.latency.measure import _onnx_export, _quiet_jit

        meta.update(input_name="input", output_name="output")
        try:
            with _quiet_jit():
                _onnx_export(sub, example[:1], str(path))
        except (ImportError, ModuleNotFoundError) as e:
            raise ExportError(f"ONNX export needs the onnx package ({e}); "
                              "pip install 'evo-nas[onnx]'") from None
    meta["verified"] = None
    if verify:
        meta["verified"] = _verify(net, cfg, path, format, example, atol)
    sidecar_path(path).write_text(json.dumps(meta, indent=2, default=str))
    return path


def _supernet_output(net: Any, cfg: Mapping[str, Any], x: Tensor) -> Tensor:
    """The supernet's eval-mode output for ``cfg``, leaving its active config and mode as found."""
    prev, modes = net.active_config, [(m, m.training) for m in net.modules()]
    try:
        net.set_active(cfg)
        net.eval()
        with torch.no_grad():
            return net(x.to(next(net.parameters()).device)).cpu()
    finally:
        net.set_active(prev)
        for m, training in modes:
            m.training = training


def _verify(net: Any, cfg: Mapping[str, Any], path: Path, fmt: str, x: Tensor,
            atol: float) -> dict[str, Any] | None:
    if fmt == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None
    ref = _supernet_output(net, cfg, x)
    with torch.no_grad():
        out = load_exported(path, fmt)(x)
    diff = float((out - ref).abs().max())
    if not torch.allclose(out, ref, atol=atol, rtol=1e-4):
        raise ExportError(f"exported {fmt} model {str(path)!r} differs from the supernet by "
                          f"{diff:.3g} (atol {atol:g}) for config {dict(cfg)}")
    return {"max_abs_diff": diff, "atol": atol, "batch": int(x.shape[0])}


def _format_of(path: Path) -> str:
    try:
        return str(read_sidecar(path)["model_format"])
    except (ExportError, KeyError, json.JSONDecodeError):
        pass
    if path.suffix == ".onnx":
        return "onnx"
    return "torchscript" if path.name.endswith(".torchscript.pt") else "state_dict"


def load_exported(path: str | Path, format: str | None = None) -> Callable[[Tensor], Tensor]:
    """Load an exported model as a callable ``Tensor -> Tensor`` (eval mode).

    ``state_dict`` gives a :class:`~evo_nas.nn.SubNet` (``.config`` set), ``torchscript`` a
    ScriptModule, ``onnx`` a small onnxruntime wrapper.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"exported model {str(path)!r} does not exist")
    fmt = format or _format_of(path)
    _check_format(fmt)
    if fmt == "state_dict":
        return _load_state_dict(path)
    if fmt == "torchscript":
        from evo_nas.latency.measure import _quiet_jit

        try:
            with _quiet_jit():
                return torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as e:
            raise ExportError(f"{str(path)!r} is not a TorchScript file: "
                              f"{str(e).splitlines()[0]}") from None
    return _OnnxModel(path)


def _load_state_dict(path: Path) -> Any:
    from evo_nas.nn.protocol import build_supernet

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ExportError(f"{str(path)!r} is not a torch file: {type(e).__name__}") from None
    if not isinstance(blob, dict) or blob.get("format") != SUBNET_FORMAT:
        raise ExportError(f"{str(path)!r} is not an evo-nas subnet ({SUBNET_FORMAT})")
    # files written before the supernet protocol carry a MobileNet spec instead of settings
    settings = blob.get("supernet") or {"kind": "mobilenet", "spec": blob.get("spec")}
    try:
        with torch.random.fork_rng():
            sub = build_supernet(settings).extract(blob["config"])
        sub.load_state_dict(blob["state_dict"])
    except (EvoNasError, KeyError, TypeError, RuntimeError) as e:
        raise ExportError(f"{str(path)!r}: cannot rebuild its sub-network: "
                          f"{str(e).splitlines()[0]}") from None
    return sub.eval()


class _OnnxModel:
    """Run an ONNX file with onnxruntime on torch tensors."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportError("running an ONNX export needs onnxruntime "
                              "(pip install 'evo-nas[onnx]')") from None
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: Tensor) -> Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().numpy()})[0]
        return torch.from_numpy(out)


def export_from_run(run_dir: str | Path, arch: int, format: str = "state_dict",
                    out: str | Path | None = None, verify: bool = True) -> Path:
    """Export architecture ``arch`` of a run's ``pareto.json`` with weights from its
    ``supernet.pt``; default output ``<run_dir>/export/arch<N><suffix>``."""
    from evo_nas.train import load_checkpoint

    _check_format(format)
    run = Path(run_dir)
    pareto_file = run / "pareto.json"
    if not pareto_file.is_file():
        raise ExportError(f"run directory {str(run)!r} has no pareto.json (run a search first)")
    try:
        pareto = json.loads(pareto_file.read_text())["pareto"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ExportError(f"{str(pareto_file)!r} is not a pareto file: {e}") from None
    if not isinstance(arch, int) or not 0 <= arch < len(pareto):
        raise ConfigError(f"--arch {arch}: {str(pareto_file)!r} lists {len(pareto)} "
                          f"architectures (0..{len(pareto) - 1})")
    row = pareto[arch]
    ckpt = run / "supernet.pt"
    if not ckpt.is_file():
        raise CheckpointError(f"run directory {str(run)!r} has no supernet.pt")
    net, _ = load_checkpoint(ckpt)
    if out is None:
        out = run / "export" / f"arch{arch}{_SUFFIX[format]}"
    metrics = {k: v for k, v in row.items() if k not in ("config",)}
    return export_subnet(net, row["config"], out, format, verify,
                         extra={"run": str(run), "arch": arch, "pareto_row": metrics})
