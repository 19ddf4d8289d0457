"""A trunk knows its configuration (``VGG16Trunk.config``), and sharing compares all of it.

Every consumer that accepts a shared trunk (``InvariantLPIPS``, the ``LPIPS`` baseline, ``FeatureCache``, a
classifier checkpoint) refuses one that differs in pooling, filter size, padding or weights, or lacks a tap,
and names both configurations; the feature cache's key changes with every field.
"""
from __future__ import annotations

import pytest
import torch

from invariant_lpips import InvariantLPIPS, LPIPS
from invariant_lpips.features.cache import FeatureCache, cache_config, config_key
from invariant_lpips.features.variants import get_variant
from invariant_lpips.trunk.config import STATE_DICT_WEIGHTS, TrunkConfig, weights_label
from invariant_lpips.trunk.vgg16 import POOL_TAPS, RELU_TAPS

BASE = TrunkConfig(pooling="blurmax", filter_size=3, padding_mode="zeros", taps=POOL_TAPS, weights=None)

#: one change of every configuration field, each of which a sharing consumer must refuse
CHANGES = {
    "pooling": {"pooling": "max"},
    "pooling of one stage": {"pooling": ("blurmax", "blurmax", "blurmax", "blurmax", "max")},
    "filter_size": {"filter_size": 5},
    "padding_mode": {"padding_mode": "circular"},
    "weights": {"weights": "imagenet"},
    "taps": {"taps": POOL_TAPS + ("relu5_3",)},
}


@pytest.fixture(scope="module")
def trunk():
    torch.manual_seed(0)
    return BASE.build()


def test_a_trunk_carries_the_configuration_it_was_built_with(trunk):
    assert trunk.config == BASE
    assert TrunkConfig(pooling="max", taps=("pool2",)).build(None).config == TrunkConfig(
        pooling="max", taps=("pool2",), weights=None)
    state = trunk.features.state_dict()
    assert BASE.build(dict(state)).config.weights == STATE_DICT_WEIGHTS
    assert [weights_label(w) for w in (None, "imagenet", {}, "w.pth")] == [None, "imagenet", STATE_DICT_WEIGHTS,
                                                                            "w.pth"]


@pytest.mark.parametrize("field", list(CHANGES))
def test_a_trunk_differing_in_any_field_is_refused_naming_both(trunk, field):
    wanted = BASE.with_(**CHANGES[field])
    assert not wanted.serves(trunk)
    with pytest.raises(ValueError) as err:
        wanted.check(trunk, "the test's configuration")
    message = str(err.value)
    assert str(trunk.config) in message and str(wanted) in message, message
    name = "taps" if field == "taps" else field.split(" ")[0]
    assert name in message.split("):", 1)[1], message  # the differing field is named after both configurations


def test_fewer_taps_are_served(trunk):
    assert BASE.with_(taps=("pool1", "pool2")).check(trunk) is trunk


@pytest.mark.parametrize("field", [f for f in CHANGES if f != "taps"])
def test_the_metric_refuses_a_trunk_of_another_configuration(trunk, field):
    wanted = BASE.with_(**CHANGES[field])
    other = wanted.with_(weights=None).build() if field != "weights" else trunk
    # the variant gap-lin-blur is BASE with ImageNet weights: trunk_weights=None asks for BASE itself
    InvariantLPIPS("gap-lin-blur", trunk=trunk, trunk_weights=None)
    with pytest.raises(ValueError, match="does not serve variant 'gap-lin-blur'"):
        kwargs = {"trunk_weights": "imagenet"} if field == "weights" else {"trunk_weights": None}
        InvariantLPIPS("gap-lin-blur", trunk=other, **kwargs)


def test_the_issue_cases_are_refused(trunk):
    """A blur-3 trunk for gap-lin-blur5, and a zero-padded trunk for a circular variant."""
    with pytest.raises(ValueError, match=r"filter_size differs \(3, wanted 5\)"):
        InvariantLPIPS("gap-lin-blur5", trunk=trunk, trunk_weights=None)
    with pytest.raises(ValueError, match=r"padding_mode differs \('zeros', wanted 'circular'\)"):
        InvariantLPIPS("gap-lin-blur", trunk=trunk, trunk_weights=None, padding_mode="circular")
    with pytest.raises(ValueError, match=r"filter_size differs"):
        FeatureCache("gap-lin-blur5", trunk=trunk, enabled=False)


def test_the_baseline_refuses_a_trunk_of_another_configuration(trunk):
    relu = TrunkConfig(pooling="max", taps=RELU_TAPS, weights=None).build()
    LPIPS(net="vgg", trunk=relu, trunk_weights=None)
    with pytest.raises(ValueError, match="does not serve the LPIPS baseline"):
        LPIPS(net="vgg", trunk=trunk, trunk_weights=None)
    with pytest.raises(ValueError, match="weights differs"):
        LPIPS(net="vgg", trunk=relu)  # trunk_weights='imagenet' by default


def test_the_cache_key_changes_with_every_field():
    keys = {"base": config_key(cache_config(BASE, "sha-a"))}
    for field, change in CHANGES.items():
        if field == "weights":  # the key holds the weights' hash, not their name
            keys[field] = config_key(cache_config(BASE, "sha-b"))
        else:
            keys[field] = config_key(cache_config(BASE.with_(**change), "sha-a"))
    assert len(set(keys.values())) == len(keys), keys


def test_the_cache_accepts_any_weights_and_keys_them_by_hash(trunk):
    torch.manual_seed(1)
    other = BASE.build()
    a = FeatureCache("gap-lin-blur", trunk=trunk, enabled=False)
    b = FeatureCache("gap-lin-blur", trunk=other, enabled=False)
    assert a.key != b.key
    v = get_variant("gap-lin-blur")
    assert a.config == cache_config(v.trunk, a.config["trunk_sha256"])
