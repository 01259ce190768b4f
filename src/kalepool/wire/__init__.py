"""The pooler API's wire contract: what the backend and a pooler say to each other over HTTP.

One definition of every body of ``/api/v1/pooler/*`` (:mod:`~kalepool.wire.pooler`), the
closed set of machine-readable codes they carry (:mod:`~kalepool.wire.codes`) and the
enums both sides name (:mod:`~kalepool.wire.enums`). The backend's routes answer with
these models, the pooler's client parses with them, the tests' stand-in backend speaks
them. Nothing here does I/O; it depends on pydantic and stellar-sdk's key check only.
"""

from kalepool.wire.codes import ErrorCode
from kalepool.wire.enums import Attribution, FarmerStatus, FundingState
from kalepool.wire.parse import UnknownFields, parse

__all__ = ["Attribution", "ErrorCode", "FarmerStatus", "FundingState", "UnknownFields", "parse"]
