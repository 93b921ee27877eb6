"""kit says what it trains on, and says out loud when a GPU or TPU of the machine trains nothing."""

from __future__ import annotations

from pathlib import Path

from kit.training.devices import Devices, detect, machine_accelerators


def fake_machine(root: Path, gpus: list[str] = (), tpus: int = 0) -> Path:
    for i, model in enumerate(gpus):
        folder = root / "proc/driver/nvidia/gpus" / f"0000:00:0{i}.0"
        folder.mkdir(parents=True)
        (folder / "information").write_text(f"Model: \t\t {model}\nIRQ:   \t\t 33\n")
    (root / "dev").mkdir(parents=True, exist_ok=True)
    for i in range(tpus):
        (root / "dev" / f"accel{i}").write_text("")
    return root


def test_gpus_and_tpus_are_found_from_driver_files(tmp_path):
    """Rule: the machine's accelerators are read from the driver's files, whatever the frameworks see."""
    root = fake_machine(tmp_path, gpus=["NVIDIA H200", "Tesla T4"], tpus=2)
    assert machine_accelerators(root) == ["gpu: NVIDIA H200", "gpu: Tesla T4", "tpu: accel0", "tpu: accel1"]
    assert machine_accelerators(tmp_path / "none") == []


def test_an_unused_gpu_is_a_warning_naming_the_fix(tmp_path):
    """Rule: a GPU that the backend does not see is announced with the install that uses it; this machine's
    TensorFlow backend (the CPU build) sees none."""
    devices = detect(fake_machine(tmp_path, gpus=["Tesla T4"]))
    assert devices.used == []
    assert "1 GPU device(s) (gpu: Tesla T4)" in devices.warning
    assert 'pip install "kit[gpu]"' in devices.warning and "KERAS_BACKEND=jax" in devices.warning
    assert str(devices).startswith("training on the CPU (")


def test_no_warning_when_nothing_is_wasted(tmp_path):
    """Rule: no accelerator, or every accelerator in use: no warning; the report names what trains."""
    assert detect(tmp_path).warning is None
    used = Devices(backend="jax", used=["gpu: NVIDIA H200"], present=["gpu: NVIDIA H200"])
    assert used.warning is None
    assert str(used) == "training on gpu: NVIDIA H200 with Keras' jax backend"
    tpu = Devices(backend="tensorflow", present=["tpu: accel0"])
    assert "TPU" in tpu.warning and "KERAS_BACKEND=jax" in tpu.warning


def test_readme_kaggle_install_names_every_dependency_but_tensorflow():
    """Rule: the README's install into a Kaggle image (kit with --no-deps, then the rest) names every runtime
    dependency of pyproject.toml except TensorFlow, which the image ships; nothing else may go missing there."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!\[ ;]", dep, maxsplit=1)[0].lower() for dep in deps}
    line = next(line for line in (root / "README.md").read_text().splitlines() if "pip install --no-deps kit-" in line)
    listed = {re.split(r"[<>=!\[ ;]", word.strip('"'), maxsplit=1)[0].lower()
              for word in line.split("&&", 1)[1].split()[2:]}
    assert names - {"tensorflow-cpu"} == listed


def test_tpus_are_also_asked_of_jax(tmp_path):
    """Rule: TPU detection asks JAX as well as /dev/accel* (TPU v5e chips are VFIO devices, with no accel file);
    JAX's CPU devices (even 8 simulated ones) are never taken for TPUs."""
    import pytest

    pytest.importorskip("jax")
    from kit.training.devices import jax_tpus

    assert jax_tpus() == []  # this machine's JAX has no TPU backend
    assert machine_accelerators(fake_machine(tmp_path, tpus=1)) == ["tpu: accel0"]
    assert machine_accelerators(fake_machine(tmp_path / "b", tpus=1), ask_jax=False) == ["tpu: accel0"]
