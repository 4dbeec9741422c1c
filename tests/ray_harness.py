"""The Ray cluster the Ray tests share, one per test session (Ray takes seconds to start): a
head node with 2 CPUs on this machine, token authentication on, and this directory on its
workers' path (so they import the tests' classes). Tests that need a second node add one and
remove it themselves."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def worker_environment() -> Iterator[None]:
    """While Ray starts processes: token authentication on (conftest.py set it before Ray
    loaded), this directory importable."""
    assert os.environ.get("RAY_AUTH_MODE") == "token" and os.environ.get("RAY_AUTH_TOKEN")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (HERE, saved) if part)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@contextlib.contextmanager
def shared_cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    with worker_environment():
        cluster = Cluster(initialize_head=True,
                          head_node_args={"num_cpus": 2, "include_dashboard": False})
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
