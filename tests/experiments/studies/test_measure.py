"""A study's timed steps run as training would run them on this machine: the precision and
memory format come from the same cached probes the trainer reads."""

import pytest
import torch

from cnnlab.analysis.bench import training_step_options
from cnnlab.train.autotune import (
    PROBE_BATCH,
    ProbeCache,
    cache_path,
    detect_capabilities,
    probe_key,
)
from cnnlab.train.threads import use_threads

SPEC, SHAPE = "lenet-modern", (1, 28, 28)


def _cache(kind: str, ms: dict) -> None:
    use_threads(None, torch.device("cpu"))  # the threads training runs on key the cache
    workload = f"{SPEC} {'x'.join(map(str, SHAPE))} batch {PROBE_BATCH}"
    key = probe_key(kind, workload, torch.device("cpu"), detect_capabilities())
    ProbeCache(cache_path()).put(key, ms)


@pytest.mark.parametrize("channels_last", [True, False])
def test_timed_steps_take_the_trainers_memory_format_and_precision(channels_last):
    _cache("amp bfloat16", {"fp32": 1.0, "bfloat16": 2.0})  # bfloat16 measured slower
    fast, slow = 1.0, 3.0
    _cache("channels_last fp32", {"channels_last": fast if channels_last else slow,
                                  "contiguous": slow if channels_last else fast})
    options = training_step_options(SPEC, SHAPE, torch.device("cpu"), steps=4, warmup=2)
    assert (options.channels_last, options.amp) == (channels_last, False)
    assert (options.steps, options.warmup, options.mode) == (4, 2, "train")
