"""Applied configuration persisted in the state dir: today's `ConfigSource`
(see `sailmesh.model.snapshot`)."""

from sailmesh.store.store import AlreadyExists, NotFound, Outcome, Store, StoreError

__all__ = ["AlreadyExists", "NotFound", "Outcome", "Store", "StoreError"]
