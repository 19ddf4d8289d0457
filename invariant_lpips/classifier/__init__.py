"""The paper's classification study ("online architecture"): frozen VGG-16 + Flatten / GAP heads.

* :mod:`.models` -- ``baseline`` / ``finalgap`` / ``multigap`` / ``gap_flatten`` heads,
  :func:`build_classifier`, :func:`count_parameters`;
* :mod:`.train` -- datasets (ImageFolder / CSV), cached trunk features, the authors' training recipe,
  safetensors checkpoints;
* :mod:`.translation` -- the mirror-mosaic translation test, rotation / scaling sweeps, relative loss,
  heat maps;
* :mod:`.digits` -- a CPU demonstration on scikit-learn's digits;
* :mod:`.cli` -- ``invariant-lpips classifier ...``.
"""
from .models import (
    HEADS,
    PAPER_TRAINABLE_PARAMETERS,
    TRUNK_PARAMETERS,
    ClassifierHead,
    VGG16Classifier,
    build_classifier,
    count_parameters,
    parameter_table,
)
from .train import TrainConfig, load_classifier, save_head, train_classifier, train_heads
from .translation import (
    TranslationResult,
    average_relative_loss,
    mirror_crop,
    relative_loss,
    rotation_test,
    scaling_test,
    translation_test,
)

__all__ = [
    "HEADS", "PAPER_TRAINABLE_PARAMETERS", "TRUNK_PARAMETERS", "ClassifierHead", "VGG16Classifier",
    "build_classifier", "count_parameters", "parameter_table", "TrainConfig", "train_classifier", "train_heads",
    "load_classifier", "save_head", "TranslationResult", "translation_test", "rotation_test", "scaling_test",
    "mirror_crop", "relative_loss", "average_relative_loss",
]
