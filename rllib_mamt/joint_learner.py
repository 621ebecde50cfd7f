"""The torch learner base every algorithm here shares: per-agent actor
modules plus one learner-only central module (``CENTRAL_MODULE_ID``)."""

from typing import List

from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.learner_memory import retain_freed_memory
from rllib_mamt.subnormal_floats import (
    flush_subnormal_floats,
    warn_if_intra_op_threads_keep_subnormals,
)
from rllib_mamt.torch_threads import set_learner_torch_threads


class JointTorchLearner(TorchLearner):
    """Sets the learner's torch threads from its CPUs before building, flushes
    subnormal floats to zero (``subnormal_floats``), keeps freed tensor memory
    in the process (``learner_memory``), and gives the agents (in tensor
    order) and access to the central module and to each agent's actor
    module."""

    def build(self) -> None:
        flushing = flush_subnormal_floats()
        set_learner_torch_threads(self.config)
        if flushing:
            warn_if_intra_op_threads_keep_subnormals()
        retain_freed_memory()
        super().build()
        self.agent_ids: List[str] = list(self._central().agent_ids)

    def update(self, *args, **kwargs):
        """RLlib's update, with subnormal floats flushed in the calling thread."""
        flush_subnormal_floats()
        return super().update(*args, **kwargs)

    def _central(self):
        """The learner-only central module (critics, targets, models)."""
        return self.module[CENTRAL_MODULE_ID].unwrapped()

    def _actor(self, agent_id):
        """The actor RLModule of ``agent_id``."""
        return self.module[agent_id].unwrapped()
