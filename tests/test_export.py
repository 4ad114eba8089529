"""Export round trips: every format reloads to the supernet's outputs, with its config."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from evo_nas.cli import main
from evo_nas.errors import EvoNasError
from evo_nas.export import (
    ExportError,
    export_from_run,
    export_subnet,
    load_exported,
    read_sidecar,
)
from evo_nas.nn import Supernet
from evo_nas.train import save_checkpoint

FORMATS = ["state_dict", "torchscript",
           pytest.param("onnx", marks=pytest.mark.skipif(
               not all(__import__("importlib").util.find_spec(m) for m in ("onnx", "onnxruntime")),
               reason="onnx/onnxruntime not installed"))]


def _randomised(preset: str) -> Supernet:
    """A supernet whose BN statistics are not the defaults, so a wrong slice would show."""
    torch.manual_seed(0)
    net = Supernet(preset)
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def nets() -> dict[str, Supernet]:
    return {"tiny": _randomised("tiny"), "cifar": _randomised("cifar")}


def _reference(net: Supernet, cfg: dict, x: torch.Tensor) -> torch.Tensor:
    net.set_active(cfg)
    net.eval()
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("preset", ["tiny", "cifar"])
def test_round_trip_matches_supernet(nets, preset: str, fmt: str, tmp_path) -> None:
    net = nets[preset]
    sp = net.space
    cfg = sp.decode(sp.sample(1, 7)[0])
    before = net.active_config
    path = export_subnet(net, cfg, tmp_path / f"m.{fmt}", fmt)
    assert net.active_config == before  # export leaves the supernet as it found it
    meta = read_sidecar(path)
    assert meta["config"] == sp.decode(sp.encode(cfg)) and meta["model_format"] == fmt
    assert meta["space"] == sp.name and meta["input_shape"] == [net.spec.in_channels,
                                                                cfg["res"], cfg["res"]]
    assert meta["verified"]["max_abs_diff"] <= 1e-5
    x = torch.randn(3, net.spec.in_channels, cfg["res"], cfg["res"])  # batch != export batch
    model = load_exported(path)
    with torch.no_grad():
        out = model(x)
    torch.testing.assert_close(out, _reference(net, cfg, x), atol=1e-5, rtol=1e-4)
    if fmt == "state_dict":
        assert model.config == meta["config"]
    if fmt == "torchscript":
        extra = {"evo_nas.json": ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, works
            torch.jit.load(str(path), _extra_files=extra)
        assert json.loads(extra["evo_nas.json"])["config"] == meta["config"]


def test_bad_inputs(nets, tmp_path) -> None:
    net = nets["tiny"]
    cfg = net.space.decode(net.space.smallest())
    with pytest.raises(EvoNasError, match="export format 'tflite'"):
        export_subnet(net, cfg, tmp_path / "m", "tflite")
    with pytest.raises(EvoNasError, match="res"):
        export_subnet(net, {**cfg, "res": 13}, tmp_path / "m.pt")
    with pytest.raises(ExportError, match="does not exist"):
        load_exported(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ExportError, match="not a torch file"):
        load_exported(tmp_path / "junk.pt", "state_dict")


@pytest.fixture()
def run_dir(nets, tmp_path):
    net = nets["tiny"]
    run = tmp_path / "runs" / "demo"
    save_checkpoint(run / "supernet.pt", net)
    sp = net.space
    rows = [{"eval": i, "accuracy_%": 50.0 + i, "MFLOPs": 1.0, "feasible": True,
             "config": sp.decode(x)} for i, x in enumerate(sp.sample(2, 3))]
    (run / "pareto.json").write_text(json.dumps({"objectives": ["error", "flops"],
                                                 "pareto": rows}))
    return run, rows


def test_export_from_run_python_and_cli(nets, run_dir, capsys) -> None:
    run, rows = run_dir
    path = export_from_run(run, 1, "torchscript")
    assert path == run / "export" / "arch1.torchscript.pt"
    meta = read_sidecar(path)
    assert meta["config"] == rows[1]["config"] and meta["arch"] == 1
    assert meta["pareto_row"]["accuracy_%"] == 51.0
    code = main(["export", str(run), "--arch", "0", "--format", "state_dict"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "outputs match the supernet" in out
    sub = load_exported(run / "export" / "arch0.pt")
    x = torch.randn(2, 1, rows[0]["config"]["res"], rows[0]["config"]["res"])
    with torch.no_grad():
        torch.testing.assert_close(sub(x), _reference(nets["tiny"], rows[0]["config"], x))


@pytest.mark.parametrize(("argv", "message"), [
    (["--arch", "5"], "--arch 5: "),
    (["--arch", "-1"], "lists 2 architectures"),
    (["--format", "tflite"], None),
])
def test_export_cli_errors(run_dir, capsys, argv, message) -> None:
    run, _ = run_dir
    if message is None:  # argparse rejects an unknown format itself (exit 2)
        with pytest.raises(SystemExit) as e:
            main(["export", str(run), *argv])
        assert e.value.code == 2
        return
    assert main(["export", str(run), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_export_cli_missing_run(tmp_path, capsys) -> None:
    assert main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "has no pareto.json" in err and err.count("\n") == 1
