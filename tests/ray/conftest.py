"""One real multi-node Ray cluster on this machine for every Ray test (a start costs seconds
and ~800 MB): a head that runs nothing and two 1-CPU worker nodes, each with a custom
resource of its own ("node_a", "node_b") so that placement can be proven."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_service

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Keep the cluster on loopback and quiet (../shared/NOTES.md): set before Ray is imported.
for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}.items():
    os.environ.setdefault(_key, _value)


class RayCluster:
    """The running cluster: its address and the node ids behind each custom resource."""

    def __init__(self, cluster: Any, nodes: dict[str, Any]) -> None:
        self.cluster = cluster
        self.address: str = cluster.address
        self.nodes = nodes  # "node_a" -> the cluster_utils node

    def node_id(self, name: str) -> str:
        return str(self.nodes[name].node_id)

    def replace_node(self, name: str) -> None:
        """Kill the node ``name`` (its raylet and workers) and start a fresh one in its place."""
        self.cluster.remove_node(self.nodes[name], allow_graceful=False)
        self.nodes[name] = self.cluster.add_node(num_cpus=1, resources={name: 1})
        self.cluster.wait_for_nodes()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError:
        require_service(False, "Ray is not installed: pip install 'ledgerflow[ray]'")
        raise
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    nodes = {
        name: cluster.add_node(num_cpus=1, resources={name: 1}) for name in ("node_a", "node_b")
    }
    cluster.wait_for_nodes()
    # Workers import the test modules' executors by name: give them the checkout.
    ray.init(
        address=cluster.address,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        log_to_driver=False,
    )
    try:
        yield RayCluster(cluster, nodes)
    finally:
        ray.shutdown()
        cluster.shutdown()
