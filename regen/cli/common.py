"""What every `regen` command shares: the typer apps, option types and output helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Retrieval-augmented ECG reports: decision support, not diagnosis.")
index_app = typer.Typer(no_args_is_help=True, help="Build and inspect the retrieval index.")
app.add_typer(index_app, name="index")
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
app.add_typer(db_app, name="db")
quality_app = typer.Typer(no_args_is_help=True, help="Signal quality per lead (noise), measured "
                                                     "from the ECG itself.")
app.add_typer(quality_app, name="quality")
eval_app = typer.Typer(no_args_is_help=True, help="Measure report quality, robustness, "
                       "retrieval and QA beside baselines.")
app.add_typer(eval_app, name="eval")

Home = Annotated[Path | None, typer.Option("--home", help="regen home (default $REGEN_HOME "
                                              "or ./.regen)")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
RefinerOpt = Annotated[str | None, typer.Option(
    "--refiner", help="what writes the report text: findings (default), consensus, llm or "
                      "local (setting refiner; llm needs llm_base_url and llm_model)")]
Source = Annotated[str, typer.Option(help="ptbxl, mimic (MIMIC-IV-ECG: folds are patient "
                                          "hashes) or folder")]
Rate = Annotated[int, typer.Option(help="100 or 500 (PTB-XL)")]
ReportsCsv = Annotated[Path | None, typer.Option(help="report CSV for --source folder")]
SkipBad = Annotated[bool, typer.Option(help="leave unreadable records out instead of failing")]
Data = Annotated[Path, typer.Option("--data", help="PTB-XL folder")]
CorpusDir = Annotated[Path, typer.Option("--data", help="PTB-XL folder (or MIMIC-IV-ECG with "
                                                        "--source mimic, a plain folder with "
                                                        "--source folder)")]


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _print_report(r: object) -> None:
    from regen.types import Report

    assert isinstance(r, Report)
    typer.echo(f"== {r.query}")
    typer.echo(("ABSTAINED: " if r.abstained else "") + r.text)
    if r.measurements and r.measurements.get("line"):
        typer.echo(f"measurements: {r.measurements['line']}")
    typer.echo(f"confidence: {r.confidence:.2f}   refiner: {r.refiner}"
               f"{f' ({r.model})' if r.model else ''}   cited: {', '.join(r.cited[:8]) or '-'}"
               f"{' ...' if len(r.cited) > 8 else ''}")
    if r.fallback_reason:
        typer.echo(f"fallback_reason: {r.fallback_reason} (the {r.refiner} reply was not used)")
    if r.input is not None:
        i = r.input
        typer.echo(f"input: {len(i.leads_used)} leads ({', '.join(i.leads_used)}), "
                   f"{i.fs_in:g} Hz -> {i.fs_used:g} Hz, {i.duration_s:.1f} s, "
                   f"{i.n_windows} window(s) of {i.window_s:g} s")
        for w in i.warnings:
            typer.echo(f"  warning: {w}")
    if r.findings:
        typer.echo("findings (probability; * present; threshold from CV in the corpus):")
        for f in r.findings:
            mark = "*" if f.present else " "
            why = f"  - {f.note}" if f.note else ""
            typer.echo(f"  {mark} {f.label:<6} {f.probability:5.2f}  (thr {f.threshold:.2f}, "
                       f"{f.source})  {f.name}{why}")
    for note in r.notes:
        typer.echo(f"  note: {note}")
    if r.sentences:
        typer.echo("sentences from: " + "; ".join(f"{k}" for _, k in r.sentences))
    if r.abstain_rule:
        typer.echo(f"abstain_rule: regen {r.abstain_rule}")
    typer.echo("neighbours:")
    for n in r.neighbours:
        sc = ",".join(n.superclasses) or "-"
        typer.echo(f"  {n.key:<14} score {n.score:.3f}  [{sc}]  {n.shown_report}")
    typer.echo(r.disclaimer)
