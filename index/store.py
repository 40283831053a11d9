"""`VectorIndex`: a FAISS index with int64 ids, a manifest, and crash-safe save and load.

Every index is an `IndexIDMap2` around the index the factory string builds, so callers use
their own int64 ids (database keys) and never FAISS's positions. Saving writes a complete
sibling directory and renames it into place; a reader sees the old index or the new one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.exact import as_ids, as_vectors, check_k
from index.manifest import (
    INDEX_FILE,
    MANIFEST_FILE,
    METRICS,
    FingerprintMismatchError,
    IndexManifest,
    IndexStoreError,
    faiss_reason,
    fsync_path,
    min_training_points,
    replace_dir,
    utc_now,
)

# faiss's generated stubs type arguments narrower than its SWIG layer accepts (numpy arrays where
# they say IDSelector, a GpuIndex where they say Index): our indexes are typed loosely.
FaissIndex = Any

_FAISS_METRIC = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
_FACTORY_EXAMPLES = "'Flat', 'HNSW32', 'IVF256,Flat', 'IVF256,PQ32' or 'IVF256,PQ32x8,RFlat'"


def set_threads(n: int) -> int:
    """Use `n` CPU threads in FAISS from now on (process-wide); returns the previous count.

    One thread is how a server answering concurrent single queries runs each of them, and keeps
    a loaded machine from stalling a query on a thread barrier; batch search and building use
    every core by default.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise IndexStoreError(f"threads is {n!r}; expected a positive int")
    before = int(faiss.omp_get_max_threads())
    faiss.omp_set_num_threads(n)
    return before


class VectorIndex:
    """Vector search over unit-norm float32 vectors keyed by int64 ids.

    Build one with `create` or `load`; the constructor is for those two. Not thread-safe for
    writes: FAISS allows concurrent `search` but not `search` during `add` or `remove`.
    """

    def __init__(
        self,
        index: FaissIndex,
        manifest: IndexManifest,
        *,
        use_gpu: bool | None = None,
        read_only: bool = False,
    ) -> None:
        """Wrap a CPU `index` described by `manifest`, moving it to a GPU as `use_gpu` says."""
        self._manifest = manifest
        self._read_only = read_only
        self._exact_storage = _stores_exact_vectors(index)
        # The GPU index holds a raw pointer to these resources; keep them alive with it.
        self._index, self._gpu_resources = _maybe_to_gpu(index, manifest.factory, use_gpu)

    @classmethod
    def create(
        cls,
        dim: int,
        *,
        factory: str = "Flat",
        metric: str = "ip",
        encoder_fingerprint: str,
        use_gpu: bool | None = None,
    ) -> VectorIndex:
        """An empty index of `dim`-dimensional vectors.

        `factory` is a FAISS factory string without an id map ("Flat", "HNSW32", "IVF256,Flat",
        "IVF256,PQ32", or "IVF256,PQ32x8,RFlat": IVF-PQ whose candidates are re-ranked exactly
        against the stored vectors, `k_factor_rf` times k of them); `metric` is "ip" or "l2";
        `use_gpu` None means use a GPU when FAISS has one. Raises IndexStoreError for a bad
        factory, metric or dim, or use_gpu=True without a GPU.
        """
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise IndexStoreError(f"dim is {dim!r}; expected a positive int such as 256")
        if metric not in METRICS:
            raise IndexStoreError(f"metric is {metric!r}; expected one of {list(METRICS)}")
        if not isinstance(factory, str) or factory.strip().upper().startswith("IDMAP"):
            raise IndexStoreError(
                f"factory {factory!r} is not usable; give the FAISS factory string without "
                f"an IDMap prefix (ids are always kept), e.g. {_FACTORY_EXAMPLES}"
            )
        manifest = IndexManifest(
            factory=factory,
            metric=metric,
            dim=dim,
            count=0,
            encoder_fingerprint=encoder_fingerprint,
            created_at=utc_now(),
            faiss_version=faiss.__version__,
        )
        manifest.check()
        try:
            index = faiss.index_factory(dim, f"IDMap2,{factory}", _FAISS_METRIC[metric])
        except RuntimeError as exc:
            raise IndexStoreError(
                f"factory {factory!r} is not a valid FAISS factory string for dim={dim} "
                f"({faiss_reason(exc)}); use e.g. {_FACTORY_EXAMPLES} (PQ<m> needs m to divide "
                "dim)"
            ) from exc
        return cls(index, manifest, use_gpu=use_gpu)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        expected_fingerprint: str | None = None,
        use_gpu: bool | None = None,
        mmap: bool = False,
    ) -> VectorIndex:
        """The index saved in `directory` by `save`.

        The manifest is checked before the FAISS file is read. `mmap` maps the vectors from
        disk instead of reading them (a read-only index; `add` and `remove` then raise).
        Raises FingerprintMismatchError if `expected_fingerprint` differs from the manifest's,
        IndexStoreError naming the path and field for a missing, corrupt or inconsistent index.
        """
        directory = Path(directory)
        index_path, manifest_path = directory / INDEX_FILE, directory / MANIFEST_FILE
        for path in (directory, manifest_path, index_path):
            if not path.exists():
                raise IndexStoreError(
                    f"{path} does not exist; expected an index directory written by "
                    "VectorIndex.save (with index.faiss and manifest.json); build the index first"
                )
        try:
            manifest = IndexManifest.from_json(json.loads(manifest_path.read_text("utf-8")))
        except (ValueError, IndexStoreError) as exc:  # JSONDecodeError and UnicodeError too
            raise IndexStoreError(f"{manifest_path} is corrupt: {exc}") from exc
        built_by = manifest.encoder_fingerprint
        if expected_fingerprint is not None and expected_fingerprint != built_by:
            raise FingerprintMismatchError(
                f"index at {directory} was built by encoder {built_by!r}, but "
                f"the loaded encoder is {expected_fingerprint!r}; rebuild it with "
                "`regen index rebuild`"
            )
        index = _read_index(index_path, manifest, mmap)
        for field, found in (
            ("dim", index.d),
            ("count", index.ntotal),
            ("metric", {v: k for k, v in _FAISS_METRIC.items()}.get(index.metric_type)),
        ):
            if getattr(manifest, field) != found:
                raise IndexStoreError(
                    f"{manifest_path} says {field}={getattr(manifest, field)!r} but {index_path} "
                    f"has {field}={found!r}; the two files come from different saves, rebuild "
                    "the index"
                )
        return cls(index, manifest, use_gpu=use_gpu, read_only=mmap)

    @property
    def ntotal(self) -> int:
        """Number of stored vectors."""
        return int(self._index.ntotal)

    @property
    def manifest(self) -> IndexManifest:
        """The manifest, with `count` equal to the current `ntotal`."""
        return replace(self._manifest, count=self.ntotal)

    @property
    def ids(self) -> np.ndarray:
        """(ntotal,) int64 stored ids in insertion order (removals close the gaps)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)

    @property
    def on_gpu(self) -> bool:
        """Whether the vectors live on a GPU."""
        return self._gpu_resources is not None

    def __repr__(self) -> str:
        m = self._manifest
        return (
            f"VectorIndex(factory={m.factory!r}, metric={m.metric!r}, dim={m.dim}, "
            f"count={self.ntotal}, on_gpu={self.on_gpu})"
        )

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Store (n, dim) float `vectors` under (n,) int64 `ids`, unique and not yet present.

        An untrained factory (IVF, PQ) is trained on the first batch, which must then hold at
        least as many vectors as the factory has centroids.
        """
        self._check_writable("add")
        x = as_vectors(vectors, self._manifest.dim, "vectors")
        keys = as_ids(ids, "ids")
        if keys.shape[0] != x.shape[0]:
            raise IndexStoreError(
                f"got {x.shape[0]} vectors but {keys.shape[0]} ids; expected one id per vector"
            )
        uniq, counts = np.unique(keys, return_counts=True)
        if (counts > 1).any():
            raise IndexStoreError(
                f"ids contain {int((counts > 1).sum())} duplicated values, e.g. "
                f"{uniq[counts > 1][:5].tolist()}; expected unique ids"
            )
        present = keys[np.isin(keys, self.ids)]
        if present.size:
            raise IndexStoreError(
                f"{present.size} ids are already in the index, e.g. {present[:5].tolist()}; "
                "remove them first to replace their vectors"
            )
        if x.shape[0] == 0:
            return
        if not self._index.is_trained:
            self._train(x)
        try:
            self._index.add_with_ids(x, keys)
        except RuntimeError as exc:  # e.g. GPU memory exhausted
            raise IndexStoreError(
                f"adding {x.shape[0]} vectors failed ({faiss_reason(exc)}); add smaller batches "
                "or load the index with use_gpu=False"
            ) from exc

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best stored vectors for each query, best first.

        `queries` is (m, dim) or (dim,) float, the latter treated as (1, dim). Returns
        (scores (m, k) float32, ids (m, k) int64): inner products (larger is better) for "ip",
        squared L2 distances (smaller is better) for "l2". Where fewer than k results exist the
        id is -1 and the score -inf ("ip") or +inf ("l2").
        """
        q = as_vectors(queries, self._manifest.dim, "queries", allow_1d=True)
        check_k(k)
        missing = -np.inf if self._manifest.metric == "ip" else np.inf
        scores = np.full((q.shape[0], k), missing, dtype=np.float32)
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        n = self.ntotal
        if n == 0 or q.shape[0] == 0:
            return scores, ids
        # Asking FAISS for at most ntotal also keeps k under the GPU's 2048 limit for small indexes.
        found = min(k, n)
        try:
            d, i = self._index.search(q, found)
        except RuntimeError as exc:  # e.g. GPU indexes cap k at 2048
            raise IndexStoreError(
                f"search with k={k} over {n} vectors failed ({faiss_reason(exc)}); use a smaller "
                "k, or load the index with use_gpu=False"
            ) from exc
        scores[:, :found], ids[:, :found] = d, i
        scores[ids == -1] = missing  # FAISS pads with -+FLT_MAX; +-inf cannot be mistaken
        return scores, ids

    def remove(self, ids: np.ndarray) -> int:
        """Remove the vectors stored under `ids` (int64, absent ids ignored); returns how many."""
        self._check_writable("remove")
        keys = as_ids(ids, "ids")
        if keys.size == 0 or self.ntotal == 0:
            return 0
        cpu = _to_cpu(self._index, self._gpu_resources)
        keep = ~np.isin(faiss.vector_to_array(cpu.id_map), keys)
        try:
            removed = int(cpu.remove_ids(keys))
        except RuntimeError as exc:
            raise IndexStoreError(
                f"factory {self._manifest.factory!r} cannot remove vectors ({faiss_reason(exc)}); "
                "rebuild the index without these ids, or use a 'Flat' or 'IVF...' factory"
            ) from exc
        assert removed == int((~keep).sum()), "FAISS removed other ids than asked"
        _relabel_ivf_after_remove(cpu, keep)
        if self.on_gpu:
            self._index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, cpu)
        return removed

    def reconstruct(self, id: int) -> np.ndarray:
        """(dim,) float32 vector stored under `id`; only for indexes that keep exact vectors."""
        if not self._exact_storage:
            raise IndexStoreError(
                f"factory {self._manifest.factory!r} does not store vectors exactly, so "
                "reconstruct is not offered; keep the vectors elsewhere or use 'Flat' or 'HNSW32'"
            )
        try:
            return np.asarray(self._index.reconstruct(int(id)), dtype=np.float32)
        except RuntimeError as exc:
            raise IndexStoreError(
                f"id {id} is not in the index ({self.ntotal} vectors); expected a stored id"
            ) from exc

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (ntotal,) int64, vectors (ntotal, dim) float32), both in insertion order.

        Every stored vector at once, for copying an index into another factory or measuring
        candidates on it; only for indexes that keep exact vectors ('Flat', 'HNSW..', '...,RFlat').
        """
        if not self._exact_storage:
            raise IndexStoreError(
                f"factory {self._manifest.factory!r} does not store vectors exactly, so its "
                "vectors cannot be read back; rebuild with 'Flat', 'HNSW32' or an '...,RFlat' "
                "factory"
            )
        x = self._index.index.reconstruct_n(0, self.ntotal) if self.ntotal else None
        x = np.zeros((0, self._manifest.dim), np.float32) if x is None else x
        return self.ids.copy(), np.ascontiguousarray(x, dtype=np.float32)

    def serialized_size(self) -> int:
        """Bytes of `index.faiss` as `save` would write it: the index's memory on CPU, ids
        included (a transient copy of that size is made to count it)."""
        return int(faiss.serialize_index(_to_cpu(self._index, self._gpu_resources)).size)

    def set_search_params(self, **params: float) -> None:
        """Set FAISS search parameters such as nprobe (IVF) or efSearch (HNSW).

        Names and values go to `faiss.ParameterSpace`; they are saved with the index.
        """
        space = faiss.GpuParameterSpace() if self.on_gpu else faiss.ParameterSpace()
        for name, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise IndexStoreError(f"search parameter {name}={value!r}; expected a number")
            try:
                space.set_index_parameter(self._index.index, name, float(value))
            except RuntimeError as exc:
                raise IndexStoreError(
                    f"search parameter {name}={value!r} does not apply to factory "
                    f"{self._manifest.factory!r} ({faiss_reason(exc)}); IVF takes nprobe, "
                    "HNSW takes efSearch, RFlat takes k_factor_rf"
                ) from exc

    def save(self, directory: str | Path) -> Path:
        """Write `index.faiss` and `manifest.json` into `directory`, atomically; returns it.

        Both files go into a sibling '.tmp-*' directory, are fsynced, and the directory is
        renamed into place; an existing index directory is renamed aside first and deleted
        after. A reader therefore sees the old index, the new one, or (for the instant between
        the two renames) none, never a mix. On failure the previous directory is untouched.
        """
        target = Path(directory)
        if target.exists() and not (target / MANIFEST_FILE).exists():
            if not target.is_dir() or any(target.iterdir()):
                raise IndexStoreError(
                    f"{target} exists and is not an index directory; save replaces the whole "
                    "directory, so give a new or empty path, or an index saved before"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
        try:
            faiss.write_index(_to_cpu(self._index, self._gpu_resources), str(tmp / INDEX_FILE))
            manifest = replace(self.manifest, faiss_version=faiss.__version__)
            (tmp / MANIFEST_FILE).write_text(
                json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n", "utf-8"
            )
            for path in (tmp / INDEX_FILE, tmp / MANIFEST_FILE, tmp):
                fsync_path(path)
            replace_dir(tmp, target)
        except (OSError, RuntimeError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise IndexStoreError(
                f"could not save the index to {target} ({exc}); the previous contents of "
                f"{target} are untouched; check the disk space and permissions and save again"
            ) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def _check_writable(self, action: str) -> None:
        if self._read_only:
            raise IndexStoreError(
                f"cannot {action}: the index was loaded with mmap=True and is read-only; "
                "load it with mmap=False to change it"
            )

    def _train(self, x: np.ndarray) -> None:
        factory, needed = self._manifest.factory, min_training_points(self._manifest.factory)
        if x.shape[0] < needed:
            raise IndexStoreError(
                f"factory {factory!r} must be trained on at least {needed} vectors, but the first "
                f"add has {x.shape[0]}; add more vectors at once, or use 'Flat' (or a smaller "
                "IVF<n>) for a corpus this small"
            )
        try:
            self._index.train(x)
        except RuntimeError as exc:
            raise IndexStoreError(
                f"training factory {factory!r} on {x.shape[0]} vectors failed "
                f"({faiss_reason(exc)}); add more vectors at once, or use 'Flat'"
            ) from exc


def _maybe_to_gpu(
    index: FaissIndex, factory: str, use_gpu: bool | None
) -> tuple[FaissIndex, Any]:
    """(`index` or its copy on GPU 0, the GPU resources or None), as `use_gpu` asks."""
    # faiss-cpu has get_num_gpus (always 0) but no GPU classes; check both.
    available = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    if use_gpu is True and not available:
        raise IndexStoreError(
            f"use_gpu=True but FAISS {faiss.__version__} sees no GPU (a faiss-cpu build, or no "
            "CUDA device); install a GPU build of FAISS or pass use_gpu=None to fall back to CPU"
        )
    if not available or use_gpu is False:
        return index, None
    resources = faiss.StandardGpuResources()
    try:
        # The cloner keeps the IndexIDMap2 (and its id map) on CPU and moves the inner index.
        return faiss.index_cpu_to_gpu(resources, 0, index), resources
    except RuntimeError as exc:
        if use_gpu:
            raise IndexStoreError(
                f"factory {factory!r} has no GPU implementation ({faiss_reason(exc)}); pass "
                "use_gpu=None to keep it on CPU, or use 'Flat' or an 'IVF...' factory"
            ) from exc
        return index, None  # auto mode: e.g. HNSW stays on CPU


def _to_cpu(index: FaissIndex, gpu_resources: Any) -> FaissIndex:
    """`index` itself on CPU, or a CPU copy of a GPU index."""
    return faiss.index_gpu_to_cpu(index) if gpu_resources is not None else index


def _stores_exact_vectors(index: faiss.IndexIDMap2) -> bool:
    inner = faiss.downcast_index(index.index)
    # IndexRefineFlat ('...,RFlat') keeps the raw vectors for its exact re-ranking.
    return isinstance(inner, (faiss.IndexFlat, faiss.IndexHNSWFlat, faiss.IndexRefineFlat))


def _relabel_ivf_after_remove(index: FaissIndex, keep: np.ndarray) -> None:
    """Renumber an IVF's stored positions after the id map closed its gaps.

    IndexIDMap2 maps position -> id and compacts that map on removal, but IVF lists store the
    positions they were given at add time; without this, later searches return shifted ids.
    `keep` is (ntotal_before,) bool, True for positions that survived.
    """
    try:
        ivf: Any = faiss.extract_index_ivf(index)
    except RuntimeError:
        return  # flat-code indexes compact themselves in the same order as the id map
    new_position = np.cumsum(keep, dtype=np.int64) - 1
    lists = ivf.invlists
    for list_no in range(ivf.nlist):
        size = lists.list_size(list_no)
        if size == 0:
            continue
        pointer = lists.get_ids(list_no)
        labels = faiss.rev_swig_ptr(pointer, size)  # a writable view of the list's ids
        labels[:] = new_position[labels]
        lists.release_ids(list_no, pointer)


def _read_index(path: Path, manifest: IndexManifest, mmap: bool) -> FaissIndex:
    # IVF lists and flat code arrays are mapped by different flags; mapping IVF with the
    # flat-codes flag is refused by FAISS.
    flags = 0
    if mmap:
        flags = faiss.IO_FLAG_MMAP if "IVF" in manifest.factory else faiss.IO_FLAG_MMAP_IFC
    try:
        index = faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        raise IndexStoreError(
            f"{path} could not be read by FAISS {faiss.__version__} ({faiss_reason(exc)}); "
            "it is corrupt or from an incompatible FAISS, rebuild the index"
        ) from exc
    if not isinstance(index, faiss.IndexIDMap2):
        raise IndexStoreError(
            f"{path} holds a {type(index).__name__}; expected an IndexIDMap2 written by "
            "VectorIndex.save; rebuild the index"
        )
    return index
