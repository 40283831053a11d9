"""EDF / EDF+ files read by data records, so a long recording is never held whole.

`EDFFile(path)` parses the header (the 256-byte fixed part and 256 bytes per signal, as the
EDF specification lays them out: https://www.edfplus.info/specs/edf.html); `.read(a, b)` reads
only the data records that hold samples a..b. `regen.scan` streams EDF through it; `read_ecg`
keeps wfdb's whole-file reader, which the tests use as this reader's oracle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from regen.errors import ECGReadError

# (field, width in bytes) of each signal's header part, in file order
_SIGNAL_FIELDS = (("label", 16), ("transducer", 80), ("dimension", 8), ("physical_min", 8),
                  ("physical_max", 8), ("digital_min", 8), ("digital_max", 8),
                  ("prefilter", 80), ("samples", 8), ("reserved", 32))


class EDFFile:
    """An EDF/EDF+ file's signals (an EDF+ annotation channel left out), which must share one
    sampling rate. fs (Hz), leads (labels), n (samples per signal); `read(a, b)` -> (leads,
    b - a) float32 in mV."""

    def __init__(self, path: str | Path):
        from regen.reader import _UNIT_TO_MV

        self.path = Path(path)
        if not self.path.is_file():
            raise ECGReadError(f"{self.path}: no such EDF file")
        with self.path.open("rb") as f:
            fixed = f.read(256)
            if len(fixed) < 256:
                raise ECGReadError(f"{self.path}: {len(fixed)} bytes; an EDF header has at "
                                   "least 256: check that the file is EDF and complete")
            header_bytes = self._int(fixed[184:192], "header bytes (184-192)")
            n_records = self._int(fixed[236:244], "number of data records (236-244)")
            duration = self._float(fixed[244:252], "data record duration (244-252)")
            ns = self._int(fixed[252:256], "number of signals (252-256)")
            if ns < 1 or header_bytes != 256 * (ns + 1) or duration <= 0:
                raise ECGReadError(f"{self.path}: header says {ns} signals, {header_bytes} "
                                   f"header bytes, records of {duration:g} s; expected >= 1 "
                                   "signal, 256 x (signals + 1) header bytes and a positive "
                                   "duration")
            raw = f.read(256 * ns)
        if fixed[192:197] == b"EDF+D":
            raise ECGReadError(f"{self.path}: an EDF+D file (interrupted recording, its data "
                               "records not contiguous in time); export it as EDF+C or EDF "
                               "with the gaps filled")
        fields: dict[str, list[str]] = {}
        at = 0
        for name, width in _SIGNAL_FIELDS:
            fields[name] = [raw[at + i * width: at + (i + 1) * width].decode("ascii", "replace")
                            .strip() for i in range(ns)]
            at += width * ns
        spr = [self._int(x.encode(), f"samples per record of signal {i + 1}")
               for i, x in enumerate(fields["samples"])]
        self._spr = np.array(spr, np.int64)
        self._offset = np.concatenate([[0], np.cumsum(self._spr)])     # in samples
        self._record_bytes = 2 * int(self._spr.sum())
        self._header_bytes = header_bytes
        size = self.path.stat().st_size - header_bytes
        whole = size // self._record_bytes if self._record_bytes else 0
        if n_records < 0:           # -1: unknown (a recording still being written)
            n_records = whole
        if whole < n_records:
            raise ECGReadError(f"{self.path}: holds {whole} complete data records, its header "
                               f"says {n_records}; the file is truncated")
        self.n_records = n_records
        self.keep = [i for i, lab in enumerate(fields["label"])
                     if "annotation" not in lab.lower()]
        if not self.keep or n_records == 0:
            raise ECGReadError(f"{self.path}: the EDF file holds no signal")
        rates = sorted({int(spr[i]) for i in self.keep})
        if len(rates) > 1:
            raise ECGReadError(f"{self.path}: its signals have different sampling rates "
                               f"({rates} samples per record); export the ECG leads at one "
                               "rate")
        self.spr = rates[0]
        self.fs = self.spr / duration
        self.leads = tuple(fields["label"][i] for i in self.keep)
        self.n = self.spr * n_records
        gain, offset = [], []
        for i in self.keep:
            unit = fields["dimension"][i].lower()
            if unit not in _UNIT_TO_MV:
                raise ECGReadError(f"{self.path}: signal {fields['label'][i]!r} has unit "
                                   f"{fields['dimension'][i]!r}; expected mV, uV or V")
            pmin, pmax, dmin, dmax = (self._float(fields[k][i].encode(), f"{k} of signal {i + 1}")
                                      for k in ("physical_min", "physical_max", "digital_min",
                                                "digital_max"))
            if dmax <= dmin:
                raise ECGReadError(f"{self.path}: signal {fields['label'][i]!r} has digital "
                                   f"range {dmin:g}..{dmax:g}; expected minimum < maximum")
            g = (pmax - pmin) / (dmax - dmin)
            gain.append(g * _UNIT_TO_MV[unit])
            offset.append((pmin - g * dmin) * _UNIT_TO_MV[unit])
        self._gain = np.array(gain, np.float64)[:, None]
        self._zero = np.array(offset, np.float64)[:, None]

    def _int(self, b: bytes, what: str) -> int:
        try:
            return int(b.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise ECGReadError(f"{self.path}: header field {what} is {b[:16]!r}; expected an "
                               "integer (is this an EDF file?)") from None

    def _float(self, b: bytes, what: str) -> float:
        try:
            return float(b.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise ECGReadError(f"{self.path}: header field {what} is {b[:16]!r}; expected a "
                               "number (is this an EDF file?)") from None

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples a..b (clipped to the record) of the kept signals -> (leads, b - a) float32
        mV, reading only the data records that hold them."""
        b = min(b, self.n)
        if b <= a:
            return np.zeros((len(self.keep), 0), np.float32)
        r0, r1 = a // self.spr, -(-b // self.spr)
        with self.path.open("rb") as f:
            f.seek(self._header_bytes + r0 * self._record_bytes)
            raw = np.frombuffer(f.read((r1 - r0) * self._record_bytes), "<i2")
        blocks = raw.reshape(r1 - r0, -1)                    # (records, all samples of one)
        # (records, spr) per kept signal -> (leads, records * spr)
        d = np.stack([blocks[:, self._offset[i]:self._offset[i + 1]].reshape(-1)
                      for i in self.keep])
        d = d[:, a - r0 * self.spr: b - r0 * self.spr]
        return (d * self._gain + self._zero).astype(np.float32)


def write_edf(path: str | Path, chunks: Iterable[np.ndarray], fs: float,
              leads: Sequence[str], n_samples: int, gain: float = 200.0,
              record_s: float = 1.0) -> Path:
    """Write an EDF file (16-bit, `gain` units per mV, data records of `record_s` seconds) from
    `chunks` of (leads, samples) mV arrays totalling n_samples, one chunk in memory at a time;
    the last data record is padded with zeros. Test and bench material (long EDF files from
    real signals)."""
    spr = fs * record_s
    if spr != int(spr) or spr < 1:
        raise ECGReadError(f"write_edf: {fs:g} Hz x {record_s:g} s is not a whole number of "
                           "samples per data record; choose another record_s")
    spr = int(spr)
    n_rec, ns = -(-n_samples // spr), len(leads)
    lo, hi = -32768, 32767

    def text(v: object, width: int) -> bytes:
        b = str(v).encode("ascii")
        if len(b) > width:
            raise ECGReadError(f"write_edf: {v!r} does not fit an EDF field of {width} bytes")
        return b.ljust(width)

    head = (text(0, 8) + text("X X X X", 80) + text("Startdate X X X X", 80)
            + text("01.01.00", 8) + text("00.00.00", 8) + text(256 * (ns + 1), 8)
            + text("", 44) + text(n_rec, 8) + text(f"{record_s:g}", 8) + text(ns, 4))
    per = {"label": [text(x, 16) for x in leads], "transducer": [text("", 80)] * ns,
           "dimension": [text("mV", 8)] * ns,
           "physical_min": [text(f"{lo / gain:g}", 8)] * ns,
           "physical_max": [text(f"{hi / gain:g}", 8)] * ns,
           "digital_min": [text(lo, 8)] * ns, "digital_max": [text(hi, 8)] * ns,
           "prefilter": [text("", 80)] * ns, "samples": [text(spr, 8)] * ns,
           "reserved": [text("", 32)] * ns}
    out = Path(path)
    rest = np.zeros((ns, 0), np.int16)
    with out.open("wb") as f:
        f.write(head + b"".join(b"".join(per[k]) for k, _ in _SIGNAL_FIELDS))
        written = 0
        for chunk in chunks:
            d = np.clip(np.round(np.asarray(chunk, np.float64) * gain), lo, hi).astype("<i2")
            rest = np.concatenate([rest, d], axis=1)
            whole = rest.shape[1] // spr * spr
            # (leads, records, spr) -> (records, leads, spr): a data record holds each
            # signal's samples in turn
            f.write(rest[:, :whole].reshape(ns, -1, spr).transpose(1, 0, 2).tobytes())
            written += whole
            rest = rest[:, whole:]
        if rest.shape[1]:
            pad = np.zeros((ns, spr), "<i2")
            pad[:, : rest.shape[1]] = rest
            f.write(pad.tobytes())
            written += spr
    if written != n_rec * spr:
        raise ECGReadError(f"write_edf: {out}: chunks held {written} samples per lead (data "
                           f"records rounded up), n_samples said {n_samples}")
    return out


__all__ = ["EDFFile", "write_edf"]
