"""Shared by the scripts that probe a trained checkpoint's learner
(``delta_horizon.py``, ``coordination_probe.py``): restoring it in a one-CPU
Ray with one torch thread, and drawing replayed rows with a seeded generator."""

import os

import torch


def restore(checkpoint):
    """The algorithm saved at ``checkpoint``, in a one-CPU local Ray, with one torch thread."""
    torch.set_num_threads(1)
    import ray
    from ray.rllib.algorithms.algorithm import Algorithm

    import rllib_mamt  # noqa: F401  (registers algorithms and environments)

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    algo = Algorithm.from_checkpoint(os.path.abspath(checkpoint))
    torch.set_num_threads(1)
    return algo


class SeededRows:
    """Draws replayed rows of ``algo``'s buffer as torch tensors on the
    learner's device, from a generator seeded with ``seed``; the buffer's own
    generator is left where it was."""

    def __init__(self, algo, seed):
        import numpy as np

        self.algo = algo
        self.generator = np.random.default_rng(seed)

    def __call__(self, rows):
        from ray.rllib.utils.torch_utils import convert_to_torch_tensor

        buffer = self.algo.joint_replay_buffer
        own = buffer._rng  # the buffer's own draw generator
        buffer._rng = self.generator
        try:
            sample = buffer.sample(rows, standardize_rewards=self.algo.config.standardize_rewards)
        finally:
            buffer._rng = own
        return convert_to_torch_tensor(sample, device=self.algo.learner_group._learner._device)
