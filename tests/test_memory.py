"""keep_freed_memory: a freed large tensor's pages are reused instead of faulted in again."""
import os
import platform
import subprocess
import sys

import pytest

from textcolor import REPO_ROOT

PROBE = """
import resource, sys, torch
from textcolor.memory import keep_freed_memory
took = keep_freed_memory()
def faults_for_one_op():
    x = torch.ones(64 * 2 ** 20 // 4)                # 64 MB: far above glibc's mmap threshold
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = x * 2                                         # the op's output: new pages or reused ones
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del x, y
    return after - before
for _ in range(3):                                    # the heap grows to its working size first
    faults_for_one_op()
print(took, min(faults_for_one_op() for _ in range(3)))
"""


def run_probe(env_value: str) -> tuple[bool, int]:
    env = dict(os.environ, TEXTCOLOR_KEEP_FREED_MEMORY=env_value, PYTHONPATH=str(REPO_ROOT))
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    took, faults = r.stdout.split()
    return took == "True", int(faults)


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_freed_memory_is_reused_without_page_faults():
    pages = 64 * 2 ** 20 // 4096
    # glibc falls back to mmap when sbrk cannot grow the heap (the address-space layout is
    # randomised per process; a mapping just above the heap would block it). One CI run saw every
    # page faulted in while the same probe passed alone, so a few fresh processes are tried.
    probes = [run_probe("1") for _ in range(3)]
    assert all(took for took, _ in probes)
    assert min(faults for _, faults in probes) < pages // 10   # reused: (almost) no new pages
    took, faults = run_probe("0")                     # opted out: glibc's default
    assert not took and faults > pages // 2           # a fresh mmap per op, every page faulted in
