"""The run-record callback's loss bookkeeping, without training: which number it records for a
batch (Composer's global batch loss, else its own sample-weighted sum over microbatches), and
on which torch device its all-reduce tensor is built for every Composer device class.

Each Composer device is constructed through its own ``__init__`` with the hardware faked (CUDA,
MPS, XLA are not on this machine), so the test follows Composer if it changes how a device
picks its torch device. The old code used ``state.device.name``: "gpu" is not a torch device."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from tests.conftest import require_train_extra

require_train_extra()

import torch  # noqa: E402

from train.callback import RunRecordCallback, reduction_device  # noqa: E402


def _gpu(monkeypatch):
    from composer.devices import DeviceGPU

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        return DeviceGPU(), torch.device("cuda", 0)
    finally:  # DeviceGPU sets both flags; leave them as they were
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _mps(monkeypatch):
    from composer.devices import DeviceMPS

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
    return DeviceMPS(), torch.device("mps")


def _xla(monkeypatch, cls_name: str):
    import composer.devices as devices

    xm = types.ModuleType("torch_xla.core.xla_model")
    xm.xla_device = lambda *a, **k: torch.device("xla", 0)
    for name, module in (("torch_xla", types.ModuleType("torch_xla")),
                         ("torch_xla.core", types.ModuleType("torch_xla.core")), ("torch_xla.core.xla_model", xm)):
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["torch_xla"].core = sys.modules["torch_xla.core"]
    sys.modules["torch_xla.core"].xla_model = xm
    return getattr(devices, cls_name)(), torch.device("xla", 0)


def _cpu(monkeypatch):
    from composer.devices import DeviceCPU

    return DeviceCPU(), torch.device("cpu")


def _hpu(monkeypatch):
    from composer.devices import DeviceHPU

    return DeviceHPU(), torch.device("hpu")


DEVICES = {"cpu": _cpu, "gpu": _gpu, "mps": _mps, "hpu": _hpu,
           "tpu": lambda mp: _xla(mp, "DeviceTPU"), "neuron": lambda mp: _xla(mp, "DeviceNeuron")}


def test_every_composer_device_class_is_covered():
    import composer.devices as devices

    classes = {name for name in dir(devices) if name.startswith("Device") and name != "Device"}
    assert classes == {"DeviceCPU", "DeviceGPU", "DeviceMPS", "DeviceHPU", "DeviceTPU", "DeviceNeuron"}


@pytest.mark.parametrize("kind", sorted(DEVICES))
def test_all_reduce_tensor_is_built_on_composers_device(kind, monkeypatch):
    device, expected = DEVICES[kind](monkeypatch)
    assert reduction_device(device) == expected
    built = []
    real_zeros = torch.zeros

    def zeros(*shape, device=None, **kwargs):
        built.append(torch.device(device))
        return real_zeros(*shape, **kwargs)  # the values are computed on the CPU here

    monkeypatch.setattr(torch, "zeros", zeros)
    callback = RunRecordCallback("unused.json", params=1)
    callback._samples = 4
    assert callback._reduced_batch_loss(SimpleNamespace(device=device)) == 0.0
    assert built == [expected]


def _state(loss_dict=None):
    from composer.devices import DeviceCPU

    return SimpleNamespace(device=DeviceCPU(), total_loss_dict=loss_dict if loss_dict is not None else {},
                           timestamp=SimpleNamespace(batch=0), loss=None, batch=None)


def _microbatch(callback, state, loss: float, samples: int) -> None:
    state.loss = torch.tensor(loss)
    state.batch = {"input_ids": torch.zeros(samples, 8, dtype=torch.long)}
    callback.after_loss(state, None)


def test_fallback_is_the_sample_weighted_batch_mean():
    """Without a fresh Composer loss, the batch loss is sum(loss x samples) / samples over its
    microbatches, not the last microbatch's loss; an OOM retry starts the sum again."""
    callback = RunRecordCallback("unused.json", params=1)
    state = _state()
    callback.fit_start(state, None)
    callback.before_train_batch(state, None)
    _microbatch(callback, state, 9.0, 8)  # a failed attempt, retried with smaller microbatches
    callback.before_train_batch(state, None)
    for loss, samples in ((2.0, 4), (4.0, 4), (5.0, 8)):
        _microbatch(callback, state, loss, samples)
    callback.batch_end(state, None)
    assert list(callback.losses) == [pytest.approx((2 * 4 + 4 * 4 + 5 * 8) / 16)]
    assert callback.first_loss == pytest.approx(4.0) and callback.loss_source == "callback"


def test_composers_global_loss_is_used_when_fresh():
    callback = RunRecordCallback("unused.json", params=1)
    state = _state({"loss/train/total": 3.25})
    callback.fit_start(state, None)  # the dict present at start is stale: never recorded
    _microbatch(callback, state, 7.0, 16)
    state.total_loss_dict = {"loss/train/total": 2.5}  # Composer makes a new dict every batch
    callback.batch_end(state, None)
    _microbatch(callback, state, 6.0, 16)
    state.total_loss_dict = {"loss/train/total": 1.5}
    callback.batch_end(state, None)
    assert list(callback.losses) == [2.5, 1.5] and callback.loss_source == "composer"


def test_window_keeps_the_last_ten():
    callback = RunRecordCallback("unused.json", params=1)
    state = _state()
    callback.fit_start(state, None)
    for i in range(25):
        state.total_loss_dict = {"loss/train/total": float(i)}
        callback.batch_end(state, None)
    assert list(callback.losses) == [float(i) for i in range(15, 25)] and callback.first_loss == 0.0


RANK = """
import sys
from types import SimpleNamespace
import torch
import torch.distributed as tdist
from composer.devices import DeviceCPU
from train.callback import RunRecordCallback

rank, init, loss, samples = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
tdist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
state = SimpleNamespace(device=DeviceCPU(), total_loss_dict={}, timestamp=SimpleNamespace(batch=0),
                        loss=torch.tensor(loss), batch={"input_ids": torch.zeros(samples, 8, dtype=torch.long)})
callback = RunRecordCallback("unused.json", params=1)
callback.fit_start(state, None)
callback.before_train_batch(state, None)
callback.after_loss(state, None)
print(repr(callback._reduced_batch_loss(state)))
tdist.destroy_process_group()
"""


def test_fallback_all_reduce_over_two_real_ranks(tmp_path):
    """Two gloo processes with different losses and sample counts: each rank's fallback batch loss
    is the global sample-weighted mean (2.0 x 4 + 5.0 x 12) / 16 = 4.25, not its own loss, and
    not the sum over ranks."""
    import os
    import subprocess

    from tests.conftest import REPO

    init = f"file://{tmp_path / 'rendezvous'}"
    env = {**os.environ, "WORLD_SIZE": "2"}
    procs = [subprocess.Popen([sys.executable, "-c", RANK, str(rank), init, str(loss), str(samples)], cwd=REPO,
                              env={**env, "RANK": str(rank)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for rank, (loss, samples) in enumerate(((2.0, 4), (5.0, 12)))]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(err[-2000:] for _, err in outs)
    assert [float(out.strip().splitlines()[-1]) for out, _ in outs] == [pytest.approx(4.25, rel=1e-6)] * 2
