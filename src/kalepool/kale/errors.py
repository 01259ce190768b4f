"""Contract errors: the farm's codes 1..15 and the KALE token (SAC) codes 1..13.

Both contracts report failures as ``Error(Contract, #N)`` with overlapping numbers
(``kale-contract.md`` §3), so an error always says which contract raised it:
:class:`FarmError` for the farm, :class:`TokenError` for the SAC.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar, Literal

from kalepool.errors import KalePoolError

ContractRole = Literal["farm", "token"]


class FarmErrorCode(IntEnum):
    """The farm contract's ``Error`` enum."""

    HOMESTEAD_EXISTS = 1
    HOMESTEAD_MISSING = 2
    FARM_BLOCK_MISSING = 3
    FARM_PAUSED = 4
    FARM_NOT_PAUSED = 5
    PLANT_AMOUNT_TOO_LOW = 6
    ZERO_COUNT_TOO_LOW = 7
    PAIL_EXISTS = 8
    PAIL_MISSING = 9
    WORK_MISSING = 10
    BLOCK_MISSING = 11
    BLOCK_INVALID = 12
    HASH_INVALID = 13
    HARVEST_NOT_READY = 14
    GAP_COUNT_TOO_LOW = 15

    @property
    def contract_name(self) -> str:
        """The variant's name in the contract source, e.g. ``PailExists``."""
        return _camel(self.name)


class TokenErrorCode(IntEnum):
    """The Stellar Asset Contract's error codes *(host)*."""

    INTERNAL_ERROR = 1
    OPERATION_NOT_SUPPORTED = 2
    ALREADY_INITIALIZED = 3
    UNAUTHORIZED = 4
    AUTHENTICATION = 5
    ACCOUNT_MISSING = 6
    ACCOUNT_IS_NOT_CLASSIC = 7
    NEGATIVE_AMOUNT = 8
    ALLOWANCE = 9
    BALANCE_ERROR = 10
    BALANCE_DEAUTHORIZED = 11
    OVERFLOW = 12
    TRUSTLINE_MISSING = 13

    @property
    def contract_name(self) -> str:
        """The variant's name in the host source, e.g. ``TrustlineMissing``."""
        return _camel(self.name)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class ContractError(KalePoolError):
    """A contract call failed with ``Error(Contract, #code)``.

    ``code`` is the contract's number (an ``int``; the subclasses give an enum member,
    or a plain ``int`` for a number outside the known table), ``contract`` names which
    contract raised it and ``contract_id`` is its C... address when known.
    """

    contract: ClassVar[ContractRole | None] = None
    # KalePoolError.code is a str tag for the API; a contract error's code is its number.
    code: int  # type: ignore[assignment]

    def __init__(self, code: int, detail: str | None = None, *, contract_id: str | None = None) -> None:
        self.code = code
        self.detail = detail
        self.contract_id = contract_id
        super().__init__(self._message())

    @property
    def name(self) -> str:
        """The error's name, e.g. ``PailExists``, or ``Unknown`` for unlisted codes."""
        code = self.code
        if isinstance(code, FarmErrorCode | TokenErrorCode):
            return code.contract_name
        return "Unknown"

    def _message(self) -> str:
        text = f"Error(Contract, #{int(self.code)}) {self.name}"
        return f"{text}: {self.detail}" if self.detail else text

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), int(self.code), self.detail, self.contract_id))


def _rebuild(
    cls: type[ContractError], code: int, detail: str | None, contract_id: str | None
) -> ContractError:
    return cls(code, detail, contract_id=contract_id)


class FarmError(ContractError):
    """An error raised by the KALE farm contract; ``code`` is a :class:`FarmErrorCode`."""

    contract: ClassVar[ContractRole | None] = "farm"
    code: FarmErrorCode

    def __init__(
        self, code: FarmErrorCode | int, detail: str | None = None, *, contract_id: str | None = None
    ) -> None:
        super().__init__(FarmErrorCode(code), detail, contract_id=contract_id)


class TokenError(ContractError):
    """An error raised by the KALE token (SAC); ``code`` is a :class:`TokenErrorCode`."""

    contract: ClassVar[ContractRole | None] = "token"
    code: TokenErrorCode

    def __init__(
        self, code: TokenErrorCode | int, detail: str | None = None, *, contract_id: str | None = None
    ) -> None:
        super().__init__(TokenErrorCode(code), detail, contract_id=contract_id)
