"""Applied configuration: persistence (`Store`) and immutable views (`Snapshot`)."""

from sailmesh.store.snapshot import Snapshot
from sailmesh.store.store import Outcome, Store, StoreError

__all__ = ["Outcome", "Snapshot", "Store", "StoreError"]
