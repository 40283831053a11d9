"""The public surface is explicit and pinned: a change to it is a deliberate API change."""

import db
import index
import regen

REGEN = {
    "ECG", "Answer", "Comparison", "STANDARD_LEADS", "SUPERCLASSES", "ConfigError",
    "ConsensusRefiner", "CorpusRecord",
    "DataError", "Draft", "ECGReadError", "Encoder", "EncoderConfig", "IndexMismatchError",
    "LLMError", "Measurements", "MissingDependencyError", "Neighbour", "Prepared", "Refiner",
    "Regen", "RegenError",
    "Report", "Settings", "load_folder", "load_mimic_ecg", "load_ptbxl", "load_settings",
    "measure", "prepare", "read_ecg",
    "standard_lead",
}


def test_regen_all_is_pinned():
    assert set(regen.__all__) == REGEN
    for name in regen.__all__:
        assert getattr(regen, name) is not None


def test_index_and_db_know_nothing_of_regen():
    import ast
    from pathlib import Path

    for pkg in (index, db):
        for f in Path(pkg.__file__).parent.glob("*.py"):
            tree = ast.parse(f.read_text())
            mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
            mods |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module}
            assert "regen" not in mods, f
            assert not ({"index", "db"} - {pkg.__name__}) & mods, f
