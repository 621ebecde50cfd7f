"""rllib_mamt.learner_memory: freed learner tensors are reused, not faulted in anew."""

import os
import subprocess
import sys

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAULTS = """
import resource, torch
from rllib_mamt.learner_memory import retain_freed_memory

def update():
    # like a learner update: 16 tensors of 4 MB alive together, all freed at the end
    return [torch.ones(1024, 1024) for _ in range(16)]

def faults_per_allocation():
    for _ in range(3):  # warm up
        update()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        update()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 160

default = faults_per_allocation()
assert retain_freed_memory()
print(default, faults_per_allocation())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_4_mb_tensors_are_reused_without_page_faults():
    output = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True,
                            check=True, env=dict(os.environ, PYTHONPATH=REPOSITORY),
                            cwd=REPOSITORY).stdout.split()
    default, retained = map(float, output)
    assert default > 500  # glibc trimmed them: 1,024 pages of 4 KB faulted in again
    assert retained < 10


def test_learners_keep_freed_memory():
    from rllib_mamt.joint_learner import JointTorchLearner

    assert "retain_freed_memory" in JointTorchLearner.build.__code__.co_names
