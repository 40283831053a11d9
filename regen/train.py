"""Self-supervised training of the encoder: two augmented views of each ECG (independent lead
subsets, noise, baseline wander, amplitude and time jitter) pulled together by InfoNCE.

`regen train` calls `train(...)`; checkpoints allow `--resume`, the seed fixes everything.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from regen.encoder import N_LEADS, ECGEncoderModel, Encoder, EncoderConfig


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe. These defaults are the only ones: `regen train` starts from them
    (then a config file's [train] table, then flags), and so does `train()` from Python."""

    epochs: int = 80
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    temperature: float = 0.1
    seed: int = 0
    p_full_leads: float = 0.4      # chance a view keeps all recorded leads
    max_shift_s: float = 1.5       # time jitter, seconds
    snr_db: tuple[float, float] = (8.0, 40.0)
    wander_mv: float = 0.3
    text_weight: float = 1.0       # weight of the ECG-report alignment loss (needs texts)
    text_temperature: float = 0.1
    text_target_temperature: float = 0.05   # sharpness of report-report similarity targets
    full_first_view: bool = True   # view A keeps every recorded lead: subsets align to it
    label_weight: float = 1.0      # weight of predicting the labels the report text states


def augment(x: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig, fs: float,
            gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random view. x (B, 12, T) mV, mask (B, 12) bool -> same shapes."""
    b, leads, t = x.shape
    # Lead subsets: keep k of the recorded leads, k uniform in 1..n; sometimes keep all.
    scores = torch.rand(b, leads, generator=gen).masked_fill(~mask, 2.0)
    n_rec = mask.sum(1)
    k = (torch.rand(b, generator=gen) * n_rec).floor().long() + 1
    full = torch.rand(b, generator=gen) < cfg.p_full_leads
    k = torch.where(full, n_rec, k)
    rank = scores.argsort(1).argsort(1)
    keep = (rank < k.unsqueeze(1)) & mask
    # Time shift with zero fill (no wrap-around discontinuity).
    shift = int(cfg.max_shift_s * fs)
    offs = torch.randint(-shift, shift + 1, (b,), generator=gen)
    idx = torch.arange(t).unsqueeze(0) - offs.unsqueeze(1)          # (B, T)
    valid = (idx >= 0) & (idx < t)
    x = torch.gather(x, 2, idx.clamp(0, t - 1).unsqueeze(1).expand(b, leads, t))
    x = x * valid.unsqueeze(1)
    # Amplitude, baseline wander, white noise at a random SNR.
    x = x * (0.8 + 0.4 * torch.rand(b, 1, 1, generator=gen))
    tt = torch.arange(t) / fs
    f = 0.05 + 0.45 * torch.rand(b, 1, 1, generator=gen)
    ph = 2 * math.pi * torch.rand(b, leads, 1, generator=gen)
    amp = cfg.wander_mv * torch.rand(b, 1, 1, generator=gen)
    x = x + amp * torch.sin(2 * math.pi * f * tt + ph)
    lo, hi = cfg.snr_db
    snr = lo + (hi - lo) * torch.rand(b, 1, 1, generator=gen)
    power = x.pow(2).mean(-1, keepdim=True).clamp_min(1e-6)
    x = x + torch.randn(x.shape, generator=gen) * (power / 10 ** (snr / 10)).sqrt()
    return x * keep.unsqueeze(-1), keep


def info_nce(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric NT-Xent between two (B, d) batches of views; row i of each is one ECG."""
    za = nn.functional.normalize(za, dim=-1)
    zb = nn.functional.normalize(zb, dim=-1)
    logits = za @ zb.T / temperature
    target = torch.arange(len(za))
    return 0.5 * (nn.functional.cross_entropy(logits, target)
                  + nn.functional.cross_entropy(logits.T, target))


def text_alignment(z: torch.Tensor, t: torch.Tensor, temperature: float,
                   target_temperature: float) -> torch.Tensor:
    """Soft CLIP loss between ECG projections z (B, Dt) and frozen report embeddings t (B, Dt),
    unit norm. Targets are softmax(report-report cosine / target_temperature): two ECGs whose
    reports say the same thing are both right answers, so duplicate reports are no negatives."""
    z = nn.functional.normalize(z, dim=-1)
    logits = z @ t.T / temperature
    with torch.no_grad():
        target = torch.softmax(t @ t.T / target_temperature, dim=1)
    return -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()


def train(windows: np.ndarray, masks: np.ndarray, out: str | Path, *,
          enc_cfg: EncoderConfig | None = None, cfg: TrainConfig | None = None,
          resume: bool = False, evaluate: Callable[[Encoder], dict] | None = None,
          eval_every: int = 10, log: Callable[[str], None] = print,
          data_note: str = "", texts: np.ndarray | None = None,
          report_labels: np.ndarray | None = None) -> Encoder:
    """Train on windows (N, 12, T) float32 mV with masks (N, 12); write the encoder to `out`.
    texts: optional (N, Dt) unit-norm report embeddings (zero rows: no report) for the
    ECG-report alignment loss, weighted by cfg.text_weight.
    report_labels: optional (N, L) {0,1} labels read from each report by regen.labeller (rows
    of -1: no report) for a multi-label head, weighted by cfg.label_weight. No annotation
    beyond the report text is used.

    Checkpoints go to out/checkpoint.pt each epoch; `resume` continues from there.
    `evaluate(encoder) -> dict` (e.g. kNN AUC on a validation fold) runs every `eval_every` epochs.
    """
    _check_inputs(windows, masks, texts, report_labels)
    cfg = cfg or TrainConfig()
    enc_cfg = enc_cfg or EncoderConfig()
    text_rows = texts if texts is not None and cfg.text_weight > 0 else None
    label_rows = report_labels if report_labels is not None and cfg.label_weight > 0 else None
    if text_rows is not None and enc_cfg.text_dim != text_rows.shape[1]:
        enc_cfg = replace(enc_cfg, text_dim=int(text_rows.shape[1]))
    if label_rows is not None and enc_cfg.n_report_labels != label_rows.shape[1]:
        enc_cfg = replace(enc_cfg, n_report_labels=int(label_rows.shape[1]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ECGEncoderModel(enc_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(windows) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warm = min(200, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warm))
        * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total)))))
    history: list[dict] = []
    start_epoch = 0
    ckpt = out / "checkpoint.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        history, start_epoch = state["history"], state["epoch"]
        log(f"resumed from {ckpt} at epoch {start_epoch}")
    x_all = torch.from_numpy(windows)
    m_all = torch.from_numpy(masks)
    t_all = torch.from_numpy(text_rows.astype(np.float32)) if text_rows is not None else None
    y_all = torch.from_numpy(label_rows.astype(np.float32)) if label_rows is not None else None
    t0 = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        perm = torch.randperm(len(windows), generator=gen)
        losses = []
        for s in range(steps_per_epoch):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            x, m = x_all[idx], m_all[idx]
            xa, ma = augment(x, m, replace(cfg, p_full_leads=1.0) if cfg.full_first_view
                             else cfg, enc_cfg.fs, gen)
            xb, mb = augment(x, m, cfg, enc_cfg.fs, gen)
            h = model(torch.cat([xa, xb]), torch.cat([ma, mb]))
            z = model.head(h)
            loss = info_nce(z[: len(idx)], z[len(idx):], cfg.temperature)
            if t_all is not None and model.text_head is not None:
                t = t_all[idx]
                has = t.abs().sum(1) > 0
                tt = t[has]
                zt = model.text_head(h)
                lt = 0.5 * (text_alignment(zt[: len(idx)][has], tt, cfg.text_temperature,
                                           cfg.text_target_temperature)
                            + text_alignment(zt[len(idx):][has], tt, cfg.text_temperature,
                                             cfg.text_target_temperature))
                loss = loss + cfg.text_weight * lt
            if y_all is not None and model.label_head is not None:
                y = y_all[idx]
                ok = y[:, 0] >= 0
                logits = model.label_head(h)
                ll = nn.functional.binary_cross_entropy_with_logits(
                    logits, torch.cat([y, y]).clamp_min(0), reduction="none")
                loss = loss + cfg.label_weight * ll[torch.cat([ok, ok])].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
               "lr": sched.get_last_lr()[0], "elapsed_s": round(time.time() - t0, 1)}
        if evaluate and ((epoch + 1) % eval_every == 0 or epoch + 1 == cfg.epochs):
            model.eval()
            row.update(evaluate(Encoder(model)))
        history.append(row)
        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in row.items()))
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                    "sched": sched.state_dict(), "gen": gen.get_state(), "history": history,
                    "epoch": epoch + 1}, ckpt)
    model.eval()
    enc = Encoder(model)
    enc.save(out, extra={"training_data": data_note, "n_windows": int(len(windows))})
    (out / "training.json").write_text(json.dumps(
        {"config": asdict(cfg), "encoder": asdict(enc_cfg), "fingerprint": enc.fingerprint,
         "data": data_note, "history": history}, indent=2) + "\n")
    return enc


def _check_inputs(windows: np.ndarray, masks: np.ndarray, texts: np.ndarray | None,
                  report_labels: np.ndarray | None) -> None:
    """Refuse inputs of the wrong shape before any epoch runs (they once failed after training)."""
    from regen.errors import DataError

    if windows.ndim != 3 or windows.shape[1] != N_LEADS or len(windows) == 0:
        raise DataError(f"training windows have shape {windows.shape}; expected (N, {N_LEADS}, "
                        f"T) with N >= 1, leads in STANDARD_LEADS order (regen.prepare)")
    if masks.shape != windows.shape[:2]:
        raise DataError(f"training masks have shape {masks.shape}; expected "
                        f"{windows.shape[:2]}, one row of {N_LEADS} lead flags per window")
    for name, extra in (("texts", texts), ("report_labels", report_labels)):
        if extra is not None and (extra.ndim != 2 or len(extra) != len(windows)):
            raise DataError(f"training {name} have shape {extra.shape}; expected one row per "
                            f"window ({len(windows)} rows)")


def knn_auc_monitor(corpus: list, corpus_y: np.ndarray, queries: list, query_y: np.ndarray,
                    k: int = 10) -> Callable[[Encoder], dict]:
    """An `evaluate` callback: 5-superclass macro AUC of a kNN vote, all leads and lead II alone."""
    from regen.metrics import knn_label_scores, macro_auc

    def run(enc: Encoder) -> dict:
        zc = enc.embed(corpus)
        out = {}
        for name, keep in (("auc12", None), ("aucII", 1)):
            qs = queries
            if keep is not None:
                only = np.zeros(N_LEADS, dtype=bool)
                only[keep] = True
                qs = [p.with_leads(only) for p in queries]
            zq = enc.embed(qs)
            sims = zq @ zc.T
            top = np.argsort(-sims, axis=1)[:, :k]
            scores = knn_label_scores(np.take_along_axis(sims, top, 1), corpus_y[top])
            out[name] = macro_auc(query_y, scores)[0]
        return out

    return run


def train_config(config_file: str | Path | None = None, **flags: object) -> TrainConfig:
    """TrainConfig defaults < the [train] table of a TOML file < flags (None: unset)."""
    import tomllib
    from dataclasses import fields

    from regen.errors import ConfigError

    values: dict[str, object] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            table = tomllib.loads(path.read_text()).get("train", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read training config ({exc})") from exc
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown [train] setting(s) {unknown}; known: "
                              f"{sorted(known)}")
        values.update(table)
    values.update({k: v for k, v in flags.items() if v is not None})
    if "snr_db" in values:
        values["snr_db"] = tuple(values["snr_db"])  # type: ignore[arg-type]
    try:
        return TrainConfig(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"training config: {exc}") from exc
