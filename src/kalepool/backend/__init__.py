"""The pool backend: FastAPI over PostgreSQL, custodial signer, journal, workers.

Layers, outermost first: ``api`` (routes, schemas, auth) → ``services`` (one transaction
each) → ``db`` (models, repositories that never commit) and ``custody`` / ``journal``.
The chain is reached only through the :class:`kalepool.backend.chain.Chain` protocol.
"""
