"""The ECG encoder: a per-lead convolutional stem, a transformer across the leads present,
and a masked mean over them. Missing leads are masked, never invented, so any subset of the 12
standard leads embeds; longer recordings embed window by window and are pooled.

Saved as `config.json` + `model.safetensors`; reloadable from that folder alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from regen.errors import ConfigError
from regen.prepare import Prepared

N_LEADS = 12


@dataclass(frozen=True)
class EncoderConfig:
    fs: float = 100.0                 # Hz the encoder expects; `prepare` resamples to it
    window_s: float = 10.0            # seconds per window
    band: tuple[float, float] = (0.5, 40.0)
    # Conv stages of the per-lead stem as (channels, kernel, stride); T=1000 -> 32 steps.
    stem: tuple[tuple[int, int, int], ...] = ((16, 9, 4), (32, 5, 2), (64, 5, 2), (128, 5, 2))
    dim: int = 128                    # lead-token width and embedding size
    heads: int = 4
    layers: int = 2
    proj_dim: int = 128               # contrastive projection head (training only)
    text_dim: int = 0                 # >0: a head aligning ECGs with report embeddings (training)
    n_report_labels: int = 0          # >0: a head predicting the report's labels (training)

    @property
    def window(self) -> int:
        return int(round(self.fs * self.window_s))

    @classmethod
    def from_json(cls, d: dict) -> EncoderConfig:
        d = dict(d)
        d["band"] = tuple(d["band"])
        d["stem"] = tuple(tuple(x) for x in d["stem"])
        return cls(**d)


class ECGEncoderModel(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        stages: list[nn.Module] = []
        c_in = 1
        for c, k, stride in cfg.stem:
            stages += [nn.Conv1d(c_in, c, k, stride=stride, padding=k // 2, bias=False),
                       nn.BatchNorm1d(c), nn.GELU()]
            c_in = c
        self.stem = nn.Sequential(*stages)
        self.token = nn.Linear(3 * c_in, cfg.dim)
        self.lead_embedding = nn.Parameter(torch.randn(N_LEADS, cfg.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, 2 * cfg.dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.mixer = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.GELU(),
                                  nn.Linear(cfg.dim, cfg.proj_dim))
        self.text_head = (nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.GELU(),
                                        nn.Linear(cfg.dim, cfg.text_dim))
                          if cfg.text_dim else None)
        self.label_head = (nn.Linear(cfg.dim, cfg.n_report_labels)
                           if cfg.n_report_labels else None)

    def embedding_parameters(self) -> int:
        """How many parameters `forward` (the embedding path) uses: all but the training-only
        heads (projection, text, report labels). The model card states this number."""
        heads = {id(p) for m in (self.head, self.text_head, self.label_head) if m is not None
                 for p in m.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in heads)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, 12, T) mV, mask (B, 12) bool -> (B, dim) unnormalised embedding."""
        b, leads, t = x.shape
        h = self.stem(x.reshape(b * leads, 1, t))                 # (B*12, 1, T) -> (B*12, C, T/32)
        h = torch.cat([h.mean(-1), h.amax(-1), h.std(-1)], -1)    # (B*12, 3C): level, peak, spread
        tok = self.token(h).reshape(b, leads, -1) + self.lead_embedding   # (B, 12, dim)
        tok = self.mixer(tok, src_key_padding_mask=~mask)
        w = mask.unsqueeze(-1).to(tok.dtype)
        pooled = (tok * w).sum(1) / w.sum(1).clamp_min(1.0)   # (B, dim): mean over present leads
        return self.norm(pooled)


def fingerprint(cfg: EncoderConfig, state: dict[str, torch.Tensor]) -> str:
    """16 hex digits identifying config and weights; indexes record it to refuse other encoders."""
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Encoder:
    """A loaded encoder: prepared windows in, unit-norm float32 embeddings out."""

    def __init__(self, model: ECGEncoderModel, name: str = "regen-ssl"):
        self.model = model.eval()
        self.cfg = model.cfg
        self.name = name
        self.fingerprint = fingerprint(self.cfg, model.state_dict())

    @property
    def dim(self) -> int:
        return self.cfg.dim

    @classmethod
    def load(cls, folder: str | Path) -> Encoder:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "config.json").exists() or not (folder / "model.safetensors").exists():
            raise ConfigError(f"{folder}: not an encoder folder; expected config.json and "
                              f"model.safetensors (train one with `regen train`)")
        meta = json.loads((folder / "config.json").read_text())
        model = ECGEncoderModel(EncoderConfig.from_json(meta["config"]))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return cls(model, meta.get("name", folder.name))

    def save(self, folder: str | Path, extra: dict | None = None) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
        meta = {"name": self.name, "config": asdict(self.cfg), "fingerprint": self.fingerprint,
                **(extra or {})}
        (folder / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        return folder

    @torch.inference_mode()
    def embed_windows(self, windows: np.ndarray, masks: np.ndarray,
                      batch_size: int = 256) -> np.ndarray:
        """windows (N, 12, T) float32 mV, masks (N, 12) bool -> (N, dim) float32, unit norm."""
        out = np.empty((len(windows), self.dim), dtype=np.float32)
        for s in range(0, len(windows), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(windows[s:s + batch_size]))
            m = torch.from_numpy(np.ascontiguousarray(masks[s:s + batch_size]))
            z = self.model(x, m)
            out[s:s + batch_size] = nn.functional.normalize(z, dim=-1).numpy()
        return out

    def embed(self, items: Sequence[Prepared], batch_size: int = 256) -> np.ndarray:
        """Prepared recordings -> (N, dim) float32, unit norm; a recording's windows are pooled
        by their mean, then renormalised."""
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        for p in items:
            if p.windows.shape[1:] != (N_LEADS, self.cfg.window) or p.fs != self.cfg.fs:
                raise ConfigError(f"{p.id}: prepared as {p.windows.shape[1:]} at {p.fs} Hz; this "
                                  f"encoder expects (12, {self.cfg.window}) at {self.cfg.fs} Hz")
        wins = np.concatenate([p.windows for p in items])
        masks = np.concatenate([np.repeat(p.mask[None], len(p.windows), 0) for p in items])
        z = self.embed_windows(wins, masks, batch_size)
        bounds = np.cumsum([0] + [len(p.windows) for p in items])
        pooled = np.stack([z[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)
