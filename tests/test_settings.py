"""Settings precedence: defaults < HOME/config.toml < REGEN_* environment < explicit overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regen.errors import ConfigError
from regen.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("REGEN_"):
            monkeypatch.delenv(key)


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)
    return home


def test_defaults_without_config(tmp_path: Path) -> None:
    s = load_settings(tmp_path)
    assert s == Settings(home=tmp_path)
    assert (s.k, s.factory, s.language, s.batch_size, s.use_gpu) == (10, "Flat", "en", 256, None)
    assert s.db_url == f"sqlite:///{(tmp_path / 'regen.db').resolve()}"
    assert s.index_dir == tmp_path / "indexes"


def test_four_layers_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, 'k = 5\nfactory = "IVF64,Flat"\nbatch_size = 64\n'
                           'language = "orig"\nmin_confidence = 0.5\n')
    monkeypatch.setenv("REGEN_K", "7")
    monkeypatch.setenv("REGEN_FACTORY", "HNSW32")
    monkeypatch.setenv("REGEN_MIN_CONFIDENCE", "0.25")
    s = load_settings(tmp_path, k=9)
    assert s.k == 9                          # override beats environment and file
    assert s.factory == "HNSW32"             # environment beats file
    assert s.min_confidence == 0.25
    assert s.batch_size == 64                # file beats default
    assert s.language == "orig"
    assert s.refiner == "findings"           # default where no layer speaks
    assert isinstance(s.k, int) and isinstance(s.min_confidence, float)


def test_none_override_falls_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, "k = 5\n")
    monkeypatch.setenv("REGEN_K", "7")
    assert load_settings(tmp_path, k=None).k == 7
    monkeypatch.delenv("REGEN_K")
    assert load_settings(tmp_path, k=None).k == 5


def test_regen_home_environment_picks_the_config(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    env_home = write_config(tmp_path / "env", "k = 3\n")
    arg_home = write_config(tmp_path / "arg", "k = 4\n")
    monkeypatch.setenv("REGEN_HOME", str(env_home))
    s = load_settings()
    assert (s.home, s.k) == (env_home, 3)
    s = load_settings(arg_home)  # an explicit home beats REGEN_HOME
    assert (s.home, s.k) == (arg_home, 4)


def test_paths_and_gpu_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, 'encoder = "~/enc"\nuse_gpu = true\n')
    s = load_settings(tmp_path)
    assert s.encoder == Path("~/enc").expanduser() and s.use_gpu is True
    for raw, expected in (("auto", None), ("0", False), ("yes", True)):
        monkeypatch.setenv("REGEN_USE_GPU", raw)
        assert load_settings(tmp_path).use_gpu is expected


def test_unknown_key_in_config_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "k = 5\nneighbours = 3\n") / "config.toml"
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(cfg) in str(err.value) and "neighbours" in str(err.value)


def test_unknown_override() -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_settings(Path("unused-home"), colour="blue")


def test_bad_int_in_config_file(tmp_path: Path) -> None:
    write_config(tmp_path, 'k = "many"\n')
    with pytest.raises(ConfigError, match="k='many'"):
        load_settings(tmp_path)


def test_bad_int_in_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGEN_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="batch_size='lots'"):
        load_settings(tmp_path)


def test_bad_float_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="min_confidence"):
        load_settings(tmp_path, min_confidence="high")


def test_invalid_toml(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "k = = 5\n") / "config.toml"
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path)
    assert str(cfg) in str(err.value) and "TOML" in str(err.value)


def test_k_below_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="k=0"):
        load_settings(tmp_path, k=0)


def test_serve_settings_from_toml_and_environment(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "config.toml").write_text(
        f'data_roots = ["{tmp_path / "a"}", "{tmp_path}/b/../a"]\nshow_paths = true\n'
        "max_k = 20\n")
    monkeypatch.setenv("REGEN_API_TOKEN", "Zq9-secret")
    monkeypatch.setenv("REGEN_KEEP_ALIVE_S", "2.5")
    s = load_settings(tmp_path)
    assert s.data_root_paths == ((tmp_path / "a").resolve(),) * 2
    assert s.show_paths is True and s.max_k == 20 and s.keep_alive_s == 2.5
    assert s.api_token == "Zq9-secret" and "Zq9-secret" not in repr(s)
    assert load_settings(tmp_path, show_paths="off").show_paths is False


@pytest.mark.parametrize(("name", "value", "says"), [
    ("show_paths", "maybe", "not a valid bool"),
    ("max_k", "0", "max_k=0"),
    ("serve_workers", "0", "serve_workers=0"),
    ("max_body_bytes", "10", "max_body_bytes=10"),
    ("keep_alive_s", "0", "keep_alive_s=0.0"),
])
def test_bad_serve_settings(tmp_path: Path, name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings(tmp_path, **{name: value})
