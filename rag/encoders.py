"""Faster runtimes for the embedding model's transformer: an export made once, offline, cached by model hash.

sentence-transformers' own ``backend="onnx"/"openvino"`` needs optimum, which pins an older transformers than
vLLM runs with; so the transformer module is exported here and the rest of the model (pooling, dense layers,
normalisation) still runs as sentence-transformers modules, so every model keeps its own pooling.

Backends (measured by ``python -m bench.encoders``):
- ``torch``: the model as loaded, fp32.
- ``openvino``: OpenVINO IR; on CPUs with bf16 units (AMX, AVX512-BF16) it runs in bf16, elsewhere in fp32.
- ``onnx`` / ``onnx-int8``: ONNX Runtime, fp32 or dynamically quantised int8 weights (needs ``.[onnx]``).
- ``torch-int8``: torch dynamic int8 quantisation of the Linear layers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "openvino", "onnx", "onnx-int8", "torch-int8")
EXPORTED = ("openvino", "onnx", "onnx-int8")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Bump when the export itself changes, so older caches are rebuilt rather than trusted.
EXPORT_VERSION = 1

Step = Callable[[str], None]
Run = Callable[[dict[str, np.ndarray]], np.ndarray]


def _quiet(_: str) -> None:
    return None


def _transformer_only(auto_model: Any, inputs: tuple[str, ...]) -> Any:
    """The transformer's forward with positional tensor inputs and one output, as exporters want it."""
    import torch

    class TransformerOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = auto_model

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(inputs, tensors, strict=True))).last_hidden_state

    return TransformerOnly().eval()


def model_hash(model: Any) -> str:
    """What the export depends on: the weights, the config, and the versions of the tools that export and run it."""
    digest = hashlib.sha256()
    transformer = _transformer(model)
    digest.update(json.dumps(transformer.auto_model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(transformer.auto_model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for package in ("torch", "openvino", "onnxruntime", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{package}={metadata.version(package)}".encode())
    digest.update(f"export={EXPORT_VERSION}".encode())
    return digest.hexdigest()[:16]


def _preprocess(model: Any) -> Any:
    """sentence-transformers 6 renamed ``tokenize`` to ``preprocess`` (the old name warns); 5 has only the old."""
    return getattr(model, "preprocess", None) or model.tokenize


def _transformer(model: Any) -> Any:
    first = model[0]
    if not hasattr(first, "auto_model"):
        raise ConfigError(
            "This embedding backend needs a model whose first module is a transformer; set embedding.backend=torch."
        )
    return first


def _inputs(model: Any) -> tuple[str, ...]:
    sample = _preprocess(model)(["docent"])
    return tuple(name for name in _INPUTS if name in sample)


class CompiledEncoder:
    """Encodes with an exported transformer, then the model's own remaining modules (pooling, normalisation)."""

    def __init__(self, model: Any, runs: tuple[Run, Run], inputs: tuple[str, ...]):
        self._model = model
        self._passages, self._queries = runs
        self._preprocess = _preprocess(model)
        self._inputs = inputs
        self._tail = list(model)[1:]

    def encode(self, texts: list[str], batch_size: int, *, queries: bool = False) -> np.ndarray:
        """Unit vectors in input order, encoded longest first so each batch pads little (as sentence-transformers)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            features = self._preprocess([texts[i] for i in batch])
            run = self._queries if queries else self._passages
            hidden = run({name: features[name].numpy().astype(np.int64) for name in self._inputs})
            features["token_embeddings"] = torch.from_numpy(np.ascontiguousarray(hidden, dtype=np.float32))
            with torch.inference_mode():
                for module in self._tail:
                    features = module(features)
                vectors = torch.nn.functional.normalize(features["sentence_embedding"].float(), p=2, dim=1).numpy()
            if not out.shape[1]:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
        return out


def load(model: Any, backend: str, cache_root: Path, *, threads: int = 0, step: Step = _quiet) -> CompiledEncoder:
    """The model's encoder on ``backend``, exporting it into ``cache_root`` first if it isn't there yet."""
    if backend not in EXPORTED:
        raise ValueError(backend)
    _require(backend)
    inputs = _inputs(model)
    step("hashing the embedding model")
    folder = cache_root / f"{backend}-{model_hash(model)}"
    for attempt in (1, 2):
        if not (folder / "done").exists():
            _export(model, backend, folder, inputs, step)
        try:
            step(f"compiling the {backend} embedding model")
            return CompiledEncoder(model, _runners(backend, folder, threads), inputs)
        except Exception as exc:  # a damaged cache: rebuild it once
            if attempt == 2:
                raise ConfigError(f"Cannot load the {backend} export of the embedding model: {exc}") from exc
            logger.warning("embedding export %s is unreadable (%s); exporting it again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
    raise AssertionError("unreachable")


def _require(backend: str) -> None:
    package = "openvino" if backend == "openvino" else "onnxruntime"
    try:
        __import__(package)
        if backend.startswith("onnx"):
            __import__("onnx")
    except ImportError as exc:
        raise ConfigError(
            f"embedding.backend={backend} needs the {package} package: pip install -e '.[onnx]', "
            "or set embedding.backend=openvino or torch."
        ) from exc


def _export(model: Any, backend: str, folder: Path, inputs: tuple[str, ...], step: Step) -> None:
    """Export into a private folder beside the cache and rename it into place, so a crash never leaves half."""
    import torch

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    started = time.perf_counter()
    try:
        wrapped = _transformer_only(_transformer(model).auto_model, inputs)
        sample = _preprocess(model)(["an example sentence to trace", "short"])
        example = tuple(sample[name] for name in inputs)
        step(f"exporting the embedding model to {backend} (once; cached in {folder.parent})")
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and exporter chatter about code paths a fixed model never takes
            if backend == "openvino":
                import openvino as ov

                converted = ov.convert_model(wrapped, example_input=example)
                for port, name in zip(converted.inputs, inputs, strict=True):
                    port.get_tensor().set_names({name})
                ov.save_model(converted, str(work / "model.xml"), compress_to_fp16=False)
            else:
                dynamic = {name: {0: "batch", 1: "tokens"} for name in (*inputs, "hidden")}
                torch.onnx.export(
                    wrapped,
                    example,
                    str(work / "model.onnx"),
                    input_names=list(inputs),
                    output_names=["hidden"],
                    dynamic_axes=dynamic,
                    opset_version=17,
                    dynamo=False,
                )
                if backend == "onnx-int8":
                    from onnxruntime.quantization import QuantType, quantize_dynamic

                    step("quantising the embedding model to int8")
                    quantize_dynamic(work / "model.onnx", work / "model-int8.onnx", weight_type=QuantType.QInt8)
                    (work / "model-int8.onnx").replace(work / "model.onnx")
        (work / "done").write_text(json.dumps({"backend": backend, "inputs": list(inputs)}))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
        logger.info("exported the embedding model to %s in %.1fs", folder, time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _runners(backend: str, folder: Path, threads: int) -> tuple[Run, Run]:
    """(passages, queries). OpenVINO encodes passages at the CPU's fastest precision (bf16 on AMX/AVX512-BF16)
    and questions in f32: a question is one short sequence, as fast in f32, and measured on real questions the
    f32 query side keeps rank flips at the top-5 border away (bench.perf, quality rows)."""
    if backend == "openvino":
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(folder / "compiled")}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        warm = {name: np.ones((1, 2), dtype=np.int64) for name in _read_inputs(folder)}

        def compiled(**extra: str) -> Run:
            request = core.compile_model(str(folder / "model.xml"), "CPU", {**config, **extra}).create_infer_request()

            def run_openvino(feed: dict[str, np.ndarray]) -> np.ndarray:
                return np.array(request.infer(feed)[0], copy=True)

            run_openvino(warm)
            return run_openvino

        # The f32 model is compiled at the first question: an indexing process never pays its memory.
        return compiled(), _lazily(lambda: compiled(INFERENCE_PRECISION_HINT="f32"))

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def run_onnx(feed: dict[str, np.ndarray]) -> np.ndarray:
        result: np.ndarray = session.run(None, feed)[0]
        return result

    return run_onnx, run_onnx


def _lazily(make: Callable[[], Run]) -> Run:
    made: list[Run] = []
    lock = threading.Lock()

    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        if not made:
            with lock:
                if not made:
                    made.append(make())
        return made[0](feed)

    return run


def release_weights(model: Any) -> None:
    """Free the torch copy of the transformer's weights once an export runs it: the tokenizer and the pooling
    modules are all that is still used (about 90 MB for MiniLM, more for larger models)."""
    import torch

    with torch.no_grad():
        for parameter in _transformer(model).auto_model.parameters():
            parameter.data = torch.empty(0, dtype=parameter.dtype)


def _read_inputs(folder: Path) -> list[str]:
    inputs: list[str] = json.loads((folder / "done").read_text())["inputs"]
    return inputs


def quantise_torch(model: Any) -> Any:
    """torch dynamic int8 quantisation of every Linear layer (no export; recomputed at each start)."""
    import torch

    return torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
        model, {torch.nn.Linear}, dtype=torch.qint8
    )
