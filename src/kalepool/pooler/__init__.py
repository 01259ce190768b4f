"""The pooler: the mining-machine service (``kalepool pooler run``; ``docs/pooler.md``).

- :mod:`~kalepool.pooler.monitor`: the block monitor (new and ripe blocks, the chain clock)
- :mod:`~kalepool.pooler.timing`: when to submit works
- :mod:`~kalepool.pooler.state`: the local state file a restart resumes from
- :mod:`~kalepool.pooler.client`: the backend's pooler API over HTTP
- :mod:`~kalepool.pooler.channels`: the accounts that submit works in parallel
- :mod:`~kalepool.pooler.service`: :class:`PoolerService`, the loop tying them together
- :mod:`~kalepool.pooler.runner`: a process from the settings, with signal handling

The pooler reaches the backend over HTTP only; it imports ``stellar``, ``miner``,
``kale``, ``errors`` and ``settings``, never ``kalepool.backend``.
"""

from kalepool.pooler.client import BackendClient, BackendError, BackendRejected, BackendUnavailable
from kalepool.pooler.monitor import BlockMonitor, ChainClock, NewBlock, RipeBlock
from kalepool.pooler.service import PoolerService, PoolerStatus
from kalepool.pooler.state import PoolerState, StateError, StateStore
from kalepool.pooler.timing import WorkPlan, plan_work

__all__ = [
    "BackendClient",
    "BackendError",
    "BackendRejected",
    "BackendUnavailable",
    "BlockMonitor",
    "ChainClock",
    "NewBlock",
    "PoolerService",
    "PoolerState",
    "PoolerStatus",
    "RipeBlock",
    "StateError",
    "StateStore",
    "WorkPlan",
    "plan_work",
]
