"""README is kept true: its Python blocks run, and the main job prints the numbers it states (real weights)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def python_blocks():
    return re.findall(r"```python\n(.*?)\n```", README, flags=re.S)


def test_readme_is_a_short_guide_that_says_what_a_value_means_first():
    lines = README.splitlines()
    assert len(lines) <= 315, f"README has {len(lines)} lines; design history belongs in docs/"
    first_screen = "\n".join(lines[:40])
    assert "What a value means" in first_screen
    assert len(python_blocks()) >= 4


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index, monkeypatch):
    monkeypatch.chdir(ROOT)  # the blocks read examples/images/...
    code = python_blocks()[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": f"readme_block_{index}"})


@pytest.mark.slow
def test_main_job_prints_the_numbers_readme_states(capsys):
    from invariant_lpips.cli import main

    m = re.search(r"The main job prints `([0-9.]+)` for the 2-px shift and `([0-9.]+)` for the JPEG", README)
    assert m, "README must state the main job's two numbers"
    stated = [float(m.group(1)), float(m.group(2))]
    printed = []
    for dist in ("coffee_shifted_2px.png", "coffee_jpeg_q15.png"):
        assert main(["score", os.path.join(ROOT, "examples", "images", "coffee.png"),
                     os.path.join(ROOT, "examples", "images", dist)]) == 0
        printed.append(float(capsys.readouterr().out.strip().splitlines()[-1]))
    assert printed == pytest.approx(stated, rel=2e-4, abs=2e-6)
