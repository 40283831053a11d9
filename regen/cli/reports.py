"""`regen report | ask | compare | measure | scan | logs | plot | serve`: the API's answers on the
command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from regen.cli.common import Home, Json, RefinerOpt, _err, _print_report, app
from regen.errors import RegenError


@app.command()
def report(paths: Annotated[list[Path], typer.Argument(help="ECG files: WFDB records, .edf, "
                                                              ".npy or .npz")],
           k: Annotated[int | None, typer.Option("-k", help="neighbours")] = None,
           json_out: Json = False, home: Home = None,
           fs: Annotated[float | None, typer.Option(help="sampling rate for .npy")] = None,
           leads: Annotated[str | None, typer.Option(help="lead names for .npy, "
                                                        "comma-separated")] = None,
           language: Annotated[str | None, typer.Option(help="en or orig")] = None,
           refiner: RefinerOpt = None,
           no_log: Annotated[bool, typer.Option("--no-log", help="do not log")] = False,
           pdf: Annotated[Path | None, typer.Option(
               "--pdf", help="also write a one-page printable report (.pdf) of the ECG")] = None,
           paper: Annotated[str, typer.Option(help="--pdf page: a4 or letter")] = "a4") -> None:
    """Generate a report for each ECG from its nearest neighbours in the corpus."""
    from regen.api import Regen
    from regen.reader import read_ecg

    if pdf is not None and len(paths) != 1:
        raise RegenError(f"--pdf writes one ECG's page; got {len(paths)} ECGs (run once per ECG)")
    if pdf is not None:
        from regen.report_pdf import pdf_target

        pdf_target(pdf)         # an unwritable path fails before any work
    ecgs = [read_ecg(p, fs=fs, leads=tuple(leads.split(",")) if leads else None)
            for p in paths]
    with Regen.open(home, k=k, language=language, refiner=refiner) as rg:
        for r in rg.reports(ecgs, log=not no_log):
            if json_out:
                typer.echo(json.dumps(r.to_json()))
            else:
                _print_report(r)
            if pdf is not None:
                typer.echo(f"pdf: {rg.report_pdf(ecgs[0], pdf, report=r, paper=paper)}",
                           err=json_out)


@app.command()
def ask(args: Annotated[list[str], typer.Argument(help="ECG path(s), then the question")],
        options: Annotated[str | None, typer.Option(
            help="candidate answers, comma-separated")] = None,
        k: Annotated[int | None, typer.Option("-k", help="neighbours")] = None,
        json_out: Json = False, home: Home = None,
        no_log: Annotated[bool, typer.Option("--no-log", help="do not log")] = False) -> None:
    """Answer a question about one ECG (or two, for a comparison question)."""
    from regen.api import Regen

    if len(args) < 2:
        raise RegenError("ask needs at least one ECG path and a question, e.g. "
                         "regen ask rec 'Does this ECG show atrial fibrillation?'")
    *paths, question = args
    opts = [o.strip() for o in options.split(",")] if options else None
    with Regen.open(home, k=k) as rg:
        ans = rg.ask(paths, question, opts, log=not no_log)
    if json_out:
        typer.echo(json.dumps(ans.to_json()))
        return
    typer.echo(f"Q: {question}")
    typer.echo(f"A: {', '.join(ans.options)}   (confidence {ans.confidence:.2f}"
               f"{', abstained' if ans.abstained else ''})")
    typer.echo(f"   {ans.text}")
    for q, ns in zip(ans.queries, ans.neighbours):
        typer.echo(f"neighbours of {q}: " + ", ".join(f"{n.key} ({n.score:.2f})" for n in ns))
    typer.echo(ans.disclaimer)


@app.command()
def compare(a: Annotated[Path, typer.Argument(help="first (earlier) ECG")],
            b: Annotated[Path, typer.Argument(help="second (later) ECG")],
            k: Annotated[int | None, typer.Option("-k", help="neighbours")] = None,
            json_out: Json = False, home: Home = None,
            no_log: Annotated[bool, typer.Option("--no-log", help="do not log")] = False) -> None:
    """What changed from the first ECG to the second: new, resolved, persisting findings."""
    from regen.api import Regen

    with Regen.open(home, k=k) as rg:
        cmp = rg.compare(a, b, log=not no_log)
    if json_out:
        typer.echo(json.dumps(cmp.to_json()))
        return
    typer.echo(cmp.text)
    typer.echo(f"confidence: {cmp.confidence:.2f}")
    for q, ns in zip(cmp.queries, (cmp.neighbours_a, cmp.neighbours_b)):
        typer.echo(f"neighbours of {q}: " + ", ".join(n.key for n in ns))
    typer.echo(cmp.disclaimer)


@app.command()
def measure(paths: Annotated[list[Path], typer.Argument(help="ECG files: WFDB records, .edf, "
                                                               ".npy or .npz")],
            json_out: Json = False,
            fs: Annotated[float | None, typer.Option(help="sampling rate for .npy")] = None,
            leads: Annotated[str | None, typer.Option(help="lead names for .npy, "
                                                         "comma-separated")] = None,
            window: Annotated[float | None, typer.Option(
                help="measure each window of this many seconds (long records)")] = None) -> None:
    """Measure rate, PR, QRS, QT/QTc, axis and premature beats from the signal (no index, no
    retrieval), with the findings they imply."""
    from regen.measure import measure as run
    from regen.measure import measure_windows
    from regen.measured import all_findings
    from regen.reader import read_ecg

    for p in paths:
        ecg = read_ecg(p, fs=fs, leads=tuple(leads.split(",")) if leads else None)
        parts = [run(ecg)] if window is None else measure_windows(ecg, window, window)
        for m in parts:
            found = all_findings(m)
            if json_out:
                out = {"source": str(p), "start_s": m.start_s, **m.to_json(),
                       "findings": [{"label": f.label, "probability": f.probability,
                                     "present": f.present, "evidence": f.evidence}
                                    for f in found]}
                typer.echo(json.dumps(out))
                continue
            at = f" @ {m.start_s:g} s" if window is not None else ""
            typer.echo(f"== {p}{at}: {m.n_beats} beats, leads {','.join(m.leads_used) or '-'}")
            typer.echo(m.line())
            axes = [(n, v) for n, v in (("P", m.p_axis_deg), ("QRS", m.axis_deg),
                                        ("T", m.t_axis_deg)) if v is not None]
            if axes:
                typer.echo("  axes: " + ", ".join(f"{n} {v:+.0f}°" for n, v in axes))
            for f in found:
                if f.present:
                    typer.echo(f"  {f.label:<6} p={f.probability:.2f}  {f.evidence}")
            missing = {k: v for k, v in m.quality.items() if v != "ok"}
            for k, v in missing.items():
                typer.echo(f"  not measured: {k}: {v}")


@app.command()
def logs(entry: Annotated[int | None, typer.Argument(
             help="one entry's id: show it in full")] = None,
         n: Annotated[int, typer.Option("-n", help="how many")] = 20, home: Home = None,
         json_out: Json = False) -> None:
    """List recent generations (newest first): the ECG, the question, timings, refiner, model
    and prompt hash; `regen logs ID` shows one in full (text, findings, neighbours, input
    notes, error)."""
    import db as store
    from regen.cli.logview import log_json, print_entry, print_line
    from regen.settings import load_settings

    settings = load_settings(home)
    database = settings.open_database()
    try:
        with database.session() as s:
            if entry is None:
                rows = [log_json(g) for g in store.list_generations(s, n)]
            else:
                found = store.get_generation(s, entry)
                if found is None:
                    newest = store.list_generations(s, 1)
                    raise RegenError(f"no generation log with id {entry} in {settings.home}; "
                                     + (f"ids run up to {newest[0].id}: see `regen logs`"
                                        if newest else "the log is empty"))
                rows = [log_json(found)]
    finally:
        database.dispose()
    for r in rows:
        if json_out:
            typer.echo(json.dumps(r, default=str))
        elif entry is None:
            print_line(r, typer.echo)
        else:
            print_entry(r, typer.echo)


@app.command()
def plot(path: Annotated[Path, typer.Argument(help="ECG file: WFDB record, .edf, .npy, .npz")],
         out: Annotated[Path, typer.Option("--out", "-o", help="picture to write: .png, .svg "
                                                              "or .pdf")] = Path("ecg.png"),
         start: Annotated[float, typer.Option(help="window start, seconds (long records)")]
         = 0.0,
         fs: Annotated[float | None, typer.Option(help="sampling rate for .npy")] = None,
         leads: Annotated[str | None, typer.Option(help="lead names for .npy, "
                                                        "comma-separated")] = None) -> None:
    """Draw the ECG as on paper: 12 leads in 3x4 plus a lead-II rhythm strip, 25 mm/s,
    10 mm/mV."""
    from regen.plot import save_plot
    from regen.reader import read_ecg

    ecg = read_ecg(path, fs=fs, leads=tuple(leads.split(",")) if leads else None)
    typer.echo(save_plot(ecg, out, start_s=start))


@app.command()
def scan(path: Annotated[Path, typer.Argument(help="a long record: WFDB or .edf (both "
                                                   "streamed), .npy or .npz")],
         window: Annotated[float, typer.Option(help="window length, seconds")] = 10.0,
         step: Annotated[float, typer.Option(help="step between windows, seconds")] = 5.0,
         json_out: Json = False, home: Home = None,
         plot_to: Annotated[Path | None, typer.Option("--plot", help="timeline picture to "
                                                      "write (.png, .svg, .pdf)")] = None,
         progress: Annotated[bool | None, typer.Option(
             "--progress/--no-progress", help="progress bar on stderr (default: records "
                                              "over 30 min)")] = None) -> None:
    """Scan a long (Holter, patch) record: findings per window, episodes, premature beats,
    pauses and runs, heart rate and unreadable share, as a summary or --json."""
    from regen.api import Regen
    from regen.scan_events import clock

    with Regen.open(home) as rg:
        sc = rg.scan(path, window, step, progress=progress)
    if plot_to is not None:
        from regen.scan_plot import plot_scan

        typer.echo(f"timeline: {plot_scan(sc, plot_to)}", err=json_out)
    if json_out:
        out = sc.to_json()
        typer.echo(json.dumps(out))
        return
    typer.echo(f"== {path}: {len(sc.windows)} windows of {window:g} s every {step:g} s, "
               f"leads {','.join(sc.leads)}")
    for line in sc.summary.lines():
        typer.echo(line)
    for a, b in sc.unreadable_spans():
        typer.echo(f"  unreadable {clock(a)} - {clock(b)} ({b - a:.0f} s)")
    if not sc.episodes:
        typer.echo("no episodes")
    for e in sc.episodes:
        typer.echo(f"  {e.finding:<6} {clock(e.start_s)} - {clock(e.end_s)} "
                   f"({e.duration_s:.0f} s)  peak p={e.peak_probability:.2f} "
                   f"mean p={e.mean_probability:.2f}")
    for ev in sc.events:
        if ev.kind != "premature":
            what = (f"pause {ev.duration_s:.1f} s" if ev.kind == "pause"
                    else f"{ev.origin} run of {ev.n_beats} beats")
            typer.echo(f"  {clock(ev.time_s)} {what}")


@app.command()
def serve(host: Annotated[str, typer.Option(help="address to bind; anything but loopback "
                                                 "needs an api_token")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port")] = 8080,
          data_root: Annotated[list[Path] | None, typer.Option(
              "--data-root", help="a folder {\"path\"} requests may read (repeatable; setting "
                                  "data_roots)")] = None,
          workers: Annotated[int | None, typer.Option(help="requests computed at once "
                                                           "(setting serve_workers)")] = None,
          processes: Annotated[int | None, typer.Option(
              help="server processes, each with its own model (setting serve_processes; "
                   "one per CPU core uses them all)")] = None,
          refiner: RefinerOpt = None, home: Home = None) -> None:
    """Serve reports, questions, comparisons and ECG pictures over HTTP (FastAPI): a page for
    clinicians at /, the API at /docs. The token comes from REGEN_API_TOKEN (never a flag)."""
    import os

    from regen.server import serve as run

    roots = os.pathsep.join(str(p) for p in data_root) if data_root else None
    run(home, host, port, announce=_err, data_roots=roots, serve_workers=workers,
        serve_processes=processes, refiner=refiner)
