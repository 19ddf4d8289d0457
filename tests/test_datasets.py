import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invariant_lpips.data import datasets as D
from invariant_lpips.data.datasets import PairRecord, TripletRecord, kfold_by_reference, load_dataset
from invariant_lpips.data.type_level import read_type_level_rows


def png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# ----------------------------------------------------------------------------- KADID-10k


def make_kadid(root: Path, scores: bool = True, refs=(1, 2), types=(1, 3), levels=(1, 2)) -> Path:
    rows = ["dist_img,ref_img,dmos,var"]
    for r in refs:
        png(root / "images" / f"I{r:02d}.png", 10 * r)
        for t in types:
            for lv in levels:
                name = f"I{r:02d}_{t:02d}_{lv:02d}.png"
                png(root / "images" / name, 10 * r + t + lv)
                dmos, var = (f"{5 - lv * 0.5 - t * 0.1:.3f}", "0.25") if scores else ("", "")
                rows.append(f"{name},I{r:02d}.png,{dmos},{var}")
    (root / "dmos.csv").write_text("\n".join(rows) + "\n")
    return root


def test_kadid_reader(tmp_path):
    root = make_kadid(tmp_path / "kadid")
    ds = load_dataset("kadid10k", root)
    assert isinstance(ds, D.KADID10k) and ds.name == "kadid10k" and ds.higher_is_better
    assert len(ds) == 8 and ds.references() == ["I01", "I02"]
    rec = ds.records[0]
    assert isinstance(rec, PairRecord)
    assert rec.dist_path == root / "images" / "I01_01_01.png" and rec.ref_path == root / "images" / "I01.png"
    assert (rec.ref_id, rec.dist_type, rec.level) == ("I01", "01", 1)
    assert rec.score == pytest.approx(4.4) and rec.extra["var"] == pytest.approx(0.25) and rec.extra["type_id"] == 1
    assert ds.scores().shape == (8,)
    # factory aliases
    assert len(load_dataset("KADID-10k", root)) == 8


def test_kadid_generator_layout_has_no_scores(tmp_path):
    ds = load_dataset("kadid10k", make_kadid(tmp_path / "gen", scores=False))
    assert all(r.score is None for r in ds.records)
    assert all(r.extra["var"] is None for r in ds.records)
    with pytest.raises(ValueError, match="no human score"):
        ds.scores()


def test_kadid_missing_csv_names_path_and_columns(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        D.KADID10k(tmp_path / "nowhere")
    msg = str(exc.value)
    assert str(tmp_path / "nowhere" / "dmos.csv") in msg and "dist_img,ref_img,dmos,var" in msg


def test_kadid_missing_column(tmp_path):
    (tmp_path / "dmos.csv").write_text("dist_img,ref_img,dmos\nI01_01_01.png,I01.png,4.0\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['var'\]"):
        D.KADID10k(tmp_path)


@pytest.mark.parametrize(
    "bad_row, pattern",
    [
        ("I01_01_02.png,I01.png,4.1", "line 3: expected 4 fields"),
        ("I01_01_02.png,I01.png,abc,0.1", "line 3: column 'dmos' must be a number"),
        ("I01-01-02.png,I01.png,4.0,0.1", "line 3: dist_img 'I01-01-02.png' does not match"),
        ("I01_01_02.png,I02.png,4.0,0.1", "line 3: ref_img 'I02.png' does not match"),
        ("I01_01_01.png,I01.png,4.0,0.1", "line 3: duplicate dist_img"),
    ],
)
def test_kadid_malformed_rows_give_line_numbers(tmp_path, bad_row, pattern):
    (tmp_path / "dmos.csv").write_text(f"dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.0,0.1\n{bad_row}\n")
    with pytest.raises(ValueError) as exc:
        D.KADID10k(tmp_path)
    assert pattern in str(exc.value) and str(tmp_path / "dmos.csv") in str(exc.value)


def test_validate_names_every_missing_file(tmp_path):
    root = make_kadid(tmp_path / "k", refs=(1, 2, 3), types=(1, 2, 3, 4), levels=(1, 2, 3))
    gone = [root / "images" / "I02_03_02.png", root / "images" / "I03.png"]
    for p in gone:
        p.unlink()
    with pytest.raises(FileNotFoundError) as exc:
        load_dataset("kadid10k", root)
    msg = str(exc.value)
    assert "2 of" in msg and all(str(p) in msg for p in gone)
    assert set(exc.value.missing) == set(gone)
    ds = load_dataset("kadid10k", root, validate=False)  # construction alone does not touch images
    assert len(ds) == 36
    # many missing: first few listed plus a count
    for p in (root / "images").glob("I01_*.png"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)14 of .* and 4 more"):
        ds.validate()


def test_validate_check_readable(tmp_path):
    root = make_kadid(tmp_path / "k")
    ds = load_dataset("kadid10k", root)
    ds.validate(check_readable=True)
    broken = root / "images" / "I02_03_01.png"
    broken.write_bytes(b"not a png")
    ds.validate()  # existence only
    with pytest.raises(OSError, match=re.escape(str(broken))):
        ds.validate(check_readable=True)


def test_file_list_hash_and_subset(tmp_path):
    root = make_kadid(tmp_path / "k")
    ds = load_dataset("kadid10k", root)
    h = ds.file_list_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert load_dataset("kadid10k", root).file_list_hash() == h
    # moving the whole tree keeps the hash (relative paths)
    moved = root.rename(tmp_path / "elsewhere")
    assert load_dataset("kadid10k", moved).file_list_hash() == h
    png(moved / "images" / "I01_01_01.png", 200)  # same name, different content/size?
    (moved / "images" / "I01_01_01.png").write_bytes((moved / "images" / "I01_01_01.png").read_bytes() + b"x")
    assert load_dataset("kadid10k", moved).file_list_hash() != h

    ds = load_dataset("kadid10k", moved)
    sub = ds.subset(["I02"])
    assert sub.references() == ["I02"] and len(sub) == 4 and len(ds) == 8
    assert sub.file_list_hash() != ds.file_list_hash()
    assert type(sub) is type(ds) and sub.higher_is_better == ds.higher_is_better
    with pytest.raises(ValueError, match="unknown reference"):
        ds.subset(["I99"])


# ----------------------------------------------------------------------------- TID


def make_tid(root: Path, ref_nums=(1, 25)) -> Path:
    touch(root / "reference_images" / "I01.BMP")
    touch(root / "reference_images" / "i25.bmp")  # TID2013 ships reference 25 in lower case
    lines = []
    names = {1: ["i01_01_1.bmp", "I01_02_5.BMP"], 25: ["i25_01_1.bmp", "i25_24_3.bmp"]}
    for r in ref_nums:
        for k, name in enumerate(names[r]):
            touch(root / "distorted_images" / name)
            # the MOS file always uses lower case names
            lines.append(f"{5.5 - k:.5f} {name.lower()}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n\n")
    return root


@pytest.mark.parametrize("name, cls", [("tid2013", D.TID2013), ("tid2008", D.TID2008)])
def test_tid_reader_resolves_case(tmp_path, name, cls):
    root = make_tid(tmp_path / name)
    ds = load_dataset(name, root)
    assert isinstance(ds, cls) and ds.name == name and ds.higher_is_better
    assert ds.references() == ["I01", "I25"]
    recs = {r.dist_path.name: r for r in ds.records}
    assert set(recs) == {"i01_01_1.bmp", "I01_02_5.BMP", "i25_01_1.bmp", "i25_24_3.bmp"}
    r = recs["I01_02_5.BMP"]
    assert r.ref_path.name == "I01.BMP" and (r.dist_type, r.level, r.score) == ("02", 5, pytest.approx(4.5))
    assert recs["i25_24_3.bmp"].ref_path.name == "i25.bmp"
    assert all(p.exists() for p in ds.paths())


def test_tid_std_file_and_errors(tmp_path):
    root = make_tid(tmp_path / "t")
    (root / "mos_std.txt").write_text("0.1\n0.2\n0.3\n0.4\n")
    ds = load_dataset("tid2013", root)
    assert [r.extra["std"] for r in ds.records] == [0.1, 0.2, 0.3, 0.4]
    (root / "mos_std.txt").write_text("0.1\n0.2\n")
    with pytest.raises(ValueError, match="has 2 values but .* has 4 rows"):
        D.TID2013(root)
    (root / "mos_std.txt").unlink()
    text = (root / "mos_with_names.txt").read_text().splitlines()
    text[2] = "5.1 i25_01_1.bmp extra"
    (root / "mos_with_names.txt").write_text("\n".join(text))
    with pytest.raises(ValueError, match="line 3: expected 2 fields"):
        D.TID2013(root)
    text[2] = "five i25_01_1.bmp"
    (root / "mos_with_names.txt").write_text("\n".join(text))
    with pytest.raises(ValueError, match="line 3: column 'MOS' must be a number"):
        D.TID2013(root)
    with pytest.raises(FileNotFoundError, match="mos_with_names.txt.*'MOS filename'"):
        D.TID2008(tmp_path / "empty")


def test_tid_missing_image_is_reported(tmp_path):
    root = make_tid(tmp_path / "t")
    (root / "distorted_images" / "i25_24_3.bmp").unlink()
    with pytest.raises(FileNotFoundError, match="i25_24_3.bmp"):
        load_dataset("tid2013", root)


# ----------------------------------------------------------------------------- CSIQ

CSIQ_DIST = [  # (image, dst_type as in csiq.DMOS.xlsx, folder, file abbreviation, level, dmos)
    ("1600", "noise", "awgn", "AWGN", 1, 0.061),
    ("1600", "jpeg 2000", "jpeg2000", "jpeg2000", 2, 0.135),
    ("1600", "f noise", "fnoise", "fnoise", 3, 0.2),
    ("aerial_city", "blur", "blur", "BLUR", 4, 0.5),
    ("aerial_city", "contrast", "contrast", "contrast", 5, 0.3),
    ("aerial_city", "jpeg", "jpeg", "JPEG", 1, 0.03),
]


def make_csiq(root: Path, flat: bool = False) -> Path:
    for image in ("1600", "aerial_city"):
        touch(root / "src_imgs" / f"{image}.png")
    for image, _, folder, abbrev, lv, _ in CSIQ_DIST:
        name = f"{image}.{abbrev}.{lv}.png"
        touch(root / "dst_imgs" / name if flat else root / "dst_imgs" / folder / name)
    return root


def _check_csiq(ds, root, flat=False):
    assert isinstance(ds, D.CSIQ) and not ds.higher_is_better
    assert ds.references() == ["1600", "aerial_city"]
    assert [r.dist_type for r in ds.records] == ["awgn", "jpeg2000", "fnoise", "blur", "contrast", "jpeg"]
    assert [r.level for r in ds.records] == [1, 2, 3, 4, 5, 1]
    assert [r.score for r in ds.records] == [d[-1] for d in CSIQ_DIST]
    r = ds.records[0]
    assert r.ref_path == root / "src_imgs" / "1600.png"
    assert r.dist_path == (root / "dst_imgs" / "1600.AWGN.1.png" if flat else root / "dst_imgs" / "awgn" / "1600.AWGN.1.png")


def test_csiq_xlsx_export_with_type_folders(tmp_path):
    root = make_csiq(tmp_path / "CSIQ")
    rows = ["image,dst_idx,dst_type,dst_lev,dmos_std,dmos"]
    rows += [f"{i},{k},{t},{lv},0.01,{d}" for k, (i, t, _, _, lv, d) in enumerate(CSIQ_DIST)]
    (root / "csiq_dmos.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset("csiq", root)
    _check_csiq(ds, root)
    assert ds.records[0].extra["dmos_std"] == pytest.approx(0.01)


def test_csiq_pyiqa_meta_flat_folder(tmp_path):
    root = make_csiq(tmp_path / "CSIQ", flat=True)
    rows = ["ref_name,dist_name,dmos"]
    rows += [f"{i}.png,{i}.{a}.{lv}.png,{d}" for i, _, _, a, lv, d in CSIQ_DIST]
    (root / "meta_info_CSIQDataset.csv").write_text("\n".join(rows) + "\n")
    _check_csiq(load_dataset("csiq", root), root, flat=True)


def test_csiq_label_txt_and_case_insensitive_names(tmp_path):
    root = make_csiq(tmp_path / "CSIQ")
    # label file spells the abbreviations in another case; the files are still found
    lines = [f"{i}.{a.lower()}.{lv}.png {d}" for i, _, _, a, lv, d in CSIQ_DIST]
    (root / "labels.txt").write_text("\n".join(lines) + "\n")
    ds = load_dataset("csiq", root, meta_file="labels.txt")
    _check_csiq(ds, root)


def test_csiq_errors(tmp_path):
    root = make_csiq(tmp_path / "CSIQ")
    touch(root / "csiq.DMOS.xlsx")
    with pytest.raises(FileNotFoundError) as exc:
        D.CSIQ(root)
    assert "meta_info_CSIQDataset.csv" in str(exc.value) and "all_by_image" in str(exc.value)
    (root / "csiq_dmos.csv").write_text("image,dst_type,dst_lev,dmos\n1600,noise,1,0.1\n1600,sharpen,2,0.2\n")
    with pytest.raises(ValueError, match="line 3: unknown dst_type 'sharpen'"):
        D.CSIQ(root)
    (root / "csiq_dmos.csv").write_text("image,dst_type,dst_lev,dmos\n1600,noise,1,0.1\n1600,noise,x,0.2\n")
    with pytest.raises(ValueError, match="line 3: dst_lev must be an integer"):
        D.CSIQ(root)
    (root / "csiq_dmos.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(ValueError, match="unrecognised header"):
        D.CSIQ(root)


# ----------------------------------------------------------------------------- BAPPS


def make_bapps(base: Path, split="val", subsets=("traditional", "cnn"), n=3) -> Path:
    afc = base / "dataset" / "2afc"
    for sub in subsets:
        for i in range(n):
            stem = f"{i:06d}"
            for part in ("ref", "p0", "p1"):
                png(afc / split / sub / part / f"{stem}.png", i)
            (afc / split / sub / "judge").mkdir(parents=True, exist_ok=True)
            np.save(afc / split / sub / "judge" / f"{stem}.npy", np.array([i / (n - 1)], dtype=np.float32))
    return afc


@pytest.mark.parametrize("where", ["parent", "2afc", "split", "subset"])
def test_bapps_roots(tmp_path, where):
    afc = make_bapps(tmp_path)
    root = {"parent": afc.parent, "2afc": afc, "split": afc / "val", "subset": afc / "val" / "cnn"}[where]
    ds = load_dataset("bapps", root)
    n_expected = 3 if where == "subset" else 6
    assert len(ds) == n_expected
    rec = ds.records[-1]
    assert isinstance(rec, TripletRecord)
    assert rec.split == "val" and rec.dist_type in ("cnn", "traditional")
    assert rec.p1_path.name == "000002.png" and rec.judge == pytest.approx(1.0)
    assert ds.records[0].judge == pytest.approx(0.0)
    assert ds.scores().shape == (n_expected,)
    assert len(ds.references()) == n_expected  # every triplet has its own reference patch
    ds.file_list_hash()


def test_bapps_subsets_and_errors(tmp_path):
    afc = make_bapps(tmp_path)
    ds = load_dataset("bapps", afc, subsets=["traditional"])
    assert {r.dist_type for r in ds.records} == {"traditional"}
    with pytest.raises(ValueError, match=r"subset\(s\) \['superres'\] not found"):
        load_dataset("bapps", afc, subsets=["superres"])
    with pytest.raises(FileNotFoundError, match="no BAPPS 2AFC subset"):
        load_dataset("bapps", afc, split="train")
    (afc / "val" / "cnn" / "p0" / "000001.png").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(afc / "val" / "cnn" / "p0" / "000001.png"))):
        load_dataset("bapps", afc)
    (afc / "val" / "cnn" / "judge" / "000002.npy").unlink()
    with pytest.raises(FileNotFoundError, match="1 triplets have no judge file"):
        load_dataset("bapps", afc)
    np.save(afc / "val" / "traditional" / "judge" / "000000.npy", np.array([1.5]))
    with pytest.raises(ValueError, match="outside"):
        D.BAPPS2AFC(afc / "val" / "traditional")


# ----------------------------------------------------------------------------- RAID

RAID_HEADER = "Reference,Distorted,Curve_Value,Sigmas,Response,Estimated_MOS"


def make_raid(root: Path, images_sub="images") -> Path:
    rows = [RAID_HEADER]
    img_dir = root / images_sub if images_sub else root
    for ref in ("img_01", "img_02"):
        touch(img_dir / f"{ref}.png")
        for dt in ("rot", "gn"):
            for lv in (1, 2, 10):
                name = f"{dt}_{ref}_level_{lv:02d}.png"
                touch(img_dir / name)
                curve = (lv - 1) / 9
                resp = curve / 0.25
                rows.append(f"{ref}.png,{name},{curve:.6g},0.25,{resp:.6g},{-0.52018 * resp + 5.43562:.6g}")
    (root / "responses.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.parametrize("images_sub", ["images", ""])
def test_raid_reader(tmp_path, images_sub):
    root = make_raid(tmp_path / "raid", images_sub)
    ds = load_dataset("raid", root)
    assert isinstance(ds, D.RAID) and not ds.higher_is_better
    assert len(ds) == 12 and ds.references() == ["img_01", "img_02"]
    r = ds.records[2]
    assert (r.ref_id, r.dist_type, r.level) == ("img_01", "rot", 10)
    assert r.score == pytest.approx(4.0) and r.extra["curve_value"] == pytest.approx(1.0)
    assert r.extra["sigma"] == pytest.approx(0.25) and r.extra["estimated_mos"] == pytest.approx(3.35490)
    assert ds.records[0].score == 0.0  # level 01 = no distortion
    assert r.dist_path.parent == (root / images_sub if images_sub else root)


def test_raid_images_dir_argument_and_errors(tmp_path):
    root = make_raid(tmp_path / "raid", images_sub="pngs")
    ds = load_dataset("raid", root, images_dir="pngs")
    assert ds.records[0].ref_path == root / "pngs" / "img_01.png"
    with pytest.raises(FileNotFoundError, match="img_01.png"):
        load_dataset("raid", root)  # default lookup (root/images, root) finds nothing
    lines = (root / "responses.csv").read_text().splitlines()
    assert lines[4].split(",")[1] == "gn_img_01_level_01.png"
    lines[4] = lines[4].replace("gn_img_01_level_", "shear_img_01_level_")
    (root / "responses.csv").write_text("\n".join(lines))
    with pytest.raises(ValueError, match="line 5: Distorted 'shear_img_01_level_"):
        D.RAID(root)
    (root / "responses.csv").write_text("Reference,Distorted,Response\nimg_01.png,rot_img_01_level_01.png,0\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Curve_Value', 'Sigmas', 'Estimated_MOS'\]"):
        D.RAID(root)


# ----------------------------------------------------------------------------- type-level table


def test_read_type_level_table(tmp_path):
    p = tmp_path / "tl.csv"
    p.write_text(
        "type_id,type_name,level,mean_dmos,sd_dmos,n_refs\n"
        "1,gaussian_blur,1,4.6122,0.1296,81\n"
        "1,gaussian_blur,2,4.3817,,81\n"
        "3,motion_blur,1,4.5,0.2,81\n"
    )
    rows = read_type_level_rows(p)
    assert rows == [(1, 1, 4.6122, 0.1296), (1, 2, 4.3817, None), (3, 1, 4.5, 0.2)]
    assert rows[0].type == 1 and rows[1].sd is None
    p.write_text("type,level,mean\n2,1,3.0\n2,x,3.1\n")
    with pytest.raises(ValueError, match="line 3: column 'level' must be an integer"):
        read_type_level_rows(p)
    p.write_text("type,level,mean\n2,1,3.0\n2,1,3.1\n")
    with pytest.raises(ValueError, match="line 3: duplicate"):
        read_type_level_rows(p)
    p.write_text("type_id,level\n1,1\n")
    with pytest.raises(ValueError, match="no column among"):
        read_type_level_rows(p)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_type_level_rows(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- factory and folds


def test_load_dataset_unknown_name(tmp_path):
    with pytest.raises(ValueError) as exc:
        load_dataset("live", tmp_path)
    for name in ("kadid10k", "tid2008", "tid2013", "csiq", "bapps", "raid"):
        assert name in str(exc.value)


def test_kfold_by_reference():
    refs = [f"I{i:02d}" for i in range(1, 82)]
    ids = [r for r in refs for _ in range(5)]  # one id per record
    folds = kfold_by_reference(ids, k=5, seed=7)
    assert len(folds) == 5
    tested = []
    for train, test in folds:
        assert not set(train) & set(test)
        assert set(train) | set(test) == set(refs)
        assert len(test) in (16, 17)
        tested += test
    assert sorted(tested) == refs  # every reference tested exactly once
    assert kfold_by_reference(list(reversed(ids)), k=5, seed=7) == folds  # order independent
    assert kfold_by_reference(ids, k=5, seed=8) != folds
    with pytest.raises(ValueError, match="at least 6 distinct"):
        kfold_by_reference(["a", "b", "c", "d", "e"], k=6)
    with pytest.raises(ValueError, match=">= 2"):
        kfold_by_reference(refs, k=1)


def test_kfold_on_dataset_records_never_leaks(tmp_path):
    ds = load_dataset("kadid10k", make_kadid(tmp_path / "k", refs=(1, 2, 3, 4)))
    for train, test in kfold_by_reference([r.ref_id for r in ds.records], k=2, seed=0):
        tr, te = ds.subset(train), ds.subset(test)
        assert not {r.dist_path for r in tr.records} & {r.dist_path for r in te.records}
        assert len(tr) + len(te) == len(ds)
