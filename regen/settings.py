"""Settings, built once at the edge (CLI, `Regen.open`) and passed down as plain values.

Precedence: defaults < HOME/config.toml < REGEN_* environment < explicit overrides (flags).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

import tomllib

from regen.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ENCODER = PACKAGE_DIR / "weights" / "default"
DEFAULT_HOME = Path(".regen")


@dataclass(frozen=True)
class Settings:
    home: Path = DEFAULT_HOME
    database_url: str = ""            # empty: sqlite:///HOME/regen.db
    encoder: Path = DEFAULT_ENCODER
    factory: str = "Flat"             # FAISS factory string for new builds
    k: int = 10                       # neighbours retrieved per query
    language: str = "en"              # report language shown ("en", or "orig" for the source text)
    refiner: str = "consensus"
    min_confidence: float = 0.35      # below this the refiner abstains
    use_gpu: bool | None = None       # None: GPU FAISS when present
    batch_size: int = 256

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'regen.db').resolve()}"

    @property
    def index_dir(self) -> Path:
        return self.home / "indexes"


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
        vals = {k: _coerce(k, v, names[k]) for k, v in layer.items() if k != "home"}
        s = replace(s, **vals)
    if s.k < 1:
        raise ConfigError(f"k={s.k}; expected at least 1 neighbour")
    return s
