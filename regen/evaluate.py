"""`regen eval`: report quality, kNN classification robustness and retrieval quality on a PTB-XL
split, each beside baselines measured in the same run. How every number is computed is written
next to it here and in docs/EVALUATION.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from regen.api import Regen
from regen.baselines import RawSignalEmbedder, most_frequent, random_reports
from regen.corpus import SUPERCLASSES, CorpusRecord, load_ptbxl
from regen.dataset import prepare_records, superclass_matrix
from regen.ecg import ECG, STANDARD_LEADS, standard_lead
from regen.errors import ConfigError, DataError
from regen.labeller import truth_labels
from regen.metrics import knn_label_scores, macro_auc
from regen.reader import read_ecg
from regen.rebuild import rebuild
from regen.settings import Settings


def eval_home(settings: Settings, data: Path, folds: str, rate: int) -> Path:
    """A home of its own for each evaluated corpus, so eval never touches the user's index."""
    slug = hashlib.sha256(f"{Path(data).resolve()}|{folds}|{rate}".encode()).hexdigest()[:10]
    return settings.home / "eval" / f"ptbxl-{folds.replace(',', '_')}-{rate}hz-{slug}"


def eval_settings(settings: Settings, data: Path, folds: str, rate: int = 100) -> Settings:
    """The one Settings object an eval uses end to end: the user's (encoder, refiner, llm_*,
    factory, ...) with a home of its own and that home's SQLite database, so an eval never
    writes into the user's database (a `database_url` in config.toml) or index."""
    home = eval_home(settings, data, folds, rate)
    return replace(settings, home=home, database_url="", database_schema="")


def corpus_index(settings: Settings, data: Path, folds: str, rate: int = 100,
                 log: Callable[[str], None] = lambda m: None) -> tuple[Settings,
                                                                    list[CorpusRecord]]:
    """Build (or reuse, when up to date) the index of the corpus folds in the eval's own home;
    returns (the eval's settings, records)."""
    records = load_ptbxl(data, folds=folds, rate=rate)
    if not records:
        raise DataError(f"{data}: no records with signals in folds {folds} at {rate} Hz")
    own = eval_settings(settings, data, folds, rate)
    rebuild(own, records, data_source=f"{data}:{folds}:{rate}", progress=False, log=log)
    return own, records


def label_oracle(query: CorpusRecord, corpus: Sequence[CorpusRecord], language: str) -> str:
    """The report of a corpus ECG with the same SCP codes (else the highest Jaccard overlap);
    among equals, the most common report text, so the oracle is as typical as possible."""
    q = set(query.scp)
    best, cands = -1.0, []
    for r in corpus:
        c = set(r.scp)
        jac = len(q & c) / len(q | c) if q | c else 1.0
        if jac > best:
            best, cands = jac, [r]
        elif jac == best:
            cands.append(r)
    return most_frequent([r.report(language) for r in cands])


# -- report quality ----------------------------------------------------------------------------

def _score_texts(hyps: Sequence[str], refs: Sequence[str], *, bert: bool,
                 meteor: bool, codes: Sequence[frozenset[str]] | None = None) -> dict:
    """Text metrics and label F1 against the labeller's reading of each reference; with `codes`
    (the queries' PTB-XL SCP codes as labels, `regen.labeller.truth_labels`) also label F1
    against those, which no report labeller takes part in."""
    from regen.labeller import LABELS, label_f1, label_report
    from regen.textmetrics import text_metrics

    out = text_metrics(hyps, refs, bert=bert, meteor=meteor)
    said = [label_report(h) for h in hyps]
    lab = label_f1(said, [label_report(r) for r in refs])
    out["label_f1_macro"] = lab.macro_f1
    out["label_f1_per_class"] = {c: round(lab.per_label[c]["f1"], 4) for c in LABELS}
    out["label_support"] = {c: int(lab.per_label[c]["support"]) for c in LABELS}  # references
    if codes is not None:
        vs = label_f1(said, list(codes))
        out["codes_f1_macro"] = vs.macro_f1
        out["codes_f1_per_class"] = {c: round(vs.per_label[c]["f1"], 4) for c in LABELS}
    return out


def eval_report(settings: Settings, data: Path, *, corpus_folds: str = "1-8",
                query_folds: str = "9", language: str = "en", k: int = 10, bert: bool = True,
                meteor: bool = True, limit: int | None = None,
                log: Callable[[str], None] = lambda m: None) -> dict:
    """Generate a report for every query-fold ECG with a reference in `language` and score it
    against that reference, beside the baselines. Returns the JSON-ready result."""
    if language not in ("en", "orig"):
        raise ConfigError(f"--lang {language!r}; expected 'en' or 'orig'")
    own, corpus = corpus_index(settings, data, corpus_folds, log=log)
    queries = [q for q in load_ptbxl(data, folds=query_folds) if q.reports.get(language)]
    queries = queries[:limit] if limit else queries
    if not queries:
        raise DataError(f"{data}: no fold-{query_folds} ECGs with a '{language}' report")
    corpus = [r for r in corpus if r.report(language)]
    refs = [q.reports[language] for q in queries]
    log(f"eval report: {len(corpus)} corpus ECGs, {len(queries)} queries, k={k}")
    with Regen.from_settings(replace(own, k=k, language=language)) as rg:
        # An in-process model is loaded once per process; that is not a report's time.
        load = getattr(getattr(rg.refiner, "backend", None), "load", None)
        t0 = time.perf_counter()
        if load is not None:
            load()
        _ = rg.diagnoser                 # fitted (CV in the corpus) once, before the timing
        t_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        reports = list(rg.reports([q.path for q in queries], log=False))
        gen_s = time.perf_counter() - t0
        refiner = rg.settings.refiner
        findings = _findings_eval(rg, queries, reports, language)
        from regen.refine import ConsensusRefiner

        consensus = ConsensusRefiner(min_confidence=settings.min_confidence)
        consensus_texts = [consensus.refine(r.neighbours).text for r in reports]
    hyps = [r.text for r in reports]
    codes = [truth_labels(q.scp) for q in queries]
    result = {"task": "report", "refiner": refiner, "language": language, "k": k,
              "corpus_folds": corpus_folds, "query_folds": query_folds,
              "n_corpus": len(corpus),
              **_score_texts(hyps, refs, bert=bert, meteor=meteor, codes=codes),
              "abstained": int(sum(r.abstained for r in reports)),
              "mean_confidence": float(np.mean([r.confidence for r in reports])),
              "seconds_per_report": gen_s / len(queries)}
    result["model_load_s"] = t_load
    result["findings"] = findings
    # Per report: retrieval (the batch's share) + refinement, as a user of one ECG waits.
    per = np.array([r.timings.get("retrieve_s", 0.0) + r.timings.get("refine_s", 0.0)
                    for r in reports])
    result["latency_s"] = {"p50": float(np.percentile(per, 50)),
                           "p90": float(np.percentile(per, 90)), "max": float(per.max())}
    fell = [r.fallback_reason for r in reports if r.fallback_reason]
    if refiner not in ("consensus", "findings"):
        result["fallback"] = {"n": len(fell), "share": len(fell) / len(reports),
                              "reasons": dict(Counter(f.split(":")[0] for f in fell))}
    answered = [i for i, r in enumerate(reports) if not r.abstained]
    if answered and len(answered) < len(reports):
        sub = _score_texts([hyps[i] for i in answered], [refs[i] for i in answered],
                           bert=False, meteor=False)
        result["answered_only"] = {"n": len(answered), "bleu4": sub["bleu4"],
                                   "rouge_l": sub["rouge_l"],
                                   "label_f1_macro": sub["label_f1_macro"]}
    texts = [r.report(language) for r in corpus]
    baselines = {
        "consensus": consensus_texts,
        "retrieval_top1": [r.neighbours[0].report if r.neighbours else "" for r in reports],
        "random": random_reports(texts, len(queries), seed=0),
        "most_frequent": [most_frequent(texts)] * len(queries),
        "raw_signal_nn": _raw_nn_reports(settings, corpus, queries, language),
        "label_oracle": [label_oracle(q, corpus, language) for q in queries],
    }
    result["baselines"] = {name: _score_texts(h, refs, bert=bert, meteor=meteor, codes=codes)
                           for name, h in baselines.items()}
    return result


def _findings_eval(rg: Regen, queries: Sequence[CorpusRecord], reports: Sequence,
                   language: str) -> dict:
    """Calibration, decisions and risk-coverage of the findings behind `reports`."""
    from regen.eval_findings import findings_scores
    from regen.labeller import label_report

    dg = rg.diagnoser
    loaded = [read_ecg(q.path) for q in queries]
    z, _ = rg._embed_noted(loaded)
    p, _, _ = dg.probabilities(z, *rg._voters(loaded, z, dg.k, dg.targets))
    present = np.array([[any(f.label == c and f.present for f in r.findings)
                         for c in dg.model.findings] for r in reports])
    true = [label_report(q.reports[language]) for q in queries]
    out = findings_scores(p, present, true, np.array([r.confidence for r in reports]),
                          np.array([r.abstained for r in reports]), dg.model.findings)
    out["model"] = {"k": dg.k, "temperature": dg.model.temperature,
                    "abstain_below": dg.model.abstain_below, "rule": dg.rule,
                    "chosen_by": "leave-one-fold-out CV within the corpus folds"}
    return out


def _raw_nn_reports(settings: Settings, corpus: Sequence[CorpusRecord],
                    queries: Sequence[CorpusRecord], language: str) -> list[str]:
    """Top-1 report under cosine of flattened, per-lead z-scored signals (exact search)."""
    from regen.encoder import EncoderConfig

    cfg = EncoderConfig()
    cp, ck, _ = prepare_records(corpus, cfg, progress=False)
    qp, _, _ = prepare_records(queries, cfg, progress=False)
    raw = RawSignalEmbedder()
    sims = raw.embed(qp) @ raw.embed(cp).T
    return [ck[int(i)].report(language) for i in sims.argmax(1)]


# -- classification robustness -----------------------------------------------------------------

def parse_leads(spec: str | None) -> tuple[str, ...] | None:
    """'II' | 'I,II,V2' | 'all' | None -> standard lead names (None: all recorded leads)."""
    if spec is None or spec.strip().lower() in ("", "all", "12"):
        return None
    names = []
    for part in spec.split(","):
        std = standard_lead(part.strip())
        if std is None:
            raise ConfigError(f"--leads {spec!r}: {part.strip()!r} is not one of "
                              f"{', '.join(STANDARD_LEADS)}")
        names.append(std)
    return tuple(dict.fromkeys(names))


def degrade(ecg: ECG, leads: tuple[str, ...] | None, snr_db: float | None,
            rng: np.random.Generator) -> ECG:
    """The query as a worse device would record it: only `leads`, white noise at `snr_db`
    (relative to each lead's own power)."""
    if leads is not None:
        ecg = ecg.select(leads)
    if snr_db is None:
        return ecg
    power = (ecg.signal.astype(np.float64) ** 2).mean(axis=1, keepdims=True)
    noise = rng.normal(size=ecg.signal.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return ECG((ecg.signal + noise).astype(np.float32), ecg.fs, ecg.leads, ecg.id, ecg.source,
               dict(ecg.meta))


def eval_classify(settings: Settings, data: Path, *, corpus_folds: str = "1-8",
                  query_folds: str = "9", leads: str | None = None,
                  snr_db: float | None = None, k: int = 40, seed: int = 0,
                  log: Callable[[str], None] = lambda m: None) -> dict:
    """kNN over the index: each query's superclass scores are the softmax(score/0.1)-weighted
    share of its k neighbours having the class (k=40 by default, kept for comparability with
    earlier runs; `eval_cv` prints the out-of-fold superclass AUC per k inside the corpus);
    macro ROC-AUC over the five superclasses. Lead subset and noise are applied to the queries
    only; the raw-signal kNN is measured on the same degraded queries."""
    own, corpus = corpus_index(settings, data, corpus_folds, log=log)
    queries = load_ptbxl(data, folds=query_folds)
    lead_names = parse_leads(leads)
    rng = np.random.default_rng(seed)
    ecgs = [degrade(read_ecg(q.path), lead_names, snr_db, rng) for q in queries]
    y = superclass_matrix(queries)
    with Regen.from_settings(replace(own, k=k)) as rg:
        hits = rg.retrieve_many(ecgs, k)
    sims = np.array([[n.score for n in h] for h in hits], dtype=np.float32)
    lab = np.array([[[c in n.superclasses for c in SUPERCLASSES] for n in h] for h in hits],
                   dtype=np.float32)
    auc, per = macro_auc(y, knn_label_scores(sims, lab))
    # Raw-signal kNN on the same degraded queries (exact cosine, same weights).
    from regen.encoder import EncoderConfig
    from regen.prepare import prepare

    cfg = EncoderConfig()
    cp, ck, _ = prepare_records(corpus, cfg, progress=False)
    raw = RawSignalEmbedder()
    zq = raw.embed([prepare(e, fs=cfg.fs, window_s=cfg.window_s, band=cfg.band) for e in ecgs])
    s = zq @ raw.embed(cp).T
    top = np.argsort(-s, axis=1)[:, :k]
    raw_auc, raw_per = macro_auc(y, knn_label_scores(np.take_along_axis(s, top, 1),
                                                     superclass_matrix(ck)[top]))
    return {"task": "classify", "leads": list(lead_names or STANDARD_LEADS),
            "noise_snr_db": snr_db, "k": k, "n": len(queries), "n_corpus": len(corpus),
            "macro_auc": auc, "per_class": dict(zip(SUPERCLASSES, per)),
            "baselines": {"raw_signal_knn": {"macro_auc": raw_auc,
                                             "per_class": dict(zip(SUPERCLASSES, raw_per))}}}


# -- retrieval ---------------------------------------------------------------------------------

def eval_retrieval(settings: Settings, data: Path, *, corpus_folds: str = "1-8",
                   query_folds: str = "9", k: int = 10, factory: str = "HNSW32",
                   log: Callable[[str], None] = lambda m: None) -> dict:
    """precision@k: mean share of a query's k neighbours that share at least one superclass
    with it (and, stricter, the same superclass set); recall@k: overlap of `factory`'s top-k
    with exact search over the same embeddings. Beside regen, in the same run: the raw-signal
    nearest neighbours (exact cosine) and random corpus records (the exact expectation), as
    curves over k (the top-k of one search at the largest k) and per superclass at `k`."""
    from index import VectorIndex, exact_search, recall_at_k

    own, corpus = corpus_index(settings, data, corpus_folds, log=log)
    queries = load_ptbxl(data, folds=query_folds)
    ks = sorted({x for x in (1, 3, 5, 10, 20, 50) if x <= max(k, 20)} | {k})
    ks = [x for x in ks if x <= len(corpus)]
    with Regen.from_settings(replace(own, k=k)) as rg:
        hits = rg.retrieve_many([q.path for q in queries], ks[-1])
        ids = rg.index.ids
        vecs = np.stack([rg.index.reconstruct(int(i)) for i in ids])
        zq = rg.embed([read_ecg(q.path) for q in queries])
        fp = rg.encoder.fingerprint
    yq = superclass_matrix(queries).astype(bool)                       # (Q, 5)
    regen_nb = np.array([[[c in n.superclasses for c in SUPERCLASSES] for n in h[:ks[-1]]]
                         for h in hits], dtype=bool)                    # (Q, K, 5)
    raw_nb = _raw_signal_neighbours(corpus, queries, ks[-1])
    yc = superclass_matrix(corpus).astype(bool)
    random_any = float(np.mean([(yc & q).any(1).mean() for q in yq]))
    random_same = float(np.mean([(yc == q).all(1).mean() for q in yq]))
    curve: dict = {"k": ks, "regen": _precision_curve(yq, regen_nb, ks),
                   "raw_signal_knn": _precision_curve(yq, raw_nb, ks),
                   "random": {"any_superclass": [random_any] * len(ks),
                              "same_superclasses": [random_same] * len(ks)}}
    at = ks.index(k)
    per_class = {c: {"n": int(yq[:, j].sum()),
                     "regen": _class_precision(yq, regen_nb, j, k),
                     "raw_signal_knn": _class_precision(yq, raw_nb, j, k),
                     "random": float(yc[:, j].mean())} for j, c in enumerate(SUPERCLASSES)}
    approx = VectorIndex.create(vecs.shape[1], factory=factory, encoder_fingerprint=fp)
    t0 = time.perf_counter()
    approx.add(vecs, ids)
    build_s = time.perf_counter() - t0
    _, a_ids = approx.search(zq, k)
    _, e_pos = exact_search(vecs, zq, k)
    return {"task": "retrieval", "k": k, "n": len(queries), "n_corpus": len(corpus),
            "corpus_folds": corpus_folds, "query_folds": query_folds,
            "precision_at_k_any_superclass": curve["regen"]["any_superclass"][at],
            "precision_at_k_same_superclasses": curve["regen"]["same_superclasses"][at],
            "factory": factory, "recall_at_k_vs_exact": recall_at_k(a_ids, ids[e_pos]),
            "approx_build_s": build_s,
            "baselines": {name: {"precision_at_k_any_superclass": v["any_superclass"][at],
                                 "precision_at_k_same_superclasses": v["same_superclasses"][at]}
                          for name, v in curve.items() if name in ("raw_signal_knn", "random")},
            "curve": curve, "per_superclass_precision_at_k": per_class,
            "corpus_superclass_prevalence": {c: float(yc[:, j].mean())
                                             for j, c in enumerate(SUPERCLASSES)}}


def _precision_curve(yq: np.ndarray, nb: np.ndarray, ks: Sequence[int]) -> dict[str, list]:
    """yq (Q, 5) and neighbours' nb (Q, K, 5) superclasses -> precision at each k: the mean
    share of the first k neighbours sharing any superclass / the same set."""
    share_any = (nb & yq[:, None, :]).any(-1)                           # (Q, K)
    same = (nb == yq[:, None, :]).all(-1)
    return {"any_superclass": [float(share_any[:, :x].mean()) for x in ks],
            "same_superclasses": [float(same[:, :x].mean()) for x in ks]}


def _class_precision(yq: np.ndarray, nb: np.ndarray, j: int, k: int) -> float | None:
    """Among queries with superclass j: the mean share of their k neighbours that have it."""
    has = yq[:, j]
    return float(nb[has, :k, j].mean()) if has.any() else None


def _raw_signal_neighbours(corpus: Sequence[CorpusRecord], queries: Sequence[CorpusRecord],
                           k: int) -> np.ndarray:
    """(Q, k, 5) superclasses of each query's k nearest corpus records by raw-signal cosine."""
    from regen.encoder import EncoderConfig

    cfg = EncoderConfig()
    raw = RawSignalEmbedder()
    cp, ck, _ = prepare_records(corpus, cfg, progress=False)
    qp, _, _ = prepare_records(queries, cfg, progress=False)
    s = raw.embed(qp) @ raw.embed(cp).T
    top = np.argsort(-s, axis=1)[:, :k]
    return superclass_matrix(ck).astype(bool)[top]


# -- question answering ------------------------------------------------------------------------

def eval_qa(settings: Settings, data: Path, *, ecgqa: Path | None = None,
            corpus_folds: str = "1-8", query_folds: str = "9", k: int = 10,
            per_template: int = 50, control: bool = True,
            log: Callable[[str], None] = lambda m: None) -> dict:
    """ECG-QA exact-set-match accuracy per question type, answered from the corpus folds only.
    control: also answer every item with random corpus ECGs in place of its own (the gap shows
    that answers use the signal; `regen.qa_eval.evaluate_qa`).

    derived: an ECG-QA-style set built from the query folds' PTB-XL labels with the official
    templates (see regen.qa_data.TEMPLATES); its majority baseline is fitted on the same
    templates derived from the corpus folds. ecgqa: the real ECG-QA samples (any split) whose
    ECGs all lie in the query folds with signals; majority baseline fitted on ECG-QA's train
    split. The two are reported separately. ECG-QA's numeric-feature items are answered from
    measurements alone (no neighbours), so those pairing a query-fold ECG with a corpus-fold
    one count too, and they use the ranges fitted to ECG-QA's labels on corpus-fold items
    (Settings.numeric_ranges "ecgqa"; bench/numeric_ranges.py)."""
    from regen.qa_data import derive_questions, load_ecgqa, record_ecg_id
    from regen.qa_eval import evaluate_qa

    own, corpus = corpus_index(settings, data, corpus_folds, log=log)
    queries = load_ptbxl(data, folds=query_folds)
    by_id = {record_ecg_id(r): r for r in queries}
    derived = derive_questions(queries, seed=0, per_template=per_template)
    train = derive_questions(corpus, seed=0, per_template=per_template * 4)
    out: dict = {"task": "qa", "k": k, "corpus_folds": corpus_folds,
                 "query_folds": query_folds}
    ctl = [r.path for r in corpus] if control else None
    with Regen.from_settings(replace(own, k=k, numeric_ranges="ecgqa")) as rg:
        out["derived"] = evaluate_qa(rg, derived, by_id, k, train_items=train, control=ctl)
        if ecgqa is not None:
            items = load_ecgqa(ecgqa)
            by_any = {**{record_ecg_id(r): r for r in corpus}, **by_id}
            real = [it for it in items if all(e in by_id for e in it.ecg_ids)
                    or (it.attribute_type == "numeric_feature"
                        and any(e in by_id for e in it.ecg_ids)
                        and all(e in by_any for e in it.ecg_ids))]
            real_train = [it for it in items if it.split == "train"]
            log(f"ECG-QA: {len(real)} of {len(items)} samples are about ECGs of folds "
                f"{query_folds} (numeric-feature ones may pair one with a corpus ECG)")
            out["ecgqa"] = evaluate_qa(rg, real, by_any, k, train_items=real_train,
                                       control=ctl)
    return out


def eval_free_form(settings: Settings, data: Path, questions: Path, *,
                   corpus_folds: str = "1-8", k: int = 10, control: bool = True,
                   log: Callable[[str], None] = lambda m: None) -> dict:
    """Accuracy of `Regen.ask` on plain-word questions (`scripts/make_free_form.py`'s file:
    items {ecg_id, question, answer, kind}), with the "not sure" rate, beside the majority
    answer per kind and, with `control`, the same questions about random corpus ECGs."""
    import random

    from regen.qa_data import record_ecg_id

    doc = json.loads(Path(questions).read_text())
    items = doc["items"]
    own, corpus = corpus_index(settings, data, corpus_folds, log=log)
    ids = {int(it["ecg_id"]) for it in items}
    records = {record_ecg_id(r): r for r in load_ptbxl(data) if record_ecg_id(r) in ids}
    missing = sorted(ids - set(records))
    if missing:
        raise DataError(f"{questions}: ecg_id {missing[:5]} not found with signals in {data}")
    rng = random.Random(0)
    rows: dict[str, list] = {"regen": [], "random_ecg": [], "majority": []}
    kinds: dict[str, Counter] = defaultdict(Counter)
    for it in items:
        kinds[it["kind"]][it["answer"]] += 1
    majority = {kind: max(sorted(c), key=lambda a: c[a]) for kind, c in kinds.items()}
    how: Counter = Counter()
    with Regen.from_settings(replace(own, k=k)) as rg:
        for it in items:
            ans = rg.ask(records[int(it["ecg_id"])].path, it["question"], log=False)
            how[ans.refiner] += 1
            rows["regen"].append((it["kind"], ans.options[0] == it["answer"], ans.abstained))
            if control:
                ans = rg.ask(rng.choice(corpus).path, it["question"], log=False)
                rows["random_ecg"].append((it["kind"], ans.options[0] == it["answer"],
                                           ans.abstained))
            rows["majority"].append((it["kind"], majority[it["kind"]] == it["answer"], False))

    def summary(r: list) -> dict:
        by: dict[str, list] = defaultdict(list)
        for kind, ok, ab in r:
            by[kind].append((ok, ab))
        return {"n": len(r), "accuracy": round(float(np.mean([ok for _, ok, _ in r])), 4),
                "not_sure": round(float(np.mean([ab for _, _, ab in r])), 4),
                "by_kind": {kd: {"n": len(v), "accuracy": round(float(np.mean([o for o, _ in v])),
                                                                4)}
                            for kd, v in sorted(by.items())}}
    return {"task": "free-form", "questions": str(questions), "n": len(items),
            "corpus_folds": corpus_folds, "answered_by": dict(how),
            **{name: summary(r) for name, r in rows.items() if r}}


# -- cross-validation inside the corpus ----------------------------------------------------------

def eval_cv(settings: Settings, data: Path, *, corpus_folds: str = "1-8",
            coverage: float = 0.95, log: Callable[[str], None] = lambda m: None) -> dict:
    """Leave-one-fold-out CV inside the corpus folds: what `regen.findings.fit` chooses (k, the
    temperature, thresholds, calibration, the abstention level) and the out-of-fold scores
    behind each choice, among them superclass macro AUC per fold (mean ± sd) for the neighbour
    vote, the embedding probe and their fusion. No query fold takes part."""
    from regen.findings import fit, view_labels

    own, _ = corpus_index(settings, data, corpus_folds, log=log)
    with Regen.from_settings(own) as rg:
        ids, vectors, views = rg._corpus_views()
        heldout = rg.heldout_for("report")
    model = fit(view_labels(ids, views, own.language), vectors, coverage=coverage, log=log,
                heldout=heldout)
    return {"task": "cv", "corpus_folds": corpus_folds, "k": model.k,
            "temperature": model.temperature, "abstain_below": model.abstain_below,
            "coverage": coverage, **model.cv}
