"""regen: retrieval-augmented ECG report generation. Decision support, not diagnosis.

The public names load on first use (PEP 562): `import regen` and the command line's start stay
light, and torch, scipy and faiss are imported only by the commands that need them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regen.api import Regen
    from regen.corpus import (
        SUPERCLASSES,
        CorpusRecord,
        load_folder,
        load_mimic_ecg,
        load_ptbxl,
    )
    from regen.ecg import ECG, STANDARD_LEADS, standard_lead
    from regen.encoder import Encoder, EncoderConfig
    from regen.errors import (
        ConfigError,
        DataError,
        ECGReadError,
        IndexMismatchError,
        LLMError,
        MissingDependencyError,
        RegenError,
    )
    from regen.measure import Measurements, measure
    from regen.prepare import Prepared, prepare
    from regen.reader import read_ecg
    from regen.refine import ConsensusRefiner, Draft, Refiner
    from regen.settings import Settings, load_settings
    from regen.types import Answer, Comparison, Neighbour, Report

__version__ = "0.1.0"

# public name -> the module that defines it
_WHERE = {
    "Regen": "api",
    "SUPERCLASSES": "corpus", "CorpusRecord": "corpus", "load_folder": "corpus",
    "load_mimic_ecg": "corpus", "load_ptbxl": "corpus",
    "ECG": "ecg", "STANDARD_LEADS": "ecg", "standard_lead": "ecg",
    "Encoder": "encoder", "EncoderConfig": "encoder",
    "ConfigError": "errors", "DataError": "errors", "ECGReadError": "errors",
    "IndexMismatchError": "errors", "LLMError": "errors", "MissingDependencyError": "errors",
    "RegenError": "errors",
    "Measurements": "measure", "measure": "measure",
    "Prepared": "prepare", "prepare": "prepare",
    "read_ecg": "reader",
    "ConsensusRefiner": "refine", "Draft": "refine", "Refiner": "refine",
    "Settings": "settings", "load_settings": "settings",
    "Answer": "types", "Comparison": "types", "Neighbour": "types", "Report": "types",
}

__all__ = [
    "ECG",
    "Answer",
    "Comparison",
    "STANDARD_LEADS",
    "SUPERCLASSES",
    "ConfigError",
    "ConsensusRefiner",
    "CorpusRecord",
    "DataError",
    "Draft",
    "ECGReadError",
    "Encoder",
    "EncoderConfig",
    "IndexMismatchError",
    "LLMError",
    "Measurements",
    "MissingDependencyError",
    "Neighbour",
    "Prepared",
    "Refiner",
    "Regen",
    "RegenError",
    "Report",
    "Settings",
    "load_folder",
    "load_mimic_ecg",
    "load_ptbxl",
    "load_settings",
    "measure",
    "prepare",
    "read_ecg",
    "standard_lead",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then cached here)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'regen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"regen.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """`regen.measure` and `regen.prepare` are functions named like their modules. Importing the
    module `regen.measure` binds the module to that name here; the public name stays the
    function, as it was before the names loaded lazily."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SAME_NAME and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


_SAME_NAME = frozenset({"measure", "prepare"})
sys.modules[__name__].__class__ = _Package
