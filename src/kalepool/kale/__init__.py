"""The KALE domain core: constants, proof of work, reward maths and contract encodings.

Pure functions and values only: nothing here performs I/O.

- :mod:`~kalepool.kale.constants`: the contract's constants and integer ranges
- :mod:`~kalepool.kale.pow`: the 76-byte preimage, Keccak-256 and the zero count
- :mod:`~kalepool.kale.maths`: ``fixed_mul_floor``, block reward, normalisation, reward
- :mod:`~kalepool.kale.types`: ``Block``, ``Pail``, ``FarmInstance`` and their ScVals
- :mod:`~kalepool.kale.storage`: contract storage keys and ledger keys
- :mod:`~kalepool.kale.errors`: farm and token (SAC) contract errors
- :mod:`~kalepool.kale.networks`: mainnet, testnet and devnet profiles
"""

from kalepool.kale.errors import (
    ContractError,
    FarmError,
    FarmErrorCode,
    TokenError,
    TokenErrorCode,
)
from kalepool.kale.maths import (
    FixedPointTrap,
    IntegerOverflow,
    block_reward,
    contribution,
    fixed_mul_floor,
    normalize,
    reward,
)
from kalepool.kale.types import Block, FarmInstance, Pail

__all__ = [
    "Block",
    "ContractError",
    "FarmError",
    "FarmErrorCode",
    "FarmInstance",
    "FixedPointTrap",
    "IntegerOverflow",
    "Pail",
    "TokenError",
    "TokenErrorCode",
    "block_reward",
    "contribution",
    "fixed_mul_floor",
    "normalize",
    "reward",
]
