"""Benchmark runner, statistics, resume, manifest, missing images, RAID analysis, feature cache, CLI
and torchrun.

Tiny synthetic datasets in the real layouts (64x64 images), cheap metrics (mse, l1) and one
InvariantLPIPS variant with a random trunk (its feature cache in a temporary folder).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats as sps

from helpers import smooth_images
from invariant_lpips import InvariantLPIPS
from invariant_lpips.benchmarks.cli import add_arguments
from invariant_lpips.benchmarks.runner import CSV_FIELDS, compute_statistics, read_scores, run_benchmark
from invariant_lpips.data.datasets import load_dataset
from invariant_lpips.data.io import load_image
from invariant_lpips.cli import main
from invariant_lpips.metric.registry import MetricAdapter, MetricSpec, build_metric, get_spec
from invariant_lpips.weights.vgg16 import VGG16_FEATURES_SHA256

REPO = Path(__file__).resolve().parents[1]
N_REFS = 3
KADID_TYPES = (1, 2)
KADID_LEVELS = (1, 2, 3)


# ----------------------------------------------------------------------------- synthetic datasets


def _save(t: torch.Tensor, path: Path) -> None:
    arr = (t[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(path)


def _distort(ref: torch.Tensor, kind: int, level: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == 1:  # noise
        return (ref + 0.04 * level * torch.randn(ref.shape, generator=g)).clamp(0, 1)
    if kind == 2:  # brightness
        return (ref + 0.06 * level).clamp(0, 1)
    if kind == 3:  # translation
        return torch.roll(ref, shifts=(level - 1, 2 * (level - 1)), dims=(2, 3))
    return torch.flip(ref, dims=(3,)) * (1 - 0.05 * level) + 0.05 * level * ref  # stand-in for rotation


def make_kadid(root: Path, with_scores: bool = True) -> Path:
    img = root / "images"
    img.mkdir(parents=True)
    refs = smooth_images(N_REFS, 64, 64, seed=1)
    rng = np.random.default_rng(0)
    rows = []
    for r in range(N_REFS):
        ref = refs[r:r + 1]
        _save(ref, img / f"I{r + 1:02d}.png")
        for t in KADID_TYPES:
            for lv in KADID_LEVELS:
                name = f"I{r + 1:02d}_{t:02d}_{lv:02d}.png"
                _save(_distort(ref, t, lv, seed=100 * r + 10 * t + lv), img / name)
                dmos = 5.0 - 1.1 * lv - 0.3 * t + 0.2 * rng.standard_normal()
                rows.append((name, f"I{r + 1:02d}.png", f"{dmos:.4f}" if with_scores else "", ""))
    with open(root / "dmos.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dist_img", "ref_img", "dmos", "var"])
        w.writerows(rows)
    return root


def make_raid(root: Path) -> Path:
    img = root / "images"
    img.mkdir(parents=True)
    refs = smooth_images(N_REFS, 64, 64, seed=2)
    rng = np.random.default_rng(1)
    gain = {"rot": 0.5, "trans": 0.25, "scale": 0.4, "gn": 0.6}
    kind = {"rot": 4, "trans": 3, "scale": 2, "gn": 1}
    rows = []
    for r in range(N_REFS):
        ref = refs[r:r + 1]
        _save(ref, img / f"img_{r + 1:02d}.png")
        for t in ("rot", "trans", "scale", "gn"):
            for lv in range(1, 11):
                name = f"{t}_img_{r + 1:02d}_level_{lv:02d}.png"
                _save(ref if lv == 1 else _distort(ref, kind[t], lv, seed=r * 1000 + lv), img / name)
                resp = gain[t] * (lv - 1) + (0.15 * rng.standard_normal() if lv > 1 else 0.0)
                rows.append((f"img_{r + 1:02d}.png", name, f"{resp / 5:.4f}", "0.2", f"{resp:.4f}",
                             f"{5 - resp:.4f}"))
    with open(root / "responses.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Reference", "Distorted", "Curve_Value", "Sigmas", "Response", "Estimated_MOS"])
        w.writerows(rows)
    return root


def make_tid2013(root: Path) -> Path:
    (root / "reference_images").mkdir(parents=True)
    (root / "distorted_images").mkdir()
    refs = smooth_images(N_REFS, 64, 64, seed=3)
    lines = []
    for r in range(N_REFS):
        ref = refs[r:r + 1]
        _save(ref, root / "reference_images" / f"I{r + 1:02d}.BMP")
        for t in (1, 2):
            for lv in (1, 2, 3, 4):
                name = f"i{r + 1:02d}_{t:02d}_{lv}.bmp"
                _save(_distort(ref, t, lv, seed=r * 7 + lv), root / "distorted_images" / name)
                lines.append(f"{6.5 - 0.9 * lv - 0.2 * t + 0.05 * r:.5f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


def random_variant(name: str = "gap-lin") -> MetricAdapter:
    torch.manual_seed(0)
    m = InvariantLPIPS(name, trunk_weights=None).eval()
    spec = dataclasses.replace(get_spec(name), name=f"{name}-random")
    return MetricAdapter.for_module(spec, m)


class CountingMetric(MetricAdapter):
    """mse that counts its calls and can fail on a chosen call (a crash mid-run)."""

    def __init__(self, name: str = "counting", fail_on_call: int = 0):
        self.n_calls = 0
        self.refs_seen = []
        self.fail_on_call = fail_on_call

        def fn(x, y):
            self.n_calls += 1
            self.refs_seen.append(round(float(x.mean()), 5))
            if self.fail_on_call and self.n_calls == self.fail_on_call:
                raise RuntimeError("simulated crash")
            return ((x - y) ** 2).mean(dim=(1, 2, 3))

        super().__init__(MetricSpec(name, "pixel", min_size=1), lambda x: x, fn)


def read_csv(path: Path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


RUN = dict(device="cpu", num_workers=0, progress=False, bootstrap=50)


@pytest.fixture(scope="module")
def kadid(tmp_path_factory) -> Path:
    return make_kadid(tmp_path_factory.mktemp("kadid"))


# ----------------------------------------------------------------------------- tests


def test_statistics_match_scipy():
    rng = np.random.default_rng(0)
    d = rng.random(60)
    mos = 5 - 3 * d + 0.3 * rng.standard_normal(60)
    refs = [f"r{i % 6}" for i in range(60)]
    types = [f"t{i % 3}" for i in range(60)]
    st = compute_statistics(d, mos, refs, types, metric_lower_is_better=True, human_higher_is_better=True,
                            bootstrap=200)
    assert st["SRCC"] == pytest.approx(sps.spearmanr(-d, mos)[0], abs=1e-12)
    assert st["KRCC"] == pytest.approx(sps.kendalltau(-d, mos)[0], abs=1e-12)
    assert st["SRCC"] > 0.8 and 0.8 < st["PLCC"] <= 1
    for k in ("SRCC", "KRCC", "PLCC"):
        lo, hi = st["ci"][k]
        assert lo <= st[k] <= hi
    t0 = [i for i in range(60) if types[i] == "t0"]
    assert st["per_type"]["t0"]["SRCC"] == pytest.approx(sps.spearmanr(-d[t0], mos[t0])[0], abs=1e-12)
    # a DMOS-like (lower = better) human score flips the orientation
    st2 = compute_statistics(d, -mos, refs, metric_lower_is_better=True, human_higher_is_better=False, bootstrap=0)
    assert st2["SRCC"] == pytest.approx(st["SRCC"]) and st2["ci"] is None


def test_kadid_end_to_end(kadid, tmp_path):
    out = tmp_path / "out"
    variant = random_variant()
    summary = run_benchmark("kadid10k", ["mse", "l1", variant], out, root=kadid, batch_size=4,
                            cache_root=tmp_path / "cache", **RUN)
    n = N_REFS * len(KADID_TYPES) * len(KADID_LEVELS)
    for name in ("mse", "l1", "gap-lin-random"):
        rows = read_csv(out / f"scores_{name}.csv")
        assert len(rows) == n and len({r["dist_path"] for r in rows}) == n
        assert list(rows[0]) == list(CSV_FIELDS)
    assert (out / "summary.md").is_file() and not (out / "parts").exists()

    # distances: mse as computed by hand; the variant's pooled path equals its forward
    ds = load_dataset("kadid10k", kadid)
    rows = {r["dist_path"]: r for r in read_csv(out / "scores_mse.csv")}
    rec = ds.records[4]
    x, y = load_image(rec.ref_path), load_image(rec.dist_path)
    assert float(rows[f"images/{rec.dist_path.name}"]["distance"]) == pytest.approx(float(((x - y) ** 2).mean()),
                                                                                    rel=1e-5)
    vrows = {r["dist_path"]: r for r in read_csv(out / "scores_gap-lin-random.csv")}
    with torch.no_grad():
        ref_d = float(variant.module(x, y, normalize=True))
    assert float(vrows[f"images/{rec.dist_path.name}"]["distance"]) == pytest.approx(ref_d, rel=1e-4, abs=1e-7)

    # statistics in the summary are the oriented scipy correlations of the CSV
    d = np.array([float(r["distance"]) for r in read_csv(out / "scores_mse.csv")])
    mos = np.array([float(r["human_score"]) for r in read_csv(out / "scores_mse.csv")])
    js = json.loads((out / "summary.json").read_text())
    assert js == summary
    m = js["metrics"]["mse"]
    assert m["SRCC"] == pytest.approx(sps.spearmanr(-d, mos)[0], abs=1e-9)
    assert m["KRCC"] == pytest.approx(sps.kendalltau(-d, mos)[0], abs=1e-9)
    assert m["n"] == n and set(m["per_type"]) == {"01", "02"}
    assert m["ci"]["SRCC"][0] <= m["SRCC"] <= m["ci"]["SRCC"][1]
    md = (out / "summary.md").read_text()
    assert "| mse |" in md and "per distortion type" in md

    # manifest
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete" and man["torch"] == torch.__version__
    assert man["dataset"]["file_list_hash"] == ds.file_list_hash()
    assert man["trunk_sha256_expected"] == VGG16_FEATURES_SHA256
    assert set(man["peers"]) >= {"lpips", "DISTS_pytorch", "stlpips-pytorch", "piq"}
    assert man["package"]["invariant_lpips"] and man["device"]["type"] == "cpu" and man["dtype"] == "float32"
    vm = man["metrics"]["gap-lin-random"]
    assert vm["weights_entry"]["sha256"] == variant.module.weights_entry["sha256"]
    assert vm["trunk_sha256"] and vm["trunk_is_imagenet"] is False
    assert man["metrics"]["mse"]["trunk_sha256"] is None


def _trunk_calls(adapter: MetricAdapter) -> list:
    calls = []
    adapter.module.net.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    return calls


def _distances(path: Path) -> dict:
    return {r["dist_path"]: float(r["distance"]) for r in read_csv(path)}


def test_second_run_reads_cached_statistics(kadid, tmp_path):
    """Our GAP variants read pooled statistics through the feature cache: a second run over the same
    images (a fresh output folder, or --no-resume) makes no trunk pass and gives the same distances."""
    ds = load_dataset("kadid10k", kadid).subset(["I01", "I02"])
    variant = random_variant()
    calls = _trunk_calls(variant)
    cache = tmp_path / "cache"
    n_pairs = 2 * len(KADID_TYPES) * len(KADID_LEVELS)
    n_images = 2 + n_pairs
    first = run_benchmark(ds, [variant, "mse"], tmp_path / "o1", batch_size=4, cache_root=cache, **RUN)
    assert sum(calls) == n_images  # each image through the trunk once
    (counts,) = first["run"]["feature_cache"].values()
    assert counts == {"hits": 0, "misses": n_images}
    assert list(cache.glob("*/config.json"))

    calls.clear()
    second = run_benchmark(ds, [variant, "mse"], tmp_path / "o2", batch_size=4, cache_root=cache, **RUN)
    assert calls == []
    (counts,) = second["run"]["feature_cache"].values()
    assert counts == {"hits": n_images, "misses": 0}
    assert second["run"]["pairs_computed"] == first["run"]["pairs_computed"] == 2 * n_pairs
    name = variant.name
    assert _distances(tmp_path / "o2" / f"scores_{name}.csv") == _distances(tmp_path / "o1" / f"scores_{name}.csv")
    assert second["metrics"][name]["SRCC"] == pytest.approx(first["metrics"][name]["SRCC"])

    # starting over in the same folder, and with only our variant (nothing decoded): still no trunk pass
    third = run_benchmark(ds, [variant], tmp_path / "o1", resume=False, cache_root=cache, **RUN)
    assert calls == [] and third["run"]["pairs_computed"] == n_pairs
    man = json.loads((tmp_path / "o1" / "manifest.json").read_text())
    assert man["feature_cache"]["enabled"] and str(cache) in next(iter(man["feature_cache"]["folders"].values()))

    # variants with the same trunk configuration (paper: raw space, the same random trunk) share one cache,
    # filled above by gap-lin; the distances are those of the module's forward
    other = random_variant("paper")
    other_calls = _trunk_calls(other)
    s = run_benchmark(ds, [variant, other], tmp_path / "o3", cache_root=cache, **RUN)
    assert len(s["run"]["feature_cache"]) == 1 and calls == [] and other_calls == []
    rec = ds.records[7]
    with torch.no_grad():
        want = float(other.module(load_image(rec.ref_path), load_image(rec.dist_path), normalize=True))
    got = _distances(tmp_path / "o3" / f"scores_{other.name}.csv")[f"images/{rec.dist_path.name}"]
    assert got == pytest.approx(want, rel=1e-4, abs=1e-7)

    # feature_cache=False (--no-cache): in memory only, nothing written
    run_benchmark(ds.subset(["I01"]), [variant], tmp_path / "o4", cache_root=tmp_path / "nocache",
                  feature_cache=False, **RUN)
    assert sum(calls) == 1 + len(KADID_TYPES) * len(KADID_LEVELS) and not (tmp_path / "nocache").exists()
    expected = _distances(tmp_path / "o1" / f"scores_{name}.csv")
    for key, value in _distances(tmp_path / "o4" / f"scores_{name}.csv").items():
        assert value == pytest.approx(expected[key], rel=1e-5, abs=1e-8)


def test_pooled_metric_skips_unreadable_images(tmp_path):
    """The cached path reports missing / corrupt images like the pixel path does."""
    root = make_kadid(tmp_path / "kadid")
    (root / "images" / "I03_02_01.png").write_bytes(b"this is not a png")
    ds = load_dataset("kadid10k", root, validate=False)
    variant = random_variant()
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="I03_02_01.png"):
        run_benchmark(ds.subset(["I03"]), [variant], tmp_path / "o1", cache_root=cache, **RUN)
    s = run_benchmark(ds.subset(["I03"]), [variant, "mse"], tmp_path / "o2", cache_root=cache, skip_missing=True,
                      **RUN)
    assert s["skipped"]["n_pairs"] == 1 and s["skipped"]["n_images"] == 1
    assert s["metrics"][variant.name]["n_rows"] == s["metrics"]["mse"]["n_rows"] == 5
    # a corrupt reference drops its whole group
    (root / "images" / "I01.png").write_bytes(b"garbage")
    s = run_benchmark(ds.subset(["I01", "I03"]), [variant], tmp_path / "o3", cache_root=cache, skip_missing=True,
                      **RUN)
    assert s["skipped"]["n_pairs"] == 6 + 1 and s["skipped"]["n_images"] == 2
    assert {e["role"] for e in s["skipped"]["images"]} == {"reference", "distorted"}
    assert s["metrics"][variant.name]["n_rows"] == 5
    assert json.loads((tmp_path / "o3" / "state.json").read_text())["metrics"][variant.name]["done_refs"] == ["I03"]


def test_resume_after_crash(kadid, tmp_path):
    out = tmp_path / "out"
    per_group = len(KADID_TYPES) * len(KADID_LEVELS)
    flaky = CountingMetric(fail_on_call=2)  # one call per reference group (batch_size >= group size)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_benchmark("kadid10k", ["mse", flaky], out, root=kadid, batch_size=16, **RUN)
    # the first group is on disk for both metrics, nothing of the second
    assert len(read_csv(out / "scores_counting.csv")) == per_group
    assert len(read_csv(out / "scores_mse.csv")) == per_group
    state = json.loads((out / "state.json").read_text())
    assert state["metrics"]["counting"]["done_refs"] == ["I01"]

    # a torn last line and a duplicated row (a crash mid-append, a crash before the state update)
    with open(out / "scores_mse.csv", "a") as fh:
        lines = (out / "scores_mse.csv").read_text().splitlines()
        fh.write(lines[1] + "\n" + "mse,I02,images/I02_0")
    again = CountingMetric()
    run_benchmark("kadid10k", ["mse", again], out, root=kadid, batch_size=16, **RUN)
    assert again.n_calls == N_REFS - 1  # finished group not recomputed
    for name in ("mse", "counting"):
        rows = read_csv(out / f"scores_{name}.csv")
        keys = [r["dist_path"] for r in rows]
        assert len(keys) == N_REFS * per_group and len(set(keys)) == len(keys)
    # a third run computes nothing
    third = CountingMetric()
    summary = run_benchmark("kadid10k", ["mse", third], out, root=kadid, batch_size=16, **RUN)
    assert third.n_calls == 0 and summary["run"]["pairs_computed"] == 0
    assert summary["metrics"]["counting"]["n"] == N_REFS * per_group

    # a stored configuration that differs is refused; resume=False starts over
    st = json.loads((out / "state.json").read_text())
    st["metrics"]["mse"]["fingerprint"]["file_list_hash"] = "something else"
    (out / "state.json").write_text(json.dumps(st))
    with pytest.raises(ValueError, match="another configuration"):
        run_benchmark("kadid10k", ["mse"], out, root=kadid, **RUN)
    fresh = CountingMetric("mse")
    run_benchmark("kadid10k", [fresh], out, root=kadid, batch_size=16, resume=False, **RUN)
    assert fresh.n_calls == N_REFS


def test_read_scores_tolerates_torn_tail(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text(",".join(CSV_FIELDS) + "\nmse,I01,a.png,01,1,4.0,0.5\nmse,I01,b.png,01,2,3.0,0.")
    rows, clean = read_scores(p)
    assert [r["dist_path"] for r in rows] == ["a.png"] and not clean
    p.write_text("foo,bar\n1,2\n")
    with pytest.raises(ValueError, match="unexpected header"):
        read_scores(p)


def test_missing_and_corrupt_images(tmp_path):
    root = make_kadid(tmp_path / "kadid")
    missing = root / "images" / "I02_01_02.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match="I02_01_02.png"):
        run_benchmark("kadid10k", ["mse"], tmp_path / "o1", root=root, **RUN)
    corrupt = root / "images" / "I03_02_01.png"
    corrupt.write_bytes(b"this is not a png")
    ds = load_dataset("kadid10k", root, validate=False)
    with pytest.raises(ValueError, match="I03_02_01.png"):
        run_benchmark(ds.subset(["I03"]), ["mse"], tmp_path / "o2", **RUN)
    s = run_benchmark("kadid10k", ["mse"], tmp_path / "o3", root=root, skip_missing=True, **RUN)
    assert s["skipped"]["n_pairs"] == 2 and s["skipped"]["n_images"] == 2
    listed = {Path(e["path"]).name for e in s["skipped"]["images"]}
    assert listed == {"I02_01_02.png", "I03_02_01.png"}
    assert len(read_csv(tmp_path / "o3" / "scores_mse.csv")) == N_REFS * 6 - 2
    assert s["metrics"]["mse"]["n"] == N_REFS * 6 - 2
    assert "skipped" in (tmp_path / "o3" / "summary.md").read_text()
    # a corrupt reference drops its whole group
    (root / "images" / "I01.png").write_bytes(b"garbage")
    s = run_benchmark("kadid10k", ["mse"], tmp_path / "o4", root=root, skip_missing=True, num_workers=1,
                      device="cpu", progress=False, bootstrap=0)
    assert s["skipped"]["n_pairs"] == 6 + 2 and s["metrics"]["mse"]["n_rows"] == N_REFS * 6 - 8


def test_no_human_scores(tmp_path):
    root = make_kadid(tmp_path / "gen", with_scores=False)
    s = run_benchmark("kadid10k", ["mse"], tmp_path / "out", root=root, **RUN)
    assert s["dataset"]["human_scores"] is False and "no human scores" in s["note"]
    assert "SRCC" not in s["metrics"]["mse"] and s["metrics"]["mse"]["n_rows"] == N_REFS * 6
    rows = read_csv(tmp_path / "out" / "scores_mse.csv")
    assert len(rows) == N_REFS * 6 and all(r["human_score"] == "" for r in rows)
    assert "No human scores" in (tmp_path / "out" / "summary.md").read_text()


def test_raid_analysis(tmp_path):
    """The runner's RAID mode: the one RAID analysis (benchmarks.raid) on reference-vs-level distances,
    with the level index beside the metrics; no trial figures (they need RAID's raw trials)."""
    root = make_raid(tmp_path / "raid")
    out = tmp_path / "out"
    s = run_benchmark("raid", ["mse", "l1"], out, root=root, batch_size=20, **RUN)
    ds = load_dataset("raid", root)
    hi = [r for r in ds.records if r.level >= 2]
    oracle = sps.spearmanr([r.level for r in hi], [r.score for r in hi])[0]
    raid = s["raid"]
    li = raid["rows"]["level index"]["curve"]
    assert li["pooled"] == pytest.approx(oracle, abs=1e-12)
    assert li["cross_distortion"] is None  # the level index is constant within a level
    assert "n_trials" not in raid and "trial" not in raid["rows"]["mse"]
    m = raid["rows"]["mse"]["curve"]
    rows = {r["dist_path"]: float(r["distance"]) for r in read_csv(out / "scores_mse.csv")}
    d = [rows[f"images/{r.dist_path.name}"] for r in hi]
    assert m["pooled"] == pytest.approx(sps.spearmanr(d, [r.score for r in hi])[0], abs=1e-12)
    assert set(m["per_distortion"]) == {"rot", "trans", "scale", "gn"}
    gn = [r for r in hi if r.dist_type == "gn"]
    assert m["per_distortion"]["gn"] == pytest.approx(
        sps.spearmanr([rows[f"images/{r.dist_path.name}"] for r in gn], [r.score for r in gn])[0], abs=1e-12)
    assert m["n_curves"] + m["n_curves_constant"] == 4 * N_REFS
    md = (out / "summary.md").read_text()
    assert f"| level index | {oracle:.3f} |" in md and "cross-distortion" in md
    pytest.importorskip("matplotlib")
    assert (out / "raid_curves.png").is_file() and "raid_curves.png" in md


def test_tid2013_layout(tmp_path):
    root = make_tid2013(tmp_path / "tid")
    s = run_benchmark("tid2013", ["mse", "l1"], tmp_path / "out", root=root, **RUN)
    assert s["metrics"]["mse"]["n"] == N_REFS * 8
    assert s["metrics"]["l1"]["SRCC"] > 0  # more noise / brightening = lower MOS = larger distance


def test_cli_bench(kadid, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["bench", "--dataset", "kadid10k", "--root", str(kadid), "--metrics", "mse,l1", "--out", str(out),
               "--workers", "0", "--bootstrap", "20", "--no-progress"])
    assert rc == 0 and (out / "scores_l1.csv").is_file()
    assert "| l1 |" in capsys.readouterr().out
    rc = main(["bench", "--dataset", "kadid10k", "--root", str(kadid), "--metrics", "nope", "--out", str(out)])
    assert rc == 1


def test_bench_help_is_plain_text(capsys):
    parser = add_arguments(argparse.ArgumentParser())
    assert all(a.help for a in parser._actions), [a.dest for a in parser._actions if not a.help]
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    assert "--cache DIR" in text and "--no-cache" in text
    assert "``" not in text and "::" not in text and ":mod:" not in text and ":func:" not in text
    assert "benchmarks/" not in text and "run_benchmark.py" not in text


@pytest.mark.slow
def test_cli_bench_real_weights_second_run_from_cache(kadid, tmp_path):
    """The shipped gap-lin (ImageNet trunk) through the CLI twice: the second run reads the cache."""
    args = ["bench", "--dataset", "kadid10k", "--root", str(kadid), "--metrics", "gap-lin,mse", "--workers", "0",
            "--bootstrap", "0", "--no-progress", "--cache", str(tmp_path / "cache")]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    first, second = (json.loads((tmp_path / o / "summary.json").read_text()) for o in ("a", "b"))
    n_images = N_REFS * (1 + len(KADID_TYPES) * len(KADID_LEVELS))
    assert [c["misses"] for c in first["run"]["feature_cache"].values()] == [n_images]
    assert [c["misses"] for c in second["run"]["feature_cache"].values()] == [0]
    assert _distances(tmp_path / "a" / "scores_gap-lin.csv") == _distances(tmp_path / "b" / "scores_gap-lin.csv")
    man = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man["metrics"]["gap-lin"]["trunk_is_imagenet"] is True
    assert second["metrics"]["gap-lin"]["SRCC"] > 0  # agrees with the synthetic DMOS


def test_registry_adapter_is_accepted(kadid, tmp_path):
    s = run_benchmark("kadid10k", [build_metric("l1")], tmp_path / "o", root=kadid, **RUN)
    assert s["metrics"]["l1"]["n"] == N_REFS * 6


def test_torchrun_two_ranks(kadid, tmp_path):
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "invariant_lpips", "bench", "--dataset", "kadid10k", "--root", str(kadid),
           "--metrics", "mse,l1", "--out", str(out), "--workers", "0", "--bootstrap", "20", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_csv(out / "scores_mse.csv")
    assert len(rows) == N_REFS * 6 and len({r["dist_path"] for r in rows}) == len(rows)
    man = json.loads((out / "manifest.json").read_text())
    assert man["world_size"] == 2 and man["status"] == "complete"
    assert sorted(p.name for p in out.glob("state*.json")) == ["state.rank0.json", "state.rank1.json"]
    assert not (out / "parts").exists()
    single = run_benchmark("kadid10k", ["mse"], tmp_path / "single", root=kadid, **RUN)
    assert json.loads((out / "summary.json").read_text())["metrics"]["mse"]["SRCC"] == pytest.approx(
        single["metrics"]["mse"]["SRCC"])


def _script(name):
    """A script of benchmarks/ as a module (they are not installed)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_results_rows_keep_the_machine_that_measured_them(tmp_path):
    """A results file that gains rows over runs on several machines keeps each row's machine (earlier rows:
    the file's environment), and a report over them names every machine; one machine: the plain line."""
    from invariant_lpips.benchmarks.environment import environment, machine_line, rows_machine_line, tag_rows

    here = machine_line(environment("cpu"))
    assert rows_machine_line(tag_rows({"a": {}, "b": {"machine": here}}, here), here) == here
    assert rows_machine_line({"a": {"machine": "box"}, "b": {}}, here) == \
        f"this report on {here}; rows from box: a; not recorded: b"
    loss = _script("loss")
    other = {"device": {"cpu": "Other CPU", "cores": 4, "torch_threads": 4}, "torch": "2.0"}
    settings = {"crop": 64, "steps": 1}
    (tmp_path / "aligned.json").write_text(json.dumps({"settings": settings, "environment": other,
                                                       "metrics": {"old": {"mean": {}}}}))
    loss.save(argparse.Namespace(out=str(tmp_path)), "aligned", settings, {"new": {"mean": {}}})
    rows = json.loads((tmp_path / "aligned.json").read_text())["metrics"]
    assert rows["old"]["machine"] == machine_line(other) and rows["new"]["machine"] == here
    loss.save(argparse.Namespace(out=str(tmp_path)), "aligned", settings, {"newer": {"mean": {}}})
    assert json.loads((tmp_path / "aligned.json").read_text())["metrics"]["old"]["machine"] == machine_line(other)
