"""`regen classify | search`: findings and cohorts asked for in words (`regen.zeroshot`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from regen.cli.common import Home, Json, app


@app.command()
def classify(paths: Annotated[list[Path], typer.Argument(help="ECG files: WFDB records, .edf, "
                                                                ".npy or .npz")],
             labels: Annotated[str, typer.Option(
                 "--labels", help="texts separated by ';', alternatives of one label by '|': "
                                  "\"atrial fibrillation|afib; left bundle branch block\"")],
             path: Annotated[str, typer.Option(
                 help="auto, text (the ECG against the text only) or text+neighbours (also "
                      "its neighbours' reports)")] = "auto",
             json_out: Json = False, home: Home = None,
             fs: Annotated[float | None, typer.Option(help="sampling rate for .npy")] = None,
             leads: Annotated[str | None, typer.Option(help="lead names for .npy, "
                                                          "comma-separated")] = None) -> None:
    """Score each ECG against findings written in words (zero-shot: no labels needed)."""
    from regen.api import Regen
    from regen.reader import read_ecg
    from regen.zeroshot import split_labels

    wanted = split_labels(labels)
    ecgs = [read_ecg(p, fs=fs, leads=tuple(leads.split(",")) if leads else None)
            for p in paths]
    with Regen.open(home) as rg:
        results = rg.classify_many(ecgs, wanted, path=path)
    for c in results:
        if json_out:
            typer.echo(json.dumps(c.to_json()))
            continue
        typer.echo(f"{c.query}  (path: {c.path})")
        width = max(len(lab) for lab in c.scores)
        for lab, sc in sorted(c.scores.items(), key=lambda kv: -kv[1]):
            f = c.findings.get(lab)
            extra = (f"   finding {f['label']}: p={f['probability']:.2f} "
                     f"({'present' if f['present'] else 'absent'} at {f['threshold']:.2f})"
                     if f else "")
            typer.echo(f"  {lab:<{width}}  {sc:.2f}{extra}")
        for w in c.warnings:
            typer.echo(f"  warning: {w}")
    if not json_out and results:
        typer.echo(results[0].note)
        typer.echo(results[0].disclaimer)


@app.command()
def search(text: Annotated[str, typer.Argument(help="what to find, in words")],
           k: Annotated[int, typer.Option("-k", help="how many")] = 10,
           via: Annotated[str, typer.Option(
               help="report (match the corpus reports' meaning) or ecg (match the ECGs "
                    "through the encoder's report alignment; finds ECGs without reports)")
           ] = "report",
           json_out: Json = False, home: Home = None) -> None:
    """Find corpus ECGs whose reports (or ECGs) match a text: cohorts for research."""
    from regen.api import Regen

    with Regen.open(home) as rg:
        hits = rg.search(text, k, via=via)
    if json_out:
        typer.echo(json.dumps([h.to_json() for h in hits]))
        return
    for h in hits:
        typer.echo(f"{h.key:<16} {h.score:.3f}  [{','.join(h.labels)}]  {h.report[:100]}")
