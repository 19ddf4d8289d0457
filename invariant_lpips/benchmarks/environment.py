"""The one record of where a result was measured: interpreter, platform, package versions and the device.

Every result file that states its machine (the benchmark manifest, RAID's manifest, the speed tables, the
classifier's digits run, the GPU check, the studies) writes :func:`environment`, and every report line that
names the machine uses :func:`machine_line`, so the same fields mean the same thing everywhere.

>>> env = environment("cpu")
>>> sorted(env)[:4], env["device"]["type"]
(['device', 'invariant_lpips', 'numpy', 'peers'], 'cpu')
>>> "torch threads" in machine_line(env)
True
"""
from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch

#: peer distributions whose versions every record holds (None when not installed)
PEER_DISTRIBUTIONS = ("lpips", "DISTS_pytorch", "stlpips-pytorch", "piq")


def dist_version(dist: str) -> Optional[str]:
    """The installed version of a distribution, or None."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    cpu = platform.processor() or platform.machine() or "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def device_info(device: Union[str, torch.device, None] = "cpu") -> Dict[str, Any]:
    """The device a result ran on: the GPU (name, memory, CUDA, cuDNN) or the CPU (model, cores, threads, RAM)."""
    device = torch.device(device if device is not None else "cpu")
    info: Dict[str, Any] = {"type": device.type, "name": str(device)}
    if device.type == "cuda" and torch.cuda.is_available():
        idx = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        info.update({"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2 ** 30, 1),
                     "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()})
    info.update({"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()})
    try:
        import psutil  # optional (the test and bench extras)

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_gib"] = round(psutil.virtual_memory().total / 2 ** 30, 1)
    except ImportError:
        pass
    return info


def environment(device: Union[str, torch.device, None] = "cpu", packages: Sequence[str] = ()) -> Dict[str, Any]:
    """Python, platform, the package's and its dependencies' versions, the peers' versions, the device;
    ``packages``: further distributions to record (e.g. ``("scikit-learn",)``)."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "invariant_lpips": dist_version("invariant-lpips"),
        "torch": torch.__version__,
        "torchvision": dist_version("torchvision"),
        "numpy": dist_version("numpy"),
        "scipy": dist_version("scipy"),
        "peers": {d: dist_version(d) for d in PEER_DISTRIBUTIONS},
        **{p: dist_version(p) for p in packages},
        "device": device_info(device),
    }


def machine_line(env: Optional[Dict[str, Any]] = None) -> str:
    """One line naming the machine of an :func:`environment` record (default: this one, on the CPU)."""
    env = env if env is not None else environment()
    d = env.get("device", {})
    if d.get("gpu"):
        return f"{d['gpu']} ({d.get('gpu_memory_gib')} GiB), CUDA {d.get('cuda')}, torch {env.get('torch')}"
    return (f"{d.get('cpu')}, {d.get('cores')} cores, CPU, torch threads {d.get('torch_threads')}, "
            f"torch {env.get('torch')}")


def tag_rows(rows: Mapping[str, Mapping[str, Any]], machine: str) -> Dict[str, Dict[str, Any]]:
    """``rows`` (metric -> result) with ``"machine"`` set where a row has none: results files that gain rows
    over several runs keep, per row, the machine that measured it."""
    return {name: {**row, "machine": row.get("machine", machine)} for name, row in rows.items()}


def rows_machine_line(rows: Mapping[str, Mapping[str, Any]], here: str, what: str = "rows") -> str:
    """The machine line of a report over ``rows`` (tagged by :func:`tag_rows`): ``here`` when every row was
    measured on it, else ``here`` for the report and, per machine, the rows (``what``) measured there."""
    by: Dict[str, List[str]] = {}
    for name, row in rows.items():
        by.setdefault(row.get("machine", "not recorded"), []).append(name)
    if set(by) <= {here}:
        return here
    return f"this report on {here}; {what} from " + "; ".join(f"{m}: {', '.join(n)}" for m, n in by.items())
