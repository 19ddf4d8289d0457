"""The command line, the README's commands, the examples (real weights where marked slow)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from invariant_lpips.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "images"


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    cmds = _readme_commands()
    assert len(cmds) == 2, cmds
    ci = (ROOT / ".ci" / "run").read_text()
    assert cmds[1].strip() in ci, "'.ci/run' must run exactly the README's test command"
    assert "invariant-lpips score" in cmds[0]
    for path in re.findall(r"examples/images/\S+\.png", cmds[0]):
        assert (ROOT / path).is_file(), path


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("score", "weights", "variants", "calibrate", "robustness", "make-dataset"):
        assert cmd in out


def test_variants_command(capsys):
    assert main(["variants", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"paper", "lpips-gap"} <= {r["name"] for r in rows}


def test_score_errors_name_the_path(capsys, tmp_path):
    rc = main(["score", str(tmp_path / "missing.png"), str(EXAMPLES / "coffee.png")])
    assert rc == 1
    assert "missing.png" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    from invariant_lpips.data.io import load_image

    with pytest.raises(ValueError, match="bad.png"):
        load_image(bad)


def test_load_image_16bit_grey_exif(tmp_path):
    import numpy as np
    from PIL import Image

    from invariant_lpips.data.io import load_image

    arr16 = (np.linspace(0, 65535, 32 * 40).reshape(32, 40)).astype(np.uint16)
    Image.fromarray(arr16).save(tmp_path / "g16.png")
    t = load_image(tmp_path / "g16.png")
    assert t.shape == (1, 3, 32, 40) and float(t.max()) == pytest.approx(1.0) and float(t.min()) == 0.0
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = 255
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    img.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    t = load_image(tmp_path / "rot.jpg")
    assert t.shape == (1, 3, 30, 20)  # EXIF applied: displayed as portrait
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    assert load_image(tmp_path / "rgba.png").shape == (1, 3, 20, 30)


@pytest.mark.slow
def test_score_command_real_weights(capsys):
    assert main(["score", str(EXAMPLES / "coffee.png"), str(EXAMPLES / "coffee_shifted_2px.png"), "--json"]) == 0
    shifted = json.loads(capsys.readouterr().out)["distance"]
    assert main(["score", str(EXAMPLES / "coffee.png"), str(EXAMPLES / "coffee_jpeg_q15.png")]) == 0
    jpeg = float(capsys.readouterr().out.strip())
    assert 0 < shifted < jpeg


@pytest.mark.slow
def test_score_folder_mode(tmp_path, capsys):
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(EXAMPLES / "coffee.png", a / "x.png")
    shutil.copy(EXAMPLES / "coffee_jpeg_q15.png", b / "x.png")
    out = tmp_path / "s.csv"
    assert main(["score", str(a), str(b), "--out", str(out), "--variant", "paper"]) == 0
    lines = out.read_text().strip().splitlines()
    assert lines[0] == "file,distance" and lines[1].startswith("x.png,")


@pytest.mark.slow
def test_lpips_golden_values_on_bundled_coffee():
    """The LPIPS baseline on bundled images equals the official package (also checked on the LPIPS
    repository's examples: 0.568613 / 0.421664, see README)."""
    import torch

    import invariant_lpips as il

    ref = il.load_image(EXAMPLES / "coffee.png")
    jpeg = il.load_image(EXAMPLES / "coffee_jpeg_q15.png")
    with torch.inference_mode():
        d = float(il.LPIPS()(ref, jpeg, normalize=True))
    assert 0.05 < d < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("script, expect", [("score_two_images.py", "InvariantLPIPS"),
                                            ("loss_optimisation.py", "step  30")])
def test_examples_run(script, expect):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout
    if script == "loss_optimisation.py":  # the perceptual loss went down
        losses = [float(line.split()[3]) for line in out.stdout.splitlines() if line.startswith("step")]
        assert losses[-1] < losses[0]
