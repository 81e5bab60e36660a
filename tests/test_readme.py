"""The README's quick start and CI agree."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ci_runs_exactly_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().strip().splitlines()
    command = ci[-1].strip()
    assert "pytest" in command
    quick_start = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = [line.strip() for line in quick_start.splitlines() if line.startswith("python3 ")]
    assert len(commands) == 2, commands
    assert commands[1] == command
    assert commands[0].endswith("python -m nnc demo")
