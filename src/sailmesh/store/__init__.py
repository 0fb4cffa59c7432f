"""Applied configuration persisted in the state dir: today's `ConfigSource`
(see `sailmesh.model.snapshot`)."""

from sailmesh.store.store import Outcome, Store, StoreError

__all__ = ["Outcome", "Store", "StoreError"]
