"""The KALE miner: a numba Keccak kernel, the nonce search, and the multi-farmer scheduler.

* :func:`search` — one farmer's best nonce over a range/time, on every core.
* :func:`mine_jobs` with :class:`FairSplit` or :class:`RewardSplit` — many farmers,
  each until its deadline.
* :class:`ExternalMiner` — a kale-miner-compatible program behind the same interface.
* :func:`load_kernel` — JIT/load the kernel now (otherwise done on first use) and say
  which CPU target it was compiled for.

Only ``kalepool.kale``, ``kalepool.errors`` and ``kalepool.settings`` are imported here;
numba is imported when the kernel is first needed.
"""

from kalepool.miner.external import ExternalMiner, ExternalMinerError, parse_answer
from kalepool.miner.kernel import KernelInfo
from kalepool.miner.kernel import load as load_kernel
from kalepool.miner.scheduler import (
    FairSplit,
    JobResult,
    JobState,
    MiningJob,
    ProgressEvent,
    RewardSplit,
    SplitPolicy,
    expected_gain,
    measure_hash_rate,
    mine_jobs,
)
from kalepool.miner.searcher import MinerError, Searcher, Solution, default_threads, search

__all__ = [
    "ExternalMiner",
    "ExternalMinerError",
    "FairSplit",
    "JobResult",
    "JobState",
    "KernelInfo",
    "MinerError",
    "MiningJob",
    "ProgressEvent",
    "RewardSplit",
    "Searcher",
    "Solution",
    "SplitPolicy",
    "default_threads",
    "expected_gain",
    "load_kernel",
    "measure_hash_rate",
    "mine_jobs",
    "parse_answer",
    "search",
]
