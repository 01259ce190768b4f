"""The KALE farm contract's constants and the integer ranges of its Soroban types.

Values from ``kale-contract.md`` §1. Amounts are stroops (1 KALE = 10,000,000 stroops);
durations are seconds; ``WEEK_OF_LEDGERS`` counts ledgers.
"""

from __future__ import annotations

from typing import Final

#: Minimum life of a block, in ledger close-time seconds.
BLOCK_INTERVAL: Final = 300
#: Base reward per block before decay: 501 KALE a minute for 300 s, in stroops.
BLOCK_REWARD: Final = 501_0000000 * BLOCK_INTERVAL // 60
#: Length of one decay period, in block indexes (24·60/5·30).
BLOCKS_PER_MONTH: Final = 8_640
#: Fixed-point "100%".
BLOCK_SCALE: Final = 10**12
#: 5% of ``BLOCK_SCALE``.
DECAY_RATE: Final = 50_000_000_000
#: 95% of ``BLOCK_SCALE``: the factor applied once per decay period.
INVERSE_DECAY_RATE: Final = BLOCK_SCALE - DECAY_RATE
#: 86400/5·7 ledgers; the instance TTL is extended when fewer than ``max_ttl - this`` remain.
WEEK_OF_LEDGERS: Final = 120_960
#: Block index where decay counting starts.
V2_GENESIS_BLOCK: Final = 30_558

STROOPS_PER_KALE: Final = 10_000_000

U32_MAX: Final = 2**32 - 1
U64_MAX: Final = 2**64 - 1
I128_MIN: Final = -(2**127)
I128_MAX: Final = 2**127 - 1

assert BLOCK_REWARD == 25_050_000_000
assert INVERSE_DECAY_RATE == 950_000_000_000
