"""The spine: image -> trunk -> taps -> pooled statistics -> weighted distance, and the one cache.

Every consumer (the metric, calibration, benchmarks, robustness, the classifier study) reads trunk
features through this layer; see ``docs/architecture.md``.
"""
