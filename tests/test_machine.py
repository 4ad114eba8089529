"""The one machine description every study and benchmark records."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

from evo_nas.machine import cpu_model, machine_info


def test_machine_info_is_json_ready_and_says_where_it_ran():
    import torch

    info = machine_info("cpu", packages=("numpy", "no-such-package-evo-nas"))
    json.dumps(info)
    assert info["platform"] == platform.platform() and info["cpu_count"] == os.cpu_count()
    assert info["python"] == platform.python_version() and info["cpu"] == cpu_model()
    assert info["torch"] == torch.__version__ and info["torch_threads"] == torch.get_num_threads()
    assert info["device"] == "cpu" and "gpu" not in info
    assert info["versions"]["numpy"] and info["versions"]["no-such-package-evo-nas"] is None
    assert "versions" not in machine_info() and "device" not in machine_info()


def test_the_latency_tables_device_record_agrees_on_the_shared_keys():
    from evo_nas.latency import device_info

    ours, theirs = machine_info(), device_info(1)
    for key in ("platform", "machine", "cpu", "cpu_count", "python", "torch"):
        assert ours[key] == theirs[key], key


def test_machine_info_does_not_import_torch():
    """Pure pymoo benchmarks record the machine without paying torch's import."""
    code = ("import sys; from evo_nas.machine import machine_info; info = machine_info(); "
            "print('torch' in sys.modules, 'torch' in info)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
