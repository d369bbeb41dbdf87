"""``stq server``'s defaults: worker count from the CPUs, open files up to the hard limit."""

from __future__ import annotations

import resource

import pytest

from stq.api import launch


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 4), (3, 6), (4, 8), (64, 8)])
def test_two_workers_per_cpu_at_most_eight(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int
) -> None:
    monkeypatch.setattr(launch.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert launch.default_workers() == workers


def test_without_affinity_the_cpu_count_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(launch.os, "sched_getaffinity")
    monkeypatch.setattr(launch.os, "cpu_count", lambda: None)  # unknown: one CPU
    assert launch.default_workers() == 2


def test_the_open_files_limit_is_lifted_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert launch.raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
