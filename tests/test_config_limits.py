"""Every config input is bounded: numeric ranges, finite numbers, strict YAML, sizes that
must fit in memory. Bad input is one line, exit 2, nothing written; fuzzed overrides give a
ConfigError or a valid config, never another exception."""

import dataclasses
import typing

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlab.cli import main
from genlab.config import DataConfig, EvalConfig, TrainConfig
from genlab.errors import ConfigError
from genlab.models import MODELS, DataInfo, load_run_config, parse_model_config

CONFIG_CLASSES = [DataConfig, TrainConfig, EvalConfig] + [
    MODELS.get(name).config_class for name in MODELS.names()
]


def numeric_fields(cls):
    hints = typing.get_type_hints(cls)
    return [
        f.name
        for f in dataclasses.fields(cls)
        if any(t in str(hints[f.name]) for t in ("int", "float"))
    ]


@pytest.mark.parametrize("cls", CONFIG_CLASSES, ids=lambda c: c.__name__)
def test_every_numeric_field_declares_its_range(cls):
    missing = sorted(set(numeric_fields(cls)) - set(cls.RANGES))
    assert not missing, f"{cls.__name__} has numeric fields without a range: {missing}"
    for low, high in cls.RANGES.values():
        assert low <= high


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.warmup_steps=-5", "train.warmup_steps: -5 is outside the valid range"),
        ("train.step_gamma=-1", "train.step_gamma: -1.0 is outside"),
        ("train.lr=.nan", "train.lr: expected a finite number, got nan"),
        ("train.lr=-.inf", "expected a finite number"),
        ("train.threads=0", "train.threads: 0 is outside"),
        ("train.threads=-1", "train.threads: -1 is outside"),
        ("train.weight_decay=-1", "train.weight_decay: -1.0 is outside"),
        ("train.max_seconds=.nan", "train.max_seconds: expected a finite number"),
        ("train.epochs=1e12", "train.epochs: 1000000000000 is outside"),
        ("model.hidden=[1000000000]", "model.hidden: 1000000000 is outside"),
        ("eval.iwae_k=1e400", "eval.iwae_k: expected an integer"),
        ("train.checkpoint_every_steps=0", "train.checkpoint_every_steps: 0 is outside"),
        ("train.epochs={a: 1, a: 2}", "key 'a' appears twice"),
        ("train.betas=[0.9, 1.5]", "train.betas: 1.5 is outside"),
    ],
)
def test_bad_values_are_refused_in_one_line(override, message):
    with pytest.raises(ConfigError, match="^" + ".*") as caught:
        load_run_config(None, [override])
    text = str(caught.value)
    assert message in text and "\n" not in text


def test_a_model_that_cannot_fit_is_refused_before_allocation(tmp_path, capsys):
    runs = tmp_path / "runs"
    sets = ["--set", "model.hidden=[100000,100000,100000]", "--runs-dir", str(runs)]
    assert main(["train", *sets]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "parameters" in err[0] and "more than this machine's" in err[0]
    assert not runs.exists()


def test_every_family_can_be_sized_on_the_meta_device():
    for name in MODELS.names():
        family, config = MODELS.get(name), parse_model_config({"name": name})
        tiny = next(iter(family.tiny_configs.values()))  # data levels the family accepts
        with torch.device("meta"):
            model = family(config, DataInfo((1, 8, 8), tiny.levels))
        assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"train:\n  epochs: 2\n  epochs: 3\n", "'epochs' appears twice in one mapping (line 3)"),
        (b"a: &a [1, 1]\nb: [*a, *a]\n", "anchors (&name) are not accepted"),
        (b"\xff\xfe\x00binary", "is not UTF-8 text"),
        (b"train:\n  lr: [1\n", "is not valid YAML"),
        (b"- 1\n- 2\n", "must hold a mapping"),
        (b"train: {epochs: 1}\x00", "NUL bytes"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "config file"),
    ],
)
def test_hostile_yaml_files_give_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    assert main(["train", "--config", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error: ") and message in err[0]
    assert not (tmp_path / "runs").exists()


def test_billion_laughs_is_refused_at_once(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (tmp_path / "lol.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="anchors"):
        load_run_config(str(tmp_path / "lol.yaml"), [])


def test_a_directory_or_a_huge_file_is_not_a_config(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_run_config(str(tmp_path), [])
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(ConfigError, match="over 1 MiB"):
        load_run_config(str(big), [])


KEYS = [
    f"{section}.{name}"
    for section, cls in (("data", DataConfig), ("train", TrainConfig), ("eval", EvalConfig))
    for name in (f.name for f in dataclasses.fields(cls))
] + [f"model.{f.name}" for f in dataclasses.fields(MODELS.get("vae").config_class)]
VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from([".nan", ".inf", "-.inf", "null", "true", "[]", "{}", "[1, [2]]", "&a 1"]),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=4))
def test_fuzzed_overrides_give_a_config_or_a_config_error(pairs):
    try:
        load_run_config(None, [f"{key}={value}" for key, value in pairs])
    except ConfigError as exc:
        assert "\n" not in str(exc)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6))
def test_fuzzed_overrides_many(pairs):
    test_fuzzed_overrides_give_a_config_or_a_config_error.hypothesis.inner_test(pairs)
