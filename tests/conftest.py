"""Shared fixtures: the tiny smoke configuration and trainers built from it."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
import torch

from jepa_tui.config import Config, build_config, load_config
from jepa_tui.data.worlds import Worlds
from jepa_tui.training.trainer import Trainer


def smoke_config(**train: object) -> Config:
    """The shipped smoke profile with train-section overrides."""
    overrides = [f"train.{k}={v!r}".replace("'", '"') for k, v in train.items()]
    return load_config("smoke", overrides)


@pytest.fixture(scope="session")
def smoke_worlds() -> Worlds:
    return Worlds(load_config("smoke").data, torch.device("cpu"))


@pytest.fixture
def make_trainer(smoke_worlds):
    def make(**train: object) -> Trainer:
        return Trainer(smoke_config(**train), torch.device("cpu"), smoke_worlds)
    return make


__all__ = ["build_config", "smoke_config"]


PINNED_THREADS = str(torch.get_num_threads())  # the count torch started with in the test process
# Pinned already at import: module- and session-scoped fixtures (a smoke run shared by a module's tests) run before
# the autouse fixture below, and a run whose thread count follows the load differs in its last digits on a busy
# machine.
os.environ["OMP_NUM_THREADS"] = PINNED_THREADS


@pytest.fixture(autouse=True)
def fixed_thread_count():
    """Tests compare records bitwise across runs and processes, so their CPU thread count is fixed before every
    test (exported for the runs the tests start, whatever an earlier test left in the environment): a thread
    count that follows the load (jepa_tui.threads.ThreadGovernor) is tested on its own, with a simulated load."""
    _pin_threads()
    yield
    _pin_threads()  # also after: a module's shared run (a fixture set up before the next test's) starts pinned


def _pin_threads() -> None:
    os.environ["OMP_NUM_THREADS"] = PINNED_THREADS  # a CLI test with --threads N writes its own
    os.environ.pop("JEPA_TUI_OMP_THREADS", None)
    if torch.get_num_threads() != int(PINNED_THREADS):
        torch.set_num_threads(int(PINNED_THREADS))
    torch.use_deterministic_algorithms(False)  # a --deterministic run in the test process switches them on


PUBLISHED = sorted((Path(__file__).parent.parent / "docs" / "reproduction" / "runs").glob("*.tar.xz"))


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> Path:
    """The published reproduction runs (docs/reproduction/runs/*.tar.xz), unpacked once: a folder of run and sweep
    directories written by earlier versions."""
    root = tmp_path_factory.mktemp("published")
    for archive in PUBLISHED:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    return root
