"""The Python API: `Regen.open(home)`, then `.retrieve`, `.report` (and batch forms)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import db as store
from index import FingerprintMismatchError, IndexStoreError, VectorIndex
from regen.ecg import ECG
from regen.encoder import Encoder
from regen.errors import ConfigError, IndexMismatchError
from regen.prepare import prepare
from regen.reader import read_ecg
from regen.record_cache import RecordCache
from regen.refine import ConsensusRefiner, Refiner
from regen.settings import Settings, load_settings
from regen.types import (
    Answer,
    Classification,
    Comparison,
    Finding,
    InputNotes,
    Neighbour,
    Report,
    SearchHit,
)

if TYPE_CHECKING:    # loaded on first use: most callers never ask about noise
    from regen.diagnose import Diagnoser, Diagnosis
    from regen.findings import HeldOut, Targets
    from regen.qa import ParsedQuestion
    from regen.qa_free import FreeQuestion
    from regen.qa_model import AnswerModel
    from regen.quality import QualityModel
    from regen.refine import Draft
    from regen.zeroshot import TextIndex

EcgLike = ECG | str | Path
Searched = tuple[np.ndarray, np.ndarray]     # an index search: (scores (M, w), ids (M, w))


def make_refiner(settings: Settings) -> Refiner:
    """The refiner that `settings.refiner` names; LLM clients are imported only here."""
    if settings.refiner in ("consensus", "findings"):
        # "findings" writes its text in Regen itself; consensus is its fallback refiner.
        return ConsensusRefiner(min_confidence=settings.min_confidence)
    if settings.refiner == "llm":
        if not settings.llm_base_url or not settings.llm_model:
            raise ConfigError(f"refiner 'llm' needs llm_base_url and llm_model (have "
                              f"{settings.llm_base_url!r}, {settings.llm_model!r}); set them, "
                              "e.g. REGEN_LLM_BASE_URL=http://127.0.0.1:8000/v1 "
                              "REGEN_LLM_MODEL=NAME")
        from regen.llm import LLMRefiner, OpenAIChatBackend

        backend = OpenAIChatBackend(
            settings.llm_base_url, settings.llm_model, settings.llm_api_key,
            temperature=settings.llm_temperature, max_tokens=settings.llm_max_tokens,
            timeout=settings.llm_timeout, retries=settings.llm_retries,
            response_format=settings.llm_response_format)
        return LLMRefiner(backend, language=settings.language,
                          min_confidence=settings.min_confidence)
    if settings.refiner == "local":
        from regen.local_llm import MAX_NEW_TOKENS, LocalLLMRefiner

        return LocalLLMRefiner(max_new_tokens=min(settings.llm_max_tokens, MAX_NEW_TOKENS),
                               language=settings.language,
                               min_confidence=settings.min_confidence,
                               max_time=settings.local_llm_budget_s)
    raise ConfigError(f"refiner {settings.refiner!r} is unknown; expected 'findings', "
                      "'consensus', 'llm' or 'local'")


def llm_settings(settings: Settings) -> dict[str, object]:
    """The LLM settings a generation log row keeps: never the API key."""
    if settings.refiner == "llm":
        return {"llm_base_url": settings.llm_base_url, "llm_model": settings.llm_model,
                "llm_temperature": settings.llm_temperature,
                "llm_max_tokens": settings.llm_max_tokens, "llm_timeout": settings.llm_timeout,
                "llm_retries": settings.llm_retries,
                "llm_response_format": settings.llm_response_format}
    if settings.refiner == "local":
        from regen.local_llm import MAX_NEW_TOKENS

        return {"llm_max_tokens": min(settings.llm_max_tokens, MAX_NEW_TOKENS),
                "local_llm_budget_s": settings.local_llm_budget_s}
    return {}


def _measured(ecg: ECG) -> tuple[dict | None, list | None]:
    """The ECG's measurements (JSON, with their one-line summary) and the findings they imply;
    (None, None) when the signal cannot be measured at all."""
    from regen.errors import RegenError
    from regen.measure import measure
    from regen.measured import all_findings

    try:
        m = measure(ecg)
    except (RegenError, ValueError) as exc:
        return {"line": "", "error": str(exc)}, None
    return {**m.to_json(), "line": m.line()}, all_findings(m)


def _not_assessable(parsed: ParsedQuestion, notes: Sequence[InputNotes]) -> str | None:
    """Why a verify question about a finding cannot be answered from the leads given (the
    report's lead rules, `regen.diagnose.needs`), or None."""
    from regen.diagnose import needs
    from regen.qa_data import SCP_NAMES, SUPERCLASS_NAMES

    if parsed.kind != "verify" or parsed.group not in ("scp_code", "superclass"):
        return None
    names = SCP_NAMES if parsed.group == "scp_code" else SUPERCLASS_NAMES
    code = next((c for c, n in names.items() if n == parsed.options[0]), None)
    for n in notes:
        why = needs(code, set(n.leads_used)) if code else None
        if why:
            return f"{parsed.options[0]} cannot be judged from leads {', '.join(n.leads_used)}: " \
                   f"{why}"
    return None


def replace_timings(ans: Answer, timings: dict, queries: Sequence[str] = ()) -> Answer:
    from dataclasses import replace

    return replace(ans, timings={**ans.timings, **timings}, queries=tuple(queries))


# ECG-QA questions about SCP statements that a report decides are answered with the same ECG's
# report decision (which the measured rate, PR, premature beats and AF score enter; its
# per-finding thresholds), not the answer model's vote; None: every finding of
# regen.findings.FINDINGS. By leave-one-fold-out on folds 1-8 (`python bench/rhythm_qa_cv.py
# --data PTBXL`, 2597 derived items): the vote 0.358, the rhythms alone 0.379, the rhythms and
# the measured findings 0.399, every finding 0.430 (no template lower).
FROM_REPORT: frozenset[str] | None = None


# The report's decisions are made consistent (`regen.diagnose.resolve`: one rhythm, "normal"
# against abnormal findings, a code brings its superclass), so a finding's probability can sit
# over its threshold while the report does not state it (sinus rhythm beside a sinus
# tachycardia), or under it while the report does (a superclass a code brought). With
# AGREE_WITH_DECISIONS an answer takes the report's side of 0.5 as well. Leave-one-fold-out on
# folds 1-8 (`python bench/rhythm_qa_cv.py --data PTBXL`, every finding from the report): 0.447
# against 0.439 with each probability alone (template 106, rhythm queries: 0.613 / 0.568), the
# same as the sinus-rhythm-only rule it replaces (0.447), which it covers: the report states
# one rhythm.
AGREE_WITH_DECISIONS = True


def _report_names() -> dict[str, str]:
    """ECG-QA option name -> the FROM_REPORT code it names."""
    from regen.findings import FINDINGS
    from regen.qa_data import SCP_NAMES

    codes = FINDINGS if FROM_REPORT is None else FROM_REPORT
    return {SCP_NAMES[c]: c for c in codes if c in SCP_NAMES}


def _report_decides(options: Sequence[str]) -> bool:
    names = _report_names()
    return any(o in names for o in options)


def _from_report(findings: Sequence[Finding], probs: dict[str, float] | None,
                 options: Sequence[str]) -> dict[str, float] | None:
    """`probs` with the statements of FROM_REPORT replaced by the same ECG's report decision
    (`findings`), so that report and answer agree (the report decides the rhythm with the
    measured rate and AF score, a long PR and premature beats from the measurements). Each is
    put on the answer's scale: 0.5 at the finding's threshold, 0 when it is not listed, and
    (AGREE_WITH_DECISIONS) on the side of 0.5 the report decided."""
    names = _report_names()
    found = {f.label: f for f in findings}
    out = dict(probs or {})
    for o in options:
        if o not in names:
            continue
        f = found.get(names[o])
        if f is None:                       # below 0.1: not listed
            out[o] = 0.0
            continue
        if f.probability < f.threshold:
            out[o] = 0.5 * f.probability / f.threshold
        else:
            out[o] = 0.5 + 0.5 * (f.probability - f.threshold) / max(1e-9, 1 - f.threshold)
        if AGREE_WITH_DECISIONS and f.present != (out[o] >= 0.5):
            out[o] = 0.5 if f.present else 0.499
    return out


class Regen:
    """An opened regen home: database, active index, encoder and refiner."""

    def __init__(self, settings: Settings, database: store.Database, vectors: VectorIndex,
                 encoder: Encoder, refiner: Refiner, build_id: str):
        self.settings = settings
        self.db = database
        self.index = vectors
        self.encoder = encoder
        self.refiner = refiner
        self.build_id = build_id
        self._quality: QualityModel | None = None
        self._diagnoser: Diagnoser | None = None
        self._answers: AnswerModel | None = None
        self._text_index: TextIndex | None = None
        self._corpus_proj: tuple[np.ndarray, np.ndarray] | None = None
        self._report_labels: np.ndarray | None = None
        self.build_path: Path | None = None
        self.records = RecordCache(database, settings.record_cache_s)

    @classmethod
    def open(cls, home: str | Path | None = None, **overrides: object) -> Regen:
        """Open HOME (default: $REGEN_HOME or ./.regen) with settings merged as documented."""
        return cls.from_settings(load_settings(home, **overrides))

    @classmethod
    def from_settings(cls, settings: Settings) -> Regen:
        """Open the home and database that `settings` name, with exactly these settings (no
        config file or environment read again)."""
        database = settings.open_database()
        with database.session() as s:
            build = store.active_build(s)
            build_id, path = (build.id, build.path) if build else (None, None)
        if build_id is None or path is None:
            raise IndexMismatchError(f"{settings.home}: no index has been built yet; build one "
                                     f"with `regen index rebuild --data PTBXL_DIR --home "
                                     f"{settings.home}`")
        encoder = Encoder.load(settings.encoder)
        try:
            vectors = VectorIndex.load(path, expected_fingerprint=encoder.fingerprint,
                                       use_gpu=settings.use_gpu)
        except FingerprintMismatchError as exc:
            raise IndexMismatchError(f"{exc}") from exc
        except IndexStoreError as exc:
            raise IndexMismatchError(f"active build {build_id}: {exc}") from exc
        if settings.search_param_values:
            try:
                vectors.set_search_params(**settings.search_param_values)
            except IndexStoreError as exc:
                raise ConfigError(f"setting search_params={settings.search_params!r}: {exc}; "
                                  "change it in HOME/config.toml or REGEN_SEARCH_PARAMS"
                                  ) from exc
        rg = cls(settings, database, vectors, encoder, make_refiner(settings), build_id)
        rg.build_path = Path(path)
        return rg

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Regen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retrieval ---------------------------------------------------------------------------

    def embed(self, ecgs: Sequence[ECG]) -> np.ndarray:
        """ECGs -> (N, dim) float32 unit-norm embeddings (any rate, lead subset, length)."""
        return self._embed_noted(ecgs)[0]

    def _embed_noted(self, ecgs: Sequence[ECG]) -> tuple[np.ndarray, list[InputNotes]]:
        from regen.inputs import input_notes

        cfg = self.encoder.cfg
        prepared = [prepare(e, fs=cfg.fs, window_s=cfg.window_s, band=cfg.band) for e in ecgs]
        notes = [input_notes(e, p, cfg.window_s) for e, p in zip(ecgs, prepared)]
        return self.encoder.embed(prepared, batch_size=self.settings.batch_size), notes

    def heldout_for(self, part: str) -> HeldOut:
        """The encoder's calibration correction for ECGs it never saw, for "report" findings
        or "answers" (none when switched off or when its folder has none for it)."""
        from regen.findings import NO_HELDOUT, HeldOut

        if not self.settings.heldout_calibration:
            return NO_HELDOUT
        return HeldOut.for_encoder(self.settings.encoder, self.encoder.fingerprint, part)

    @property
    def diagnoser(self) -> Diagnoser:
        """The build's findings model and composer (fitted by CV in the corpus on first use
        when the build has none saved)."""
        if self._diagnoser is None:
            from regen.diagnose import Diagnoser

            assert self.build_path is not None
            self._diagnoser = Diagnoser.load_or_fit(self.build_path, self._corpus_views,
                                                    self.settings.language,
                                                    heldout=self.heldout_for("report"))
        return self._diagnoser

    @property
    def answers(self) -> AnswerModel:
        """Calibrated answer probabilities for finding questions (fitted by CV in the corpus
        on first use when the build has none saved)."""
        if self._answers is None:
            from regen.qa_model import AnswerModel

            assert self.build_path is not None
            self._answers = AnswerModel.load_or_fit(self.build_path, self._corpus_views,
                                                    self._corpus_neighbour,
                                                    heldout=self.heldout_for("answers"))
        return self._answers

    @property
    def text_index(self) -> TextIndex:
        """The build's corpus reports in report-text space, for zero-shot scores and search
        (`regen.zeroshot`; made on first use when the build has none saved)."""
        if self._text_index is None:
            from regen.zeroshot import TextIndex

            assert self.build_path is not None
            dg = self.diagnoser

            def voters(vectors: np.ndarray, targets: Targets, own: list
                       ) -> tuple[np.ndarray, np.ndarray]:
                return self._voters([], vectors, dg.k, targets, own=own)

            self._text_index = TextIndex.load_or_build(
                self.build_path, self._corpus_views, self.settings.language, self.encoder,
                dg.k, dg.model.temperature, voters)
        return self._text_index

    def _corpus_neighbour(self, view: object) -> Neighbour:
        assert isinstance(view, store.RecordView)
        return self._neighbour(view, 0.0)

    def _corpus_views(self) -> tuple[np.ndarray, np.ndarray, list[store.RecordView]]:
        ids, vectors = self.index.vectors()
        with self.db.session() as s:
            rows = store.fetch_records(s, ids.tolist())
        keep = [i for i, r in enumerate(ids) if int(r) in rows]
        return ids[keep], vectors[keep], [rows[int(ids[i])] for i in keep]

    def retrieve(self, ecg: EcgLike, k: int | None = None, *,
                 exclude_patients: Iterable[str] = ()) -> list[Neighbour]:
        """The k nearest corpus ECGs, best first. The query's own record and every record of
        its patient are left out when the query is a corpus file (or its patient is named)."""
        return self.retrieve_many([ecg], k, exclude_patients=exclude_patients)[0]

    def retrieve_many(self, ecgs: Sequence[EcgLike], k: int | None = None, *,
                      exclude_patients: Iterable[str] = ()) -> list[list[Neighbour]]:
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in ecgs]
        z, _ = self._embed_noted(loaded)
        return self._search(loaded, z, k or self.settings.k, exclude_patients)

    def _search(self, loaded: Sequence[ECG], z: np.ndarray, k: int,
                exclude_patients: Iterable[str] = (), *, searched: Searched | None = None,
                own: list[tuple[int | None, str | None]] | None = None
                ) -> list[list[Neighbour]]:
        """The k shown neighbours with their stored reports. `searched`: an index search of
        `z` already made (scores, ids), used first when it is wide enough; `own`: the queries'
        `_corpus_identity`, when already known."""
        own = self._corpus_identity(loaded) if own is None else own
        extra = set(exclude_patients)
        want = k + 8
        while True:
            if searched is not None and searched[1].shape[1] >= min(want, self.index.ntotal):
                # only the columns this needs: the voters' wide search holds k_vote + 64, and
                # reading all those records from the database cost most of a report's time
                scores, ids = searched[0][:, :want], searched[1][:, :want]
            else:
                scores, ids = self.index.search(z, min(want, max(1, self.index.ntotal)))
            searched = None
            rows = self.records.records(sorted({int(i) for i in ids.ravel() if i >= 0}))
            out = []
            for qi in range(len(loaded)):
                rec_id, patient = own[qi]
                skip_patients = extra | ({patient} if patient else set())
                hits = []
                for sc, i in zip(scores[qi], ids[qi]):
                    row = rows.get(int(i))
                    if row is None or row.id == rec_id or row.patient_id in skip_patients:
                        continue
                    hits.append(self._neighbour(row, float(sc)))
                    if len(hits) == k:
                        break
                out.append(hits)
            short = any(len(h) < k for h in out)
            if not short or want >= self.index.ntotal:
                return out
            want *= 4

    def _neighbour(self, row: store.RecordView, score: float) -> Neighbour:
        lang = self.settings.language
        text = row.reports.get(lang) or row.reports.get("orig") or ""
        scp = tuple(c for kind, c, _ in row.labels if kind == "scp")
        supers = tuple(c for kind, c, _ in row.labels if kind == "superclass")
        attrs = tuple((kind, c) for kind, c, _ in row.labels if kind not in ("scp", "superclass"))
        return Neighbour(row.id, row.key, score, text, scp, supers, row.patient_id, row.path,
                         attrs)

    def _voters(self, loaded: Sequence[ECG], z: np.ndarray, k: int, targets: Targets, *,
                searched: Searched | None = None,
                own: list[tuple[int | None, str | None]] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """The k neighbours that vote on findings, as corpus rows and cosines (M, k), without
        the query's own record and patient; the database is not read (the targets hold keys
        and patients). `searched`, `own`: as for `_search`."""
        own = self._corpus_identity(loaded) if own is None else own
        want = min(self.index.ntotal, k + 64)
        while True:
            if searched is not None and searched[1].shape[1] >= want:
                sims, ids = searched
            else:
                sims, ids = self.index.search(z, max(1, want))
            searched = None
            rows, s = targets.exclude(ids, sims.astype(np.float64), k, own)
            if (rows[:, -1] >= 0).all() or want >= self.index.ntotal:
                return rows, s
            want = min(self.index.ntotal, want * 4)

    def _neighbours_and_voters(self, loaded: Sequence[ECG], z: np.ndarray, k: int,
                               targets: Targets, k_vote: int
                               ) -> tuple[list[list[Neighbour]], np.ndarray, np.ndarray]:
        """The shown neighbours and the voters (rows, cosines) from one index search."""
        own = self._corpus_identity(loaded)
        searched = self.index.search(z, max(1, min(self.index.ntotal, max(k + 8, k_vote + 64))))
        hits = self._search(loaded, z, k, searched=searched, own=own)
        rows, sims = self._voters(loaded, z, k_vote, targets, searched=searched, own=own)
        return hits, rows, sims

    def _corpus_identity(self, ecgs: Sequence[ECG]) -> list[tuple[int | None, str | None]]:
        """(record id, patient id) for queries that are files of the corpus, else (None, None)."""
        paths = {i: str(Path(e.source).resolve()) for i, e in enumerate(ecgs) if e.source}
        out: list[tuple[int | None, str | None]] = [(None, None)] * len(ecgs)
        for i, identity in zip(paths, self.records.identities(list(paths.values()))):
            out[i] = identity
        return out

    # -- generation --------------------------------------------------------------------------

    def report(self, ecg: EcgLike, k: int | None = None, *, log: bool = True) -> Report:
        """A report for one ECG, with its neighbours, citations and confidence."""
        return next(self.reports([ecg], k, log=log))

    def reports(self, ecgs: Iterable[EcgLike], k: int | None = None, *, log: bool = True,
                chunk: int = 64) -> Iterator[Report]:
        """Reports for many ECGs, streamed in order; retrieval runs in chunks."""
        batch: list[EcgLike] = []
        for e in ecgs:
            batch.append(e)
            if len(batch) == chunk:
                yield from self._report_chunk(batch, k, log)
                batch = []
        if batch:
            yield from self._report_chunk(batch, k, log)

    def ask(self, ecgs: EcgLike | Sequence[EcgLike], question: str,
            options: Sequence[str] | None = None, k: int | None = None, *,
            log: bool = True) -> Answer:
        """Answer an ECG-QA style question (verify / choose / query; two ECGs for comparison
        questions) by a similarity-weighted vote of each ECG's neighbours' labels, with the
        evidence per option; "not sure" when the vote is within a margin of even. Noise
        questions about one ECG ("... static noise in lead V1?") are measured from its signal
        (`regen.quality`) instead, since noise is not shared with similar ECGs."""
        from regen.qa import answer_knn, answer_measured, parse_question

        items = [ecgs] if isinstance(ecgs, ECG | str | Path) else list(ecgs)
        t0 = time.perf_counter()
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in items]
        k = k or self.settings.k
        if (measured := self._measured_answer(loaded, question)) is not None:
            # intervals out of range, rate, regularity, axis in degrees: measured, not retrieved
            ans = replace_timings(measured, {"total_s": round(time.perf_counter() - t0, 5)},
                                  [e.source or e.id for e in loaded])
            if log:
                self._log("ask", ans.refiner, ans.text, list(ans.queries), [],
                          ans.confidence, ans.abstained, ans.timings, question=question)
            return ans
        parsed = parse_question(question, options, n_ecgs=len(loaded))
        if parsed is None and len(loaded) == 1 and options is None:
            from regen.qa_free import parse_free

            if (free := parse_free(question)) is not None:
                ans = self._ask_free(loaded[0], question, free, k)
                ans = replace_timings(ans, {"total_s": round(time.perf_counter() - t0, 5)},
                                      [loaded[0].source or loaded[0].id])
                if log:
                    self._log("ask", ans.refiner, ans.text, list(ans.queries),
                              list(ans.neighbours), ans.confidence, ans.abstained,
                              ans.timings, question=question)
                return ans
        z, notes = self._embed_noted(loaded)
        by_findings = (parsed is not None and not parsed.measured
                       and (2 if parsed.relation else 1) == len(loaded)
                       and not any(n.implausible for n in notes))
        if by_findings:             # the answer model votes: one search for both
            am = self.answers
            hits, rows, sims = self._neighbours_and_voters(loaded, z, k, am.targets, am.k)
        else:
            hits = self._search(loaded, z, k)
        if parsed is None or (2 if parsed.relation else 1) != len(loaded):
            want = "two ECGs" if parsed is not None and parsed.relation else "one ECG"
            why = ("not understood as a verify / choose / query question about SCP statements, "
                   "noise, heart axis or extra systoles" if parsed is None
                   else f"this question needs {want}, got {len(loaded)}")
            ans = Answer(question, ("not sure",), 0.0, True, tuple(tuple(h) for h in hits),
                         text=f"not sure: {why}")
        elif any(n.implausible for n in notes):
            ans = Answer(question, ("not sure",), 0.0, True, tuple(tuple(h) for h in hits),
                         question_type=parsed.question_type,
                         text="not sure: " + "; ".join(w for n in notes for w in n.warnings
                                                       if "implausible" in w))
        elif parsed.measured:
            ans = answer_measured(parsed, self.quality.probabilities(loaded[0]), self.quality,
                                  hits)
        elif (unseen := _not_assessable(parsed, notes)) is not None:
            ans = Answer(question, ("not sure",), 0.0, True, tuple(tuple(h) for h in hits),
                         question_type=parsed.question_type, text=f"not sure: {unseen}")
        else:
            p = am.probabilities(z, rows, sims)
            probs = [am.option_probabilities(p[i], parsed.group, parsed.options)
                     for i in range(len(loaded))]
            if parsed.group == "scp_code" and _report_decides(parsed.options):
                probs = [_from_report(dx.findings, pr, parsed.options)
                         for dx, pr in zip(self._diagnoses(loaded, z, notes, hits), probs)]
            ans = answer_knn(parsed, hits, probabilities=probs)
        ans = replace_timings(ans, {"total_s": round(time.perf_counter() - t0, 5)},
                              [e.source or e.id for e in loaded])
        if log:
            self._log("ask", ans.refiner, ans.text or ", ".join(ans.options),
                      list(ans.queries), hits, ans.confidence, ans.abstained,
                      ans.timings, question=question)
        return ans

    def _diagnoses(self, loaded: Sequence[ECG], z: np.ndarray, notes: Sequence[InputNotes],
                   shown: Sequence[Sequence[Neighbour]]) -> list[Diagnosis]:
        """The report's diagnosis of each ECG (its findings with the measurements), from an
        embedding and shown neighbours already at hand: no report text is written."""
        dg = self.diagnoser
        rows, sims = self._voters(loaded, z, dg.k, dg.targets)
        p, pk, pp = dg.probabilities(z, rows, sims)
        return [dg.diagnose(p[i], pk[i], pp[i], rows[i], tuple(shown[i]), notes[i],
                            _measured(ecg)[1]) for i, ecg in enumerate(loaded)]

    def _measured_answer(self, loaded: Sequence[ECG], question: str) -> Answer | None:
        """Questions the measurements answer, or None: which intervals are out of range, how
        they changed from a first ECG to a second, or where one lies against its normal range
        (`regen.qa_numeric`); the rate,
        regularity, an interval or the axis of one ECG (`regen.qa_measured`)."""
        from regen.qa_measured import answer_measurement, parse_measured
        from regen.qa_numeric import (
            answer_numeric,
            answer_range,
            feature_values,
            parse_numeric,
            parse_range,
            ranges_for,
        )

        if (nq := parse_numeric(question, len(loaded))) is not None:
            ranges, named, source = ranges_for(self.settings.numeric_ranges)
            read = [feature_values(e, source) for e in loaded]
            return answer_numeric(nq, question, [v for v, _ in read], ranges, named,
                                  [n for _, n in read])
        if (rq := parse_range(question, len(loaded))) is not None:
            ranges, named, source = ranges_for(self.settings.numeric_ranges)
            values, note = feature_values(loaded[0], source)
            return answer_range(rq, question, values, ranges, named, note)
        if len(loaded) == 1 and (mq := parse_measured(question)) is not None:
            return answer_measurement(mq, question, loaded[0])
        return None

    def _ask_free(self, ecg: ECG, question: str, free: FreeQuestion, k: int) -> Answer:
        """A plain-word question (`regen.qa_free`): from the ECG's report findings, or from the
        zero-shot score of its words."""
        from regen.qa_free import answer_free, explain
        from regen.zeroshot import label_vectors

        rep = next(self._report_chunk([ecg], k, log=False))
        if free.kind != "words":
            ans = answer_free(free, question, rep)
        else:
            best, _ = self.text_index.search(label_vectors([free.phrase])[0], 1)
            ans = answer_free(free, question, rep, self.classify(ecg, [free.phrase]),
                              float(best[0]) if len(best) else 0.0)
        backend = getattr(self.refiner, "backend", None)
        if backend is not None and self.settings.refiner == "llm" and not ans.abstained:
            ans = explain(backend, question, ans, rep)
        return ans

    @property
    def quality(self) -> QualityModel:
        """The signal-quality model (per-lead noise), loaded on first use."""
        if self._quality is None:
            from regen.quality import QualityModel

            self._quality = QualityModel.load()
        return self._quality

    def compare(self, a: EcgLike, b: EcgLike, k: int | None = None, *,
                log: bool = True) -> Comparison:
        """What changed from ECG `a` to ECG `b` (new, resolved and persisting findings), each
        judged by its own neighbours."""
        from dataclasses import replace

        from regen.compare import compare_neighbours

        t0 = time.perf_counter()
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in (a, b)]
        na, nb = self.retrieve_many(loaded, k)
        cmp = compare_neighbours(na, nb, min_confidence=self.settings.min_confidence)
        cmp = replace(cmp, queries=(loaded[0].source or loaded[0].id,
                                    loaded[1].source or loaded[1].id),
                      timings={"total_s": round(time.perf_counter() - t0, 5)})
        if log:
            self._log("compare", "knn-vote", cmp.text, list(cmp.queries), [na, nb],
                      cmp.confidence, cmp.abstained, cmp.timings)
        return cmp

    def classify(self, ecg: EcgLike, labels: Sequence[str], *, path: str = "auto"
                 ) -> Classification:
        """Zero-shot scores of one ECG against text labels ("atrial fibrillation", "old
        inferior infarction|inferior q waves"): see `regen.zeroshot`. path: "text",
        "text+neighbours", or "auto" (text+neighbours when the build has a corpus)."""
        return self.classify_many([ecg], labels, path=path)[0]

    def classify_many(self, ecgs: Sequence[EcgLike], labels: Sequence[str], *,
                      path: str = "auto") -> list[Classification]:
        from regen.qa_free import finding_codes
        from regen.zeroshot import PATHS, check_labels, classify_scores, label_vectors
        from regen.zeroshot import text_projection as project

        if path not in PATHS:
            raise ConfigError(f"path {path!r}; expected one of {', '.join(PATHS)}")
        labels = check_labels(labels)
        t0 = time.perf_counter()
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in ecgs]
        z, notes = self._embed_noted(loaded)
        t = label_vectors(labels)
        t1 = time.perf_counter()
        ti = self.text_index
        dg = self.diagnoser
        rows, sims = self._voters(loaded, z, dg.k, dg.targets)
        use_nb = path != "text"
        vrows = ti.targets.rows_of(dg.targets.ids[np.maximum(rows, 0)])
        vrows[rows < 0] = -1
        scores, parts = classify_scores(project(self.encoder, z), labels, t, ti,
                                        (vrows, sims) if use_nb else None)
        p = dg.probabilities(z, rows, sims)[0]
        col = {c: i for i, c in enumerate(dg.model.findings)}
        codes = [finding_codes(lab.replace("|", "; ")) for lab in labels]
        out = []
        took = time.perf_counter() - t0
        for i, ecg in enumerate(loaded):
            found = {}
            for lab, cs in zip(labels, codes):
                if len(cs) == 1 and cs[0] in col:
                    j = col[cs[0]]
                    found[lab] = {"label": cs[0], "probability": round(float(p[i, j]), 4),
                                  "threshold": round(float(dg.model.threshold[j]), 4),
                                  "present": bool(p[i, j] >= dg.model.threshold[j])}
            nbr = tuple(str(dg.targets.keys[r]) for r in rows[i][:10] if r >= 0)
            out.append(Classification(
                ecg.source or ecg.id,
                {lab: float(scores[i, j]) for j, lab in enumerate(labels)},
                "text+neighbours" if use_nb else "text",
                {lab: {k: float(v[i, j]) for k, v in parts.items()}
                 for j, lab in enumerate(labels)},
                found, nbr if use_nb else (),
                {"total_s": round(took / len(loaded), 5),
                 "labels_s": round((t1 - t0) / len(loaded), 5)},
                warnings=notes[i].warnings))
        return out

    def search(self, text: str, k: int = 10, *, via: str = "report") -> list[SearchHit]:
        """Corpus ECGs matching a text, best first: by their reports' meaning ("report") or
        by their ECGs' projection into report space ("ecg", which also finds ECGs without a
        report). For building cohorts; each hit carries its report and labels."""
        from regen.zeroshot import check_labels, label_vectors
        from regen.zeroshot import text_projection as project

        if via not in ("report", "ecg"):
            raise ConfigError(f"via {via!r}; expected report or ecg")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise ConfigError(f"k is {k!r}; expected 1-1000")
        (text,) = check_labels([text])
        t = label_vectors([text])[0]
        if via == "report":
            scores, ids = self._search_reports(text, t, k)
        else:
            if self._corpus_proj is None:
                cid, vec = self.index.vectors()
                self._corpus_proj = (cid, project(self.encoder, vec))
            cid, proj = self._corpus_proj
            sc = proj @ t
            top = np.argsort(-sc, kind="stable")[:k]
            scores, ids = sc[top], cid[top]
        rows_db = self.records.records(int(i) for i in ids)
        hits = []
        for sc_, i in zip(scores, ids):
            row = rows_db.get(int(i))
            if row is None:
                continue
            n = self._neighbour(row, float(sc_))
            hits.append(SearchHit(n.key, float(sc_), n.report, n.labels, n.superclasses, via))
        return hits

    def _search_reports(self, text: str, t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Reports by meaning (MiniLM cosine), with the reports that the labeller reads as
        stating every finding the text names (`regen.qa_free.finding_codes`) ranked first:
        MiniLM alone confuses left with right and complete with incomplete blocks."""
        from regen.qa_free import finding_codes

        ti = self.text_index
        codes = finding_codes(text.replace("|", "; "))
        dg = self.diagnoser
        col = {c: i for i, c in enumerate(dg.model.findings)}
        cols = [col[c] for c in codes if c in col]
        if not cols:
            scores, rows = ti.search(t, k)
            return scores, ti.ids[rows]
        if self._report_labels is None:      # the labeller's reading of each indexed report
            drow = dg.targets.rows_of(ti.ids)
            labels = np.zeros((len(ti.ids), dg.targets.y.shape[1]), bool)
            labels[drow >= 0] = dg.targets.y[drow[drow >= 0]]
            self._report_labels = labels
        sims = ti.reports @ t                                      # (N,)
        states = self._report_labels[:, cols].all(1)
        rank = sims + 2.0 * states                                 # stating it comes first
        top = np.argsort(-rank, kind="stable")[:k]
        return sims[top], ti.ids[top]

    def _log(self, kind: str, refiner: str, output: str, queries: list[str],
             hits: Sequence[Sequence[Neighbour]], confidence: float, abstained: bool,
             timings: dict, question: str | None = None) -> None:
        # the ECGs under the names the answers use: "queries" (Answer, Comparison)
        with self.db.session() as s:
            store.log_generation(
                s, kind=kind, refiner=refiner, output=output, question=question,
                query={"queries": queries, "build": self.build_id},
                settings={"k": len(hits[0]) if hits else self.settings.k,
                          "encoder": self.encoder.fingerprint},
                neighbours=[[{"key": n.key, "score": round(n.score, 5)} for n in h]
                            for h in hits],
                confidence=confidence, abstained=abstained, timings=timings)

    def _report_chunk(self, ecgs: list[EcgLike], k: int | None, log: bool) -> Iterator[Report]:
        from dataclasses import replace

        t0 = time.perf_counter()
        k = k or self.settings.k
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in ecgs]
        z, notes = self._embed_noted(loaded)
        dg = self.diagnoser
        hits, rows, sims = self._neighbours_and_voters(loaded, z, k, dg.targets, dg.k)
        p, pk, pp = dg.probabilities(z, rows, sims)
        t_ret = (time.perf_counter() - t0) / len(loaded)
        reports, drafts = [], []
        for i, (ecg, nbrs) in enumerate(zip(loaded, hits)):
            t1 = time.perf_counter()
            shown = tuple(nbrs)
            m, measured = _measured(ecg)
            dx = dg.diagnose(p[i], pk[i], pp[i], rows[i], shown, notes[i], measured)
            if self.settings.refiner == "findings":
                draft = self._findings_draft(dx, notes[i], {n.key for n in shown})
            else:
                draft = self.refiner.refine(shown, dx.findings)
                if draft.fallback_reason is not None:
                    # an LLM reply was not used: the decided findings' report is written
                    # instead (never a neighbour's text, which may be what misled the model)
                    draft = replace(self._findings_draft(dx, notes[i], {n.key for n in shown}),
                                    prompt_hash=draft.prompt_hash, model=draft.model,
                                    fallback_reason=draft.fallback_reason)
            timings = {"retrieve_s": round(t_ret, 5),
                       "refine_s": round(time.perf_counter() - t1, 5)}
            drafts.append(draft)
            composed = self.settings.refiner == "findings" or draft.fallback_reason is not None
            sentences = tuple((s.text, s.key) for s in dx.composed.sentences) \
                if dx.composed and composed else ()
            reports.append(Report(draft.text, draft.confidence, shown, draft.cited,
                                  draft.abstained, self.settings.refiner, ecg.source or ecg.id,
                                  draft.prompt_hash, timings,
                                  model=None if draft.fallback_reason else draft.model,
                                  fallback_reason=draft.fallback_reason,
                                  findings=dx.findings, input=notes[i], sentences=sentences,
                                  abstain_rule=dg.rule, notes=dx.notes,
                                  measurements=m))
        if log:
            with self.db.session() as s:
                for r, d in zip(reports, drafts):
                    store.log_generation(
                        s, kind="report", refiner=r.refiner, output=r.text,
                        query={"query": r.query, "build": self.build_id}, model=d.model,
                        prompt_hash=r.prompt_hash,
                        settings={"k": k, "findings_k": dg.k,
                                  "min_confidence": self.settings.min_confidence,
                                  "abstain_below": dg.model.abstain_below,
                                  "language": self.settings.language,
                                  "encoder": self.encoder.fingerprint,
                                  **llm_settings(self.settings)},
                        neighbours=[{"key": n.key, "score": round(n.score, 5)}
                                    for n in r.neighbours],
                        confidence=r.confidence, abstained=r.abstained, timings=r.timings,
                        error=d.fallback_reason,
                        findings=[f.to_json() for f in r.findings],
                        input=r.input.to_json() if r.input else None)
        yield from reports

    def _findings_draft(self, dx: Diagnosis, notes: InputNotes, shown: set[str]) -> Draft:
        """The report of the decided findings; cited: the corpus reports its sentences came
        from, then the shown neighbours whose reports state its findings."""
        from regen.refine import ABSTAIN_TEXT, Draft

        cited = tuple(dict.fromkeys(
            [s.key for s in (dx.composed.sentences if dx.composed else ())]
            + [e for f in dx.findings if f.present for e in f.evidence if e in shown]))
        if dx.abstained or dx.composed is None:
            unphrased = (dx.composed is None
                         and dx.confidence >= self.diagnoser.model.abstain_below)
            why = ("; ".join(w for w in notes.warnings if "implausible" in w)
                   or ("no corpus sentence states the decided findings" if unphrased
                       else "the findings are too uncertain"))
            return Draft(f"{ABSTAIN_TEXT} ({why})", dx.confidence, cited, True)
        text = dx.composed.text
        if notes.leads_missing:
            text += (f" [Read from {len(notes.leads_used)} of 12 leads "
                     f"({', '.join(notes.leads_used)}); findings needing the others are not "
                     "stated.]")
        return Draft(text, dx.confidence, cited, False)

    def plot(self, ecg: EcgLike, out: str | Path, *, start_s: float = 0.0) -> Path:
        """Draw the ECG as on paper (12 leads in 3x4 and a lead-II rhythm strip, 25 mm/s,
        10 mm/mV; the window from `start_s` on long records) to `out` (.png, .svg or .pdf)."""
        from regen.plot import save_plot

        return Path(save_plot(ecg if isinstance(ecg, ECG) else read_ecg(ecg), out,
                              start_s=start_s))

    def report_pdf(self, ecg: EcgLike, out: str | Path, *, report: Report | None = None,
                   paper: str = "a4", log: bool = True) -> Path:
        """Write a one-page printable report of `ecg` to `out` (.pdf, landscape A4 or
        "letter"): the trace at 25 mm/s and 10 mm/mV, the text, findings with probabilities
        and thresholds, measurements, input notes, cited reports and the decision-support
        notice. `report`: the one already made for this ECG (else made here)."""
        from regen.report_pdf import write_report_pdf

        loaded = ecg if isinstance(ecg, ECG) else read_ecg(ecg)
        r = report if report is not None else self.report(loaded, log=log)
        return write_report_pdf(r, loaded, out, paper=paper, provenance=(
            f"regen build {self.build_id}, encoder {self.encoder.fingerprint}, "
            f"refiner {r.refiner}"))

    def measure(self, ecg: EcgLike) -> Measurements:
        """Rate, intervals, QTc, axis and premature beats measured from the signal itself (no
        retrieval); `ecg` may be a path. See `regen.measure.measure`."""
        from regen.measure import measure

        return measure(ecg if isinstance(ecg, ECG) else read_ecg(ecg))

    def scan(self, ecg: EcgLike, window_s: float = 10.0, step_s: float = 5.0, *,
             progress: bool | None = None,
             on_progress: Callable[[int, int], None] | None = None) -> Scan:
        """Findings per window along a long record, merged into episodes, with beat events
        and a summary; `ecg` may be a path (WFDB records and EDF files are streamed in
        chunks). on_progress(windows done, windows in all) after each batch. See
        `regen.scan.scan`."""
        from regen.scan import scan

        return scan(self, ecg, window_s, step_s, progress, on_progress=on_progress)


if TYPE_CHECKING:    # for Regen.measure's and Regen.scan's annotations; loaded on first use
    from regen.measure import Measurements
    from regen.scan import Scan
