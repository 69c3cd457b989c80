"""The zoo's budget (minimum epochs first, then weights; unused time handed on), its folder
named after its arguments, and a rerun that resumes an interrupted zoo."""

from __future__ import annotations

import dataclasses
import json

import pytest

from genlab import api
from genlab.cli import main
from genlab.errors import ConfigError
from genlab.models.markov.rbm import ZOO_EPOCHS as RBM_ZOO_EPOCHS
from genlab.zoo import ZOO, Slot, ZooEntry, allocate, budget, hand_on, select, zoo_folder
from genlab.zoo.budget import fair_level


def _entry(name: str, weight: float, min_epochs: int) -> ZooEntry:
    return ZooEntry(name, "binarised", weight, min_epochs, {}, family="vae")


@pytest.fixture
def bare(monkeypatch):
    """Plans at the pilot's bare speed, so the arithmetic below reads in round numbers."""
    monkeypatch.setattr(budget, "EPOCH_MARGIN", 1.0)


def test_a_minimum_is_planned_with_the_epoch_margin():
    slot = Slot(_entry("a", 1.0, 2), 0, 10.0)
    assert slot.need == pytest.approx(2 * 10.0 * budget.EPOCH_MARGIN) and budget.EPOCH_MARGIN > 1


def test_minimum_epochs_first_then_the_rest_by_weight(bare):
    a, b = Slot(_entry("a", 1.0, 2), 0, 10.0), Slot(_entry("b", 3.0, 1), 0, 30.0)
    allocate([a, b], 150.0)  # needs 20 + 30; the spare 100 goes 1:3
    assert (a.seconds, b.seconds) == (pytest.approx(45.0), pytest.approx(105.0))
    allocate([a, b], 45.0)  # the minimums (20, 30) do not fit: a gets all of its 20, b 25
    assert (a.seconds, b.seconds) == (pytest.approx(20.0), pytest.approx(25.0))
    allocate([a, b], 30.0)  # max-min fair: both at the level 15
    assert (a.seconds, b.seconds) == (pytest.approx(15.0), pytest.approx(15.0))
    assert fair_level([1.0, 4.0, 10.0, 10.0], 17.0) == pytest.approx(6.0)  # 1 + 4 + 6 + 6
    fixed = ZooEntry("f", "binarised", 0.0, 2, {}, fixed_epochs=True, family="rbm")
    slots = [Slot(fixed, 0, 10.0), Slot(_entry("c", 1.0, 10), 0, 100.0)]
    allocate(slots, 500.0)  # a fixed-epoch run plans 1.5x its minimum; the rest is spare
    assert slots[0].seconds == pytest.approx(30.0) and slots[1].seconds == pytest.approx(470.0)
    allocate(slots, 20.0)  # far too small: the fixed run keeps its plan, the rest shares none
    assert slots[0].seconds == pytest.approx(30.0) and slots[1].seconds == 0.0
    hand_on(-12.0, slots)  # an overrun comes out of the time-limited runs, down to 1 s
    assert slots[0].seconds == pytest.approx(30.0) and slots[1].seconds == 1.0


def test_seeds_share_their_entry_weight_and_unused_time_goes_to_later_runs(bare):
    entry = _entry("v", 2.0, 1)
    seeds = [Slot(entry, s, 1.0, seeds_of_entry=2) for s in range(2)]
    other = Slot(_entry("o", 2.0, 1), 0, 1.0)
    allocate([*seeds, other], 43.0)  # needs 3; spare 40 by weights 1, 1, 2
    assert [s.seconds for s in (*seeds, other)] == pytest.approx([11.0, 11.0, 21.0])
    hand_on(9.0, [seeds[1], other])
    assert (seeds[1].seconds, other.seconds) == (pytest.approx(14.0), pytest.approx(27.0))
    zero = [Slot(_entry("z", 0.0, 2), 0, 3.0), Slot(_entry("y", 0.0, 1), 0, 6.0)]
    hand_on(4.0, zero)  # no weights: by need (6 and 6)
    assert [s.seconds for s in zero] == pytest.approx([2.0, 2.0])


def test_every_entry_has_a_protocol_and_families_select_all_of_theirs():
    assert {e.protocol for e in ZOO} == {"binarised", "thresholded", "grey levels"}
    names = [e.name for e in select(["vae", "gan"], ["vae", "gan", "ae"])]
    assert names == ["vae", "vae-threshold", "gan-grey", "vae-grey"]
    with pytest.raises(ConfigError, match="valid:"):
        select(["flow"], ["vae"])


def test_the_folder_is_named_after_the_arguments():
    assert zoo_folder("fashion-mnist", 1800.0, None, 1) == "zoo-fashion-mnist-30m"
    assert zoo_folder("digits", 5430.0, ["vae", "ae"], 3) == "zoo-digits-1h30m30s-ae+vae-seeds3"


@pytest.mark.parametrize("seeds", ["0", "11"])
def test_bad_seed_count_is_a_one_line_error(tmp_path, capsys, seeds):
    args = ["zoo", "--data", "digits", "--seeds", seeds, "--runs-dir", str(tmp_path / "r")]
    assert main(args) == 2
    assert "--seeds must be between 1 and 10" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_fixed_epoch_entry_trains_its_epochs_whatever_the_budget(tmp_path):
    """The RBM's 10 epochs (its learning-rate schedule) are not cut by a 3-second budget."""
    args = ["zoo", "--data", "digits", "--budget", "3s", "--families", "rbm"]
    assert main([*args, "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    (zoo,) = tmp_path.iterdir()
    (run,) = (zoo / "runs").glob("0*")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["epochs_completed"] == RBM_ZOO_EPOCHS
    assert json.loads((run / "config.json").read_text())["train"]["max_seconds"] is None


def _zoo(root, *extra):
    args = ["zoo", "--data", "digits", "--budget", "12s", "--families", "vae"]
    return main([*args, "--runs-dir", str(root), "--no-progress", *extra])


def test_an_interrupted_zoo_resumes_where_it_stopped(tmp_path, monkeypatch, capsys):
    real_train = api.train

    def train_then_stop(config, *, progress=None):  # the first run stops as Ctrl-C stops it
        if config.data.binarize != "static" or config.train.max_steps is not None:
            return real_train(config, progress=progress)  # the pilot, or another run
        short = dataclasses.replace(config, train=dataclasses.replace(config.train, max_steps=30))
        run = real_train(short, progress=progress)
        run.update_info(status="interrupted (sigint)")
        return run

    monkeypatch.setattr(api, "train", train_then_stop)
    assert _zoo(tmp_path) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    (zoo,) = tmp_path.iterdir()
    assert zoo.name == "zoo-digits-12s-vae"
    record = json.loads((zoo / "zoo.json").read_text())
    (run,) = (zoo / "runs").glob("0*")
    assert json.loads((run / "run.json").read_text())["steps"] == 30
    assert record["runs"]["vae"]["path"] == str(run) and not record["runs"]["vae"].get("trained")
    assert "vae-grey" not in record["runs"] and "report" not in record["stages"]

    monkeypatch.setattr(api, "train", real_train)
    assert _zoo(tmp_path) == 0
    runs = sorted((zoo / "runs").glob("0*"))
    assert len(runs) == 3 and runs[0] == run  # the first run resumed, not trained anew
    info = json.loads((run / "run.json").read_text())
    assert info["steps"] > 30 and info["status"] in ("finished", "interrupted (max_seconds)")
    record = json.loads((zoo / "zoo.json").read_text())
    assert record["status"] == "finished" and (zoo / "report" / "index.html").exists()
    assert record["pilot"]["vae"]["images_per_s"] > 0  # the plan was kept, not re-measured
    assert set(record["runs"]) == {"vae", "vae-threshold", "vae-grey"}

    capsys.readouterr()
    assert _zoo(tmp_path) == 0  # a finished zoo: nothing trained again
    assert sorted((zoo / "runs").glob("0*")) == runs


@pytest.mark.parametrize(
    "text",
    ["[1, 2]", '{"arguments": {}, "runs": [], "stages": {}}', '{"runs": {"vae": {"path": 3}}}'],
)
def test_a_damaged_zoo_record_is_a_one_line_error(tmp_path, capsys, text):
    folder = tmp_path / "zoo-digits-12s-vae"
    folder.mkdir()
    (folder / "zoo.json").write_text(text)
    assert _zoo(tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged" in err[0] and "remove" in err[0]
    assert sorted(p.name for p in folder.iterdir()) == ["zoo.json"]  # nothing written
