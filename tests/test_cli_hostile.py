"""A catalogue of bad command lines, each of which must end in one line
``genlab: error: ...`` with exit status 2 and write nothing."""

from __future__ import annotations

import pytest
from runkit import train_small

from genlab.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return str(train_small(tmp_path_factory.mktemp("hostile")).path)


CASES = [
    "eval RUN --split train",
    "eval RUN --k 0",
    "eval RUN --set eval.metrics=[foo]",
    "eval RUN --set train.lr=1",
    "eval RUN --set eval.max_images=0",
    "eval /nonexistent/run",
    "sample RUN -n -5",
    "sample RUN -n 100000000000",
    "sample RUN --steps 5",
    "sample RUN --seed 100000000000000000000000",
    "sample RUN --out TMP",
    "interpolate RUN --pairs 0",
    "interpolate RUN --steps 1000000000",
    "interpolate RUN --seed abc",
    "reconstruct RUN -n 100000",
    "embed RUN --split foo",
    "probe RUN --labels abc",
    "probe RUN --labels 0",
    "finetune RUN --steps 0",
    "compare",
    "compare RUN RUN",
    "list nothing",
    "zoo --data digits --budget abc",
    "zoo --data digits --budget 0s",
    "zoo --data digits --budget 99999999999h",
    "zoo --data digits --budget 1m --families foo",
    "train --config /nonexistent.yaml",
    "train --config TMP",
    "train --resume /nonexistent",
    "train --resume RUN --set train.batch_size=7",
    "train --set model.latent_dim=0",
    "train --set data=5",
    "train --set train.betas=[0.9]",
    "train --set data.split_seed=-1",
    "train --set =5",
    "train --set a.b.c=1",
    "train --set data.name=npz",
    "train --set data.name=folder --set data.path=TMP",
    "train --set train.loggers=[foo]",
    "train --set model.name=ae --set model.walkback=2",
    "train --set model.name=rbm --set data.binarize=none",
    "train --set model.hidden=[100000,100000,100000]",
    "train",  # no COMMAND problem: a valid default run would train, so give it a bad runs dir
]


@pytest.mark.parametrize("line", CASES)
def test_bad_command_lines_give_one_line_and_write_nothing(run, tmp_path, capsys, line):
    if line == "train":
        (tmp_path / "file").write_text("x")
        line = f"train --runs-dir {tmp_path / 'file'}"
    argv = line.replace("RUN", run).replace("TMP", str(tmp_path)).split()
    if argv[0] == "train" and "--resume" not in argv and "--runs-dir" not in argv:
        argv += ["--runs-dir", str(tmp_path / "runs")]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("genlab: error: "), err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
