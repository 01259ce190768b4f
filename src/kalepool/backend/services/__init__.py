"""Use cases. Each opens its own transaction(s) on a :class:`~kalepool.backend.db.session.Database`
and never holds one open across a chain call."""
