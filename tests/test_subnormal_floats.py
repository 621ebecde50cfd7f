"""The learner flushes subnormal floats to zero (``rllib_mamt.subnormal_floats``)."""

import logging
import subprocess
import sys
import textwrap

import pytest
import torch

from rllib_mamt import subnormal_floats
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.subnormal_floats import subnormal_count
from tests.conftest import tiny_spread_config

SUBNORMAL = 1e-39


def flushes_in_this_thread() -> bool:
    return (torch.full((1,), SUBNORMAL) * 1.0).item() == 0.0


@pytest.fixture
def flush_off():
    torch.set_flush_denormal(False)
    assert not flushes_in_this_thread()
    yield
    torch.set_flush_denormal(False)


@pytest.mark.parametrize("agents, dead", [(2, True), (3, False)])
def test_with_two_agents_the_value_gives_keys_and_queries_no_gradient(agents, dead):
    """The cause: one other agent per attention makes its softmax weight 1."""
    torch.manual_seed(0)
    critic = AttentionCritic([6] * agents, [5] * agents, hidden_dim=16, num_heads=4)
    observations = [torch.randn(64, 6) for _ in range(agents)]
    actions = torch.randint(0, 5, (64, agents))
    q_values, _ = critic(observations, actions)
    sum(q.sum() for q in q_values).backward()
    for projection in (critic.key_projection, critic.query_projection):
        assert bool((projection.weight.grad == 0).all()) is dead


def test_the_learner_flushes_subnormal_weights_in_its_update(ray_session, flush_off):
    algo = tiny_spread_config(mode="learned").build_algo()
    try:
        algo.train()
        torch.set_flush_denormal(False)
        learner = algo.learner_group._learner
        critic = learner._central().critic
        with torch.no_grad():
            for projection in (critic.key_projection, critic.query_projection):
                projection.weight.copy_(torch.sign(projection.weight) * SUBNORMAL)
        assert subnormal_count(critic.key_projection.weight) > 0
        algo.update_from_buffer()
        for projection in (critic.key_projection, critic.query_projection):
            assert subnormal_count(projection.weight) == 0
        assert flushes_in_this_thread()
    finally:
        algo.stop()


def test_subnormals_are_counted_from_their_bits_while_flushing_is_on(flush_off):
    values = torch.tensor([0.0, -SUBNORMAL, SUBNORMAL, 1e-45, torch.finfo(torch.float32).tiny, 1.0])
    torch.set_flush_denormal(True)
    assert subnormal_count(values) == 3
    with pytest.raises(ValueError, match="float32"):
        subnormal_count(values.double())


INTRA_OP_THREADS_SCRIPT = """
import logging, torch
from rllib_mamt.subnormal_floats import warn_if_intra_op_threads_keep_subnormals
logging.basicConfig(level=logging.WARNING, format="%(message)s")
torch.set_num_threads(2)
if {threads_first}:
    torch.randn(1 << 20).mul(2)
print(warn_if_intra_op_threads_keep_subnormals() if torch.set_flush_denormal(True) else "no-flush-mode")
"""


@pytest.mark.parametrize("threads_first, share", [(True, 0.5), (False, 0.0)])
def test_intra_op_threads_started_before_flushing_are_found_and_named(threads_first, share):
    """Threads take the mode of the thread that starts them: a pool started
    before the flush computes its part of a product with subnormals kept."""
    script = INTRA_OP_THREADS_SCRIPT.format(threads_first=threads_first)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=120, check=True)
    if done.stdout.split()[-1] == "no-flush-mode":
        pytest.skip("this CPU has no flush-to-zero mode torch can set")
    assert float(done.stdout.split()[-1]) == share
    assert ("intra-op threads (2) were started before" in done.stderr) is threads_first


def test_a_learner_built_beside_unflushed_threads_warns(ray_session, monkeypatch, caplog):
    monkeypatch.setattr(subnormal_floats, "unflushed_intra_op_share", lambda: 0.5)
    with caplog.at_level(logging.WARNING, logger="rllib_mamt.subnormal_floats"):
        algo = tiny_spread_config().build_algo()
        algo.stop()
    warnings = [r.getMessage() for r in caplog.records if r.name == "rllib_mamt.subnormal_floats"]
    assert len(warnings) == 1 and warnings[0].startswith("50% of this learner's")
