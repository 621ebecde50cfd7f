"""Seeds of the learners' own random streams."""

import numpy as np


def learner_sampling_seed(run_seed, rank: int) -> int:
    """Seed of one learner's action-sampling generator: an independent stream
    per learner rank, derived from the run's seed (``numpy.random.SeedSequence``)."""
    entropy_words = [int(run_seed or 0), int(rank)]
    return int(np.random.SeedSequence(entropy_words).generate_state(1, np.uint64)[0] >> 1)
