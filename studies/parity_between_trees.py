"""Distances of every shipped variant and of the LPIPS baseline on the bundled example pair, from one source tree.

Run it from two checkouts (e.g. before and after a refactor) and compare the JSON lines:

    git worktree add /tmp/old <commit>
    python studies/parity_between_trees.py /tmp/old > old.json
    python studies/parity_between_trees.py . > new.json
    cmp old.json new.json

Every value must agree to the bit (``float.hex``): each variant's distance, its per-term contributions
(``retPerLayer``), a broadcast batch (one reference against two images), and the LPIPS baseline.
"""
import json
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
torch.set_num_threads(1)
import invariant_lpips as il  # noqa: E402 - the tree given on the command line

SHIPPED = ["paper", "paper-blur", "gap-lin", "gap-lin-blur", "gap-lin-blur5", "gap-lin-l2", "gap-lin-aps",
           "texture-blur", "gap-lin-ms", "gap-lin-ms-sq"]


def load(path):
    a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def hexes(t):
    return [float(v).hex() for v in t.reshape(-1)]


x, y, z = (load(f"examples/images/{n}.png") for n in ("coffee", "coffee_jpeg_q15", "coffee_shifted_2px"))
out = {"tree": il.__file__}
for v in SHIPPED:
    m = il.InvariantLPIPS(v)
    with torch.no_grad():
        d, per = m(x, y, retPerLayer=True, normalize=True)
        out[v] = {"xy": hexes(d), "xz": hexes(m(x, z, normalize=True)),
                  "terms": [hexes(p) for p in per], "broadcast": hexes(m(x, torch.cat([y, z]), normalize=True))}
with torch.no_grad():
    m = il.LPIPS()
    out["lpips-vgg"] = {"xy": hexes(m(x, y, normalize=True)), "xz": hexes(m(x, z, normalize=True))}
del out["tree"]
print(json.dumps(out, indent=0, sort_keys=True))
