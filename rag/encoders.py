"""Faster runtimes for the embedding model's transformer: an export made once, offline, cached by model hash.

sentence-transformers' own ``backend="onnx"/"openvino"`` needs optimum, which pins an older transformers than
vLLM runs with; so the transformer module is exported here and the rest of the model (pooling, dense layers,
normalisation) is read from the model folder and run in numpy.

Once exported, a model of the usual shape (a transformer, pooling, optional normalisation: MiniLM, BGE, E5, GTE,
mpnet...) runs without torch, transformers or sentence-transformers: the tokenizers library, the exported
runtime and numpy. That keeps about 450 MB of torch out of every indexing and bot process. Other shapes
(dense layers, weighted pooling) run on torch.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
EXPORT_VERSION = 2

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


_SKIPPED = frozenset({"README.md", ".gitattributes"})
_MODULES = {"Transformer", "Pooling", "Normalize"}
_POOLING = ("cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken")


_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class Layout:
    """What runs around the exported transformer, read from a sentence-transformers model folder."""

    folder: Path
    tokenizer: Path
    pooling: tuple[str, ...]
    max_tokens: int
    lowercase: bool
    dimension: int


def local_folder(name: str) -> Path | None:
    """The model's folder on this machine: a directory as given, or a hub model already in the local cache."""
    if Path(name).is_dir():
        return Path(name)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not downloaded yet, or not a hub name: the torch loader fetches it
        return None


PROMPTS_FILE = "config_sentence_transformers.json"
_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


def prompts(config: Mapping[str, Any]) -> tuple[str, str]:
    """(query, document) prompts from a model's sentence-transformers config: ``prompts["query"]``, and the first of
    ``document``, ``passage`` and ``corpus`` that is set (the names ``encode_query`` / ``encode_document`` look
    for); where none is, the ``default_prompt_name`` prompt, which a plain ``encode`` applies to everything."""
    named = {str(k): str(v) for k, v in (config.get("prompts") or {}).items() if v is not None}
    default = named.get(str(config.get("default_prompt_name") or ""), "")
    query = named.get("query", default)
    document = next((named[name] for name in _DOCUMENT_PROMPTS if name in named), default)
    return query, document


def read_prompts(folder: Path) -> tuple[str, str]:
    """The (query, document) prompts of a model folder; none when it names none."""
    try:
        config = json.loads((folder / PROMPTS_FILE).read_text())
    except (OSError, ValueError):
        return "", ""
    return prompts(config) if isinstance(config, dict) else ("", "")


def read_layout(folder: Path) -> Layout | None:
    """The model's layout when it runs without torch (a transformer, pooling, optional normalisation and a fast
    tokenizer); None for any other shape, which then runs on torch."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
        if not set(kinds) <= _MODULES or kinds[:2] != ["Transformer", "Pooling"]:
            return None
        base = folder / modules[0]["path"]
        pooling_config = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        st_config = json.loads((base / "sentence_bert_config.json").read_text())
        model_config = json.loads((base / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    mode = pooling_config.get("pooling_mode")
    if mode is None:  # sentence-transformers < 6 wrote one boolean per mode
        mode = [name for key, name in _LEGACY_POOLING.items() if pooling_config.get(key)]
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    if not modes or not set(modes) <= set(_POOLING) or not (base / "tokenizer.json").exists():
        return None
    if pooling_config.get("include_prompt") is False:  # prompt tokens left out of the pooling: torch does that
        return None
    limit = (
        st_config.get("max_seq_length") or _tokenizer_limit(base) or model_config.get("max_position_embeddings") or 512
    )
    width = int(pooling_config.get("embedding_dimension") or pooling_config.get("word_embedding_dimension") or 0)
    return Layout(
        folder=folder,
        tokenizer=base / "tokenizer.json",
        pooling=modes,
        max_tokens=int(limit),
        lowercase=bool(st_config.get("do_lower_case")),
        dimension=width * len(modes),
    )


def _tokenizer_limit(base: Path) -> int:
    """The tokenizer's model_max_length: where sentence-transformers 6 saves max_seq_length (0 when unset, or when
    it is transformers' huge placeholder for "no limit")."""
    try:
        limit = json.loads((base / "tokenizer_config.json").read_text()).get("model_max_length")
    except (OSError, ValueError, AttributeError):
        return 0
    return int(limit) if isinstance(limit, int | float) and 0 < limit < 1_000_000 else 0


def files_hash(folder: Path) -> str:
    """What the export depends on: every file of the model folder, and the versions of the tools that export and
    run it. Read from disk, so a start with the export already made never needs torch."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if relative.name in _SKIPPED or any(part.startswith(".") for part in relative.parts):
            continue
        digest.update(str(relative).encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    for package in ("torch", "openvino", "onnxruntime", "transformers", "tokenizers"):
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


class ExportedEncoder:
    """The exported transformer between the model's own fast tokenizer and numpy pooling; no torch."""

    def __init__(self, layout: Layout, runs: tuple[Run, Run], inputs: tuple[str, ...]):
        from tokenizers import Tokenizer

        self._layout = layout
        self._passages, self._queries = runs
        self._inputs = inputs
        self._tokenizer = Tokenizer.from_file(str(layout.tokenizer))
        # tokenizer.json may carry a fixed padding and a shorter truncation; sentence-transformers pads each
        # batch to its longest text and truncates at max_seq_length.
        self._tokenizer.no_padding()
        self._tokenizer.enable_padding(pad_id=self._tokenizer.padding["pad_id"] if self._tokenizer.padding else 0)
        self._tokenizer.enable_truncation(max_length=layout.max_tokens)

    def encode(self, texts: list[str], batch_size: int, *, queries: bool = False) -> np.ndarray:
        """Unit vectors in input order, encoded longest first so each batch pads little (as sentence-transformers)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self._layout.dimension), dtype=np.float32)
        run = self._queries if queries else self._passages
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            chunk = [texts[i].lower() if self._layout.lowercase else texts[i] for i in batch]
            encodings = self._tokenizer.encode_batch(chunk)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            columns = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": mask,
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = np.asarray(run({name: columns[name] for name in self._inputs}), dtype=np.float32)
            vectors = pool(hidden, mask, self._layout.pooling)
            out[batch] = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return out


def pool(hidden: np.ndarray, mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """sentence-transformers' Pooling in numpy, for right-padded batches: the modes' vectors side by side."""
    weights = mask[:, :, None].astype(np.float32)
    counts = np.maximum(weights.sum(axis=1), 1e-9)
    parts: list[np.ndarray] = []
    for mode in modes:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(np.where(weights > 0, hidden, -np.inf).max(axis=1))
        elif mode == "lasttoken":
            last = np.maximum(mask.sum(axis=1) - 1, 0)
            parts.append(hidden[np.arange(len(hidden)), last])
        else:
            total = (hidden * weights).sum(axis=1)
            parts.append(total / (counts if mode == "mean" else np.sqrt(counts)))
    return np.concatenate(parts, axis=1)


def load(
    layout: Layout,
    backend: str,
    cache_root: Path,
    model: Callable[[], Any],
    *,
    threads: int = 0,
    step: Step = _quiet,
) -> ExportedEncoder:
    """The model's encoder on ``backend``. ``model`` loads the sentence-transformers model, and is called only when
    the export isn't in ``cache_root`` yet: a start with the export made never imports torch."""
    if backend not in EXPORTED:
        raise ValueError(backend)
    _require(backend)
    step("hashing the embedding model")
    folder = cache_root / f"{backend}-{files_hash(layout.folder)}"
    for attempt in (1, 2):
        if not (folder / "done").exists():
            _export(model(), backend, folder, step)
        try:
            step(f"compiling the {backend} embedding model")
            return ExportedEncoder(layout, _runners(backend, folder, threads), tuple(_read_inputs(folder)))
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


def _export(model: Any, backend: str, folder: Path, step: Step) -> None:
    """Export into a private folder beside the cache and rename it into place, so a crash never leaves half."""
    import torch

    inputs = _inputs(model)
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


def _read_inputs(folder: Path) -> list[str]:
    inputs: list[str] = json.loads((folder / "done").read_text())["inputs"]
    return inputs


def quantise_torch(model: Any) -> Any:
    """torch dynamic int8 quantisation of every Linear layer (no export; recomputed at each start)."""
    import torch

    return torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
        model, {torch.nn.Linear}, dtype=torch.qint8
    )
