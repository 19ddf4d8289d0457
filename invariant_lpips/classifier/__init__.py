"""The paper's classification study ("online architecture"): frozen VGG-16 + Flatten / GAP heads.

* :mod:`.models` -- ``baseline`` / ``finalgap`` / ``multigap`` / ``gap_flatten`` heads,
  :func:`build_classifier`, :func:`count_parameters`;
* :mod:`.train` -- datasets (ImageFolder / CSV), cached trunk features, the authors' training recipe,
  safetensors checkpoints;
* :mod:`.translation` -- the mirror-mosaic translation test, rotation / scaling sweeps, relative loss,
  heat maps;
* :mod:`.digits` -- a CPU demonstration on scikit-learn's digits;
* :mod:`.cli` -- ``invariant-lpips classifier ...``.

Names are imported lazily (PEP 562) so that registering the command line does not import torch.
"""
from typing import TYPE_CHECKING

from .._lazy import lazy_exports

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "HEADS": ".models",
    "PAPER_TRAINABLE_PARAMETERS": ".models",
    "TRUNK_PARAMETERS": ".models",
    "ClassifierHead": ".models",
    "VGG16Classifier": ".models",
    "build_classifier": ".models",
    "count_parameters": ".models",
    "parameter_table": ".models",
    "TrainConfig": ".train",
    "load_classifier": ".train",
    "save_head": ".train",
    "train_classifier": ".train",
    "train_heads": ".train",
    "TranslationResult": ".translation",
    "average_relative_loss": ".translation",
    "mirror_crop": ".translation",
    "relative_loss": ".translation",
    "rotation_test": ".translation",
    "scaling_test": ".translation",
    "translation_test": ".translation",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:  # pragma: no cover - static analysers see the real names
    from .models import (HEADS, PAPER_TRAINABLE_PARAMETERS, TRUNK_PARAMETERS, ClassifierHead, VGG16Classifier,
                         build_classifier, count_parameters, parameter_table)
    from .train import TrainConfig, load_classifier, save_head, train_classifier, train_heads
    from .translation import (TranslationResult, average_relative_loss, mirror_crop, relative_loss, rotation_test,
                              scaling_test, translation_test)
