"""The pooler: the mining-machine service (block monitor, plant coordinator, work manager)."""
