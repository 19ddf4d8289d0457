"""The one RAID analysis (invariant_lpips.benchmarks.raid) and the RAID evaluation command on a tiny
synthetic RAID folder: trial agreement and curve SRCCs against values worked out by hand (ties included),
similarities oriented like distances, the runner's RAID mode computing the same figures, the score cache."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from invariant_lpips.benchmarks import raid as ra
from invariant_lpips.benchmarks.raid_report import read_pair_scores, run_raid_evaluation
from invariant_lpips.data.raid import read_raid_curves, read_raid_trials

# grey value offset of each stimulus (image, kind) -> levels 1..4; mse(a, b) = ((v_a - v_b) / 255)^2
OFFSETS = {(1, "rot"): [0, 10, 20, 30], (1, "gn"): [0, 30, 20, 40],
           (2, "rot"): [0, 5, 40, 10], (2, "gn"): [0, 10, 20, 30]}
RESPONSES = {(1, "rot"): [0, 1, 2, 3], (1, "gn"): [0, 1, 2, 3], (2, "rot"): [0, 1, 2, 3], (2, "gn"): [0, 2, 2, 3]}
# (transformation, image, l11, l12, l21, l22, answer)
TRIALS = [("rotation", 1, 1, 2, 3, 4, 1),        # mse tie (10 vs 10)
          ("rotation", 1, 1, 3, 2, 3, 1),        # 20 > 10, answer 1: agree
          ("gaussian_noise", 1, 1, 2, 1, 3, 2),  # 30 > 20, answer 2: disagree
          ("rotation", 2, 2, 3, 1, 4, 1),        # 35 > 10, answer 1: agree
          ("gaussian_noise", 2, 2, 3, 3, 4, 2),  # tie, no level 1
          ("gaussian_noise", 2, 4, 2, 1, 2, 2),  # 20 > 10, answer 2: disagree
          ("rotation", 1, 2, 4, 3, 4, 1)]        # 20 > 10, answer 1: agree, no level 1


def write_tiny_raid(root):
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    with open(root / "responses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Reference", "Distorted", "Curve_Value", "Sigmas", "Response", "Estimated_MOS"])
        for (image, kind), offs in OFFSETS.items():
            for lv, off in enumerate(offs, 1):
                name = f"{kind}_img_{image:02d}_level_{lv:02d}.png"
                Image.fromarray(np.full((8, 8, 3), 100 + off, np.uint8)).save(img_dir / name)
                if lv == 1:  # RAID's Reference: the undistorted stimulus (the runner's RAID mode reads it)
                    Image.fromarray(np.full((8, 8, 3), 100 + off, np.uint8)).save(img_dir / f"img_{image:02d}.png")
                resp = RESPONSES[(image, kind)][lv - 1]
                w.writerow([f"img_{image:02d}.png", name, resp / 4, 4, resp, 5.4 - 0.5 * resp])
    with open(root / "answers.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gender", "age_group", "transformation", "image_id_01", "distortion_level_11",
                    "distortion_level_12", "distortion_level_21", "distortion_level_22", "reaction_time_ms", "answer"])
        for t in TRIALS:
            w.writerow(["man", "21-30", *t[:6], 1000, t[6]])
    return root


def rank_pearson(x, y):
    """Spearman by hand: Pearson correlation of average ranks."""
    def ranks(v):
        v = list(v)
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2 + 1
            i = j + 1
        return r
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


@pytest.fixture()
def tiny(tmp_path):
    return write_tiny_raid(tmp_path / "raid")


def test_readers_and_needed_pairs(tiny):
    curves = read_raid_curves(tiny / "responses.csv")
    trials = read_raid_trials(tiny / "answers.csv")
    assert len(curves) == 16 and len(trials) == 7
    assert trials[2].kind == "gn" and trials[2].answer == 2 and trials[4].has_level_1 is False
    pairs = ra.needed_pairs(curves, trials)
    assert (1, "rot", 1, 4) in pairs and (2, "gn", 2, 4) in pairs and all(p[2] < p[3] for p in pairs)
    assert len(pairs) == len(set(pairs))


def exact_distances(curves, trials):
    """d(a, b) = (v_a - v_b)^2 in grey levels, exact integers (mse up to the factor 255^2)."""
    return {p: float((OFFSETS[(p[0], p[1])][p[3] - 1] - OFFSETS[(p[0], p[1])][p[2] - 1]) ** 2)
            for p in ra.needed_pairs(curves, trials)}


def test_pipeline_scores_mse_on_the_pairs(tiny, tmp_path):
    s = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"],
                            tmp_path / "out", plot=False, progress=False)
    curves = read_raid_curves(tiny / "responses.csv")
    trials = read_raid_trials(tiny / "answers.csv")
    got = read_pair_scores(tmp_path / "out" / "scores" / "mse.csv")
    exact = exact_distances(curves, trials)
    assert set(got) == set(exact)
    for p, v in exact.items():
        assert got[p] == pytest.approx(v / 255 ** 2, rel=1e-5)
    # the curve figures only see d(1, L), computed from the same level-1 image: the same as exact
    ref = ra.raid_figures(curves, trials, {"mse": exact})["rows"]["mse"]["curve"]
    for k in ("pooled", "per_curve_mean"):
        assert s["rows"]["mse"]["curve"][k] == pytest.approx(ref[k])
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "| mse (baseline) |" in md and "level index" in md and "MLDS ceiling" in md
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["dataset"] == "RAID"


def test_agreement_and_srcc_equal_hand_computed_values(tiny):
    curves = read_raid_curves(tiny / "responses.csv")
    trials = read_raid_trials(tiny / "answers.csv")
    rows = ra.raid_figures(curves, trials, {"mse": exact_distances(curves, trials)})["rows"]
    mse = rows["mse"]
    # trials: 0.5 + 1 + 0 + 1 + 0.5 + 0 + 1 = 4 of 7; rot 3.5 / 4, gn 0.5 / 3; no level 1: (0.5 + 1) / 2
    assert mse["trial"]["all"]["overall"]["agreement"] == pytest.approx(100 * 4 / 7)
    assert mse["trial"]["all"]["overall"]["ties"] == 2
    assert mse["trial"]["all"]["per_distortion"]["rot"]["agreement"] == pytest.approx(87.5)
    assert mse["trial"]["all"]["per_distortion"]["gn"]["agreement"] == pytest.approx(100 * 0.5 / 3)
    assert mse["trial"]["no_level_1"]["overall"]["agreement"] == pytest.approx(75.0)
    assert mse["trial"]["no_level_1"]["per_distortion"]["gn"]["agreement"] == pytest.approx(50.0)
    # level index |la - lb|: 0.5 + 1 + 1 + 0 + 0.5 + 0 + 1 = 4 of 7 (2 ties)
    li = rows[ra.LEVEL_INDEX]["trial"]["all"]["overall"]
    assert li["agreement"] == pytest.approx(100 * 4 / 7) and li["ties"] == 2
    # MLDS ceiling |psi_a - psi_b| (psi = Response / 4): 0.5 + 1 + 1 + 0 + 1 + 1 + 1 = 5.5 of 7
    assert rows[ra.MLDS_CEILING]["trial"]["all"]["overall"]["agreement"] == pytest.approx(100 * 5.5 / 7)
    # per-curve SRCC (levels 1..4): 1, 0.8, 0.8 and, with the tied responses of (2, gn), sqrt(0.9)
    c = mse["curve"]
    assert c["per_curve_mean"] == pytest.approx((1 + 0.8 + 0.8 + math.sqrt(0.9)) / 4)
    assert c["per_curve_mean_per_distortion"]["gn"] == pytest.approx((0.8 + math.sqrt(0.9)) / 2)
    # pooled over levels >= 2 (12 rows), per distortion (6 rows), by hand
    d = {k: [((o - v[0]) / 255) ** 2 for o in v[1:]] for k, v in OFFSETS.items()}
    r = {k: v[1:] for k, v in RESPONSES.items()}
    keys = list(OFFSETS)
    assert c["n_pooled"] == 12
    assert c["pooled"] == pytest.approx(rank_pearson(sum((d[k] for k in keys), []), sum((r[k] for k in keys), [])))
    gn = [k for k in keys if k[1] == "gn"]
    assert c["per_distortion"]["gn"] == pytest.approx(rank_pearson(sum((d[k] for k in gn), []),
                                                                  sum((r[k] for k in gn), [])))
    # the level index ties on the curve (every curve: levels 2..4) -> average ranks
    assert rows[ra.LEVEL_INDEX]["curve"]["pooled"] == pytest.approx(
        rank_pearson([1, 2, 3] * 4, sum((r[k] for k in keys), [])))
    assert rows[ra.MLDS_CEILING]["curve"]["pooled"] == pytest.approx(1.0)


def test_cross_distortion_and_per_distortion_mean_by_hand(tiny):
    curves = read_raid_curves(tiny / "responses.csv")
    trials = read_raid_trials(tiny / "answers.csv")
    rows = ra.raid_figures(curves, trials, {"mse": exact_distances(curves, trials)})["rows"]
    c = rows["mse"]["curve"]
    # within level L: the 4 curves' d(1, L) against their Responses; at levels 3 and 4 every Response is
    # the same (no SRCC), so the mean is level 2's
    d = {k: [(o - v[0]) ** 2 for o in v] for k, v in OFFSETS.items()}
    level_2 = rank_pearson([d[k][1] for k in OFFSETS], [RESPONSES[k][1] for k in OFFSETS])
    per_level = c["cross_distortion_per_level"]
    assert set(per_level) == {2, 3, 4} and math.isnan(per_level[3]) and math.isnan(per_level[4])
    assert per_level[2] == pytest.approx(level_2) and c["cross_distortion"] == pytest.approx(level_2)
    assert c["per_distortion_mean"] == pytest.approx(np.mean(list(c["per_distortion"].values())))
    # the level index is constant within a level: no cross-distortion figure; the ceiling is exact
    assert math.isnan(rows[ra.LEVEL_INDEX]["curve"]["cross_distortion"])
    assert rows[ra.MLDS_CEILING]["curve"]["cross_distortion"] == pytest.approx(1.0)


def test_a_similarity_gets_the_figures_of_the_distance_it_mirrors(tiny):
    """Negated first; level 1 against itself ranks below every level (not at 0, above the negated values)."""
    curves = read_raid_curves(tiny / "responses.csv")
    trials = read_raid_trials(tiny / "answers.csv")
    exact = exact_distances(curves, trials)
    fig = ra.raid_figures(curves, trials, {"d": exact, "s": {p: -5.0 - v for p, v in exact.items()}},
                          lower_is_better={"s": False})["rows"]
    assert fig["s"]["trial"] == fig["d"]["trial"]
    for k, v in fig["d"]["curve"].items():
        assert fig["s"]["curve"][k] == pytest.approx(v, nan_ok=True), k


def test_the_runners_raid_mode_computes_the_same_curve_figures(tiny, tmp_path):
    """One analysis: ``invariant-lpips bench --dataset raid`` (reference vs level L, no trials) and the RAID
    command (level 1 vs level L, with trials) give the same curve figures; the runner has no trial ones."""
    from invariant_lpips.benchmarks.runner import run_benchmark

    s = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"],
                            tmp_path / "cmd", plot=False, progress=False)
    b = run_benchmark("raid", ["mse"], tmp_path / "bench", root=tiny, device="cpu", num_workers=0,
                      progress=False, bootstrap=0, plots=False)
    raid = b["raid"]
    assert list(raid["rows"]) == list(s["rows"]) and "n_trials" not in raid
    for name, row in raid["rows"].items():
        assert "trial" not in row and row["baseline"] == s["rows"][name]["baseline"]
        for k in ("n_pooled", "pooled", "per_distortion", "per_distortion_mean", "per_curve_mean",
                  "per_curve_mean_per_distortion", "n_curves", "cross_distortion"):
            want = s["rows"][name]["curve"][k]
            assert row["curve"][k] == (None if isinstance(want, float) and math.isnan(want) else pytest.approx(want)), k
    md = (tmp_path / "bench" / "summary.md").read_text()
    assert "| level index | " in md and "cross-distortion" in md and "need RAID's raw trials" in md


def test_similarity_is_negated(tiny, tmp_path):
    s = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse", "psnr"],
                            tmp_path / "out", plot=False, progress=False) if _has_piq() else None
    if s is None:
        pytest.skip("piq not installed")
    a, b = s["rows"]["mse"], s["rows"]["psnr"]
    assert b["trial"]["all"]["overall"]["agreement"] == pytest.approx(a["trial"]["all"]["overall"]["agreement"])
    assert b["curve"]["pooled"] == pytest.approx(a["curve"]["pooled"])


def _has_piq() -> bool:
    import importlib.util

    return importlib.util.find_spec("piq") is not None


def test_scores_are_cached_per_metric_and_tied_to_the_stimuli(tiny, tmp_path):
    out = tmp_path / "out"
    run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                        plot=False, progress=False)
    mse_csv = out / "scores" / "mse.csv"
    before = (mse_csv.read_bytes(), mse_csv.stat().st_mtime_ns)
    s = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse", "l1"], out,
                            plot=False, progress=False, interleave=True)
    assert (mse_csv.read_bytes(), mse_csv.stat().st_mtime_ns) == before  # only l1 was scored
    assert (out / "scores" / "l1.csv").is_file() and s["complete"] == ["mse", "l1"]
    # a torn last line is dropped, then the missing pair is scored again
    text = mse_csv.read_text().splitlines()
    mse_csv.write_text("\n".join(text[:-1]) + "\n" + text[-1][:5])
    s2 = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                             plot=False, progress=False)
    assert s2["rows"]["mse"]["trial"] == s["rows"]["mse"]["trial"]
    assert len(mse_csv.read_text().splitlines()) == len(text)
    # report-only with an incomplete metric: main tables leave it out, the subset table has it
    lines = mse_csv.read_text().splitlines()
    mse_csv.write_text("\n".join(lines[:-1]) + "\n")
    s3 = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse", "l1"], out,
                             plot=False, progress=False, score=False)
    assert "mse" not in s3["rows"] and s3["incomplete"] == {"mse": [1]} and s3["subset"]["images"] == [1]
    assert "mse" in s3["subset"]["rows"]
    # other stimuli under the same scores: refused unless resume=False
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny / "images" / "rot_img_01_level_02.png")
    with pytest.raises(RuntimeError, match="other stimuli"):
        run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                            plot=False, progress=False)
    run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                        plot=False, progress=False, resume=False)


def test_a_subset_of_images_scores_and_reports_only_those(tiny, tmp_path):
    out = tmp_path / "out"
    s = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                            plot=False, progress=False, images=[2])
    got = read_pair_scores(out / "scores" / "mse.csv")
    assert got and {p[0] for p in got} == {2}
    curves = [c for c in read_raid_curves(tiny / "responses.csv") if c.image == 2]
    trials = [t for t in read_raid_trials(tiny / "answers.csv") if t.image == 2]
    ref = ra.raid_figures(curves, trials, {"mse": exact_distances(curves, trials)})["rows"]["mse"]
    assert s["rows"]["mse"]["curve"]["pooled"] == pytest.approx(ref["curve"]["pooled"])
    assert s["n_trials"] == len(trials) == 3
    assert "images 2 (1 of 2)" in (out / "summary.md").read_text()
    # the full evaluation then reuses the subset's scores (same stimulus fingerprint) and adds image 1
    s_all = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                                plot=False, progress=False)
    assert s_all["n_trials"] == 7
    with pytest.raises(ValueError, match=r"images \[3\] are not in"):
        run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                            plot=False, progress=False, images=[3])


def test_the_report_names_the_machine_each_metrics_scores_came_from(tiny, tmp_path):
    """Score files record the machines that computed them; a report over scores from several machines names
    each (one machine: the plain machine line), and files written before machines were recorded say so."""
    import json

    from invariant_lpips.benchmarks.environment import environment, machine_line

    out = tmp_path / "out"
    here = machine_line(environment("cpu"))
    s = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse", "l1"], out,
                            plot=False, progress=False)
    assert s["machine"] == here
    assert json.loads((out / "scores" / "mse.json").read_text())["machines"] == [here]
    meta = json.loads((out / "scores" / "l1.json").read_text())
    (out / "scores" / "l1.json").write_text(json.dumps({**meta, "machines": ["another box"]}))
    meta = json.loads((out / "scores" / "mse.json").read_text())
    del meta["machines"]
    (out / "scores" / "mse.json").write_text(json.dumps(meta))
    s2 = run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse", "l1"], out,
                             plot=False, progress=False, score=False)
    assert s2["machine"] == f"this report on {here}; scores from not recorded: mse; another box: l1"
    assert json.dumps(s2["rows"]["l1"], sort_keys=True) == json.dumps(s["rows"]["l1"], sort_keys=True)


def test_a_resumed_score_file_keeps_the_machines_of_its_earlier_rows(tiny, tmp_path):
    """Resuming scores written before machines were recorded: the earlier rows are 'not recorded', the new
    ones this machine's; the file's other fields stay."""
    import json

    from invariant_lpips.benchmarks.environment import environment, machine_line

    out = tmp_path / "out"
    run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                        plot=False, progress=False)
    meta_path, csv_path = out / "scores" / "mse.json", out / "scores" / "mse.csv"
    meta = json.loads(meta_path.read_text())
    del meta["machines"]
    meta_path.write_text(json.dumps({**meta, "memo": "kept"}))
    csv_path.write_text("\n".join(csv_path.read_text().splitlines()[:-1]) + "\n")   # one pair to score again
    run_raid_evaluation(tiny / "images", tiny / "responses.csv", tiny / "answers.csv", ["mse"], out,
                        plot=False, progress=False)
    meta = json.loads(meta_path.read_text())
    assert meta["machines"] == ["not recorded", machine_line(environment("cpu"))] and meta["memo"] == "kept"
