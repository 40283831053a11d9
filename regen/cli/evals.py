"""`regen train`, `regen eval ...` and `regen quality ...`: training and measuring."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from regen.cli.common import Data, Home, Json, RefinerOpt, _err, app, eval_app, quality_app


@app.command()
def train(data: Annotated[Path, typer.Option(help="PTB-XL folder")],
          folds: Annotated[str, typer.Option(help="training folds")] = "1-8",
          val_folds: Annotated[str | None, typer.Option(help="validation folds for the "
                                                           "kNN-AUC monitor")] = "9",
          out: Annotated[Path, typer.Option(help="output folder")] = Path("runs/encoder"),
          config: Annotated[Path | None, typer.Option(
              help="TOML file of training settings ([train] table: any TrainConfig field); "
                   "flags given here win over it")] = None,
          epochs: Annotated[int | None, typer.Option(help="default 80")] = None,
          seed: Annotated[int | None, typer.Option(help="default 0")] = None,
          resume: Annotated[bool, typer.Option(help="continue from out/checkpoint.pt")] = False,
          rate: Annotated[int, typer.Option(help="PTB-XL rate to read")] = 100,
          text_weight: Annotated[float | None, typer.Option(
              help="weight of ECG-report embedding alignment (0: off; default 1)")] = None,
          label_weight: Annotated[float | None, typer.Option(
              help="weight of predicting the labels the report text states (0: off; "
                   "default 1)")] = None,
          full_first_view: Annotated[bool | None, typer.Option(
              help="one view keeps all leads, so lead subsets align to it (default on)")
          ] = None,
          language: Annotated[str, typer.Option(help="report language for alignment")] = "en"
          ) -> None:
    """Self-supervised training of the encoder on a PTB-XL folder: contrastive views plus,
    optionally, alignment with each ECG's own report (folds 1-8 only)."""
    from regen.corpus import load_ptbxl
    from regen.dataset import first_windows, prepare_records, superclass_matrix
    from regen.encoder import EncoderConfig
    from regen.train import knn_auc_monitor, train_config
    from regen.train import train as run_train

    tcfg = train_config(config, epochs=epochs, seed=seed, text_weight=text_weight,
                        label_weight=label_weight, full_first_view=full_first_view)
    cfg = EncoderConfig()
    records = load_ptbxl(data, folds=folds, rate=rate)
    prepared, kept, _ = prepare_records(records, cfg, progress=sys.stderr.isatty())
    monitor = None
    if val_folds:
        val = load_ptbxl(data, folds=val_folds, rate=rate)
        vp, vk, _ = prepare_records(val, cfg, progress=False)
        monitor = knn_auc_monitor(prepared, superclass_matrix(kept), vp, superclass_matrix(vk))
    w, m = first_windows(prepared)
    reports = [r.report(language) for r in kept]
    texts = labels = None
    if tcfg.text_weight > 0:
        from regen.text import embed_texts
        texts = embed_texts(reports)
    if tcfg.label_weight > 0:
        from regen.labeller import label_matrix
        labels = label_matrix(reports)
        labels[[not t.strip() for t in reports]] = -1
    _err(f"training on {len(w)} ECGs (folds {folds}) for {tcfg.epochs} epochs -> {out}")
    enc = run_train(w, m, out, enc_cfg=cfg, cfg=tcfg, resume=resume, evaluate=monitor,
                    eval_every=5, log=_err, texts=texts, report_labels=labels,
                    data_note=f"PTB-XL {data.name} folds {folds} at {rate} Hz: {len(w)} ECGs "
                              f"with their '{language}' reports")
    typer.echo(f"encoder {enc.fingerprint} saved to {out}")


CorpusFolds = Annotated[str, typer.Option("--corpus-folds", help="folds indexed")]


QueryFolds = Annotated[str, typer.Option("--query-folds", help="folds queried")]


Out = Annotated[Path | None, typer.Option("--out", help="write NAME.json, .md and .png here")]


K = Annotated[int, typer.Option("--k", "-k", help="neighbours")]


def _emit(result: dict, json_out: bool, out: Path | None) -> None:
    from regen.evalout import markdown, write

    if out is not None:
        for p in write(result, out):
            _err(f"wrote {p}")
    typer.echo(json.dumps(result, default=float) if json_out else markdown(result))


@eval_app.command("report")
def eval_report_cmd(data: Data, corpus_folds: CorpusFolds = "1-8", query_folds: QueryFolds = "9",
                    lang: Annotated[str, typer.Option("--lang", help="en or orig")] = "en",
                    refiner: RefinerOpt = None,
                    k: K = 10, json_out: Json = False, out: Out = None, home: Home = None,
                    bert: Annotated[bool, typer.Option(help="BERTScore (slow)")] = True,
                    limit: Annotated[int | None, typer.Option(help="first N queries")] = None
                    ) -> None:
    """Generate reports for the query folds and score them against the references."""
    from regen.evaluate import eval_report
    from regen.settings import load_settings

    settings = load_settings(home, refiner=refiner)
    _emit(eval_report(settings, data, corpus_folds=corpus_folds, query_folds=query_folds,
                      language=lang, k=k, bert=bert, limit=limit, log=_err), json_out, out)


@eval_app.command("cv")
def eval_cv_cmd(data: Data, corpus_folds: CorpusFolds = "1-8",
                coverage: Annotated[float, typer.Option(
                    help="share of corpus ECGs reports should answer")] = 0.95,
                json_out: Json = False, out: Out = None, home: Home = None) -> None:
    """Leave-one-fold-out CV inside the corpus folds: reproduces every choice of the findings
    model (k, temperature, per-finding thresholds, calibration, abstention) and prints the
    out-of-fold scores behind it, superclass AUC per fold (mean ± sd) included."""
    from regen.evaluate import eval_cv
    from regen.settings import load_settings

    _emit(eval_cv(load_settings(home), data, corpus_folds=corpus_folds, coverage=coverage,
                  log=_err), json_out, out)


@eval_app.command("classify")
def eval_classify_cmd(data: Data, corpus_folds: CorpusFolds = "1-8",
                      query_folds: QueryFolds = "9",
                      leads: Annotated[str | None, typer.Option(
                          help="query leads, e.g. II or I,II,V2")] = None,
                      noise: Annotated[float | None, typer.Option(
                          help="white noise added to queries, SNR in dB")] = None,
                      k: K = 40, json_out: Json = False, out: Out = None,
                      home: Home = None) -> None:
    """kNN macro ROC-AUC over the five superclasses, with lead subsets and noise."""
    from regen.evaluate import eval_classify
    from regen.settings import load_settings

    _emit(eval_classify(load_settings(home), data, corpus_folds=corpus_folds,
                        query_folds=query_folds, leads=leads, snr_db=noise, k=k, log=_err),
          json_out, out)


@eval_app.command("retrieval")
def eval_retrieval_cmd(data: Data, corpus_folds: CorpusFolds = "1-8",
                       query_folds: QueryFolds = "9", k: K = 10,
                       factory: Annotated[str, typer.Option(
                           help="approximate index to compare with exact")] = "HNSW32",
                       json_out: Json = False, out: Out = None, home: Home = None) -> None:
    """precision@k of label agreement, recall@k of an approximate index against exact."""
    from regen.evaluate import eval_retrieval
    from regen.settings import load_settings

    _emit(eval_retrieval(load_settings(home), data, corpus_folds=corpus_folds,
                         query_folds=query_folds, k=k, factory=factory, log=_err),
          json_out, out)


@eval_app.command("qa")
def eval_qa_cmd(data: Data, ecgqa: Annotated[Path | None, typer.Option(
                    help="ECG-QA folder (its ptbxl/ samples are evaluated too)")] = None,
                corpus_folds: CorpusFolds = "1-8", query_folds: QueryFolds = "9", k: K = 10,
                per_template: Annotated[int, typer.Option(
                    help="derived questions per template")] = 50,
                control: Annotated[bool, typer.Option(
                    help="also answer with random corpus ECGs (the signal gap)")] = True,
                json_out: Json = False, out: Out = None, home: Home = None) -> None:
    """ECG-QA accuracy per question type: regen (kNN vote; noise measured from the signal)
    beside the kNN vote alone and the majority answer."""
    from regen.evaluate import eval_qa
    from regen.settings import load_settings

    _emit(eval_qa(load_settings(home), data, ecgqa=ecgqa, corpus_folds=corpus_folds,
                  query_folds=query_folds, k=k, per_template=per_template, control=control,
                  log=_err),
          json_out, out)


@eval_app.command("free-form")
def eval_free_form_cmd(data: Data, questions: Annotated[Path, typer.Option(
                           help="plain-word questions (JSON; see scripts/make_free_form.py)")
                       ] = Path("tests/fixtures/free_form_fold9.json"),
                       corpus_folds: CorpusFolds = "1-8", k: K = 10,
                       control: Annotated[bool, typer.Option(
                           help="also ask about random corpus ECGs")] = True,
                       json_out: Json = False, out: Out = None, home: Home = None) -> None:
    """Plain-word questions ("What is the rhythm?"): accuracy and "not sure" rate beside the
    majority answer and a random-ECG control."""
    from regen.evaluate import eval_free_form
    from regen.settings import load_settings

    _emit(eval_free_form(load_settings(home), data, questions, corpus_folds=corpus_folds, k=k,
                         control=control, log=_err), json_out, out)


@quality_app.command("check")
def quality_check(paths: Annotated[list[Path], typer.Argument(help="ECG file(s)")],
                  json_out: Json = False,
                  model: Annotated[Path | None, typer.Option(
                      help="signal-quality model (default: the shipped one)")] = None) -> None:
    """Per lead, the model's probability of each kind of noise (PTB-XL annotators' sense)."""
    from regen.quality import DEFAULT_MODEL, QualityModel
    from regen.reader import read_ecg

    qm = QualityModel.load(model or DEFAULT_MODEL)
    for path in paths:
        probs = qm.probabilities(read_ecg(path))
        if json_out:
            typer.echo(json.dumps({"path": str(path), "probabilities": probs,
                                   "not_measured": list(qm.unsupported)}))
            continue
        leads = list(next(iter(probs.values())))
        typer.echo(f"{path}")
        width = max(map(len, probs))
        typer.echo(f"  {'':{width}s}" + "".join(f"{lead:>6s}" for lead in leads))
        for t, by_lead in probs.items():
            typer.echo(f"  {t:{width}s}" + "".join(f"{by_lead[lead]:6.2f}" for lead in leads))
    if not json_out:
        typer.echo(f"not measured (too few annotated examples): {', '.join(qm.unsupported)}. "
                   "Probabilities of PTB-XL's annotations, for quality control: decision "
                   "support, not a substitute for looking at the tracing.")


@quality_app.command("train")
def quality_train(data: Data, folds: Annotated[str, typer.Option(
                      help="training folds (their noise annotations)")] = "1-8",
                  ecgqa: Annotated[Path | None, typer.Option(
                      help="ECG-QA folder: choose thresholds on its noise questions about "
                           "the training folds")] = None,
                  out: Annotated[Path, typer.Option(help="model file")] = Path(
                      "quality.json")) -> None:
    """Fit the per-lead noise model on a PTB-XL folder's annotations (training folds only)."""
    from regen.corpus import load_ptbxl
    from regen.qa_data import load_ecgqa, record_ecg_id
    from regen.quality import fit_quality

    items = []
    if ecgqa is not None:
        ids = {record_ecg_id(r) for r in load_ptbxl(data, folds=folds)}
        items = [it for it in load_ecgqa(ecgqa) if it.attribute_type == "noise"
                 and all(e in ids for e in it.ecg_ids)]
        _err(f"ECG-QA: {len(items)} noise questions about folds {folds}")
    model = fit_quality(data, folds, ecgqa_items=items, progress=sys.stderr.isatty(), log=_err)
    typer.echo(f"saved {model.save(out)}")
