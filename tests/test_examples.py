"""Every example script runs to completion with --quick (issue 6), in
process through its ``main(argv)``; figures are written when matplotlib
is installed and skipped cleanly when it is not."""
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnc
from nnc import playground, plotting

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("[0-9][0-9]_*.py"))
NAMES = [p.stem for p in SCRIPTS]


def run_example(stem, out):
    main = runpy.run_path(str(EXAMPLES / f"{stem}.py"), run_name="nnc_example")["main"]
    return main(["--quick", "--out", str(out)])


def check_cliff(result):
    jumps = {k: np.linalg.norm(np.diff(p, axis=0), axis=1).max()
             for k, p in result["cliff"].items()}
    assert jumps["no clipping"] > 10 and jumps["clip_norm=10"] <= 1.0 + 1e-9
    near = result["near_ridge"]
    assert near["momentum 0.9, a 1"] < near["SGD lr 0.1"] and near["Adam lr 0.05"] < near["SGD lr 0.1"]


def check_momentum(paths):
    ravine = playground.ravine()
    first = {k: playground.steps_to_reach(ravine, p, 1e-3) for k, p in paths.items()}
    assert first["Nesterov a=0.1 b=0.9"] < first["momentum a=0.1 b=0.9"] \
        < first["SGD a=0.019 (largest stable)"]


def check_memory(states):
    sizes = [states[k]["state_bytes"] for k in states]
    assert sizes[0] == 0 and sizes[1] == sizes[2] == sizes[3] // 2 > 0


def check_symmetry(result):
    assert result["diagnosis"] == "exploding_activations"
    ends = {float(name.split("= ")[1]): end for name, end in result["landscape"].items()}
    assert all((end[0] < 0) == (x0 < 0) for x0, end in ends.items())  # the start decides
    symmetry = result["symmetry"]
    assert symmetry["constant 0.1"]["distinct_units"] == 1
    assert symmetry["zeros"]["first_layer_moved"] == 0
    assert symmetry["Xavier"]["distinct_units"] == 32


def check_batchnorm(result):
    assert result["eval_accuracy"] > result["train_mode"][2][0]
    raw, standardised = zip(*result["standardisation"].values())
    assert max(standardised) > max(raw) + 0.4  # no rate rescues the raw features (0.95 vs 0.31)
    bias = result["bias_before_batchnorm"]
    assert bias["bias_grad"] < 1e-12 * bias["weight_grad"] and bias["output_moved"] < 1e-12


# what each script's result must show, even in quick mode
LESSONS = {
    "02_backprop": lambda r: max(r["errors"].values()) < 1e-6,
    "03_minibatch_sgd": lambda r: r["by_hand_vs_fit"] == 0 and list(r["noise"].values()) == sorted(
        r["noise"].values(), reverse=True),
    "04_challenges": check_cliff,
    "05_sgd_momentum": check_momentum,
    "07_choosing": check_memory,
    "08_initialization": check_symmetry,
    "09_batchnorm": check_batchnorm,
}


def test_one_script_per_lecture_section():
    assert [name[:2] for name in NAMES] == [f"{i:02d}" for i in range(1, 10)]
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"`{name}.py`" in readme


@pytest.mark.parametrize("stem", NAMES)
def test_example_runs_quick(stem, tmp_path, capsys):
    result = run_example(stem, tmp_path)
    printed = capsys.readouterr().out
    assert "Lesson:" in printed and result
    if stem in LESSONS:
        assert LESSONS[stem](result) is not False
    figure = tmp_path / f"{stem}.png"
    if plotting.available():
        assert figure.is_file() and figure.stat().st_size > 1000
    else:
        assert not figure.exists() and "pip install matplotlib" in printed


@pytest.mark.parametrize("stem", NAMES)
def test_examples_find_nnc_without_path_hacks(stem):
    source = (EXAMPLES / f"{stem}.py").read_text(encoding="utf-8")
    assert "sys.path" not in source and "--quick" in source
    assert re.search(r"^import nnc$", source, re.M)
    assert 'if __name__ == "__main__":' in source


def test_a_script_runs_from_the_command_line(tmp_path):
    # as a user runs it: a separate interpreter that imports nnc as installed
    env = dict(os.environ, PYTHONPATH=str(Path(nnc.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, str(EXAMPLES / "06_adaptive.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Lesson:" in done.stdout
