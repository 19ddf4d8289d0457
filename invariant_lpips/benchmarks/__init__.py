"""The benchmark study: score human-judgement datasets with several metrics and correlate with humans.

Entry points: :func:`invariant_lpips.benchmarks.runner.run_benchmark` and ``invariant-lpips bench``
(:mod:`~invariant_lpips.benchmarks.cli`). The runner's sections: :mod:`~.plan`, :mod:`~.scoring`,
:mod:`~.persistence`, :mod:`~.manifest`, :mod:`~.report` (with :mod:`~.raid`) and
:mod:`~.distributed`. The study uses only the core (trunk, features, metric registry, weights, data,
distortions, progress); nothing is imported here so that the CLI starts fast.
"""
