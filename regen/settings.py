"""Settings, built once at the edge (CLI, `Regen.open`) and passed down as plain values.

Precedence: defaults < HOME/config.toml < REGEN_* environment < explicit overrides (flags).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from regen.errors import ConfigError

# The consensus refiner abstains below this agreement (similarity-weighted ROUGE-L support of
# its report). Source: the first sessions' choice on PTB-XL folds 1-8, where consensus reports
# under it agreed with the reference less often than the most frequent report did; refiners
# that fall back to consensus when used on their own (llm, local) and the two-ECG comparison
# share it. Here, not in `regen.refine`, so that reading settings imports no numpy (`regen
# logs` starts fast).
MIN_CONFIDENCE = 0.35
# What writes a report's text (the `refiner` setting, `--refiner`): see `regen.api.make_refiner`.
REFINERS = ("findings", "consensus", "llm", "local")

# Where an index job embeds its chunks: "local" (this process), or a cluster engine.
CLUSTER_ENGINES = ("dask", "ray")
ENGINES = ("local", *CLUSTER_ENGINES)

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ENCODER = PACKAGE_DIR / "weights" / "default"
DEFAULT_HOME = Path(".regen")


@dataclass(frozen=True)
class Settings:
    home: Path = DEFAULT_HOME
    database_url: str = ""            # empty: sqlite:///HOME/regen.db
    database_schema: str = ""         # PostgreSQL: keep the tables in this schema (made if absent)
    encoder: Path = DEFAULT_ENCODER
    factory: str = "Flat"             # FAISS factory string for new builds
    # FAISS parameters, "NAME=VALUE,...": applied when an index is opened (over those saved with
    # the build, so recall and latency trade without a rebuild) and saved by a rebuild that gets
    # no --search-param; e.g. "efSearch=128" (HNSW), "nprobe=32" (IVF), "k_factor_rf=4" (RFlat)
    search_params: str = ""
    k: int = 10                       # neighbours retrieved per query
    language: str = "en"              # report language shown ("en", or "orig" for the source text)
    # "findings" (calibrated findings, text from corpus sentences), "consensus" (the neighbour
    # report most agreed on), "llm" (OpenAI-compatible server), "local"
    refiner: str = "findings"
    min_confidence: float = MIN_CONFIDENCE   # consensus abstains below this
    use_gpu: bool | None = None       # None: GPU FAISS when present
    batch_size: int = 256
    # index jobs: where chunks are embedded ("local": this process; "dask", "ray": a cluster)
    engine: str = "local"
    engine_address: str = ""          # empty: a local cluster; else tcp://HOST:8786, ray://...
    # refiner "llm": an OpenAI-compatible chat server (vLLM, llama.cpp, OpenAI, ...)
    llm_base_url: str = ""            # e.g. http://127.0.0.1:8000/v1
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)   # REGEN_LLM_API_KEY; never logged
    llm_temperature: float = 0.0
    llm_max_tokens: int = 256         # "local": at most regen.local_llm.MAX_NEW_TOKENS (96)
    llm_timeout: float = 30.0         # seconds per attempt
    llm_retries: int = 2              # retries after the first attempt (429, 5xx, timeouts)
    # "json_schema": ask the server to decode only the reply's JSON shape (OpenAI, vLLM and
    # llama.cpp's llama-server honour it); "json_object_schema": the same for
    # llama-cpp-python's server; "json_object": any JSON; "none": plain text (older servers)
    llm_response_format: str = "json_schema"
    # refiner "local": generation stops after this many seconds and consensus answers instead
    local_llm_budget_s: float = 8.0   # = regen.local_llm.TIME_BUDGET_S
    # "Which numeric features are abnormal?": "clinical" (textbook limits), "ecgqa" (the limits
    # fitted to ECG-QA's labels, regen/weights/numeric_ranges.json) or a ranges file's path
    numeric_ranges: str = "clinical"
    # `regen serve`: who may call it, which files `{"path": ...}` may read, and its limits
    api_token: str = field(default="", repr=False)   # REGEN_API_TOKEN: bearer token; never logged
    data_roots: str = ""              # folders `{"path"}` may read, os.pathsep-separated; "" none
    show_paths: bool = False          # answers give corpus records' absolute paths (else keys)
    max_body_bytes: int = 64 * 2**20  # a 24-hour 12-lead recording at 100 Hz as JSON fits
    max_k: int = 100                  # neighbours one request may ask for
    serve_workers: int = 4            # requests computed at once (threads sharing one model)
    # processes serving on one port, each with its own copy of the model and index (memory x
    # this): Python computes one report at a time per process, so set it to the CPU cores
    serve_processes: int = 1
    request_timeout_s: float = 60.0   # a request still computing after this answers 504
    keep_alive_s: float = 5.0         # an idle HTTP connection is closed after this
    # POST /v1/scan: a record longer than this (or a request with "async": true) answers 202
    # with a job id to poll at GET /v1/scan/{job_id}; a finished job is kept this long
    scan_async_after_s: float = 1800.0
    scan_job_ttl_s: float = 3600.0
    scan_max_jobs: int = 8            # scan jobs queued or running at once; more answer 429
    # a corpus record (its report and labels) is read from the database once per this many
    # seconds; a rebuild that rewrites reports is seen within it. 0: read on every request
    record_cache_s: float = 60.0
    # apply the encoder folder's heldout.json (its calibration correction for ECGs it never
    # saw; regen.findings.HeldOut) to every probability; off: the corpus OOF calibration alone
    heldout_calibration: bool = True

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'regen.db').resolve()}"

    def open_database(self) -> Any:
        """The database these settings name (a `db.Database`; close it with `.dispose()`)."""
        import db

        return db.Database(self.db_url, schema=self.database_schema or None)

    @property
    def search_param_values(self) -> dict[str, float]:
        return parse_params(self.search_params, "search_params")

    @property
    def index_dir(self) -> Path:
        return self.home / "indexes"

    @property
    def data_root_paths(self) -> tuple[Path, ...]:
        """`data_roots` as resolved folders (symlinks followed), in the order given."""
        return tuple(Path(p).expanduser().resolve()
                     for p in self.data_roots.split(os.pathsep) if p.strip())


def parse_params(text: str, what: str = "parameters") -> dict[str, float]:
    """"efSearch=64, nprobe=16" -> {"efSearch": 64.0, "nprobe": 16.0}."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"{what}: {item!r} is not NAME=NUMBER; expected e.g. "
                              "efSearch=64 or nprobe=16") from None
    return out


def _coerce(name: str, raw: object, kind: object) -> object:
    if name == "data_roots" and isinstance(raw, list | tuple):   # TOML: a list of folders
        raw = os.pathsep.join(str(x) for x in raw)
    text = str(raw)
    try:
        if kind in (bool, "bool"):
            if text.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes", "on")
        if name == "use_gpu":
            return None if text.lower() in ("", "auto", "none") else text.lower() in (
                "1", "true", "yes", "on")
        if kind in (int, "int"):
            return int(text)
        if kind in (float, "float"):
            return float(text)
        if name in ("home", "encoder"):
            return Path(text).expanduser()
        return text
    except ValueError as exc:
        raise ConfigError(f"setting {name}={text!r} is not a valid {kind}") from exc


def load_settings(home: str | Path | None = None, **overrides: object) -> Settings:
    """Merge the four layers; unknown keys in config.toml or overrides are errors."""
    names = {f.name: f.type for f in fields(Settings)}
    env_home = os.environ.get("REGEN_HOME")
    s = Settings(home=Path(home or env_home or DEFAULT_HOME).expanduser())
    layers: list[tuple[str, dict]] = []
    cfg_file = s.home / "config.toml"
    if cfg_file.exists():
        try:
            layers.append((str(cfg_file), tomllib.loads(cfg_file.read_text())))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{cfg_file}: not valid TOML ({exc})") from exc
    env = {k[6:].lower(): v for k, v in os.environ.items()
           if k.startswith("REGEN_") and k != "REGEN_HOME"}
    layers.append(("environment (REGEN_*)", {k: v for k, v in env.items() if k in names}))
    layers.append(("arguments", {k: v for k, v in overrides.items() if v is not None}))
    for where, layer in layers:
        unknown = sorted(set(layer) - set(names) - {"home"})
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(names)}")
        vals: dict[str, Any] = {k: _coerce(k, v, names[k]) for k, v in layer.items()
                                if k != "home"}
        s = replace(s, **vals)
    if s.k < 1:
        raise ConfigError(f"k={s.k}; expected at least 1 neighbour")
    if s.refiner not in REFINERS:
        known = ", ".join(repr(r) for r in REFINERS[:-1]) + f" or {REFINERS[-1]!r}"
        raise ConfigError(f"refiner={s.refiner!r} is unknown; expected {known} (the --refiner "
                          "flag, REGEN_REFINER or refiner in HOME/config.toml)")
    s.search_param_values  # noqa: B018 - raises ConfigError when malformed
    if s.engine not in ENGINES:
        engines = ", ".join(repr(e) for e in ENGINES[:-1]) + f" or {ENGINES[-1]!r}"
        raise ConfigError(f"engine={s.engine!r}; expected {engines}")
    if s.numeric_ranges not in ("clinical", "ecgqa") and not Path(s.numeric_ranges).is_file():
        raise ConfigError(f"numeric_ranges={s.numeric_ranges!r}; expected 'clinical', 'ecgqa' "
                          "or the path of a ranges file (bench/numeric_ranges.py --write)")
    if s.local_llm_budget_s <= 0:
        raise ConfigError(f"local_llm_budget_s={s.local_llm_budget_s}; expected > 0 seconds")
    if s.llm_retries < 0 or s.llm_timeout <= 0 or s.llm_max_tokens < 1:
        raise ConfigError(f"llm_retries={s.llm_retries}, llm_timeout={s.llm_timeout}, "
                          f"llm_max_tokens={s.llm_max_tokens}; expected retries >= 0, "
                          "timeout > 0 and max_tokens >= 1")
    if s.max_k < 1 or s.serve_workers < 1 or s.serve_processes < 1 or s.max_body_bytes < 1024:
        raise ConfigError(f"max_k={s.max_k}, serve_workers={s.serve_workers}, serve_processes="
                          f"{s.serve_processes}, max_body_bytes={s.max_body_bytes}; expected "
                          "max_k, serve_workers and serve_processes >= 1 and max_body_bytes >= "
                          "1024")
    if s.request_timeout_s <= 0 or s.keep_alive_s <= 0:
        raise ConfigError(f"request_timeout_s={s.request_timeout_s}, keep_alive_s="
                          f"{s.keep_alive_s}; expected both > 0 seconds")
    if s.scan_async_after_s < 0 or s.scan_job_ttl_s <= 0 or s.scan_max_jobs < 1:
        raise ConfigError(f"scan_async_after_s={s.scan_async_after_s}, scan_job_ttl_s="
                          f"{s.scan_job_ttl_s}, scan_max_jobs={s.scan_max_jobs}; expected "
                          ">= 0 s, > 0 s and >= 1")
    return s
