"""One round of learner updates on a joint batch, then the new actor weights
to the EnvRunners: the end of every training step of the package's algorithms."""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.policy.sample_batch import MultiAgentBatch
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)


def update_learners_and_sync_actors(algorithm: Algorithm, batch: MultiAgentBatch, *,
                                    minibatch_size, num_epochs: int,
                                    shuffle_batch_per_epoch: bool = False) -> None:
    """Runs ``learner_group.update`` on ``batch`` (RLlib splits it into
    minibatches and epochs), logs the results under ``learners/`` and pushes
    the actors' (inference-only) weights to the EnvRunners."""
    with algorithm.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
        learner_results = algorithm.learner_group.update(
            batch=batch,
            minibatch_size=minibatch_size,
            num_epochs=num_epochs,
            shuffle_batch_per_epoch=shuffle_batch_per_epoch,
            timesteps={
                NUM_ENV_STEPS_SAMPLED_LIFETIME: algorithm.metrics.peek(
                    (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                )
            },
        )
    algorithm.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
    with algorithm.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
        algorithm.env_runner_group.sync_weights(
            from_worker_or_learner_group=algorithm.learner_group,
            policies=algorithm.config.agent_ids(),
            inference_only=True,
        )
