"""The soak of `make soak`, one minute long: steady GETs through fastgw while
the config is reloaded every 10 s and an upstream target is killed and
restarted every 20 s, then 6,000 and 4,000 short client connections. No
request may fail, and memory and file descriptors may not grow."""

import importlib.util
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


@pytest.mark.timeout(240)
def test_a_one_minute_soak_with_reloads_and_target_loss():
    spec = importlib.util.spec_from_file_location("fastgw_bench_soak", SOAK)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = soak  # its dataclasses look their module up there
    spec.loader.exec_module(soak)
    # At half of saturation, as make soak.
    result = soak.run(duration=60, connections=16, reload_every=10, kill_every=20,
                      down=3, batches=(6000, 4000))
    print(result.report())
    assert result.reloads >= 5 and result.kills >= 2
    assert result.requests > 60 * result.rate * 0.9
    assert result.problems() == []
