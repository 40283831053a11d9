"""Prompt templates are files in `prompts/`, rendered with Jinja2 StrictUndefined (a missing
variable is an error) and identified by the hash of their content, which every generation logs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from regen.errors import ConfigError


def _prompts_dir() -> Path:
    """The top-level `prompts/` of a source checkout, else the copy an installed wheel ships
    as `regen/_prompts/` (pyproject.toml maps the folder there)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "prompts"
    return checkout if checkout.is_dir() else here / "_prompts"


PROMPTS_DIR = _prompts_dir()


@dataclass(frozen=True)
class Prompt:
    name: str
    source: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:12]

    def render(self, **values: object) -> str:
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                                 keep_trailing_newline=True)
        try:
            return env.from_string(self.source).render(**values)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt {self.name!r}: {exc}; pass it when rendering") from exc


def load_prompt(name: str, folder: str | Path = PROMPTS_DIR) -> Prompt:
    path = Path(folder) / f"{name}.j2"
    if not path.exists():
        have = sorted(p.stem for p in Path(folder).glob("*.j2"))
        raise ConfigError(f"{path}: no such prompt; available: {have}")
    return Prompt(name, path.read_text(encoding="utf-8"))
