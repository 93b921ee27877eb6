"""What training runs on: the accelerators the machine has, the ones Keras' backend uses, and a warning when a
GPU or TPU sits unused.

The usual way to waste a GPU with kit: its TensorFlow is the CPU build (tf.data and the TFLite exporter need
nothing more), so under the default TensorFlow backend an NVIDIA GPU trains nothing. Training on it takes the
`gpu` extra (JAX with CUDA) and `KERAS_BACKEND=jax`; Kaggle's images ship TensorFlow and JAX builds that see
their accelerators already.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

GPU_HINT = ('pip install "kit[gpu]" (JAX with CUDA 12) and run with KERAS_BACKEND=jax; kit\'s TensorFlow is the '
            "CPU build, kept for tf.data and the exporter")
TPU_HINT = "run with KERAS_BACKEND=jax on a TPU image whose JAX sees it (Kaggle's TPU image does)"


@dataclass(frozen=True)
class Devices:
    backend: str  # Keras' backend: tensorflow | jax
    used: list = field(default_factory=list)  # accelerators the backend trains on, e.g. ["gpu: NVIDIA H200"]
    present: list = field(default_factory=list)  # accelerators the machine has, whatever the backend sees
    cores: int = 1

    @property
    def warning(self) -> str | None:
        """Why an accelerator that is present trains nothing, with the fix; None when nothing is wasted."""
        if self.used or not self.present:
            return None
        kind = "TPU" if any(p.startswith("tpu") for p in self.present) else "GPU"
        return (f"warning: this machine has {len(self.present)} {kind} device(s) ({'; '.join(self.present)}) but "
                f"Keras' {self.backend} backend sees none, so training runs on the CPU: "
                f"{TPU_HINT if kind == 'TPU' else GPU_HINT}")

    def __str__(self) -> str:
        where = ", ".join(self.used) if self.used else f"the CPU ({self.cores} cores)"
        return f"training on {where} with Keras' {self.backend} backend"


def machine_accelerators(root: Path = Path("/"), ask_jax: bool = True) -> list[str]:
    """GPUs and TPUs the machine exposes, e.g. ["gpu: NVIDIA H200"]: GPUs from the driver files, TPUs from the
    /dev/accel* device files and, when JAX is installed, from `jax.devices()` too, since newer TPU VMs (v5e, the
    TPU of Kaggle's v5e-8 image) expose their chips as VFIO devices and no /dev/accel* at all. `root` lets tests
    point at a fake file tree (and `ask_jax=False` keeps this machine's JAX out of it)."""
    found = []
    for info in sorted((root / "proc/driver/nvidia/gpus").glob("*/information")):
        model = next((line.split(":", 1)[1].strip() for line in info.read_text(errors="replace").splitlines()
                      if line.startswith("Model:")), "NVIDIA GPU")
        found.append(f"gpu: {model}")
    tpus = jax_tpus() if ask_jax else []
    return found + (tpus or [f"tpu: {path.name}" for path in sorted((root / "dev").glob("accel[0-9]*"))])


def jax_tpus() -> list[str]:
    """The TPU cores JAX sees, e.g. ["tpu: TPU v5 lite"] x 8; empty where JAX is not installed or finds no TPU."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return []
    import jax

    try:
        return [f"tpu: {getattr(d, 'device_kind', 'TPU')}" for d in jax.devices("tpu")]
    except RuntimeError:  # JAX's answer for "no TPU backend here" (no libtpu, or no chip)
        return []


def backend_accelerators() -> list[str]:
    """The accelerators Keras' backend will train on (empty: the CPU)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [f"{d.platform}: {getattr(d, 'device_kind', d.platform)}" for d in jax.devices() if d.platform != "cpu"]
    import tensorflow as tf

    found = []
    for kind in ("GPU", "TPU"):
        for device in tf.config.list_physical_devices(kind):
            name = tf.config.experimental.get_device_details(device).get("device_name", kind) if kind == "GPU" else kind
            found.append(f"{kind.lower()}: {name}")
    return found


def detect(root: Path = Path("/")) -> Devices:
    """The devices report `kit train` prints before it trains."""
    import keras

    return Devices(backend=keras.backend.backend(), used=backend_accelerators(), present=machine_accelerators(root),
                   cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@functools.cache
def announce() -> Devices:
    """Say once per process (the first fold, not every one) what training runs on, and warn about an
    accelerator that trains nothing."""
    from kit.progress import say

    devices = detect()
    say(str(devices))
    if devices.warning:
        say(devices.warning)
    return devices
