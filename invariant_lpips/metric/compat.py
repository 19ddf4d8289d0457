"""``lpips.LPIPS``' constructor arguments, accepted by our classes so that only the import changes.

``lpips.LPIPS(pretrained=True, net='alex', version='0.1', lpips=True, spatial=False, pnet_rand=False,
pnet_tune=False, use_dropout=True, model_path=None, eval_mode=True, verbose=True)``. Our mapping:

=============  =======================================================================================
net            ``'vgg'`` (or lpips' alias ``'vgg16'``) only: the trunk of every metric here; another name is
               an error naming 'vgg'. lpips' default is 'alex': ``LPIPS()`` without ``net`` still uses
               VGG (all there is) and warns once (:class:`DefaultNetWarning`) that the numbers differ
               from ``lpips.LPIPS()``; passing ``net='vgg'`` silences it. ``InvariantLPIPS``' default
               is 'vgg' (it has no lpips counterpart to differ from).
version        ``'0.1'`` only (LPIPS v0.0 is not reproduced).
lpips          True: learned linear weights; False: unit weights (lpips' "baseline" of plain features).
pretrained     True: the shipped learned weights; False: unit weights (lpips would start the linear
               layers at random; unit weights are the deterministic equivalent).
spatial        ``LPIPS``: a distance map; ``InvariantLPIPS``: an error (pooled statistics have no map).
pnet_rand      True: a randomly initialised trunk (no ImageNet weights).
pnet_tune      False only: the trunk is frozen by design (it is what makes the metric a fixed function).
use_dropout    accepted and ignored (no dropout is active in evaluation, as in lpips' eval mode).
model_path     not supported: lpips' ``.pth`` files are pickles, which we never load; pass
               ``weights=`` a safetensors file instead.
eval_mode      True (default): the module starts in eval mode; False: in training mode (the frozen
               trunk still evaluates the same way).
verbose        accepted; nothing is printed either way.
=============  =======================================================================================

Positional arguments follow lpips' order (``LPIPS_ARGS``): ``LPIPS(True, 'vgg')`` is
``LPIPS(pretrained=True, net='vgg')``, as in lpips; our own arguments (``weights``, ``trunk_weights``, ...)
are keyword-only.
"""
from __future__ import annotations

import difflib
from typing import Dict

from .validation import warn_at_caller

#: ``lpips.LPIPS.__init__``'s parameters, in its order (positional arguments map in this order)
LPIPS_ARGS = ("pretrained", "net", "version", "lpips", "spatial", "pnet_rand", "pnet_tune", "use_dropout",
              "model_path", "eval_mode", "verbose")
_KNOWN = LPIPS_ARGS


class DefaultNetWarning(UserWarning):
    """``LPIPS()`` was built without ``net``: lpips' default is AlexNet, ours is VGG-16 (the only trunk here).

    Pass ``net='vgg'`` to say so and silence it.
    """


_default_net_warned = False


def _warn_default_net(cls_name: str) -> None:
    global _default_net_warned
    if _default_net_warned:
        return
    _default_net_warned = True
    warn_at_caller(f"{cls_name}() without net= uses VGG-16 (the only network here), but lpips.LPIPS()'s default "
                   f"is net='alex' (AlexNet), so these distances differ from lpips.LPIPS()'s. To compare with lpips, "
                   f"use lpips.LPIPS(net='vgg') there; pass net='vgg' here to silence this warning.",
                   DefaultNetWarning)


def lpips_constructor_args(cls_name: str, kwargs: Dict, spatial_supported: bool) -> Dict:
    """Validate lpips-style keyword arguments; returns the effective settings.

    Raises:
        TypeError: an argument lpips does not have either (like any unexpected keyword).
        ValueError: a value we cannot honour, with the reason and the alternative.
    """
    unknown = sorted(set(kwargs) - set(_KNOWN))
    if unknown:
        close = {u: difflib.get_close_matches(u, _KNOWN, n=1) for u in unknown}
        hints = "".join(f" ({u!r}: did you mean {c[0]!r}?)" for u, c in close.items() if c)
        raise TypeError(f"{cls_name}() got unexpected keyword argument(s) {unknown}{hints}; lpips-compatible "
                        f"arguments are {list(_KNOWN)}")
    out = {"net": "vgg", "version": "0.1", "lpips": True, "spatial": False, "pretrained": True,
           "pnet_rand": False, "pnet_tune": False, "eval_mode": True, **kwargs}
    if isinstance(out["pretrained"], str):
        raise TypeError(f"{cls_name}({out['pretrained']!r}): the first positional argument is lpips' pretrained "
                        f"(a bool), as in lpips.LPIPS(pretrained=True, net='alex', ...); pass the network as "
                        f"net={out['pretrained']!r}" + (" or a variant as InvariantLPIPS(variant=...)"
                                                         if cls_name != "InvariantLPIPS" else ""))
    if out["net"] is None:  # not given: lpips' default would be 'alex'
        _warn_default_net(cls_name)
        out["net"] = "vgg"
    if out["net"] == "vgg16":  # lpips' alias
        out["net"] = "vgg"
    if out["net"] != "vgg":
        raise ValueError(f"{cls_name}(net={out['net']!r}) is not supported: every metric here is built on VGG-16; "
                         "use net='vgg' (lpips' 'alex' and 'squeeze' trunks are not provided)")
    if str(out["version"]) != "0.1":
        raise ValueError(f"{cls_name}(version={out['version']!r}) is not supported: only LPIPS v0.1 is reproduced")
    if out["pnet_tune"]:
        raise ValueError(f"{cls_name}(pnet_tune=True) is not supported: the VGG-16 trunk is frozen by design; "
                         "fine-tune a copy of the trunk yourself if you need it")
    if out.get("model_path") is not None:
        raise ValueError(f"{cls_name}(model_path=...) is not supported: lpips' .pth files are pickles, which "
                         "this package never loads; pass weights='file.safetensors' (see invariant-lpips calibrate)")
    if out["spatial"] and not spatial_supported:
        raise ValueError(f"{cls_name}(spatial=True) is not possible: it compares pooled statistics of whole images, "
                         "so there is no per-pixel map; use invariant_lpips.LPIPS(spatial=True) for a map")
    out["pretrained"] = bool(out["pretrained"]) and bool(out["lpips"])
    out["trunk_random"] = bool(out["pnet_rand"])
    out["lpips"] = out["pretrained"]
    return out
