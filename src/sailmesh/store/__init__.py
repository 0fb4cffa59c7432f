"""Applied configuration persisted in the state dir: today's `ConfigSource`
(see `sailmesh.model.snapshot`)."""

from sailmesh.store.store import AlreadyExists, Outcome, Store, StoreError

__all__ = ["AlreadyExists", "Outcome", "Store", "StoreError"]
