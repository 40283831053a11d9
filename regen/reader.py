"""Reading recordings from disk into `ECG` values: WFDB records and numpy arrays.

Every failure is an `ECGReadError` naming the file, the field and the fix.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from regen.ecg import ECG, MAX_FS, MIN_FS, standard_lead
from regen.errors import ECGReadError

# Bytes per sample for the WFDB storage formats whose size is a plain multiple of the samples.
_BYTES_PER_SAMPLE = {"8": 1.0, "16": 2.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5,
                     "24": 3.0, "32": 4.0, "310": 4 / 3, "311": 4 / 3}
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


def read_ecg(path: str | Path, *, fs: float | None = None,
             leads: tuple[str, ...] | list[str] | None = None) -> ECG:
    """Read one recording.

    path: a WFDB record (`rec`, `rec.hea` or `rec.dat`), an EDF/EDF+ file (`.edf`), a `.npy`
    array (leads, samples) in mV, or an `.npz` with `signal` (leads, samples) and optionally `fs`
    and `leads`.
    fs / leads: required for `.npy` (and `.npz` without them); ignored for WFDB, whose header says.
    Returns an ECG with a float32 (leads, samples) signal in millivolts.
    """
    p = Path(path)
    if p.is_dir():
        raise ECGReadError(f"{p}: is a directory; pass a recording file (a WFDB record, .edf, "
                           f".npy or .npz)")
    suffix = p.suffix.lower()
    try:
        if suffix in (".npy", ".npz"):
            ecg = _read_numpy(p, fs, leads)
        elif suffix == ".edf":
            ecg = _read_edf(p)
        else:
            ecg = _read_wfdb(p.with_suffix("") if suffix in (".hea", ".dat") else p)
    except OSError as exc:  # permission denied, a directory where a file should be, I/O errors
        where = exc.filename or p
        raise ECGReadError(f"{where}: cannot be read ({exc.strerror or exc}); check that it is "
                           f"a readable file") from exc
    _check_signal(ecg)
    if not (ecg.source + ecg.id).isascii():
        # A file name in another encoding reaches Python as lone surrogates (PEP 383), which no
        # database or JSON output accepts: keep the undecodable bytes as visible escapes.
        ecg = replace(ecg, id=_printable(ecg.id), source=_printable(ecg.source))
    return ecg


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _check_fs(where: Path, fs: float, field: str) -> None:
    """Refuse a rate that cannot hold an ECG before any sample is read or resampled."""
    if not MIN_FS <= fs <= MAX_FS:
        raise ECGReadError(f"{where}: {field} is {fs:g} Hz; expected {MIN_FS:g}-{MAX_FS:g} Hz "
                           f"for an ECG: correct it to the rate the signal was recorded at")


def _read_wfdb(record: Path) -> ECG:
    hea = record.parent / (record.name + ".hea")
    if not hea.exists():
        raise ECGReadError(f"{hea}: no such WFDB header; pass a record path like "
                           f"'records100/00000/00001_lr' (with its .hea and .dat beside it)")
    fast = _read_format16(record, hea)
    if fast is not None:
        return fast
    import wfdb  # heavy; the general path for every other WFDB variant
    try:
        header = wfdb.rdheader(str(record))
    except Exception as exc:  # wfdb raises bare ValueError/IndexError on malformed headers
        raise ECGReadError(f"{hea}: malformed WFDB header ({exc})") from exc
    n_sig = int(header.n_sig or 0)
    if n_sig == 0:
        raise ECGReadError(f"{hea}: header declares zero leads; expected at least one signal line")
    if not header.fs or header.fs <= 0:
        raise ECGReadError(f"{hea}: sampling frequency is {header.fs}; "
                           f"expected a positive number of Hz on the record line")
    _check_fs(hea, float(header.fs), "the sampling frequency (record line, field 3)")
    _check_dat_size(record, header)
    try:
        rec = wfdb.rdrecord(str(record), physical=True)
    except Exception as exc:
        raise ECGReadError(f"{record}: could not read samples ({exc}); "
                           f"check that the .dat file matches its header") from exc
    sig = np.asarray(rec.p_signal, dtype=np.float64).T  # (samples, leads) -> (leads, samples)
    scale = []
    for name, unit in zip(rec.sig_name, rec.units or [""] * n_sig):
        key = (unit or "").strip().lower()
        if key not in _UNIT_TO_MV:
            raise ECGReadError(f"{hea}: lead {name!r} has unit {unit!r}; expected mV, uV or V")
        scale.append(_UNIT_TO_MV[key])
    sig = sig * np.asarray(scale)[:, None]
    meta = {"comments": " | ".join(rec.comments or [])} if rec.comments else {}
    return ECG(sig.astype(np.float32), float(rec.fs), tuple(rec.sig_name), record.name,
               str(record), meta)


def _read_edf(path: Path) -> ECG:
    """An EDF/EDF+ file through wfdb's reader. Its signals must share one sampling rate (an
    EDF+ annotation channel is dropped); units are converted to mV."""
    if not path.exists():
        raise ECGReadError(f"{path}: no such EDF file")
    from wfdb.io.convert.edf import read_edf

    try:
        rec = read_edf(str(path))
    except Exception as exc:  # wfdb raises bare errors on malformed files
        raise ECGReadError(f"{path}: not a readable EDF file ({type(exc).__name__}: {exc}); "
                           "check that it is EDF/EDF+ and complete") from exc
    if rec.p_signal is None or not rec.sig_name:
        raise ECGReadError(f"{path}: the EDF file holds no signal")
    keep = [i for i, name in enumerate(rec.sig_name) if "annotation" not in name.lower()]
    rates = {float(rec.samps_per_frame[i]) for i in keep} if rec.samps_per_frame else {1.0}
    if len(rates) > 1:
        raise ECGReadError(f"{path}: its signals have different sampling rates "
                           f"({sorted(rates)} samples per record); export the ECG leads at one "
                           "rate")
    scale = []
    for i in keep:
        unit = (rec.units[i] if rec.units else "").strip().lower()
        if unit not in _UNIT_TO_MV:
            raise ECGReadError(f"{path}: signal {rec.sig_name[i]!r} has unit {rec.units[i]!r}; "
                               "expected mV, uV or V")
        scale.append(_UNIT_TO_MV[unit])
    sig = np.asarray(rec.p_signal, dtype=np.float64)[:, keep].T * np.asarray(scale)[:, None]
    return ECG(sig.astype(np.float32), float(rec.fs), tuple(rec.sig_name[i] for i in keep),
               path.stem, str(path))


_GAIN = re.compile(r"^(?P<gain>[-+\d.eE]+)(?:\((?P<base>-?\d+)\))?(?:/(?P<units>\S+))?$")


def _signal_line(line: str) -> dict[str, str] | None:
    """file format gain(baseline)/units adcres adczero initval checksum blocksize description"""
    tok = line.split(maxsplit=8)
    if len(tok) < 3 or not tok[1].isdigit():
        return None
    g = _GAIN.match(tok[2])
    if g is None:
        return None
    # Without "(baseline)" WFDB takes the ADC zero (5th field) as the baseline.
    zero = tok[4] if len(tok) > 4 else "0"
    return {"file": tok[0], "fmt": tok[1], "gain": g["gain"], "base": g["base"] or zero,
            "units": g["units"] or "", "name": tok[8] if len(tok) == 9 else ""}


def _read_format16(record: Path, hea: Path) -> ECG | None:
    """Fast path for the common single-file, format-16 header (PTB-XL, MIMIC-IV-ECG): parsed
    here and read with numpy, the same values as wfdb. None when the header is anything else."""
    lines = [ln.strip() for ln in hea.read_text(errors="replace").splitlines()]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body:
        return None
    head = body[0].split()
    if len(head) < 4 or "/" in head[0] or not head[1].isdigit():
        return None
    n_sig = int(head[1])
    try:
        fs = float(head[2].split("/")[0].split("(")[0])
        sig_len = int(head[3])
    except ValueError:
        return None
    sigs = [_signal_line(ln) for ln in body[1:1 + n_sig]]
    if n_sig == 0 or len(sigs) != n_sig or not all(sigs) or fs <= 0 or sig_len <= 0:
        return None  # the general path gives the precise error
    _check_fs(hea, fs, "the sampling frequency (record line, field 3)")
    m = [x for x in sigs if x is not None]
    if {x["fmt"] for x in m} != {"16"} or len({x["file"] for x in m}) != 1:
        return None
    dat = _signal_file(record, hea, m[0]["file"])
    if not dat.exists():
        raise ECGReadError(f"{dat}: signal file named in {hea} is missing")
    need = sig_len * n_sig * 2
    have = dat.stat().st_size
    if have < need:
        raise ECGReadError(f"{dat}: holds {have} bytes but its header promises {sig_len} samples "
                           f"x {n_sig} leads ({need} bytes); the file is truncated or the "
                           f"header's signal length is wrong")
    raw = np.fromfile(dat, dtype="<i2", count=sig_len * n_sig).reshape(sig_len, n_sig).T
    gain = np.array([float(x["gain"]) or 200.0 for x in m])[:, None]
    base = np.array([int(x["base"]) if x["base"] else 0 for x in m])[:, None]
    scale = []
    for x in m:
        unit = (x["units"] or "mV").lower()
        if unit not in _UNIT_TO_MV:
            raise ECGReadError(f"{hea}: lead {x['name']!r} has unit {x['units']!r}; "
                               f"expected mV, uV or V")
        scale.append(_UNIT_TO_MV[unit])
    sig = (raw - base) / gain * np.asarray(scale)[:, None]
    sig[raw == -32768] = np.nan                        # WFDB's invalid-sample marker
    comments = [ln[1:].strip() for ln in lines if ln.startswith("#")]
    meta = {"comments": " | ".join(comments)} if comments else {}
    names = tuple(x["name"].strip() or f"sig{i}" for i, x in enumerate(m))
    return ECG(sig.astype(np.float32), fs, names, record.name, str(record), meta)


def _signal_file(record: Path, hea: Path, fname: str) -> Path:
    """The signal file a header names, which must lie beside the header: a name like
    `../../etc/passwd` or `/etc/passwd` would read any file on the machine as samples."""
    if not fname or Path(fname).name != fname or fname in (".", ".."):
        raise ECGReadError(f"{hea}: signal file {fname[:200]!r} is not a plain file name; "
                           f"expected a file beside the header, like {record.name}.dat")
    return record.parent / fname


def _check_dat_size(record: Path, header: object) -> None:
    """A header that promises more samples than its .dat holds is an error, not a short read."""
    sig_len = int(getattr(header, "sig_len", 0) or 0)
    files = getattr(header, "file_name", None) or []
    fmts = getattr(header, "fmt", None) or []
    for fname in sorted(set(files)):
        dat = _signal_file(record, record.parent / (record.name + ".hea"), fname)
        if not dat.exists():
            raise ECGReadError(f"{dat}: signal file named in {record}.hea is missing")
        idx = [i for i, f in enumerate(files) if f == fname]
        per = [_BYTES_PER_SAMPLE.get(str(fmts[i])) for i in idx]
        if sig_len and all(b is not None for b in per):
            need = int(np.floor(sig_len * sum(b for b in per if b is not None)))
            have = dat.stat().st_size
            if have < need:
                raise ECGReadError(
                    f"{dat}: holds {have} bytes but its header promises {sig_len} samples x "
                    f"{len(idx)} leads ({need} bytes); the file is truncated or the header's "
                    f"signal length is wrong")


def _read_numpy(p: Path, fs: float | None, leads: tuple[str, ...] | list[str] | None) -> ECG:
    if not p.exists():
        raise ECGReadError(f"{p}: no such file")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise ECGReadError(f"{p}: not a readable numpy file ({exc})") from exc
    if isinstance(data, np.lib.npyio.NpzFile):
        if "signal" not in data.files:
            raise ECGReadError(f"{p}: has arrays {data.files}; expected one named 'signal' "
                               f"(leads, samples) in mV, with optional 'fs' and 'leads'")
        sig = data["signal"]
        if "fs" in data.files:
            fs = _npz_fs(p, data["fs"])
        if "leads" in data.files:
            leads = tuple(str(x) for x in data["leads"])
    else:
        sig = data
    if fs is None:
        raise ECGReadError(f"{p}: sampling rate unknown; pass fs=... (CLI: --fs) or store 'fs' "
                           f"in an .npz")
    sig = np.asarray(sig)
    if sig.ndim == 1:
        sig = sig[None, :]
    if np.iscomplexobj(sig):
        raise ECGReadError(f"{p}: array is complex ({sig.dtype}); expected real millivolts: "
                           f"save the real part (np.real) if that is the signal")
    if sig.ndim != 2 or not np.issubdtype(sig.dtype, np.number):
        raise ECGReadError(f"{p}: array has shape {sig.shape} and dtype {sig.dtype}; "
                           f"expected a numeric (leads, samples) array")
    if leads is None:
        if sig.shape[0] == 12:
            from regen.ecg import STANDARD_LEADS
            leads = STANDARD_LEADS
        else:
            raise ECGReadError(f"{p}: {sig.shape[0]} leads but no lead names; pass leads=[...] "
                               f"(CLI: --leads I,II,...) or store 'leads' in an .npz")
    if len(leads) != sig.shape[0]:
        raise ECGReadError(f"{p}: {sig.shape[0]} signal rows but {len(leads)} lead names")
    if not fs > 0:
        raise ECGReadError(f"{p}: sampling rate is {fs}; expected a positive number of Hz")
    _check_fs(p, float(fs), "the sampling rate 'fs'")
    return ECG(sig.astype(np.float32), float(fs), tuple(leads), p.stem, str(p))


def _npz_fs(p: Path, value: np.ndarray) -> float:
    """An .npz's `fs` array as one float, or an error naming the field."""
    if value.size != 1 or not (np.issubdtype(value.dtype, np.integer)
                               or np.issubdtype(value.dtype, np.floating)):
        raise ECGReadError(f"{p}: 'fs' is a {value.dtype} array of shape {value.shape}; expected "
                           f"one number of Hz: save it as fs=100.0")
    return float(value.reshape(()))


def _check_signal(ecg: ECG) -> None:
    where = ecg.source or ecg.id
    if ecg.n_leads == 0 or ecg.n_samples == 0:
        raise ECGReadError(f"{where}: signal is empty ({ecg.n_leads} leads x {ecg.n_samples} "
                           f"samples); expected at least one lead with samples")
    bad = ~np.isfinite(ecg.signal)
    if bad.any():
        rows = [f"{ecg.leads[i]} ({int(bad[i].sum())})" for i in np.flatnonzero(bad.any(axis=1))]
        raise ECGReadError(f"{where}: non-finite samples (NaN/inf) in leads {', '.join(rows)}; "
                           f"expected finite millivolts: repair the file or drop those leads")
    known = [name for name in ecg.leads if standard_lead(name)]
    if not known:
        raise ECGReadError(f"{where}: leads {list(ecg.leads)} include none of the 12 standard "
                           f"leads (I, II, III, aVR, aVL, aVF, V1-V6); rename them in the header")
    mapped = [i for i, name in enumerate(ecg.leads) if standard_lead(name)]
    if float(np.ptp(ecg.signal[mapped], axis=1).max()) < 1e-6:
        raise ECGReadError(f"{where}: every lead is a flat line; expected a recorded ECG "
                           f"(check the electrodes or the file's gain)")
