"""Shipped learned linear weights (safetensors) and their manifest.

Installed as ``invariant_lpips.weights.shipped``; read with :mod:`importlib.resources`.
"""
