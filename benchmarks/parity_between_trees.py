"""Distances of every shipped variant and of the LPIPS baseline on the bundled example pair, from one source tree.

Run it from two checkouts (e.g. before and after a refactor) and compare the JSON lines:

    git worktree add /tmp/old <commit>
    (cd /tmp/old && python /path/to/benchmarks/parity_between_trees.py /tmp/old) > old.json
    python benchmarks/parity_between_trees.py . > new.json

Every value must agree (the refactor of the feature layer kept them bit-identical on CPU).
"""
import json
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
torch.set_num_threads(1)
import invariant_lpips as il  # noqa: E402 - the tree given on the command line


def load(path):
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1)[None]


x, y, z = (load(f"examples/images/{n}.png") for n in ("coffee", "coffee_jpeg_q15", "coffee_shifted_2px"))
out = {}
for v in ["paper", "paper-blur", "lpips-gap", "lpips-gap-blur", "lpips-gap-blur5", "lpips-gap-l2", "lpips-gap-aps"]:
    m = il.InvariantLPIPS(v)
    with torch.no_grad():
        out[v] = [float(m(x, y, normalize=True)), float(m(x, z, normalize=True))]
with torch.no_grad():
    m = il.LPIPS()
    out["lpips-vgg"] = [float(m(x, y, normalize=True)), float(m(x, z, normalize=True))]
print(json.dumps(out))
