"""The autoencoder family: it can memorise, a linear AE finds the PCA subspace (Baldi & Hornik
1989), denoising corrupts only in training, and the CLI refuses to sample from it."""

import json

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from genlab.cli import main
from genlab.models import DataInfo, build_model


def fit(model, x, steps, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x, "main")["loss"].backward()
        optimizer.step()
    return model


def test_overfits_a_small_batch_to_near_zero_error():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 8, 8)
    model = build_model(
        {"name": "ae", "hidden": [64], "code_dim": 8, "output": "identity"},
        DataInfo((1, 8, 8), 256),
    )
    fit(model, x, steps=1500, lr=3e-3)
    mse = (model.reconstruct(x) - x).square().mean().item()
    assert mse < 1e-4, mse


def test_linear_autoencoder_recovers_the_pca_subspace():
    g = torch.Generator().manual_seed(0)
    n, d, k = 400, 12, 3
    basis = torch.linalg.qr(torch.randn(d, k, generator=g))[0]
    scales = torch.tensor([3.0, 2.0, 1.0])
    x = (torch.randn(n, k, generator=g) * scales) @ basis.T + 0.05 * torch.randn(n, d, generator=g)
    x = x + torch.linspace(-1, 1, d)  # a non-zero mean, absorbed by the biases
    torch.manual_seed(0)
    model = build_model(
        {"name": "ae", "encoder": "linear", "code_dim": k, "output": "identity", "loss": "mse"},
        DataInfo((1, 1, d), 256),
    )
    fit(model, x.view(n, 1, 1, d), steps=3000, lr=1e-2)
    decoder_columns = model.decoder.head.weight.detach().double().numpy()  # (d, k)
    pca = PCA(n_components=k).fit(x.double().numpy())
    angles = subspace_angles(decoder_columns, pca.components_.T)
    assert np.max(angles) < 0.02, angles


def test_denoising_corrupts_only_in_training():
    model = build_model({"name": "ae", "denoising": 0.5}, DataInfo((1, 8, 8), 2))
    x = torch.ones(4, 1, 8, 8)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    model.train()
    noisy_a = model.loss(x, "main", generator=g())["loss"]
    noisy_b = model.loss(x, "main", generator=torch.Generator().manual_seed(1))["loss"]
    assert noisy_a != noisy_b  # different corruption
    model.eval()
    clean = model.loss(x, "main", generator=g())["loss"]
    torch.testing.assert_close(clean, model.reconstruction_error(x).mean())


@pytest.mark.parametrize("encoder", ["linear", "mlp", "conv"])
def test_cli_train_reconstruct_interpolate_and_no_sampling(
    tmp_path, tiny_overrides, capsys, encoder
):
    sets = [x for o in tiny_overrides if not o.startswith("model.") for x in ("--set", o)]
    assert (
        main(
            [
                "train",
                *sets,
                "--set",
                "model.name=ae",
                "--set",
                f"model.encoder={encoder}",
                "--set",
                "model.code_dim=4",
                "--set",
                "model.channels=[8]",
            ]
        )
        == 0
    )
    (run,) = (tmp_path / "runs").glob("0*")
    assert main(["reconstruct", str(run), "-n", "4"]) == 0
    assert main(["interpolate", str(run), "--pairs", "2", "--steps", "3"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run)]) == 2
    assert "no prior" in capsys.readouterr().err
    assert main(["eval", str(run), "--no-progress"]) == 0
    results = json.loads((run / "eval.json").read_text())
    sampling = {
        "fd",
        "kid",
        "precision",
        "recall",
        "density",
        "coverage",
        "sample_speed",
        "sharpness",
    }
    sampling |= {f"{name}_means" for name in ("fd", "kid", "precision", "recall", "sharpness")}
    markov = {"nll_ais", "chain"}  # no energy; no corruption, so no denoising chain
    iterative = {"fd_vs_steps"}  # no choice of sampling steps
    conditional = {"class_agreement", "fd_intra_class", "gen_classifier", "guidance_curve"}
    assert set(results["not_applicable"]) == (
        {"nll", "elbo"} | sampling | markov | iterative | conditional
    )
    assert {"recon_mse", "probe_logreg_acc_n1000", "train_images_per_s"} <= set(results["metrics"])
    assert results["metrics"]["recon_mse"]["value"] < 0.5
