"""index/: FAISS search checked against numpy's exact search, ids, save/load and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

import index
from index import (
    FingerprintMismatchError,
    IndexManifest,
    IndexStoreError,
    VectorIndex,
    exact_search,
    recall_at_k,
)

DIM = 64
FP = "enc-aaaa1111"
HAS_GPU = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    """(n, DIM) unit vectors around random centres, like embeddings of similar recordings."""
    which = rng.integers(0, len(centres), n)
    return unit(centres[which] + 0.6 / np.sqrt(DIM) * rng.standard_normal((n, DIM)))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = unit(rng.standard_normal((50, DIM)))
    corpus = clustered(rng, 5000, centres)
    queries = clustered(rng, 200, centres)
    # Non-contiguous ids far beyond int32, as database keys would be.
    ids = 10**12 + 7 + 13 * rng.permutation(10_000)[:5000].astype(np.int64)
    _, exact_pos = exact_search(corpus, queries, 10)
    return {"corpus": corpus, "queries": queries, "ids": ids, "exact_ids": ids[exact_pos]}


def built(data: dict[str, np.ndarray], factory: str = "Flat", metric: str = "ip") -> VectorIndex:
    vi = VectorIndex.create(DIM, factory=factory, metric=metric, encoder_fingerprint=FP)
    vi.add(data["corpus"], data["ids"])
    return vi


def test_public_surface() -> None:
    assert sorted(index.__all__) == [
        "FingerprintMismatchError",
        "IndexManifest",
        "IndexStoreError",
        "VectorIndex",
        "exact_search",
        "recall_at_k",
        "set_threads",
    ]
    assert issubclass(FingerprintMismatchError, IndexStoreError)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_flat_equals_exact_search(data: dict[str, np.ndarray], metric: str) -> None:
    vi = built(data, metric=metric)
    scores, ids = vi.search(data["queries"], 10)
    exact_scores, exact_pos = exact_search(data["corpus"], data["queries"], 10, metric)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (200, 10)
    np.testing.assert_array_equal(ids, data["ids"][exact_pos])
    np.testing.assert_allclose(scores, exact_scores, rtol=1e-4, atol=1e-4)
    order = -scores if metric == "ip" else scores
    assert (np.diff(order, axis=1) >= 0).all(), "best first"


def test_exact_search_small_case() -> None:
    corpus = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    scores, pos = exact_search(corpus, np.array([1.0, 0.0]), 4, "l2")
    np.testing.assert_array_equal(pos, [[0, 2, 1, -1]])
    np.testing.assert_allclose(scores[0, :3], [0.0, 0.8, 2.0], atol=1e-6)
    assert scores[0, 3] == np.inf


def test_hnsw_recall_and_ef_search(data: dict[str, np.ndarray]) -> None:
    vi = built(data, "HNSW32")
    vi.set_search_params(efSearch=64)
    assert faiss.downcast_index(vi._index.index).hnsw.efSearch == 64
    _, ids = vi.search(data["queries"], 10)
    assert recall_at_k(ids, data["exact_ids"]) >= 0.9


def test_ivf_recall_grows_with_nprobe(data: dict[str, np.ndarray]) -> None:
    vi = built(data, "IVF64,Flat")
    vi.set_search_params(nprobe=1)
    low = recall_at_k(vi.search(data["queries"], 10)[1], data["exact_ids"])
    vi.set_search_params(nprobe=16)
    assert faiss.extract_index_ivf(vi._index).nprobe == 16
    high = recall_at_k(vi.search(data["queries"], 10)[1], data["exact_ids"])
    assert high >= 0.9 and high > low


def test_search_param_that_does_not_apply(data: dict[str, np.ndarray]) -> None:
    vi = VectorIndex.create(DIM, factory="HNSW32", encoder_fingerprint=FP)
    with pytest.raises(IndexStoreError, match="nprobe"):
        vi.set_search_params(nprobe=4)


def test_ivf_pq_trains_on_first_add(data: dict[str, np.ndarray]) -> None:
    # 4-bit codes keep training quick. The oracle is exact search over the vectors as PQ stores
    # them (decoded); scores, not ids, are compared because coarse codes tie.
    corpus = data["corpus"][:1000]
    vi = VectorIndex.create(DIM, factory="IVF16,PQ8x4", encoder_fingerprint=FP)
    vi.add(corpus, data["ids"][:1000])
    vi.set_search_params(nprobe=16)
    ivf = faiss.extract_index_ivf(vi._index)
    assert ivf.is_trained and vi.ntotal == 1000
    decoded = ivf.sa_decode(ivf.sa_encode(corpus))
    scores, ids = vi.search(data["queries"], 10)
    want, _ = exact_search(decoded, data["queries"], 10)
    np.testing.assert_allclose(scores, want, atol=1e-5)
    assert np.isin(ids, data["ids"][:1000]).all()


def test_too_few_vectors_to_train(data: dict[str, np.ndarray]) -> None:
    vi = VectorIndex.create(DIM, factory="IVF64,Flat", encoder_fingerprint=FP)
    with pytest.raises(IndexStoreError, match=r"at least 64 vectors.*'Flat'"):
        vi.add(data["corpus"][:10], data["ids"][:10])
    assert vi.ntotal == 0


def test_ids_round_trip_and_properties(data: dict[str, np.ndarray]) -> None:
    vi = built(data)
    np.testing.assert_array_equal(vi.ids, data["ids"])
    assert vi.ntotal == 5000 and vi.manifest.count == 5000 and not vi.on_gpu
    _, ids = vi.search(data["corpus"][[3, 4000]], 1)
    np.testing.assert_array_equal(ids[:, 0], data["ids"][[3, 4000]])
    np.testing.assert_array_equal(vi.reconstruct(int(data["ids"][3])), data["corpus"][3])
    with pytest.raises(IndexStoreError, match="not in the index"):
        vi.reconstruct(5)


def test_reconstruct_needs_exact_storage(data: dict[str, np.ndarray]) -> None:
    with pytest.raises(IndexStoreError, match="does not store vectors exactly"):
        built(data, "IVF16,Flat").reconstruct(int(data["ids"][0]))


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_k_beyond_ntotal_pads(data: dict[str, np.ndarray], metric: str) -> None:
    vi = VectorIndex.create(DIM, metric=metric, encoder_fingerprint=FP)
    empty_scores, empty_ids = vi.search(data["queries"][0], 3)
    assert empty_ids.tolist() == [[-1, -1, -1]]
    vi.add(data["corpus"][:3], data["ids"][:3])
    scores, ids = vi.search(data["queries"][0], 5)
    assert ids.shape == (1, 5) and sorted(ids[0, :3]) == sorted(data["ids"][:3])
    assert ids[0, 3:].tolist() == [-1, -1]
    missing = -np.inf if metric == "ip" else np.inf
    assert (scores[0, 3:] == missing).all() and (empty_scores == missing).all()


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_remove(data: dict[str, np.ndarray], factory: str) -> None:
    vi = built(data, factory)
    vi.set_search_params(**({"nprobe": 16} if "IVF" in factory else {}))
    gone = data["ids"][::3]
    assert vi.remove(np.append(gone, 1)) == gone.size  # an absent id is ignored
    kept = np.setdiff1d(np.arange(5000), np.arange(0, 5000, 3))
    np.testing.assert_array_equal(vi.ids, data["ids"][kept])
    # Each kept vector still finds itself under its own id (IVF positions were renumbered).
    _, ids = vi.search(data["corpus"][kept], 1)
    np.testing.assert_array_equal(ids[:, 0], data["ids"][kept])
    _, ids = vi.search(data["corpus"][::3], 1)
    assert not np.isin(ids, gone).any()
    vi.add(data["corpus"][:1], data["ids"][:1])  # a removed id can be added again
    assert vi.ids[-1] == data["ids"][0]


def test_remove_unsupported_by_hnsw(data: dict[str, np.ndarray]) -> None:
    vi = VectorIndex.create(DIM, factory="HNSW32", encoder_fingerprint=FP)
    vi.add(data["corpus"][:20], data["ids"][:20])
    with pytest.raises(IndexStoreError, match="cannot remove"):
        vi.remove(data["ids"][:2])
    assert vi.ntotal == 20


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_save_load_round_trip(data: dict[str, np.ndarray], tmp_path: Path, factory: str) -> None:
    vi = built(data, factory)
    vi.set_search_params(**({"nprobe": 4} if "IVF" in factory else {}))
    assert vi.save(tmp_path / "idx") == tmp_path / "idx"
    for mmap in (False, True):
        back = VectorIndex.load(tmp_path / "idx", expected_fingerprint=FP, mmap=mmap)
        assert back.manifest == vi.manifest
        np.testing.assert_array_equal(back.ids, vi.ids)
        got_scores, got_ids = back.search(data["queries"], 10)
        want_scores, want_ids = vi.search(data["queries"], 10)
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_array_equal(got_scores, want_scores)
    with pytest.raises(IndexStoreError, match="read-only"):
        back.add(data["corpus"][:1], np.array([1]))
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert IndexManifest.from_json(manifest) == vi.manifest


def test_wrong_fingerprint(data: dict[str, np.ndarray], tmp_path: Path) -> None:
    built(data).save(tmp_path / "idx")
    with pytest.raises(FingerprintMismatchError) as err:
        VectorIndex.load(tmp_path / "idx", expected_fingerprint="enc-bbbb2222")
    assert FP in str(err.value) and "enc-bbbb2222" in str(err.value)
    assert str(tmp_path / "idx") in str(err.value)


def test_save_is_atomic(
    data: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "idx"
    old = VectorIndex.create(DIM, encoder_fingerprint=FP)
    old.add(data["corpus"][:100], data["ids"][:100])
    old.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def write_half_then_fail(index: faiss.Index, path: str) -> None:
        Path(path).write_bytes(b"half an index")
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", write_half_then_fail)
    with pytest.raises(IndexStoreError, match="disk full"):
        built(data).save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert VectorIndex.load(target, expected_fingerprint=FP).ntotal == 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]

    monkeypatch.undo()
    built(data).save(target)  # replacing an existing index as a whole
    assert VectorIndex.load(target).ntotal == 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_save_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(IndexStoreError, match="not an index directory"):
        VectorIndex.create(DIM, encoder_fingerprint=FP).save(tmp_path)
    assert (tmp_path / "notes.txt").exists()


def test_corrupt_or_missing_files(data: dict[str, np.ndarray], tmp_path: Path) -> None:
    with pytest.raises(IndexStoreError, match="does not exist"):
        VectorIndex.load(tmp_path / "nowhere")
    target = tmp_path / "idx"
    built(data).save(target)
    manifest_path = target / "manifest.json"
    good = manifest_path.read_text()
    manifest_path.write_text(good[: len(good) // 2])
    with pytest.raises(IndexStoreError, match="manifest.json"):
        VectorIndex.load(target)
    manifest_path.write_text(json.dumps({**json.loads(good), "count": 4999}))
    with pytest.raises(IndexStoreError, match=r"manifest.json.*count=4999.*index.faiss"):
        VectorIndex.load(target)
    del_dim = {k: v for k, v in json.loads(good).items() if k != "dim"}
    manifest_path.write_text(json.dumps(del_dim))
    with pytest.raises(IndexStoreError, match="'dim' is missing"):
        VectorIndex.load(target)
    manifest_path.write_text(good)
    (target / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexStoreError, match="index.faiss"):
        VectorIndex.load(target)


@pytest.mark.parametrize(
    ("vectors", "ids", "match"),
    [
        (np.zeros((2, DIM + 1), np.float32), [1, 2], "dimension 65"),
        (np.zeros(DIM, np.float32), [1], r"shape \(64,\)"),
        (np.full((2, DIM), np.nan, np.float32), [1, 2], "NaN"),
        (np.zeros((2, DIM), np.int64), [1, 2], "dtype int64"),
        (np.zeros((2, DIM), np.float32), [1, 1], r"duplicated values, e.g. \[1\]"),
        (np.zeros((2, DIM), np.float32), [1, 2, 3], "2 vectors but 3 ids"),
        (np.zeros((2, DIM), np.float32), [1, -1], "expected ids >= 0"),
        (np.zeros((2, DIM), np.float32), [1.0, 2.0], "dtype float64"),
    ],
)
def test_bad_inputs_to_add(vectors: np.ndarray, ids: list, match: str) -> None:
    vi = VectorIndex.create(DIM, encoder_fingerprint=FP)
    with pytest.raises(IndexStoreError, match=match):
        vi.add(vectors, np.array(ids))
    assert vi.ntotal == 0


def test_bad_inputs_elsewhere(data: dict[str, np.ndarray]) -> None:
    vi = built(data)
    with pytest.raises(IndexStoreError, match="already in the index"):
        vi.add(data["corpus"][:2], data["ids"][:2])
    with pytest.raises(IndexStoreError, match="dimension 32"):
        vi.search(np.zeros((1, 32), np.float32), 5)
    with pytest.raises(IndexStoreError, match="k is 0"):
        vi.search(data["queries"], 0)
    with pytest.raises(IndexStoreError, match=r"'IVF12x,Flat'.*'Flat'"):
        VectorIndex.create(DIM, factory="IVF12x,Flat", encoder_fingerprint=FP)
    with pytest.raises(IndexStoreError, match="metric is 'cos'"):
        VectorIndex.create(DIM, metric="cos", encoder_fingerprint=FP)
    with pytest.raises(IndexStoreError, match="encoder_fingerprint is empty"):
        VectorIndex.create(DIM, encoder_fingerprint="")


def test_recall_at_k() -> None:
    exact = np.array([[1, 2, 3], [4, 5, -1]])
    assert recall_at_k(exact, exact) == 1.0
    assert recall_at_k(np.array([[3, 9, -1], [5, -1, -1]]), exact) == pytest.approx(
        (1 / 3 + 1 / 2) / 2
    )


@pytest.mark.skipif(HAS_GPU, reason="checks the error raised when FAISS has no GPU")
def test_use_gpu_without_gpu() -> None:
    with pytest.raises(IndexStoreError, match="use_gpu=True"):
        VectorIndex.create(DIM, encoder_fingerprint=FP, use_gpu=True)
    assert not VectorIndex.create(DIM, encoder_fingerprint=FP).on_gpu


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="faiss has no GPUs (faiss-cpu build or no CUDA device)")
@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat"])
def test_gpu_matches_cpu(data: dict[str, np.ndarray], tmp_path: Path, factory: str) -> None:
    cpu = built(data, factory)
    gpu = VectorIndex.create(DIM, factory=factory, encoder_fingerprint=FP, use_gpu=True)
    gpu.add(data["corpus"], data["ids"])
    assert gpu.on_gpu and not cpu.on_gpu
    for vi in (cpu, gpu):
        vi.set_search_params(**({"nprobe": 16} if "IVF" in factory else {}))
    want_scores, want_ids = cpu.search(data["queries"], 10)
    got_scores, got_ids = gpu.search(data["queries"], 10)
    assert (got_ids == want_ids).mean() > 0.99
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-3)
    assert gpu.remove(data["ids"][:10]) == 10 and gpu.ntotal == 4990
    gpu.save(tmp_path / "idx")
    back = VectorIndex.load(tmp_path / "idx", use_gpu=False)
    np.testing.assert_array_equal(back.ids, gpu.ids)


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF16,PQ8x8np,RFlat"])
def test_vectors_reads_back_every_stored_vector(data: dict[str, np.ndarray], factory: str) -> None:
    vi = built(data, factory)
    ids, x = vi.vectors()
    np.testing.assert_array_equal(ids, data["ids"])
    np.testing.assert_array_equal(x, data["corpus"])
    if factory == "Flat":  # removal closes the gaps in both arrays alike
        vi.remove(data["ids"][:3])
        ids, x = vi.vectors()
        np.testing.assert_array_equal(ids, data["ids"][3:])
        np.testing.assert_array_equal(x, data["corpus"][3:])


def test_vectors_needs_exact_storage(data: dict[str, np.ndarray]) -> None:
    with pytest.raises(IndexStoreError, match="cannot be read back"):
        built(data, "IVF16,PQ8").vectors()
    empty = VectorIndex.create(DIM, encoder_fingerprint=FP)
    assert empty.vectors()[1].shape == (0, DIM)


def test_ivf_pq_with_exact_reranking(data: dict[str, np.ndarray], tmp_path: Path) -> None:
    """RFlat re-ranks k * k_factor_rf PQ candidates by exact scores: recall rises to ~1."""
    vi = built(data, "IVF16,PQ8x8np,RFlat")
    vi.set_search_params(nprobe=16, k_factor_rf=1)
    low = recall_at_k(vi.search(data["queries"], 10)[1], data["exact_ids"])
    vi.set_search_params(k_factor_rf=8)
    scores, ids = vi.search(data["queries"], 10)
    assert recall_at_k(ids, data["exact_ids"]) >= max(0.95, low)
    # The scores are exact inner products, not PQ approximations.
    want = np.einsum("d,d->", data["queries"][0], vi.reconstruct(int(ids[0, 0])))
    assert abs(scores[0, 0] - want) < 1e-5
    vi.save(tmp_path / "rf")
    back = VectorIndex.load(tmp_path / "rf")
    np.testing.assert_array_equal(back.search(data["queries"], 10)[1], ids)  # params saved
    assert vi.serialized_size() == (tmp_path / "rf" / "index.faiss").stat().st_size


def test_set_threads() -> None:
    before = index.set_threads(1)
    try:
        assert index.set_threads(1) == 1 and before >= 1
    finally:
        index.set_threads(before)
    with pytest.raises(IndexStoreError, match="positive int"):
        index.set_threads(0)
