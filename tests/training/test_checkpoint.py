import torch

from genlab.training.checkpoint import (
    latest_checkpoint,
    load_state,
    save_state,
    write_checkpoint,
)


def test_round_trip_preserves_types_and_bits(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), fused=True)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    g = torch.Generator().manual_seed(3)
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "rng": g.get_state(),
        "meta": {"inf": float("inf"), "tuple": (1, 2.5), "none": None, 7: "int key"},
    }
    save_state(tmp_path / "s.safetensors", state)
    back = load_state(tmp_path / "s.safetensors")
    assert back["meta"] == state["meta"]
    assert torch.equal(back["rng"], state["rng"])
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v)
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), fused=True)
    opt2.load_state_dict(back["opt"])
    assert (
        opt2.state_dict()["param_groups"][0]["betas"]
        == opt.state_dict()["param_groups"][0]["betas"]
    )
    for k in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(opt2.state_dict()["state"][0][k], opt.state_dict()["state"][0][k])


def test_pointer_names_newest_and_old_files_are_pruned(tmp_path):
    for step in (1, 2, 3):
        write_checkpoint(tmp_path, step, {"x": torch.tensor([step])}, keep=2)
    assert latest_checkpoint(tmp_path).name == "state-000000003.safetensors"
    assert sorted(p.name for p in tmp_path.glob("state-*")) == [
        "state-000000002.safetensors",
        "state-000000003.safetensors",
    ]
    assert not list(tmp_path.glob("*.tmp"))
    assert latest_checkpoint(tmp_path / "nothing") is None
