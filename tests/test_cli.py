"""python -m nnc train / evaluate: a round trip on digits, --help, and bad
input that exits with status 2 and one line instead of a traceback."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnc
from nnc import cli
from nnc.persistence import read_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(argv):
    """cli.main's exit status, whether it returns or argparse exits."""
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def test_train_save_evaluate_on_digits(tmp_path, capsys):
    path, log = tmp_path / "model.npz", tmp_path / "log.csv"
    status = run(["train", "--dataset", "digits", "--hidden", "32,16", "--bn", "--dropout", "0.1",
                  "--optimizer", "adam", "--lr", "1e-2", "--batch-size", "64", "--epochs", "3",
                  "--save", path, "--csv", log, "--quiet"])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "64-32-16-10" in out and "epoch 3:" in out and f"saved to {path}" in out
    assert len(log.read_text().splitlines()) == 4
    header = read_header(path)
    assert header["metadata"]["dataset"] == "digits"
    accuracy = header["metadata"]["test_accuracy"]
    assert accuracy > 0.6
    model = nnc.load(path)
    assert [type(layer).__name__ for layer in model.layers][:4] == ["Dense", "BatchNorm", "ReLU",
                                                                    "Dropout"]
    for backend in ("cython", "numpy"):
        assert run(["evaluate", path, "--backend", backend]) == 0
        out = capsys.readouterr().out
        assert f"accuracy {accuracy:.4f}" in out and "digits test set" in out


def test_help_for_each_command(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "evaluate" in out
    for command, words in (("train", ["--hidden", "--optimizer", "--save", "examples"]),
                           ("evaluate", ["MODEL.npz", "--dataset", "test set"])):
        assert run([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert all(word in out for word in words), out


@pytest.mark.parametrize("argv, message", [
    (["train", "--lr", "abc"], "--lr: expected a positive number"),
    (["train", "--epochs", "0"], "--epochs: expected a positive whole number"),
    (["train", "--hidden", "64,x"], "--hidden: expected layer widths"),
    (["train", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--dropout", "1"], "--dropout: expected a number in [0, 1)"),
    (["train", "--seed", "-3"], "--seed: expected a whole number >= 0"),
    (["train", "--save", "/no/such/folder/m.npz"], "folder '/no/such/folder' does not exist"),
    (["train", "--patience", "2", "--val-fraction", "0"], "needs --val-fraction > 0"),
    (["train", "--unknown"], "unrecognized arguments: --unknown"),
    (["evaluate"], "the following arguments are required: MODEL.npz"),
    (["evaluate", "missing.npz"], "no such file: 'missing.npz'"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys, tmp_path):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err


def test_evaluate_bad_files(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert run(["evaluate", tmp_path / "junk.npz"]) == 2
    assert "truncated or corrupted" in capsys.readouterr().err
    nnc.Sequential(nnc.Dense(10, 3), seed=0).save(tmp_path / "small.npz",
                                                  metadata={"dataset": "digits"})
    assert run(["evaluate", tmp_path / "small.npz"]) == 2
    assert "expects 10 features, but digits has 64" in capsys.readouterr().err
    nnc.Sequential(nnc.Dense(64, 10), seed=0).save(tmp_path / "plain.npz")
    assert run(["evaluate", tmp_path / "plain.npz"]) == 2
    assert "pass --dataset" in capsys.readouterr().err
    assert run(["evaluate", tmp_path / "plain.npz", "--dataset", "digits"]) == 0


def test_mnist_datasets_are_used_when_nnc_has_them(monkeypatch, capsys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 120)
    if not hasattr(nnc.datasets, "load_mnist"):
        assert run(["train", "--dataset", "mnist"]) == 2
        assert "not available" in capsys.readouterr().err
    shapes = {  # the return shapes the CLI accepts from a loader
        "load_mnist": lambda: ((images[:100], labels[:100]), (images[100:], labels[100:])),
        "load_fashion_mnist": lambda: (images[:100], labels[:100], images[100:], labels[100:]),
    }
    for function, loader in shapes.items():
        monkeypatch.setattr(nnc.datasets, function, loader, raising=False)
    for name in ("mnist", "fashion-mnist"):
        assert run(["train", "--dataset", name, "--epochs", "1", "--hidden", "8", "--quiet",
                    "--batch-size", "30"]) == 0
        out = capsys.readouterr().out
        assert "784 features" in out and "20 test samples" in out


def test_a_diverging_run_exits_1_with_the_guard_message(monkeypatch, capsys):
    def diverge(self, *args, **kwargs):
        raise nnc.TrainingDiverged("training diverged at step 3 (epoch 1): ...")

    monkeypatch.setattr(nnc.Trainer, "fit", diverge)
    assert run(["train", "--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged at step 3") and "Traceback" not in err


def test_module_entry_point_in_a_subprocess(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    bad = subprocess.run([sys.executable, "-m", "nnc", "train", "--batch-size", "-5"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and not bad.stdout
    assert "--batch-size" in bad.stderr
