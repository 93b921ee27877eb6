"""The competition's model contract, checked with the TFLite interpreter the scorer's runtime is closest to.

Contract: a `model.tflite` (alone in `submission.zip`) whose signature `serving_default` takes `inputs` float32
`[n_frames, 543, 3]` (NaN where a landmark is missing) and returns `outputs`, of which the scorer takes the argmax.
What the scorer needs of `outputs` is 250 values at run time: a model whose output's shape signature is dynamic
(`[-1]`, as in some public competition models whose graphs lose the static shape) scores exactly as one declared
`[250]`, so a dynamic shape is a note here, and the run-time count is checked on real inputs (kit.contract.gates).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from kit import quiet
from kit.errors import KitError
from kit.data.landmarks import N_CLASSES, N_LANDMARKS

SIGNATURE, INPUT, OUTPUT = "serving_default", "inputs", "outputs"
# The kernels whose latency the gates judge: plain builtin ones. The scorer calls its tflite_runtime (2.9.1) with a
# new input length for each sequence. Measured with tflite-runtime 2.14.0, the nearest that installs
# (bench/contract/scorer_runtime.py, 3 x llama_small): it applies no XNNPACK to the kit's graph, whose sizes are learned
# while it runs (sized_when_run: frames without a hand are dropped); and a variant with every size known up front
# gained only 1.2x from it on changing lengths (20.9 vs 25.3 ms), the delegate being prepared anew for each length.
# ai-edge-litert, which the kit runs, keeps its delegate across lengths and gains 3.2x (9.0 vs 29.3 ms): judged
# on XNNPACK here, a graph would be promised about twice the speed the scorer's timer sees.
SCORER_KERNELS = "builtin"


def model_file(path: Path) -> Path:
    """The model file a command was given: the file itself, or for a run folder (or its export/ folder) the
    submission.zip kit export wrote there, so that a run folder works wherever a model does."""
    path = Path(path)
    if path.is_dir():
        export = path / "export" if (path / "export").is_dir() else path
        if (export / "submission.zip").is_file():
            return export / "submission.zip"
        if (export / "model.tflite").is_file():
            info = export / "export.json"
            if info.is_file() and json.loads(info.read_text()).get("competition") is False:
                return export / "model.tflite"  # your own vocabulary: the model and its sign map are the export
            raise KitError(f"{export}: no submission.zip beside model.tflite (a gate failed: see "
                           f"{export / 'export.json'}); give {export / 'model.tflite'} to use it anyway")
        raise KitError(f"{path}: a folder with no export/submission.zip: run kit export {path} first")
    if not path.is_file():
        raise KitError(f"{path}: no such file or folder; give a model.tflite, a submission.zip or a run folder")
    return path


def read_model(path: Path) -> bytes:
    """The bytes of `model.tflite`, from the file itself, from a `submission.zip` holding it, or from a run
    folder's exported submission.zip (model_file)."""
    path = model_file(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if "model.tflite" not in zf.namelist():
                raise KitError(f"{path}: the zip holds {zf.namelist()}, not model.tflite at its top level")
            return zf.read("model.tflite")
    return path.read_bytes()


def interpreter(model: bytes, threads: int = 1, xnnpack: bool = True):
    """An allocated `ai_edge_litert` interpreter; `xnnpack=False` runs the plain builtin kernels, the ones the
    latency gate judges (SCORER_KERNELS)."""
    from ai_edge_litert import interpreter as litert

    resolver = (litert.OpResolverType.AUTO if xnnpack
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        with quiet.startup():  # the runtime's "Created TensorFlow Lite XNNPACK delegate" line, under the kit command
            interp = litert.Interpreter(model_content=model, num_threads=threads,
                                        experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise KitError(f"the TFLite runtime cannot load this model: {str(err).splitlines()[0]}")
    return interp


def contract_problems(interp, n_classes: int = N_CLASSES) -> list[str]:
    """Every way the interpreter's signature differs from the contract (empty when it fits): `n_classes` outputs
    (250: the competition's signs; a model of your own vocabulary has one per sign)."""
    signatures = interp.get_signature_list()
    if SIGNATURE not in signatures:
        return [f"signature {SIGNATURE!r} is missing (found {sorted(signatures) or 'none'})"]
    sig = signatures[SIGNATURE]
    problems = []
    if sig["inputs"] != [INPUT]:
        problems.append(f"inputs should be [{INPUT!r}], found {sig['inputs']}")
    if sig["outputs"] != [OUTPUT]:
        problems.append(f"outputs should be [{OUTPUT!r}], found {sig['outputs']}")
    if problems:
        return problems
    runner = interp.get_signature_runner(SIGNATURE)
    spec_in = runner.get_input_details()[INPUT]
    if spec_in["dtype"] != np.float32:
        problems.append(f"input {INPUT!r} should be float32, found {np.dtype(spec_in['dtype']).name}")
    if list(spec_in["shape_signature"]) != [-1, N_LANDMARKS, 3]:
        problems.append(f"input {INPUT!r} should have shape [None, {N_LANDMARKS}, 3], "
                        f"found {_shape(spec_in['shape_signature'])}")
    shape = _output_shape(interp)
    if all(d >= 0 for d in shape) and int(np.prod(shape)) != n_classes:  # a static shape that cannot hold them
        problems.append(f"output {OUTPUT!r} should have shape [{n_classes}], found {_shape(shape)}")
    return problems


def output_note(interp) -> str:
    """A note when the output's declared shape is not exactly `[250]` (dynamic, or with extra 1-sized axes): the
    scorer's argmax still works on it if it holds 250 values at run time, which only running it can show."""
    shape = _output_shape(interp)
    if len(shape) == 1 and shape[0] >= 0:
        return ""
    return (f"output {OUTPUT!r} declares shape {_shape(shape)}, not a fixed [n]: accepted because the scorer takes "
            "the argmax of whatever it returns; the values it returns at run time are checked on real inputs")


def _shape(shape) -> str:
    return "[" + ", ".join("None" if d < 0 else str(d) for d in shape) + "]"


def contract_runner(interp, where: str = "model", n_classes: int = N_CLASSES):
    """A function frames -> outputs `[n_classes]` (flattened, as the scorer's argmax sees them); a model off the
    contract is refused with what was found, before it runs or, for a dynamic output shape, when it runs."""
    problems = contract_problems(interp, n_classes)
    if problems:
        raise KitError(f"{where}: does not fit the competition contract: {'; '.join(problems)}")
    runner = interp.get_signature_runner(SIGNATURE)

    def predict(frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        out = np.reshape(runner(**{INPUT: frames})[OUTPUT], -1)
        if out.size != n_classes:
            raise KitError(f"{where}: output {OUTPUT!r} gave {out.size} values for a {len(frames)}-frame input, "
                           f"where the contract needs {n_classes}")
        return out

    return predict


def n_outputs(interp, frames: np.ndarray | None = None) -> int:
    """How many values `outputs` holds: from the declared shape when it is static, else by running `frames`
    (default: 10 frames of NaN, the least the contract promises to handle)."""
    shape = _output_shape(interp)
    if all(d >= 0 for d in shape):
        return int(np.prod(shape))
    frames = np.full((10, N_LANDMARKS, 3), np.nan, np.float32) if frames is None else frames
    runner = interp.get_signature_runner(SIGNATURE)
    return int(np.size(runner(**{INPUT: np.asarray(frames, np.float32)})[OUTPUT]))


def _output_shape(interp) -> list[int]:
    """The declared shape of `outputs` (-1 for a dynamic axis)."""
    spec = interp.get_signature_runner(SIGNATURE).get_output_details()[OUTPUT]
    return [int(d) for d in spec["shape_signature"]]


def op_names(interp) -> list[str]:
    """The distinct op names in the model's graph (Flex ops show as `Flex...` or custom ops)."""
    return sorted({op["op_name"] for op in interp._get_ops_details()})


def sized_when_run(model: bytes, lengths: tuple[int, int] = (9, 23)) -> tuple[int, list[str]]:
    """How many tensors TFLite sizes only while the graph runs, and the ops where that starts (those whose inputs
    were all sized up front).

    A tensor's size is known when the input is resized if it follows from shapes alone (a matmul, a reshape to a
    constant shape, a slice with constant bounds); it is learned only when the op runs if it depends on values
    (boolean_mask's WHERE, a slice or a range whose bounds are computed, even from the input's own length), and
    so is every size downstream. The scorer's runtime cannot delegate a graph holding one of those to XNNPACK
    (tflite-runtime 2.14 applies none of it: bench/contract/scorer_runtime.py).
    Found by resizing the input to each of `lengths` frames, then comparing each tensor's size before and after
    a run.
    """
    from ai_edge_litert import interpreter as litert

    interp = litert.Interpreter(model_content=model, num_threads=1,
                                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = interp._get_ops_details()
    first = interp.get_input_details()[0]
    index, rest = first["index"], [int(d) for d in first["shape_signature"][1:]]  # [n_frames, 543, 3] here
    late = set()
    for n in lengths:
        interp.resize_tensor_input(index, [n, *rest])
        interp.allocate_tensors()
        before = {t["index"]: tuple(t["shape"]) for t in interp.get_tensor_details()}
        interp.set_tensor(index, np.full((n, *rest), 0.5, np.float32))
        interp.invoke()
        late |= {t["index"] for t in interp.get_tensor_details() if before.get(t["index"]) != tuple(t["shape"])}
    written = {t for op in ops for t in op["outputs"]}
    late &= written
    origins = [op["op_name"] for op in ops
               if late.intersection(op["outputs"]) and not late.intersection(op["inputs"])]
    return len(late), sorted(set(origins))
