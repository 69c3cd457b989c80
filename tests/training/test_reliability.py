"""The edges of crash safety: permissions, leftovers of a kill at every write site, stale
results, a way forward after divergence, the interrupted epoch's log, repeated signals and
inputs that used to end badly. Kills are injected at chosen writes (``fileio.fault_hook``),
not timed."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from genlab import api
from genlab.cli import main
from genlab.compare import compare
from genlab.errors import RunError, TrainingDiverged
from genlab.fileio import remove_orphans
from genlab.models import load_run_config
from genlab.models.latent.vae import VAE
from genlab.runs import RunDir
from genlab.runs.guard import training_lock
from genlab.runs.model_io import stale_note
from genlab.training.checkpoint import latest_checkpoint
from genlab.training.divergence import DivergenceWatch

TINY = [
    "data.name=digits",
    "model.hidden=[16]",
    "model.latent_dim=2",
    "train.epochs=3",
    "train.batch_size=64",
    "train.progress=false",
    "train.threads=1",
]  # 23 steps per epoch

# a genlab process that kills itself (SIGKILL) at the first atomic write whose temporary's
# name contains argv[1], or sends itself SIGTERM at such writes (argv[1] = "TERM:<name>")
DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    import genlab.fileio as fileio
    from genlab.cli import main

    target = sys.argv[1]
    how = signal.SIGKILL
    if target.startswith("TERM:"):
        target, how = target[5:], signal.SIGTERM

    def hook(tmp):
        if target in tmp.name:
            os.kill(os.getpid(), how)

    fileio.fault_hook = hook
    sys.exit(main(sys.argv[2:]))
    """
)


def genlab_with_fault(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", DRIVER, target, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def train_args(runs: Path, *extra: str) -> list[str]:
    sets = [x for o in (*TINY, *extra) for x in ("--set", o)]
    return ["train", *sets, "--runs-dir", str(runs)]


def config(tmp_path: Path, *extra: str):
    return load_run_config(None, [*TINY, f"runs_dir={tmp_path / 'runs'}", *extra])


# -- 1. permissions ----------------------------------------------------------------------


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_every_file_of_a_run_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = api.train(config(tmp_path, "train.epochs=2", "train.keep_best=true"))
        api.evaluate(run, ["eval.metrics=[elbo]"], progress=False)
    finally:
        os.umask(old)
    files = [p for p in run.path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert run.model_path in files and (run.checkpoints / "best-model.safetensors") in files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: mode for p in files}


# -- 2. nothing left behind ----------------------------------------------------------------

TRAINING_WRITES = [
    "config",
    "run.",
    "state-",
    "latest",
    "best-model",
    "model.",
    "train-epoch-",
]


@pytest.mark.parametrize("site", TRAINING_WRITES)
def test_a_kill_at_any_training_write_leaves_only_the_documented_layout(tmp_path, site):
    """SIGKILL inside each atomic write of training (its temporary is on disk), then the
    next command that touches the run: a resume, which finishes the run, or, when the kill
    came before the first checkpoint, an eval that refuses in one line. Either way nothing
    outside the documented layout is left."""
    runs = tmp_path / "runs"
    killed = genlab_with_fault(site, *train_args(runs, "train.keep_best=true"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (folder,) = runs.glob("0*")
    run = RunDir(folder)
    left = run.undocumented()
    assert left and all(".tmp" in name for name in left)  # the killed write's temporary
    if latest_checkpoint(run.checkpoints) is not None:
        resumed = subprocess.run(
            [sys.executable, "-m", "genlab", "train", "--resume", str(folder)],
            capture_output=True,
            text=True,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert run.info()["status"] == "finished"
    else:
        refused = subprocess.run(
            [sys.executable, "-m", "genlab", "eval", str(folder)], capture_output=True, text=True
        )
        assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1
    assert run.undocumented() == []


@pytest.mark.parametrize(
    ("site", "command"),
    [
        ("eval", ["eval", "{run}", "--no-progress", "--set", "eval.metrics=[elbo]"]),
        ("sample-", ["sample", "{run}", "-n", "16"]),
        ("probe", ["probe", "{run}", "--labels", "100", "--seeds", "1"]),
    ],
)
def test_a_kill_while_writing_a_result_leaves_nothing_once_the_run_is_touched(
    tmp_path, site, command
):
    run = api.train(config(tmp_path, "train.epochs=1"))
    killed = genlab_with_fault(site, *[a.format(run=run.path) for a in command])
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert run.undocumented()  # the half-written result's temporary
    api.open_run(run.path)  # any command opening the run
    assert run.undocumented() == []


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    mine = tmp_path / f".eval.{os.getpid()}.tmp.json"
    gone = tmp_path / ".eval.999999999.tmp.json"  # no such process
    library = tmp_path / ".tmpA1b2C3"  # the safetensors library's own: no pid in the name
    for path in (mine, gone, library):
        path.write_text("half")
    assert remove_orphans([tmp_path]) == [gone]
    assert sorted(p.name for p in remove_orphans([tmp_path], unnamed_too=True)) == [library.name]
    assert mine.exists()


# -- 3. stale results ----------------------------------------------------------------------


def test_results_record_their_weights_and_a_stale_one_is_told_and_redone(tmp_path, capsys):
    run = api.train(config(tmp_path, "train.max_steps=30"))  # interrupted mid-epoch 2
    results = api.evaluate(run, ["eval.metrics=[elbo]"], progress=False)
    exported = run.info()["exported"]
    assert results["weights_used"] == exported and exported["step"] == 30
    picture = api.sample(run, n=4)
    recorded = json.loads(Image.open(picture).text["genlab:weights"])
    assert recorded == exported
    # an evaluation that raced a resume: computed from the old weights, written after it
    early = run.eval_path.read_text()
    api.resume(run.path)
    assert not run.eval_path.exists()  # the resume removed the results of the old weights
    run.eval_path.write_text(early)
    note = stale_note(json.loads(early), run, "eval.json")
    assert note is not None and "step 30, now step 69" in note
    html = compare([run.path], tmp_path / "report", progress=False)
    assert "stale" in capsys.readouterr().out and html.exists()
    assert json.loads(run.eval_path.read_text())["weights_used"]["step"] == 69
    assert stale_note(json.loads(run.eval_path.read_text()), run, "eval.json") is None


def test_commands_that_read_the_weights_are_refused_while_the_run_trains(tmp_path, capsys):
    run = api.train(config(tmp_path, "train.max_steps=5"))
    with training_lock(run):
        for argv in (["eval", str(run.path)], ["sample", str(run.path)]):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"being trained right now (pid {os.getpid()})" in err[0]
    assert not run.eval_path.exists()


def test_eval_during_a_first_training_says_to_wait_not_to_resume(tmp_path, capsys):
    run = api.train(config(tmp_path, "train.max_steps=5"))
    run.model_path.unlink()
    run.update_info(status="training")  # as during the first epoch of a first training
    assert main(["eval", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "still training" in err and "wait for it to finish" in err


# -- 4. a way forward after divergence -----------------------------------------------------


def with_loss(monkeypatch, change):
    """Make VAE training losses pass through ``change(step, loss)`` (1-based steps)."""
    original = VAE.loss
    calls = []

    def loss(self, x, phase, *, generator=None):
        terms = original(self, x, phase, generator=generator)
        if self.training:
            calls.append(1)
            terms["loss"] = change(len(calls), terms["loss"])
        return terms

    monkeypatch.setattr(VAE, "loss", loss)
    return original


def test_nan_right_after_a_checkpoint_resumes_from_the_one_before(tmp_path, monkeypatch):
    """The scenario of a checkpoint taken with broken weights: a huge finite loss at step
    20 sends SGD's weights to infinity, the checkpoint of step 20 would hold them, and the
    loss of step 21 is NaN. The last good checkpoint is the one of step 10, and a resume with
    a smaller rate and clipping finishes."""
    original = with_loss(monkeypatch, lambda step, loss: loss * 1e36 if step == 20 else loss)
    cfg = config(
        tmp_path, "train.optimizer=sgd", "train.lr=0.05", "train.checkpoint_every_steps=10"
    )
    with pytest.raises(TrainingDiverged, match=r"at step 21 .*state-000000010"):
        api.train(cfg)
    (folder,) = (tmp_path / "runs").glob("0*")
    run = RunDir(folder)
    assert run.info()["status"] == "diverged" and run.info()["diverged_at_step"] == 21
    assert latest_checkpoint(run.checkpoints).name == "state-000000010.safetensors"
    assert [p.name for p in run.checkpoints.glob("state-*")] == ["state-000000010.safetensors"]
    assert run.info()["exported"]["step"] == 10
    monkeypatch.setattr(VAE, "loss", original)
    resumed = api.resume(folder, ["train.lr=0.01", "train.grad_clip=1"])
    assert resumed.info()["status"] == "finished"
    assert all(torch.isfinite(v).all() for v in load_file(str(run.model_path)).values())


def test_an_exploding_loss_is_a_divergence(tmp_path, monkeypatch):
    with_loss(monkeypatch, lambda step, loss: loss * 1e31 if step > 30 else loss)
    cfg = config(tmp_path, "train.checkpoint_every_steps=10", "train.explode_steps=3")
    with pytest.raises(
        TrainingDiverged, match=r"more than 1000 x .* for 3 steps in a row\) at step 31"
    ):
        api.train(cfg)
    (folder,) = (tmp_path / "runs").glob("0*")
    assert latest_checkpoint(Path(folder) / "checkpoints").name == "state-000000023.safetensors"


def test_explosion_detection_can_be_turned_off(tmp_path, monkeypatch):
    with_loss(monkeypatch, lambda step, loss: loss * 1e31 if step > 30 else loss)
    run = api.train(config(tmp_path, "train.explode_factor=null"))
    assert run.info()["status"] == "finished"  # as before the rule: only NaN stops


def test_the_explosion_rule_exactly():
    watch = DivergenceWatch(factor=10.0, steps=2)
    for step, value in enumerate([1.0, 3.0, 2.0], start=1):  # median 2: the limit is 30
        assert watch.check("main", value, step) is None
    assert watch.check("main", 30.0, 4) is None  # at the limit: fine (the median is now 2.5)
    assert watch.check("main", -35.1, 5) is None  # |loss| over 10 x (2.5 + 1): one step
    assert watch.check("other", 1e9, 5) is None  # each phase has its own history
    found = watch.check("main", 40.0, 6)
    assert found is not None and found.step == 5 and found.phase == "main"
    restored = DivergenceWatch(10.0, 2)
    restored.load_state_dict(json.loads(json.dumps(watch.state_dict())))
    assert restored.check("main", 36.0, 7) == DivergenceWatch.check(watch, "main", 36.0, 7)
    assert DivergenceWatch(10.0, 1).check("main", float("nan"), 1).rule == "not a finite number"


def test_resume_may_change_warmup_and_precision(tmp_path):
    run = api.train(config(tmp_path, "train.max_steps=30"))
    api.resume(run.path, ["train.warmup_steps=100", "train.precision=bf16", "train.lr=1e-3"])
    epochs = [r for r in run.read_metrics() if r["kind"] == "epoch"]
    assert epochs[-1]["lr"] == pytest.approx(1e-3 * 70 / 100)  # warm-up applied from the resume
    assert run.info()["precision"] == "bf16" and run.info()["status"] == "finished"


# -- 5. the interrupted epoch's log --------------------------------------------------------


def test_an_interrupted_epoch_logs_the_means_over_all_its_steps(tmp_path):
    reference = api.train(config(tmp_path / "a"))
    run = api.train(config(tmp_path / "b", "train.max_steps=30"))  # 7 steps into epoch 2
    api.resume(run.path)

    def epochs(r):
        return [
            {k: v for k, v in rec.items() if k.startswith(("train/", "val/", "step", "lr"))}
            for rec in r.read_metrics()
            if rec["kind"] == "epoch"
        ]

    assert epochs(run) == epochs(reference)


# -- 6. signals ----------------------------------------------------------------------------


def test_a_second_sigterm_while_stopping_ends_at_once_with_the_status_written(tmp_path):
    """The first SIGTERM comes during a checkpoint write, the second during the checkpoint
    that the stop then writes: the process ends at once, in one line, exit 143, and run.json
    says so."""
    runs = tmp_path / "runs"
    ended = genlab_with_fault("TERM:state-", *train_args(runs, "train.checkpoint_every_steps=5"))
    assert ended.returncode == 143, ended.stderr
    (folder,) = runs.glob("0*")
    err = ended.stderr.strip().splitlines()
    assert len(err) == 1 and "stopped at once by a second SIGTERM" in err[0]
    assert f"--resume {folder}" in err[0]
    run = RunDir(folder)
    assert run.info()["status"] == "interrupted (sigterm, at once)"
    assert latest_checkpoint(run.checkpoints).name == "state-000000005.safetensors"
    assert api.resume(folder).info()["status"] == "finished"
    assert run.undocumented() == []


# -- 7. inputs that used to end badly ------------------------------------------------------


def test_a_sample_count_whose_grid_cannot_fit_is_refused(tmp_path, monkeypatch, capsys):
    import genlab.resources as resources

    run = api.train(config(tmp_path, "train.max_steps=5"))
    monkeypatch.setattr(resources, "physical_memory_bytes", lambda: 100 * 2**20)
    # 10 000 digits: 20 MB of images, but a 340 x 340-tile grid of 34 x 34 tiles
    assert main(["sample", str(run.path), "-n", "10000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drawing 10,000 samples needs about" in err[0]
    assert not list(run.samples.glob("sample-*"))


def test_a_failed_allocation_is_one_line(tmp_path, monkeypatch, capsys):
    run = api.train(config(tmp_path, "train.max_steps=5"))

    def no_memory(self, n, *, generator=None, progress=False):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 81920000000 bytes. Error code 12"
        )

    monkeypatch.setattr(VAE, "sample", no_memory)
    assert main(["sample", str(run.path), "-n", "64"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genlab: error: ran out of memory")


def test_weights_holding_nan_are_a_broken_model_in_one_line(tmp_path, capsys):
    run = api.train(config(tmp_path, "train.max_steps=5"))
    weights = load_file(str(run.model_path))
    name = next(k for k, v in weights.items() if v.is_floating_point())
    weights[name] = weights[name] * float("nan")
    save_file(weights, str(run.model_path))
    for argv in (["sample", str(run.path)], ["eval", str(run.path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{name} holds NaN or infinite values" in err[0]


def test_compare_checks_its_output_folder_before_writing_into_runs(tmp_path, capsys):
    run = api.train(config(tmp_path, "train.max_steps=5"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["compare", str(run.path), "--out", str(blocker / "report")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert not run.eval_path.exists()


def test_a_resume_without_run_json_repairs_it_and_says_so(tmp_path, capsys):
    run = api.train(config(tmp_path, "train.max_steps=30"))
    before = json.loads(run.info_path.read_text())
    run.info_path.unlink()
    api.resume(run.path)
    assert "run.json was missing" in capsys.readouterr().out
    info = run.info()
    assert info["repaired"] and info["status"] == "finished"
    for key in ("family", "data_info", "data", "seeds", "parameters"):
        assert info[key] == before[key]


def test_a_resume_of_a_run_that_diverged_before_any_good_checkpoint_says_so(tmp_path, monkeypatch):
    with_loss(monkeypatch, lambda step, loss: loss * float("nan") if step == 2 else loss)
    with pytest.raises(TrainingDiverged, match="no checkpoint before the divergence"):
        api.train(config(tmp_path, "train.checkpoint_every_steps=1"))
    (folder,) = (tmp_path / "runs").glob("0*")
    with pytest.raises(RunError, match="start a new run with a lower train.lr"):
        api.resume(folder)
