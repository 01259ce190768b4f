"""The pooler: the mining-machine service (``kalepool pooler run``; ``docs/pooler.md``).

- :mod:`~kalepool.pooler.decide`: the pure core: what to do next, from what is known
- :mod:`~kalepool.pooler.monitor`: the block monitor (new and ripe blocks, the chain clock)
- :mod:`~kalepool.pooler.timing`: when to submit works
- :mod:`~kalepool.pooler.state`: the state journal a restart resumes from
- :mod:`~kalepool.pooler.client`: the backend's pooler API over HTTP (the wire contract)
- :mod:`~kalepool.pooler.channels`: the accounts that submit works in parallel, sized
- :mod:`~kalepool.pooler.mining`: one block's mining thread
- :mod:`~kalepool.pooler.submitter`: sending works, recorded before they are sent
- :mod:`~kalepool.pooler.status`: the live status view
- :mod:`~kalepool.pooler.service`: :class:`PoolerService`, running what ``decide`` answers
- :mod:`~kalepool.pooler.runner`: a process from the settings, with signal handling

The pooler reaches the backend over HTTP only; it imports ``stellar``, ``miner``,
``kale``, ``wire``, ``errors`` and ``settings``, never ``kalepool.backend``.
"""

from kalepool.pooler.client import BackendCallError, BackendClient, BackendRejected, BackendUnavailable
from kalepool.pooler.decide import Phase, Situation, decide
from kalepool.pooler.monitor import BlockMonitor, ChainClock, NewBlock, RipeBlock
from kalepool.pooler.service import PoolerService
from kalepool.pooler.state import PoolerState, StateError, StateJournal
from kalepool.pooler.status import PoolerStatus
from kalepool.pooler.timing import WorkPlan, plan_work

__all__ = [
    "BackendCallError",
    "BackendClient",
    "BackendRejected",
    "BackendUnavailable",
    "BlockMonitor",
    "ChainClock",
    "NewBlock",
    "Phase",
    "PoolerService",
    "PoolerState",
    "PoolerStatus",
    "RipeBlock",
    "Situation",
    "StateError",
    "StateJournal",
    "WorkPlan",
    "decide",
    "plan_work",
]
