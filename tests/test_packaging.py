"""A normal (non-editable) install has every data file regen reads: the noise model behind noise
questions, the LLM prompt templates and the encoder weights. The wheel is built from a copy of
the source (so the checkout gains no build/ folder) and imported from its unpacked files, where
no source checkout is around the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("regen", "index", "db", "prompts"):
        shutil.copytree(ROOT / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(out)], check=True,
                   capture_output=True)
    (whl,) = out.glob("regen-*.whl")
    return whl


def test_wheel_ships_the_noise_model_prompts_and_weights(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    prompts = {f"regen/_prompts/{p.name}" for p in (ROOT / "prompts").glob("*.j2")}
    assert prompts and prompts <= names
    assert {"regen/weights/quality.json", "regen/weights/default/config.json",
            "regen/weights/default/model.safetensors"} <= names


def test_installed_package_finds_prompts_and_noise_model(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import regen.prompts, regen.quality\n"
        "assert regen.prompts.__file__.startswith(sys.argv[1]), regen.prompts.__file__\n"
        "for name in ('report', 'report_local'):\n"
        "    assert regen.prompts.load_prompt(name).source\n"
        "regen.quality.QualityModel.load()\n"
        "print(regen.prompts.PROMPTS_DIR)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "regen" / "_prompts")
