import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from rtpx_harness import Rtpxd  # noqa: E402

_counter = [0]


def _tag():
    _counter[0] += 1
    return f"{os.getpid() % 1000}{_counter[0]}"


@pytest.fixture(scope="module")
def rtpxd():
    """One rtpxd shared by a test module; checks it shuts down cleanly afterwards."""
    d = Rtpxd(_tag())
    with d.running():
        yield d


@pytest.fixture
def make_rtpxd():
    """Factory for tests that need their own rtpxd (config variants, shutdown behaviour)."""
    made = []

    def make(**kw):
        d = Rtpxd(_tag(), **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc and d.proc.poll() is None:
            d.stop()
        d.cleanup()
