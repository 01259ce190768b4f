"""The end-to-end demo: the whole pool on one machine (``kalepool demo``).

- :mod:`~kalepool.demo.cluster`: PostgreSQL, the devnet, the backend and poolers, started
  as an operator would run them (the backend and poolers as child processes)
- :mod:`~kalepool.demo.runner`: :func:`run_demo` registers and funds poolers and farmers
  and runs K blocks through the real HTTP API and RPC protocol
- :mod:`~kalepool.demo.report`: the report and the journal/chain reconciliation

The demo (and the end-to-end tests that build on it) is the one place besides the CLI
that imports the backend and the pooler.
"""

from kalepool.demo.cluster import Cluster, ClusterError, PoolerProcess
from kalepool.demo.report import BlockRow, DemoReport, Difference, FarmerRow
from kalepool.demo.runner import DemoOptions, Pool, run_demo, setup_pool

__all__ = [
    "BlockRow",
    "Cluster",
    "ClusterError",
    "DemoOptions",
    "DemoReport",
    "Difference",
    "FarmerRow",
    "Pool",
    "PoolerProcess",
    "run_demo",
    "setup_pool",
]
