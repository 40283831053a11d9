"""The ECG value object and the lead vocabulary every stage shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from regen.errors import ECGReadError

STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)

# Sampling rates that can hold an ECG: below 50 Hz the QRS complex (~100 ms) is one or two
# samples, and rates far below it made resampling allocate gigabytes; above 10 kHz no ECG device
# records, and the resampler's rational approximation breaks down.
MIN_FS, MAX_FS = 50.0, 10_000.0

# Spellings seen in WFDB headers of PTB-XL, PTB, MIT-BIH, MIMIC-IV-ECG and device exports,
# keyed by their normalised form (upper case, no spaces, dashes or underscores).
_ALIASES: dict[str, str] = {
    "I": "I", "II": "II", "III": "III",
    "AVR": "aVR", "AVL": "aVL", "AVF": "aVF",
    "V1": "V1", "V2": "V2", "V3": "V3", "V4": "V4", "V5": "V5", "V6": "V6",
    # MIT-BIH modified limb leads are placed like the standard ones for rhythm monitoring.
    "MLI": "I", "MLII": "II", "MLIII": "III",
    "LEADI": "I", "LEADII": "II", "LEADIII": "III",
    "MV1": "V1", "MV2": "V2", "MV3": "V3", "MV4": "V4", "MV5": "V5", "MV6": "V6",
}


# Where a question places a finding: "... in lead aVL", "... in limb leads", "... in chest
# leads" (any case). The one definition for questions (regen.qa) and noise questions
# (regen.quality); group "lead" is the lower-case lead when one lead is named.
LEAD_PHRASE = re.compile(r"\bin (?:lead (?P<lead>iii|ii|i|avr|avl|avf|v[1-6])|limb leads|"
                         r"chest leads)\b", re.IGNORECASE)


def lead_in(text: str) -> str | None:
    """The standard name of the one lead a question names: "... in lead avl?" -> "aVL";
    None when it names none, or a group of leads ("in limb leads")."""
    m = LEAD_PHRASE.search(text)
    return None if m is None or m["lead"] is None else standard_lead(m["lead"])


def standard_lead(name: str) -> str | None:
    """The standard 12-lead name for a header's lead name, or None if it is not one of them.

    `standard_lead("avr") == "aVR"`, `standard_lead("MLII") == "II"`, `standard_lead("vx") is None`.
    """
    key = re.sub(r"[\s_\-]", "", name).upper()
    # EDF and monitor exports prefix the lead: "ECG I", "EKG V1", "ECG-aVR"
    return _ALIASES.get(key) or _ALIASES.get(re.sub(r"^(?:ECG|EKG)", "", key))


@dataclass(frozen=True, eq=False)
class ECG:
    """One recording as read from disk, before any preparation.

    signal: (leads, samples) float32 in millivolts. fs: sampling rate in Hz.
    leads: the names as the source spells them (see `standard_lead` for the mapping).
    """

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    id: str
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or self.id
        if self.signal.ndim != 2:
            raise ECGReadError(
                f"{where}: signal has shape {self.signal.shape}; expected (leads, samples)"
            )
        if self.signal.shape[0] != len(self.leads):
            raise ECGReadError(
                f"{where}: {self.signal.shape[0]} signal rows but {len(self.leads)} lead names"
            )
        if not self.fs > 0 or not np.isfinite(self.fs):
            raise ECGReadError(f"{where}: sampling rate is {self.fs}; "
                               f"expected a positive number of Hz")
        if not MIN_FS <= self.fs <= MAX_FS:
            raise ECGReadError(f"{where}: sampling rate is {self.fs:g} Hz; expected "
                               f"{MIN_FS:g}-{MAX_FS:g} Hz for an ECG: correct the rate recorded "
                               f"with the signal")

    @property
    def n_leads(self) -> int:
        return int(self.signal.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def select(self, leads: list[str] | tuple[str, ...]) -> ECG:
        """A copy holding only the named leads (standard names or the source's own spelling)."""
        wanted = [standard_lead(x) or x for x in leads]
        mine = [standard_lead(x) or x for x in self.leads]
        missing = [w for w in wanted if w not in mine]
        if missing:
            raise ECGReadError(
                f"{self.source or self.id}: has no lead {missing}; its leads are {list(self.leads)}"
            )
        rows = [mine.index(w) for w in wanted]
        return ECG(self.signal[rows], self.fs, tuple(self.leads[r] for r in rows), self.id,
                   self.source, dict(self.meta))
