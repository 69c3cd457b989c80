import pytest

from genlab.errors import ConfigError
from genlab.models import load_run_config, run_config_to_dict


def test_defaults_and_overrides():
    cfg = load_run_config(
        None, ["train.lr=1e-3", "model.hidden=[400, 200]", "train.grad_clip=null"]
    )
    assert cfg.train.lr == 1e-3 and isinstance(cfg.train.lr, float)
    assert cfg.model.family == "vae" and cfg.model.hidden == (400, 200)
    assert cfg.train.grad_clip is None


def test_yaml_file_and_resolved_dict(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: vae\n  latent_dim: 7\ntrain:\n  lr: 3.0e-4\n")
    cfg = load_run_config(str(path), ["train.epochs=3"])
    resolved = run_config_to_dict(cfg)
    assert resolved["model"]["latent_dim"] == 7 and resolved["model"]["encoder"] == "mlp"
    assert resolved["train"]["epochs"] == 3 and resolved["train"]["lr"] == 3e-4


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochz=3", "unknown key 'train.epochz'; valid keys in train: batch_size"),
        ("nonsense=1", "unknown key 'nonsense'"),
        ("data.binarize=sometimes", "valid values: 'dynamic', 'static', 'threshold', 'none'"),
        ("train.epochs=many", "train.epochs: expected an integer"),
        ("train.epochs=0", "train.epochs: 0 is outside the valid range [1, 1e+06]"),
        ("model.name=wavenet", "valid models: ae, "),
        ("model.latent=3", "unknown key 'model.latent'"),
        ("model.encoder=rnn", "valid values: 'mlp', 'conv'"),
        ("train", "must look like key.subkey=value"),
        ("train.lr=[1", "not valid YAML"),
    ],
)
def test_bad_input_names_key_and_valid_choices(override, message):
    with pytest.raises(ConfigError) as info:
        load_run_config(None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config("/nonexistent/config.yaml")


def test_runtime_settings_are_not_saved_but_the_experiment_is():
    cfg = load_run_config(None, ["train.threads=1", "train.progress=false", "runs_dir=elsewhere"])
    saved = run_config_to_dict(cfg, runtime=False)
    assert "threads" not in saved["train"] and "progress" not in saved["train"]
    assert "runs_dir" not in saved
    assert saved["model"]["name"] == "vae" and saved["train"]["loggers"] == ["jsonl"]
    assert run_config_to_dict(cfg)["train"]["threads"] == 1


def test_the_model_section_is_the_familys_typed_config():
    from genlab.models.adversarial.gan import GANConfig

    cfg = load_run_config(None, ["model.name=gan", "model.latent_dim=8"])
    assert isinstance(cfg.model, GANConfig) and cfg.model.latent_dim == 8
    assert cfg.model.family == "gan"
