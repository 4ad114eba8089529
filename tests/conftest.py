"""Shared fixtures. Torch runs single-threaded per test worker (pytest-xdist runs two)."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    from evo_nas.data import load_dataset

    return load_dataset("digits", seed=0)


@pytest.fixture(scope="session")
def trained_tiny(digits, tmp_path_factory):
    """A tiny supernet trained briefly on digits, saved as a real checkpoint (shared per worker)."""
    from evo_nas.nn import Supernet
    from evo_nas.train import TrainConfig, save_checkpoint, train_supernet

    torch.manual_seed(0)
    net = Supernet("tiny")
    train_supernet(net, digits, TrainConfig(epochs=5, batch_size=64, sampler="sandwich", seed=0))
    path = tmp_path_factory.mktemp("ckpt") / "supernet.pt"
    save_checkpoint(path, net)
    return net, path


# ------------------------------------------------------------------------------ test tiers
# The slow tier: tests that take 7.5 s or more on their own (one process, `-p no:xdist`, on
# 2 CPU cores shared with other work), with those seconds (summed over parameters): they train,
# run whole studies or examples, start worker pools or processes they kill. The seconds also
# order files for xdist (below). New slow tests may use `@pytest.mark.slow(seconds=N)` in their
# file instead (test_readme, test_batch_progress). Plain `pytest` (and `make test-fast`) deselects
# the tier (pyproject: -m 'not slow'); `make test` (CI) runs both tiers in one run.
SLOW = {
    "tests/test_parallel.py::test_driver_sigkill_then_resume_loses_and_duplicates_nothing": 46,
    "tests/test_parallel.py::test_worker_sigkill_is_retried_and_a_repeat_killer_is_recorded_failed": 44,  # noqa: E501
    "tests/test_batch_kill.py::test_sigkill_of_the_driver_ends_its_workers_and_a_rerun_completes": 42,  # noqa: E501
    "tests/test_parallel.py::test_same_archive_rows_and_front_for_1_2_4_loky_workers": 37,
    "tests/test_nb201_truth.py::test_quick_study_runs_end_to_end": 25,
    "tests/test_ddp.py::test_two_gloo_ranks_stay_in_sync_and_match_one_process": 20,
    "tests/test_batch.py::test_batch_on_a_dask_local_cluster": 19,
    "tests/test_ddp.py::test_torchrun_entry_point_trains_and_rank0_saves": 16,
    "tests/test_batch.py::test_batch_with_local_processes": 16,
    "tests/test_examples.py::test_digits_search_example": 15,
    "tests/test_parallel.py::test_zero_cost_proxies_reach_workers_as_a_spec_with_the_same_values": 11,  # noqa: E501
    "tests/test_fewshot.py::test_training_updates_only_the_routed_splits_and_extraction_matches": 10,  # noqa: E501
    "tests/test_examples.py::test_choice_supernet_example": 8,
}
MARKED_SLOW_SECONDS = 20  # weight of `@pytest.mark.slow` without `seconds=` (not listed above)


def _function_id(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    weight: dict[str, float] = {}
    for item in items:
        seconds = SLOW.get(_function_id(item.nodeid))
        if seconds is not None:
            item.add_marker(pytest.mark.slow)
        elif (mark := item.get_closest_marker("slow")) is not None:
            seconds = mark.kwargs.get("seconds", MARKED_SLOW_SECONDS)
        path = item.nodeid.split("::", 1)[0]
        weight[path] = weight.get(path, 0.0) + (seconds or 0.0)
    if hasattr(config, "workerinput"):
        # under xdist (`--dist loadfile --no-loadscope-reorder`, as `make test` runs it) files
        # are handed out in this order: the heaviest first, so no long file starts last and
        # leaves the other worker idle. Stable: test order within a file is kept.
        items.sort(key=lambda item: -weight[item.nodeid.split("::", 1)[0]])
