"""The one validated config: defaults, overrides, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from amad.config import build_config, config_to_dict, load_config, parse_override, resolve_config
from amad.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_match_the_design() -> None:
    cfg = build_config()
    assert (cfg.windows.length, cfg.model.d_model, cfg.model.n_heads, cfg.model.n_layers) == (
        100,
        512,
        8,
        3,
    )
    assert cfg.model.mask == "spectral" and cfg.train.k == 3.0


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'model\.heads'"):
        build_config({"model": {"heads": 4}})


def test_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        build_config({"modle": {}})


def test_bad_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"model\.mask"):
        build_config({"model": {"mask": "triangle"}})


def test_cross_field_check() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        build_config({"model": {"d_model": 30, "n_heads": 4}})


def test_overrides_apply_and_config_is_frozen() -> None:
    key, value = parse_override("train.epochs=7")
    cfg = build_config({"train": {"epochs": 2}}, {key: value})
    assert cfg.train.epochs == 7
    with pytest.raises(Exception, match="frozen"):
        cfg.train.epochs = 3  # type: ignore[misc]


def test_override_without_equals_is_rejected() -> None:
    with pytest.raises(ConfigError):
        parse_override("train.epochs")


def test_round_trip_through_dict() -> None:
    cfg = build_config({"model": {"mask": "gaussian", "mixup": False}})
    assert build_config(config_to_dict(cfg)) == cfg


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_repository_params_yaml_is_valid() -> None:
    params = REPO / "params.yaml"
    if not params.exists():
        pytest.skip("params.yaml not written yet")
    load_config(params)


def test_resolve_config_refuses_a_missing_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        resolve_config(tmp_path / "parms.yaml")


def test_resolve_config_uses_params_yaml_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config(None).train.epochs == build_config().train.epochs  # no file: defaults
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 7\n")
    assert resolve_config(None).train.epochs == 7
    assert resolve_config(None, {"train.epochs": 2}).train.epochs == 2


def test_profiles_are_yaml_files_that_build_valid_configs() -> None:
    from amad.config import load_profile, profile_names

    assert profile_names() == ["cpu", "gpu"]
    cpu, gpu = (build_config(load_profile(n)) for n in ("cpu", "gpu"))
    assert cpu.train.device == "cpu" and cpu.model.d_model < gpu.model.d_model == 512
    with pytest.raises(ConfigError, match="unknown profile 'tpu'"):
        load_profile("tpu")


def test_the_cpu_profile_is_the_shipped_default() -> None:
    """`amad bench`'s default AMAD (cpu profile) is params.yaml's model, windows, train and score
    sections, except the keys cpu.yaml lists (budget floor, stride, device, positions table, and
    the spread term, which the real data sets' dev entities switched off)."""
    import yaml

    from amad.config import load_profile

    root = Path(__file__).resolve().parents[2]
    shipped = config_to_dict(build_config(yaml.safe_load((root / "params.yaml").read_text())))
    cpu = config_to_dict(build_config(load_profile("cpu")))
    allowed = {"train.min_steps", "windows.train_stride", "train.device", "model.max_len",
               "model.spread"}  # fmt: skip
    differ = {
        f"{section}.{key}"
        for section in ("model", "windows", "train", "score")
        for key in shipped[section]
        if shipped[section][key] != cpu[section][key]
    }
    assert differ <= allowed, differ - allowed
    assert cpu["model"]["objective"] == "forecast" and cpu["train"]["min_steps"] >= 1000


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("data.entity=007", "007"),
        ("data.entity=null", "null"),
        ("data.entity=NA", "NA"),
        ("fleet.entities=[007, true, 2024-01-01, null]", ["007", "true", "2024-01-01", "null"]),
    ],
)
def test_entity_overrides_stay_text(text: str, value: object) -> None:
    key, parsed = parse_override(text)
    assert parsed == value
    cfg = build_config(overrides={key: parsed})
    assert (cfg.data.entity if key == "data.entity" else cfg.fleet.entities) == value


def test_a_yaml_typed_entity_id_is_an_error_that_says_quote_it() -> None:
    with pytest.raises(ConfigError, match=r"data\.entity.*got 7.*quote it"):
        build_config({"data": {"entity": 7}})  # what YAML makes of `entity: 007`


def test_a_profile_replaces_the_files_keys_and_overrides_still_win() -> None:
    raw = {"model": {"d_model": 64, "dropout": 0.2}, "train": {"epochs": 9}}
    gpu = build_config(raw, {"profile": "gpu", "train.batch_size": 7})
    assert gpu.profile == "gpu" and gpu.model.d_model == 512  # the profile's key
    assert gpu.model.dropout == 0.2  # a key the profile does not name stays the file's
    assert gpu.train.epochs == 200 and gpu.train.batch_size == 7  # profile, then the override
    assert build_config({**raw, "profile": "gpu"}).model.d_model == 512  # named in the file
    assert build_config(raw).model.d_model == 64
    with pytest.raises(ConfigError, match="unknown profile 'tpu'"):
        build_config(raw, {"profile": "tpu"})
