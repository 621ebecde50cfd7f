"""rllib_mamt.learner_memory: freed learner tensors are reused, not faulted in anew."""

import ctypes.util
import os
import subprocess
import sys

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

GLIBC = sys.platform.startswith("linux") and hasattr(
    ctypes.CDLL(ctypes.util.find_library("c") or None), "mallinfo2")

# glibc's malloc statistics (malloc.h, struct mallinfo2): "uordblks" is the
# heap's bytes in use, "hblkhd" the bytes held in separate mmap'd blocks.
HEAP_AND_MMAPPED = """
import ctypes, ctypes.util, json, sys, torch
from rllib_mamt.learner_memory import retain_freed_memory

class MallocStatistics(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split())]

mallinfo2 = ctypes.CDLL(ctypes.util.find_library("c")).mallinfo2
mallinfo2.restype = MallocStatistics
if sys.argv[1] == "retained":
    assert retain_freed_memory()
before = mallinfo2()
block = torch.ones(6 * 1024 * 1024)  # 24 MB, one block
after = mallinfo2()
print(json.dumps({"mmapped": after.hblkhd - before.hblkhd,
                  "heap": after.uordblks - before.uordblks}))
"""

FAULTS = """
import mmap, resource, torch
from rllib_mamt.learner_memory import retain_freed_memory

def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def update():
    # like a learner update: 16 tensors of 4 MB alive together, all freed at the end
    return [torch.ones(1024, 1024) for _ in range(16)]

before = minor_faults()
fresh = mmap.mmap(-1, 4 * 1024 * 1024)
for offset in range(0, len(fresh), 4096):
    fresh[offset] = 1
touching_fresh_pages = minor_faults() - before
assert retain_freed_memory()
for _ in range(3):  # warm up
    update()
before = minor_faults()
for _ in range(10):
    update()
print(touching_fresh_pages, (minor_faults() - before) / 160)
"""


def run(code, *arguments):
    return subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True,
                          text=True, check=True, env=dict(os.environ, PYTHONPATH=REPOSITORY),
                          cwd=REPOSITORY).stdout


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt and mallinfo2")
def test_a_24_mb_block_comes_from_the_heap_instead_of_its_own_mmap():
    import json

    default = json.loads(run(HEAP_AND_MMAPPED, "default"))
    retained = json.loads(run(HEAP_AND_MMAPPED, "retained"))
    # glibc's default serves it with a fresh mmap, unmapped (and faulted in anew) on free
    assert default["mmapped"] >= 24 * 1024 * 1024
    assert retained["mmapped"] == 0
    assert retained["heap"] >= 24 * 1024 * 1024


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt and mallinfo2")
def test_freed_4_mb_tensors_are_reused_without_page_faults():
    touching_fresh_pages, faults_per_allocation = map(float, run(FAULTS).split())
    assert touching_fresh_pages > 0  # this kernel counts minor faults, so 0 below means something
    assert faults_per_allocation < 10  # 1,024 if each 4 MB block were faulted in anew


def test_learners_keep_freed_memory():
    from rllib_mamt.joint_learner import JointTorchLearner

    assert "retain_freed_memory" in JointTorchLearner.build.__code__.co_names
