"""The opt-in bf16 learner (``learner_precision``): checked, close to fp32, fp32 by default."""

import math

import pytest
import torch

from rllib_mamt import MAMTConfig
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.conftest import tiny_spread_config
from tests.learner_numerics import numerics_config, synthetic_batch


@pytest.mark.parametrize("value", ["fp16", "bf16", "float16", None, 16])
def test_bad_precision_is_named(value):
    with pytest.raises(ValueError, match=rf"'learner_precision' = {value!r} is invalid; allowed: 'float32' \| 'bfloat16'"):
        tiny_spread_config(learner_precision=value).validate()


def test_float32_is_the_default():
    assert MAMTConfig().learner_precision == "float32"


def one_update(precision: str):
    """Losses and metrics of one MAMT update on the fixed numerics batch, plus
    the dtypes of every parameter, gradient and optimiser state tensor."""
    algo = numerics_config("mamt").training(learner_precision=precision).build_algo()
    try:
        learner = algo.learner_group._learner
        batch = synthetic_batch(learner, with_alive=False)
        _, losses, _ = learner._uncompiled_update({CENTRAL_MODULE_ID: batch})
        values = {f"loss/{key}": float(value.detach()) for key, value in losses.items()}
        for module_id, metrics in learner.metrics.reduce().items():
            for key in ("critic_td_loss", "q_mean", "trd_loss", "opponent_model_loss",
                        "policy_gradient_loss", "entropy"):
                if isinstance(metrics, dict) and key in metrics:
                    values[f"{module_id}/{key}"] = float(metrics[key])
        dtypes = {p.dtype for module_id in learner.module.keys()
                  for p in learner.module[module_id].parameters()}
        dtypes |= {t.dtype for optimizer in learner._named_optimizers.values()
                   for state in optimizer.state.values() for t in state.values()
                   if torch.is_tensor(t) and t.is_floating_point()}
        return values, dtypes
    finally:
        algo.stop()


def test_bfloat16_update_is_close_to_float32(ray_session):
    """On a fixed batch and the same initial weights, the bf16 update's losses
    match fp32's to bf16 accuracy, and they do differ (autocast is active);
    parameters and optimiser state stay fp32."""
    reference, reference_dtypes = one_update("float32")
    reduced, reduced_dtypes = one_update("bfloat16")
    assert reference.keys() == reduced.keys() and len(reference) > 20
    assert reference_dtypes == reduced_dtypes == {torch.float32}
    far = {key: (reference[key], reduced[key]) for key in reference
           if not math.isclose(reduced[key], reference[key], rel_tol=0.05, abs_tol=0.02)}
    assert far == {}
    assert any(reduced[key] != reference[key] for key in reference)


def test_bfloat16_trains_an_iteration(ray_session):
    algo = tiny_spread_config("learned", learner_precision="bfloat16").build_algo()
    try:
        result = algo.train()
        critic = result["learners"][CENTRAL_MODULE_ID]
        assert math.isfinite(critic["critic_loss"]) and math.isfinite(critic["trd_loss"])
    finally:
        algo.stop()
