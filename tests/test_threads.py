"""textcolor/threads.py: the thread count training picks on a quiet and on a busy machine."""
import os

from textcolor.threads import choose_threads, other_load, quiet_openmp, usable_cores


def test_all_cores_when_quiet_fewer_when_busy_at_least_one():
    assert choose_threads(0, cores=2, load=0)[0] == 2
    assert choose_threads(0, cores=2, load=1)[0] == 1
    assert choose_threads(0, cores=8, load=2.4)[0] == 6
    assert choose_threads(0, cores=2, load=7)[0] == 1
    n, why = choose_threads(0, cores=2, load=1)
    assert "other load 1" in why and "train.threads=N" in why


def test_an_explicit_count_is_kept():
    assert choose_threads(3, cores=2, load=5) == (3, "train.threads=3")


def test_measured_load_is_a_count():
    assert other_load() >= 0 and usable_cores() >= 1 and 1 <= choose_threads(0)[0] <= usable_cores()


def test_quiet_openmp_keeps_a_users_setting(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    quiet_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
