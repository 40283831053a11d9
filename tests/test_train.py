"""Training configuration: one set of defaults for `regen train` and `train()` from Python."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from regen.train import TrainConfig, train_config

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
