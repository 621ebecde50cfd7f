"""Helpers to compare nested learner / module states in tests."""

import numpy as np


def flatten_state(state, prefix=""):
    """{'a': {'b': x}} -> {'a/b': x} for every leaf."""
    flat = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_state(value, name + "/"))
        else:
            flat[name] = value
    return flat


def numeric_differences(state_a, state_b):
    """Names of numeric leaves that differ (or exist in only one state)."""
    flat_a, flat_b = flatten_state(state_a), flatten_state(state_b)
    differing = sorted(set(flat_a) ^ set(flat_b))
    compared = 0
    for name in set(flat_a) & set(flat_b):
        try:
            a = np.asarray(flat_a[name], dtype=np.float64)
            b = np.asarray(flat_b[name], dtype=np.float64)
        except (TypeError, ValueError):
            continue
        compared += 1
        if a.shape != b.shape or not np.array_equal(a, b):
            differing.append(name)
    return differing, compared
