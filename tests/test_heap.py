"""Start-up's objects are set aside from full garbage collections while the gateway serves."""

from __future__ import annotations

import gc

from perpetuo import heap


def test_startup_objects_leave_the_full_collections_until_release():
    built_at_startup = [[i] for i in range(1000)]  # lists: always tracked by the collector
    thresholds = gc.get_threshold()
    try:
        heap.set_aside_startup()
        assert gc.get_freeze_count() >= 1000
        full = {id(o) for o in gc.get_objects(generation=2)}
        assert not any(id(o) in full for o in built_at_startup)  # a full pass skips them
        assert gc.get_threshold() == heap.THRESHOLDS
        made_later = [[1]]
        gc.collect()
        assert id(made_later[0]) in {id(o) for o in gc.get_objects(generation=2)}
    finally:
        heap.release()
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0
    assert id(built_at_startup[0]) in {id(o) for o in gc.get_objects(generation=2)}
