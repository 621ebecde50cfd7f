"""One learner update computes what it computed before the learner was optimised.

The reference (tests/fixtures/learner_numerics_reference.json) holds the
losses, every stepped gradient and the updated parameters of one update per
case, as fingerprints (tests/learner_numerics.py), computed with the code
before the optimisation (tests/make_learner_numerics_reference.py). The
optimised code must match them within fp32 tolerance: the changes reorder
floating-point work (batched heads, fused optimiser steps), they do not change
the maths. Since session 21 the update has lagging old actors and σ = 0
(tests/learner_numerics.py), so the δ step moves on real slopes, not on
rounding noise that made the updated δ differ between CPUs; the reference was
regenerated then, from code whose numerics had passed this test.
"""

import json
import math
import os

import pytest

from tests.learner_numerics import CASES, record_update

REFERENCE = os.path.join(os.path.dirname(__file__), "fixtures", "learner_numerics_reference.json")
TOLERANCE = {  # (relative, absolute)
    "loss": (1e-5, 1e-6),
    "metric": (1e-4, 1e-6),
    "gradient": (1e-4, 1e-6),
    "state": (1e-5, 1e-5),
}


def mismatches(reference, current):
    """Keys missing on either side and values outside the tolerance."""
    problems = [f"missing {key}" for key in reference.keys() - current.keys()]
    problems += [f"unexpected {key}" for key in current.keys() - reference.keys()]
    for key in reference.keys() & current.keys():
        relative, absolute = TOLERANCE[key.split("/")[0]]
        for expected, actual in zip(reference[key], current[key]):
            if actual == expected or (math.isnan(actual) and math.isnan(expected)):
                continue  # infinite deltas (MAAC) fingerprint to inf / nan
            if not math.isclose(actual, expected, rel_tol=relative, abs_tol=absolute):
                problems.append(f"{key}: {actual!r} != {expected!r}")
    return sorted(problems)


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_matches_the_reference(ray_session, case):
    with open(REFERENCE) as handle:
        reference = json.load(handle)["cases"][case]
    assert mismatches(reference, record_update(case)) == []


def test_the_fingerprints_do_not_hang_on_rounding(ray_session):
    """A rounding-sized change of the batch (observations and rewards × (1 +
    1e-7)) stays inside the tolerance, so another CPU's rounding does too."""
    assert mismatches(record_update("mamt"), record_update("mamt", rounding=1e-7)) == []


def test_the_reference_steps_delta_on_value_and_drift_slopes_above_rounding():
    with open(REFERENCE) as handle:
        cases = json.load(handle)["cases"]
    for case in ("mamt", "mamt_alive", "mamt_simultaneous"):
        slopes = [value[0] for key, value in cases[case].items()
                  if key.endswith(("/delta_value_slope", "/delta_drift_slope"))]
        assert len(slopes) == 16 and min(abs(slope) for slope in slopes) > 1e-8  # noise: < 1e-9
        assert min(abs(cases[case]["metric/mamt_central/non_stationarity_total"][0]), 1.0) > 1e-3
        step = [value for key, value in cases[case].items()
                if key.startswith("gradient/") and key.endswith("log_trust_region_deltas")]
        assert len(step) == 1 and step[0][0] > 1e-5


def test_non_finite_loss_stops_the_update_before_any_step(ray_session):
    """A NaN reward makes the critic loss NaN: the update raises a clear error
    and no parameter moves (RLlib's default would zero the NaN gradients and
    step on)."""
    import torch

    from rllib_mamt.joint_replay_buffer import REWARDS
    from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
    from tests.learner_numerics import numerics_config, synthetic_batch

    algo = numerics_config("mamt").build_algo()
    try:
        learner = algo.learner_group._learner
        modules = [learner.module[module_id] for module_id in learner.module.keys()]
        before = [p.detach().clone() for module in modules for p in module.parameters()]
        batch = synthetic_batch(learner, with_alive=False)
        batch[REWARDS][3, 2] = float("nan")
        with pytest.raises(FloatingPointError, match=r"non-finite values \(loss = nan"):
            learner._uncompiled_update({CENTRAL_MODULE_ID: batch})
        after = [p.detach() for module in modules for p in module.parameters()]
        assert len(after) > 50 and all(torch.equal(b, a) for b, a in zip(before, after))
    finally:
        algo.stop()
