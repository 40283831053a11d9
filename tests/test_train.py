"""Training configuration: one set of defaults for `regen train` and `train()` from Python."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from regen.errors import DataError
from regen.train import TrainConfig, train, train_config

WEIGHTS = Path(__file__).resolve().parent.parent / "regen" / "weights" / "default"


def test_python_defaults_are_what_regen_train_uses() -> None:
    # `regen train` with no config file and no flags builds train_config(); train() without a
    # cfg uses TrainConfig(): they were 80 vs 60 epochs, and text/label losses on vs off.
    assert train_config() == TrainConfig()


def test_defaults_reproduce_the_shipped_encoders_recipe() -> None:
    shipped = json.loads((WEIGHTS / "training.json").read_text())["config"]
    mine = asdict(TrainConfig())
    mine["snr_db"] = list(mine["snr_db"])
    assert mine == shipped


def test_config_file_and_flags_still_override(tmp_path: Path) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text("[train]\nepochs = 3\nlr = 0.01\n")
    cfg = train_config(toml, epochs=5, text_weight=None)
    assert (cfg.epochs, cfg.lr, cfg.text_weight) == (5, 0.01, TrainConfig().text_weight)


@pytest.mark.parametrize("shape, masks", [((4, 8, 1000), (4, 8)), ((4, 12, 1000), (3, 12))])
def test_bad_inputs_are_refused_before_training(tmp_path: Path, shape: tuple[int, ...],
                                                masks: tuple[int, ...]) -> None:
    # 8-lead windows were caught by an assert only after every epoch had run
    windows = np.zeros(shape, np.float32)
    with pytest.raises(DataError, match="expected"):
        train(windows, np.ones(masks, bool), tmp_path / "enc", cfg=TrainConfig(epochs=1),
              log=lambda _: None)
    assert not (tmp_path / "enc").exists()
