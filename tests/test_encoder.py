"""The shipped encoder's model card states numbers the code produces."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from regen.encoder import Encoder

WEIGHTS = Path(__file__).resolve().parent.parent / "regen" / "weights" / "default"


def test_embedding_path_counts_what_forward_uses() -> None:
    model = Encoder.load(WEIGHTS).model
    model.zero_grad(set_to_none=True)
    x = torch.randn(2, 12, 1000)
    mask = torch.ones(2, 12, dtype=torch.bool)
    model(x, mask).sum().backward()
    used = sum(p.numel() for p in model.parameters() if p.grad is not None)
    assert model.embedding_parameters() == used
    assert used < sum(p.numel() for p in model.parameters())   # the heads are not counted


def test_model_card_states_the_parameter_counts() -> None:
    model = Encoder.load(WEIGHTS).model
    card = (WEIGHTS / "MODEL_CARD.md").read_text()
    m = re.search(r"A ([\d.]+)M-parameter ECG encoder \((\d+)k in the embedding path", card)
    assert m, "the card's parameter sentence moved"
    total = sum(p.numel() for p in model.parameters())
    assert float(m[1]) == round(total / 1e6, 2)
    assert int(m[2]) == round(model.embedding_parameters() / 1e3)
