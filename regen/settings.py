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
    refiner: str = "consensus"        # "consensus", "llm" (OpenAI-compatible server), "local"
    min_confidence: float = 0.35      # below this the refiner abstains
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
    local_llm_budget_s: float = 4.0

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
    text = str(raw)
    try:
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
    s.search_param_values  # noqa: B018 - raises ConfigError when malformed
    if s.engine not in ENGINES:
        engines = ", ".join(repr(e) for e in ENGINES[:-1]) + f" or {ENGINES[-1]!r}"
        raise ConfigError(f"engine={s.engine!r}; expected {engines}")
    if s.local_llm_budget_s <= 0:
        raise ConfigError(f"local_llm_budget_s={s.local_llm_budget_s}; expected > 0 seconds")
    if s.llm_retries < 0 or s.llm_timeout <= 0 or s.llm_max_tokens < 1:
        raise ConfigError(f"llm_retries={s.llm_retries}, llm_timeout={s.llm_timeout}, "
                          f"llm_max_tokens={s.llm_max_tokens}; expected retries >= 0, "
                          "timeout > 0 and max_tokens >= 1")
    return s
