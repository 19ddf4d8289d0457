"""The docstring examples run (random trunk or plain tensors: fast, no weights download) and show real outputs."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "invariant_lpips",
    "invariant_lpips.trunk.config",
    "invariant_lpips.features.pooled",
    "invariant_lpips.features.formulations",
    "invariant_lpips.features.variants",
    "invariant_lpips.metric.functional",
    "invariant_lpips.metric.invariant",
    "invariant_lpips.metric.registry",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [t for t in finder.find(module, name) if t.examples]
    assert tests, f"{name} has no docstring examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"


def test_no_example_is_skipped():
    """Every example runs: none is marked ``doctest: +SKIP`` (a skipped example shows no real output)."""
    for name in MODULES:
        module = importlib.import_module(name)
        for t in doctest.DocTestFinder().find(module, name):
            for ex in t.examples:
                assert doctest.SKIP not in ex.options, f"{t.name}: {ex.source.strip()}"
