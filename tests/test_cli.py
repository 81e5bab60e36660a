"""python -m nnc train / evaluate: a round trip on digits, --help, and bad
input that exits with status 2 and one line instead of a traceback."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnc
from archive_edits import rewrite
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
    (["train", "--save", "/no/such/folder/m.npz"], "folder '/no/such/folder' of '/no/such/folder/m.npz' does not exist"),
    (["train", "--patience", "2", "--val-fraction", "0"], "needs --val-fraction > 0"),
    (["train", "--unknown"], "unrecognized arguments: --unknown"),
    (["evaluate"], "the following arguments are required: MODEL.npz"),
    (["evaluate", "missing.npz"], "no such file: 'missing.npz'"),
    (["train", "--hidden", "100000000,100000000"], "error: not enough memory"),
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


def test_demo_that_diverges_exits_1_with_one_line(capsys):
    assert run(["demo", "--lr", "1e30", "--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged") and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--threads", "-1"], "--threads: expected a whole number >= 0, got '-1'"),
    (["demo", "--threads", "100000"], "--threads: expected a whole number from 1 to"),
    (["demo", "--batch-size", "0"], "--batch-size: expected a positive whole number, got '0'"),
    (["demo", "--epochs", "abc"], "--epochs: expected a positive whole number"),
    (["demo", "--lr", "nan"], "--lr: expected a positive number"),
    (["bench", "--batch-sizes", "a"], "--batch-sizes: expected positive whole numbers"),
    (["bench", "--threads", "0,2"], "--threads: expected positive whole numbers"),
    (["train", "--val-fraction", "0.9999", "--quiet"],
     "--val-fraction 0.9999 leaves no training samples out of 1438"),
])
def test_bad_flags_of_every_command_are_named(argv, message, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err


def _with_metadata(path, metadata):
    """A saved 64-10 model whose header metadata is replaced by ``metadata``."""
    nnc.Sequential(nnc.Dense(64, 10), seed=0).save(path)
    rewrite(path, header=lambda header: header.__setitem__("metadata", metadata))
    return path


@pytest.mark.parametrize("metadata, message", [
    ([1], "header field 'metadata' must be a JSON object, got [1]"),
    ({"dataset": ["digits"]}, "header metadata 'dataset' is ['digits'], expected one of digits"),
    ({"dataset": "cifar"}, "header metadata 'dataset' is 'cifar'"),
])
def test_evaluate_names_the_file_with_bad_metadata(metadata, message, tmp_path, capsys):
    path = _with_metadata(tmp_path / "m.npz", metadata)
    assert run(["evaluate", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(path) in err and message in err


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04\xb2\xff binary", "is not an nnc History file (expected the JSON"),
    (b'{"steps": {"loss": 5}}', "steps['loss'] must be a list of values, got 5"),
    (b'{"steps": {"loss": [1.0]}, "epochs": [1]}', "epochs must map names to lists"),
    (b'{"steps": {"loss": ["a", "b"]}}', "steps['loss'][0] must be a number"),
    (b'{"steps": {"loss": [1' + b'0' * 400 + b']}}', "steps['loss'][0] must be a number"),
    (b'{"steps": {"loss": [1.0], "lr": ["x"]}}', "steps['lr'][0] must be a number"),
    (b'{"steps": {"loss": [1' + b'0' * 5000 + b']}}', "is not an nnc History file"),
    (b'{"steps": {"loss": [1.0]}, "meta": {"layers": {"0": "ReLU"}}}',
     "meta['layers'] must be a list of layer names"),
])
def test_diagnose_names_the_file_it_cannot_read(content, message, tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_bytes(content)
    assert run(["diagnose", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert str(path) in err and message in err
    if "diagnose" not in message:
        with pytest.raises(ValueError, match="run.json"):
            nnc.History.load(path)


def test_split_that_leaves_no_training_samples():
    X, y = np.zeros((10, 3)), np.arange(10)
    with pytest.raises(ValueError, match="test_fraction=0.99 leaves no training samples out of 10"):
        nnc.datasets.train_test_split(X, y, 0.99)
    X_train, X_test, _, _ = nnc.datasets.train_test_split(X, y, 0.9)
    assert len(X_train) == 1 and len(X_test) == 9


def test_read_idx_with_huge_or_too_many_dimensions():
    from nnc.datasets.mnist import read_idx

    huge = bytes([0, 0, 8, 3]) + b"\xff" * 12 + b"x"
    with pytest.raises(ValueError, match=f"needs {(2 ** 32 - 1) ** 3} bytes"):
        read_idx(huge)
    many = bytes([0, 0, 8, 255]) + (1).to_bytes(4, "big") * 255 + b"x"
    with pytest.raises(ValueError, match="data: IDX data of 255 dimensions cannot be read"):
        read_idx(many)


def test_a_reader_that_goes_away_does_not_stop_training(tmp_path):
    """`python -m nnc train --save m.npz | head -1`: the output after the
    first line has nowhere to go, but the run finishes and saves."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    path = tmp_path / "piped.npz"
    proc = subprocess.Popen([sys.executable, "-u", "-m", "nnc", "train", "--epochs", "3",
                             "--quiet", "--save", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away before the epoch lines
    _, err = proc.communicate(timeout=300)
    assert first.startswith(b"digits:")
    assert proc.returncode == 0, err.decode()
    assert b"Broken pipe" not in err and b"Traceback" not in err
    assert path.exists()
    # `2>&1 | head -1`: the progress bars (stderr) go to the closed pipe too
    path.unlink()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "nnc", "train", "--epochs", "3",
                             "--save", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    assert path.exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "--optimizer", "sgd", "--momentum", "0.5"],
     "--momentum applies to --optimizer momentum or nesterov, not sgd"),
    (["train", "--hidden", "none", "--bn"], "--bn acts on hidden layers"),
    (["train", "--hidden", "none", "--dropout", "0.2"], "--dropout acts on hidden layers"),
])
def test_train_refuses_options_it_would_ignore(argv, message, capsys):
    assert run(argv + ["--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_bench_checks_its_output_folder_first(tmp_path, capsys):
    taken = tmp_path / "a-file"
    taken.write_text("")
    assert run(["bench", "--samples", "64", "--batch-sizes", "32", "--repeats", "1",
                "--tiny-steps", "5", "--quiet", "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out: cannot use") and err.count("\n") == 1


def test_demo_prints_one_line_per_epoch_and_no_progress_bars(capsys):
    assert run(["demo", "--epochs", "3"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert lines[-1].startswith("held-out accuracy: ") and len(lines) == 5
    assert "batch" not in captured.err  # no tqdm bar
    assert run(["demo", "--epochs", "3", "--quiet"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_version(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nnc {nnc.__version__}"


def test_save_to_a_folder_name_is_refused_before_training(capsys, tmp_path):
    assert run(["train", "--save", str(tmp_path) + "/", "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert "names a folder" in captured.err and "epoch" not in captured.out


@pytest.mark.parametrize("link", [None, "symlink"])
def test_save_and_csv_naming_one_file_is_refused_before_training(capsys, tmp_path, link):
    target = tmp_path / "run.out"
    other = target
    if link:
        target.write_text("")
        other = tmp_path / "other.out"
        os.symlink(target, other)
    assert run(["train", "--epochs", "1", "--save", str(target), "--csv", str(other)]) == 2
    captured = capsys.readouterr()
    assert "--save and --csv name the same file" in captured.err and "epoch" not in captured.out


@pytest.mark.parametrize("flag", ["--save", "--csv"])
def test_an_empty_output_name_is_refused_not_ignored(capsys, flag):
    assert run(["train", "--epochs", "1", flag, ""]) == 2
    captured = capsys.readouterr()
    assert f"{flag} must be a file name" in captured.err and "epoch" not in captured.out


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnc.Trainer, "fit", interrupted)
    assert run(["train", "--epochs", "1"]) == 130
    err = capsys.readouterr().err
    assert err == "interrupted\n"


def test_a_huge_omp_num_threads_is_capped_not_a_crash():
    code = "import nnc; print(nnc.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="100000")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env, cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == nnc.threads.MAX_THREADS


def test_an_unwritable_save_folder_is_refused_before_training(capsys):
    from nnc._validation import folder_problem

    if not os.path.isdir("/sys") or folder_problem("/sys/m.npz") is None:
        pytest.skip("needs a folder this user cannot write in (/sys)")
    assert run(["train", "--epochs", "1", "--save", "/sys/m.npz"]) == 2
    captured = capsys.readouterr()
    assert "cannot write in the folder '/sys'" in captured.err and "epoch" not in captured.out


def test_diagnose_checks_its_plot_path_first(tmp_path, capsys):
    run_file = tmp_path / "run.json"
    nnc.History().save(run_file)
    assert run(["diagnose", str(run_file), "--plot", str(tmp_path / "missing" / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--plot: the folder" in err and "does not exist" in err


def test_evaluate_names_a_folder_as_not_a_model_file(tmp_path, capsys):
    assert run(["evaluate", str(tmp_path)]) == 2
    assert "is not a model file" in capsys.readouterr().err


@pytest.mark.parametrize("plot, message", [("p.xyz", "--plot 'p.xyz': matplotlib cannot write .xyz"),
                                           ("run.json/p.png", "is a file, not a folder")])
def test_diagnose_refuses_a_plot_it_cannot_write_before_reporting(plot, message, tmp_path,
                                                                  capsys, monkeypatch):
    if plot.endswith(".xyz"):
        pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    nnc.History().save("run.json")
    assert run(["diagnose", "run.json", "--plot", plot]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_train_takes_the_lecture_schedule_and_an_initialiser(tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert run(["train", "--epochs", "2", "--quiet", "--optimizer", "sgd", "--lr", "0.2",
                "--schedule", "linear", "--init", "lecun_normal", "--batch-size", "256",
                "--save", str(path)]) == 0
    out = capsys.readouterr().out
    # 1294 training samples in batches of 256: 6 steps per epoch, tau = 12
    assert "LinearDecay(lr0=0.2, lr_final=0.002, decay_steps=12)" in out
    header = read_header(str(path))
    assert header["metadata"]["schedule"].startswith("LinearDecay(")
    assert header["layers"][0]["config"]["init"] == "lecun_normal"
    assert header["layers"][-1]["config"]["init"] is None  # the output layer keeps the default


def test_train_refuses_an_unknown_schedule_or_initialiser(capsys):
    for flag, value in (("--schedule", "exponential"), ("--init", "ones")):
        assert run(["train", flag, value]) == 2
        assert f"argument {flag}: invalid choice" in capsys.readouterr().err
