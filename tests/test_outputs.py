"""What the page derives from the package's results is kept beside them, not pinned onto them."""

import gc

import numpy as np

from aevae.pair_training import Snapshot
from ui.outputs import PerObject


def snapshot() -> Snapshot:
    return Snapshot(np.zeros((1, 4, 4, 3), np.uint8), {}, {})


def test_derived_values_live_as_long_as_their_object_and_no_longer():
    views = PerObject()
    a, b = snapshot(), snapshot()
    views.of(a)["en"] = "view of a"
    assert views.of(a) == {"en": "view of a"} and views.of(b) == {}  # one dict per object, kept
    assert not hasattr(a, "_views") and vars(a).keys() == {"images", "before", "now", "step"}
    del a
    gc.collect()
    assert list(views._values) == [id(b)]  # a's views went with it: nothing grows with each result
