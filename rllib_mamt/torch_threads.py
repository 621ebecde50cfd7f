"""How many intra-op threads torch may use in a learner's process.

Torch starts with one intra-op thread per core of the machine. A learner's
matrix products are small (batch 1024, width 128), and when the process was
given fewer cores than the machine has, or the machine is busy, OpenMP thread
hand-offs cost far more than the arithmetic: a local learner in the driver ran
the quickstart 8-25x slower with 2 threads than with 1 on a busy 2-core machine
(BENCHMARKS.md). Ray sets ``OMP_NUM_THREADS`` inside its actors (remote
learners, EnvRunners), but not in the driver, where the local learner runs.
"""

import torch


def learner_cpus(config) -> int:
    """The CPUs RLlib reserves for one learner of ``config``.

    RLlib's rule (``AlgorithmConfig.learners``): ``num_cpus_per_learner="auto"``
    is 1 without a GPU and 0 with one; a local learner (``num_learners=0``) runs
    in the main process, which has ``max(num_cpus_per_learner,
    num_cpus_for_main_process)`` CPUs. At least one thread is always used.
    """
    per_learner = config.num_cpus_per_learner
    if per_learner == "auto":
        per_learner = 0 if config.num_gpus_per_learner else 1
    if config.num_learners == 0:
        per_learner = max(per_learner, config.num_cpus_for_main_process)
    return max(1, int(per_learner))


def set_learner_torch_threads(config) -> int:
    """Sets torch's intra-op threads for a learner and returns the number.

    ``config.learner_torch_threads`` overrides the count; None takes the CPUs
    the learner was given (:func:`learner_cpus`). For a local learner this
    sets the thread count of the whole driver process.
    """
    threads = config.learner_torch_threads or learner_cpus(config)
    torch.set_num_threads(int(threads))
    return int(threads)
