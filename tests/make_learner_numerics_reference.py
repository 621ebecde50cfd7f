"""Writes tests/fixtures/learner_numerics_reference.json: the fingerprints of
one learner update per case (tests/learner_numerics.py) computed with the
``rllib_mamt`` on PYTHONPATH.

Run it with the code whose numerics are the reference, e.g. from a checkout of
the commit before a learner optimisation:

    PYTHONPATH=/path/to/reference/checkout OMP_NUM_THREADS=1 \
        python tests/make_learner_numerics_reference.py
"""

import json
import os
import subprocess
import sys

import ray

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rllib_mamt  # noqa: E402
from learner_numerics import CASES, record_update  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                   "learner_numerics_reference.json")


def main():
    source = os.path.dirname(os.path.dirname(os.path.abspath(rllib_mamt.__file__)))
    commit = subprocess.run(["git", "-C", source, "rev-parse", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    cases = {case: record_update(case) for case in CASES}
    ray.shutdown()
    with open(OUT, "w") as handle:
        json.dump({"reference_commit": commit, "cases": cases}, handle, indent=0)
    print(f"wrote {OUT} from rllib_mamt at {source} ({commit})")


if __name__ == "__main__":
    main()
