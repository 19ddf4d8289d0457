"""The classification study in a few lines: the paper's heads, and Flatten vs GAP under shifts.

    python examples/classifier_digits.py          # about a minute on a laptop CPU

1. Parameter counts of the four VGG-16 heads at 256x256 and K = 160 (no weights needed).
2. A quick version of the digits demo (scikit-learn's digits on a zero canvas): the Flatten head
   is excellent on centred digits and collapses when the digit moves; the GAP heads barely move.
   The full, reproducible run is ``python benchmarks/classifier_digits.py``.
"""
import tempfile

import torch

from invariant_lpips.classifier import HEADS, build_classifier, count_parameters
from invariant_lpips.classifier.digits import DigitsConfig, run_digits_demo
from invariant_lpips.trunk import VGG16Trunk

torch.set_num_threads(1)

trunk = VGG16Trunk(weights=None)  # random weights: enough to count parameters
for head in HEADS:
    trainable, frozen = count_parameters(build_classifier(head, num_classes=160, trunk=trunk))
    print(f"{head:>12}: {trainable:>9,} trainable + {frozen:,} frozen")
print()

# A faster configuration than the benchmark's (fewer epochs, coarser grid).
cfg = DigitsConfig(pretrain_epochs=15, head_patience=10, grid_step=8)
with tempfile.TemporaryDirectory() as out:
    results = run_digits_demo(out, cfg, progress=False)
