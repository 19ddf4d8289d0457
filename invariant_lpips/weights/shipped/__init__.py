"""Shipped learned linear weights (safetensors) and their manifest (package data).

Read through :mod:`invariant_lpips.weights.linear` (``shipped_dir``, ``load_shipped``, ``variant_notes``).
"""
