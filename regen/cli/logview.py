"""`regen logs`: a generation log row as JSON under the names the answers use (`query` /
`queries`, `text`, `fallback_reason`), and as text: one entry per line group, or one in full."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Echo = Callable[[str], Any]


def log_json(g: Any) -> dict[str, Any]:
    """A `db.GenerationLog` row -> JSON. Rows written before the names were aligned kept the
    ECGs under "source" / "sources"; they are read under the new names."""
    q = g.query if isinstance(g.query, dict) else {}
    out: dict[str, Any] = {"id": g.id, "created_at": _when(g.created_at), "kind": g.kind}
    if g.kind == "report" or "query" in q or "source" in q:
        out["query"] = q.get("query", q.get("source"))
    else:
        out["queries"] = list(q.get("queries", q.get("sources")) or [])
    out.update({"question": g.question, "build": q.get("build"), "refiner": g.refiner,
                "model": g.model, "prompt_hash": g.prompt_hash, "text": g.output,
                "confidence": g.confidence, "abstained": g.abstained,
                "fallback_reason": g.error, "timings": g.timings or {},
                "settings": g.settings or {}, "neighbours": g.neighbours or [],
                "findings": g.findings, "input": g.input})
    return out


def _when(t: Any) -> str:
    return t.isoformat(sep=" ", timespec="seconds") if hasattr(t, "isoformat") else str(t)


def _ecgs(r: dict[str, Any]) -> str:
    return r["query"] if "query" in r else " | ".join(str(x) for x in r.get("queries") or [])


def _timings(t: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in t.items()) or "-"


def _conf(r: dict[str, Any]) -> str:
    c = r.get("confidence")
    return ("-" if c is None else f"{c:.2f}") + (" abstained" if r.get("abstained") else "")


def print_line(r: dict[str, Any], echo: Echo) -> None:
    """Three lines: id, time, kind, refiner (model), prompt hash, confidence, timings; the ECG
    (and the question); the text."""
    model = f" ({r['model']})" if r.get("model") else ""
    echo(f"{r['id']:>5} {r['created_at'][:19]} {r['kind']:<7} refiner {r['refiner']}{model}  "
         f"prompt {r.get('prompt_hash') or '-'}  confidence {_conf(r)}  "
         f"timings {_timings(r.get('timings') or {})}")
    echo(f"      ECG: {_ecgs(r)}" + (f"   Q: {r['question']}" if r.get("question") else ""))
    text = " ".join(str(r.get("text") or "").split())
    echo(f"      {text[:110]}{' ...' if len(text) > 110 else ''}")
    if r.get("fallback_reason"):
        echo(f"      fallback_reason: {str(r['fallback_reason'])[:110]}")


def print_entry(r: dict[str, Any], echo: Echo) -> None:
    """One entry in full."""
    for name in ("id", "created_at", "kind", "query", "queries", "question", "build",
                 "refiner", "model", "prompt_hash"):
        if name in r:
            v = r[name]
            shown = " | ".join(map(str, v)) if isinstance(v, list) else v
            echo(f"{name + ':':<17}{'-' if shown is None else shown}")
    echo(f"{'confidence:':<17}{_conf(r)}")
    echo(f"{'timings:':<17}{_timings(r.get('timings') or {})}")
    echo(f"{'settings:':<17}{_timings(r.get('settings') or {})}")
    echo(f"{'fallback_reason:':<17}{r.get('fallback_reason') or '-'}")
    echo("text:")
    echo(f"  {r.get('text') or ''}")
    if r.get("findings"):
        echo("findings (probability; * present):")
        for f in r["findings"]:
            note = f"  - {f['note']}" if f.get("note") else ""
            echo(f"  {'*' if f.get('present') else ' '} {f.get('label', ''):<6} "
                 f"{f.get('probability', 0.0):5.2f}  (thr {f.get('threshold', 0.5):.2f}, "
                 f"{f.get('source', '')})  {f.get('name', '')}{note}")
    i = r.get("input")
    if i:
        echo(f"input: {len(i.get('leads_used', []))} leads ({', '.join(i.get('leads_used', []))})"
             f", {i.get('fs_in')} Hz -> {i.get('fs_used')} Hz, {i.get('duration_s')} s, "
             f"{i.get('n_windows')} window(s) of {i.get('window_s')} s")
        for w in i.get("warnings", []):
            echo(f"  warning: {w}")
    nbrs = r.get("neighbours") or []
    groups = nbrs if nbrs and isinstance(nbrs[0], list) else [nbrs]
    for gi, group in enumerate(groups):
        echo("neighbours" + (f" of ECG {gi + 1}" if len(groups) > 1 else "") + ":")
        for nb in group:
            echo(f"  {nb.get('key', ''):<16} score {nb.get('score', 0.0):.3f}")
