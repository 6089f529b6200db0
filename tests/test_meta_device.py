"""Every catalog entry's parameter count equals transformers' own count on the meta device."""

import pytest

from conftest import requires_torch
from vramscope.sources import catalog, resolve_catalog

ENTRIES = catalog.entries()


@requires_torch
@pytest.mark.trace
@pytest.mark.parametrize("entry", ENTRIES, ids=[e["id"] for e in ENTRIES])
def test_meta_device_parameter_count(entry):
    from meta_build import meta_param_count

    ours = resolve_catalog(entry["id"])
    assert ours is not None
    assert ours.params == meta_param_count(entry["config"])
