"""The station's GC policy: survivors are frozen (no full-heap walks), a full collection is rare."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from controller.guard.gc_policy import GcPolicy


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_are_frozen_and_a_full_collection_reclaims_frozen_cycles() -> None:
    policy = GcPolicy(0.0, freeze_s=10, full_s=100)
    policy.tick(5.0)
    assert gc.get_freeze_count() == 0  # not yet
    policy.tick(10.0)
    assert gc.get_freeze_count() > 0  # survivors moved out of the collector's walks
    node = _Node()
    node.me = node  # a reference cycle: only the cyclic collector frees it
    gone = weakref.ref(node)
    policy.tick(20.0)  # frozen while still in use ...
    del node
    gc.collect()
    assert gone() is not None  # ... so an ordinary full collection cannot free it
    policy.tick(100.0)  # the rare full collection unfreezes first
    assert gone() is None
    assert policy.full_pause_ms > 0
    assert gc.get_freeze_count() > 0  # and freezes the survivors again


class _Node:
    me: object
