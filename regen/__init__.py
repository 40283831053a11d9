"""regen: retrieval-augmented ECG report generation. Decision support, not diagnosis."""

from regen.api import Regen
from regen.corpus import SUPERCLASSES, CorpusRecord, load_folder, load_mimic_ecg, load_ptbxl
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
