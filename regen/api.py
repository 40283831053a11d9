"""The Python API: `Regen.open(home)`, then `.retrieve`, `.report` (and batch forms)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

import db as store
from index import FingerprintMismatchError, IndexStoreError, VectorIndex
from regen.ecg import ECG
from regen.encoder import Encoder
from regen.errors import ConfigError, IndexMismatchError
from regen.prepare import prepare
from regen.reader import read_ecg
from regen.refine import ConsensusRefiner, Refiner
from regen.settings import Settings, load_settings
from regen.types import Answer, Comparison, Neighbour, Report

if TYPE_CHECKING:    # loaded on first use: most callers never ask about noise
    from regen.quality import QualityModel

EcgLike = ECG | str | Path


def make_refiner(settings: Settings) -> Refiner:
    """The refiner that `settings.refiner` names; LLM clients are imported only here."""
    if settings.refiner == "consensus":
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
    raise ConfigError(f"refiner {settings.refiner!r} is unknown; expected 'consensus', 'llm' "
                      "or 'local'")


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


def replace_timings(ans: Answer, timings: dict) -> Answer:
    from dataclasses import replace

    return replace(ans, timings={**ans.timings, **timings})


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

    @classmethod
    def open(cls, home: str | Path | None = None, **overrides: object) -> Regen:
        """Open HOME (default: $REGEN_HOME or ./.regen) with settings merged as documented."""
        settings = load_settings(home, **overrides)
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
        return cls(settings, database, vectors, encoder, make_refiner(settings), build_id)

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Regen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retrieval ---------------------------------------------------------------------------

    def embed(self, ecgs: Sequence[ECG]) -> np.ndarray:
        """ECGs -> (N, dim) float32 unit-norm embeddings (any rate, lead subset, length)."""
        cfg = self.encoder.cfg
        prepared = [prepare(e, fs=cfg.fs, window_s=cfg.window_s, band=cfg.band) for e in ecgs]
        return self.encoder.embed(prepared, batch_size=self.settings.batch_size)

    def retrieve(self, ecg: EcgLike, k: int | None = None, *,
                 exclude_patients: Iterable[str] = ()) -> list[Neighbour]:
        """The k nearest corpus ECGs, best first. The query's own record and every record of
        its patient are left out when the query is a corpus file (or its patient is named)."""
        return self.retrieve_many([ecg], k, exclude_patients=exclude_patients)[0]

    def retrieve_many(self, ecgs: Sequence[EcgLike], k: int | None = None, *,
                      exclude_patients: Iterable[str] = ()) -> list[list[Neighbour]]:
        k = k or self.settings.k
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in ecgs]
        z = self.embed(loaded)
        own = self._corpus_identity(loaded)
        extra = set(exclude_patients)
        want = k + 8
        while True:
            scores, ids = self.index.search(z, min(want, max(1, self.index.ntotal)))
            with self.db.session() as s:
                rows = store.fetch_records(s, sorted({int(i) for i in ids.ravel() if i >= 0}))
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

    def _corpus_identity(self, ecgs: Sequence[ECG]) -> list[tuple[int | None, str | None]]:
        """(record id, patient id) for queries that are files of the corpus, else (None, None)."""
        paths = {str(Path(e.source).resolve()): i for i, e in enumerate(ecgs) if e.source}
        out: list[tuple[int | None, str | None]] = [(None, None)] * len(ecgs)
        if not paths:
            return out
        with self.db.session() as s:
            found = s.execute(select(store.Record.id, store.Record.patient_id, store.Record.path)
                              .where(store.Record.path.in_(list(paths)))).all()
        for rid, pid, path in found:
            out[paths[path]] = (rid, pid)
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
        hits = self.retrieve_many(loaded, k)
        parsed = parse_question(question, options)
        if parsed is not None and parsed.relation is None and len(loaded) == 2:
            from dataclasses import replace
            parsed = replace(parsed, relation="new")
        if parsed is None or (2 if parsed.relation else 1) != len(loaded):
            want = "two ECGs" if parsed is not None and parsed.relation else "one ECG"
            why = ("not understood as a verify / choose / query question about SCP statements, "
                   "noise, heart axis or extra systoles" if parsed is None
                   else f"this question needs {want}, got {len(loaded)}")
            ans = Answer(question, ("not sure",), 0.0, True, tuple(tuple(h) for h in hits),
                         text=f"not sure: {why}")
        elif parsed.measured:
            ans = answer_measured(parsed, self.quality.probabilities(loaded[0]), self.quality,
                                  hits)
        else:
            ans = answer_knn(parsed, hits)
        ans = replace_timings(ans, {"total_s": round(time.perf_counter() - t0, 5)})
        if log:
            self._log("ask", ans.refiner, ans.text or ", ".join(ans.options),
                      [e.source or e.id for e in loaded], hits, ans.confidence, ans.abstained,
                      ans.timings, question=question)
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
        """What changed from ECG `a` to ECG `b` (new, resolved and unchanged findings), each
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

    def _log(self, kind: str, refiner: str, output: str, sources: list[str],
             hits: Sequence[Sequence[Neighbour]], confidence: float, abstained: bool,
             timings: dict, question: str | None = None) -> None:
        with self.db.session() as s:
            store.log_generation(
                s, kind=kind, refiner=refiner, output=output, question=question,
                query={"sources": sources, "build": self.build_id},
                settings={"k": len(hits[0]) if hits else self.settings.k,
                          "encoder": self.encoder.fingerprint},
                neighbours=[[{"key": n.key, "score": round(n.score, 5)} for n in h]
                            for h in hits],
                confidence=confidence, abstained=abstained, timings=timings)

    def _report_chunk(self, ecgs: list[EcgLike], k: int | None, log: bool) -> Iterator[Report]:
        t0 = time.perf_counter()
        loaded = [e if isinstance(e, ECG) else read_ecg(e) for e in ecgs]
        hits = self.retrieve_many(loaded, k)
        t_ret = (time.perf_counter() - t0) / len(loaded)
        reports, drafts = [], []
        for ecg, nbrs in zip(loaded, hits):
            t1 = time.perf_counter()
            draft = self.refiner.refine(nbrs)
            timings = {"retrieve_s": round(t_ret, 5),
                       "refine_s": round(time.perf_counter() - t1, 5)}
            drafts.append(draft)
            reports.append(Report(draft.text, draft.confidence, tuple(nbrs), draft.cited,
                                  draft.abstained, self.refiner.name, ecg.source or ecg.id,
                                  draft.prompt_hash, timings,
                                  model=None if draft.fallback_reason else draft.model,
                                  fallback_reason=draft.fallback_reason))
        if log:
            with self.db.session() as s:
                for r, d in zip(reports, drafts):
                    store.log_generation(
                        s, kind="report", refiner=r.refiner, output=r.text,
                        query={"source": r.query, "build": self.build_id}, model=d.model,
                        prompt_hash=r.prompt_hash,
                        settings={"k": k or self.settings.k,
                                  "min_confidence": self.settings.min_confidence,
                                  "language": self.settings.language,
                                  "encoder": self.encoder.fingerprint,
                                  **llm_settings(self.settings)},
                        neighbours=[{"key": n.key, "score": round(n.score, 5)}
                                    for n in r.neighbours],
                        confidence=r.confidence, abstained=r.abstained, timings=r.timings,
                        error=d.fallback_reason)
        yield from reports

    def measure(self, ecg: EcgLike) -> Measurements:
        """Rate, intervals, QTc, axis and premature beats measured from the signal itself (no
        retrieval); `ecg` may be a path. See `regen.measure.measure`."""
        from regen.measure import measure

        return measure(ecg if isinstance(ecg, ECG) else read_ecg(ecg))


if TYPE_CHECKING:    # for Regen.measure's annotation; the module loads on first use
    from regen.measure import Measurements
