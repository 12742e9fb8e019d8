"""A nomic-bert GGUF embedder (nomic-embed-text-v1.5) as a sentence-transformers folder, and the check of it.

python -m bench.gguf_embedder convert GGUF OUT
python -m bench.gguf_embedder check OUT GGUF --reference-python PYTHON [--texts N]

transformers reads no nomic-bert GGUF (its GGUF loader knows decoder architectures only), but it has the
architecture (``NomicBertModel``), so the conversion maps the tensors by name: the fused query/key/value matrix is
split in three, the f16 weights are kept as f32. The tokenizer is BERT's uncased WordPiece, written back from
llama.cpp's vocabulary (which marks word starts with "▁" instead of marking continuations with "##"). The folder
is transformer + mean pooling + normalisation, with the model's prompts (``search_query: `` /
``search_document: ``) in config_sentence_transformers.json, so every Docent backend runs it.

``check`` compares it with an independent computation: llama.cpp's own nomic-bert, through the ``gpt4all``
package's ``Embed4All`` on the same GGUF file, run by ``--reference-python`` (an interpreter with ``gpt4all``
installed; it is not a dependency of Docent). Real questions and docs passages go through both with their
prompts; the conversion is accepted at a cosine of at least 0.999 for every text, on torch and on the default
backend, and the result is written beside the model (``check.json``).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUERY_PROMPT = "search_query: "
DOCUMENT_PROMPT = "search_document: "
MIN_COSINE = 0.999
CHECK_FILE = "check.json"
PHANTOM = "\u2581"  # llama.cpp's mark of a word start in a WordPiece vocabulary

# llama.cpp tensor name -> NomicBertModel parameter; "{i}" is the layer.
TENSORS = {
    "token_embd.weight": "embeddings.word_embeddings.weight",
    "token_types.weight": "embeddings.token_type_embeddings.weight",
    "token_embd_norm.weight": "embeddings.LayerNorm.weight",
    "token_embd_norm.bias": "embeddings.LayerNorm.bias",
    "blk.{i}.attn_output.weight": "layers.{i}.self_attn.o_proj.weight",
    "blk.{i}.ffn_up.weight": "layers.{i}.mlp.up_proj.weight",
    "blk.{i}.ffn_gate.weight": "layers.{i}.mlp.gate_proj.weight",
    "blk.{i}.ffn_down.weight": "layers.{i}.mlp.down_proj.weight",
    "blk.{i}.attn_output_norm.weight": "layers.{i}.post_attention_layernorm.weight",
    "blk.{i}.attn_output_norm.bias": "layers.{i}.post_attention_layernorm.bias",
    "blk.{i}.layer_output_norm.weight": "layers.{i}.post_mlp_layernorm.weight",
    "blk.{i}.layer_output_norm.bias": "layers.{i}.post_mlp_layernorm.bias",
}
FUSED_QKV = "blk.{i}.attn_qkv.weight"


def wordpiece_vocab(tokens: Sequence[str]) -> list[str]:
    """BERT's vocabulary from llama.cpp's: "▁word" is "word", a bare piece is the continuation "##piece", and
    special tokens ("[CLS]", "[unused0]") stay as they are."""
    out = []
    for token in tokens:
        if token.startswith("[") and token.endswith("]"):
            out.append(token)
        elif token.startswith(PHANTOM):
            out.append(token[len(PHANTOM) :])
        else:
            out.append("##" + token)
    return out


def parameter_names(layers: int) -> dict[str, str]:
    """Every GGUF tensor name but the fused attention, mapped to its NomicBertModel parameter."""
    names = {}
    for gguf_name, name in TENSORS.items():
        if "{i}" in gguf_name:
            names.update({gguf_name.format(i=i): name.format(i=i) for i in range(layers)})
        else:
            names[gguf_name] = name
    return names


def st_files(dimension: int, max_seq_length: int) -> dict[str, Any]:
    """The sentence-transformers files around the transformer: mean pooling, normalisation and the prompts."""
    module = "sentence_transformers.models."
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": module + "Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": module + "Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": module + "Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": dimension, "pooling_mode_mean_tokens": True},
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PROMPT, "document": DOCUMENT_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def convert(gguf_path: Path, out: Path) -> Path:
    """Write the sentence-transformers folder ``out`` from a nomic-bert GGUF file (a minute, about 1 GB of RAM)."""
    import gguf
    import numpy as np
    import torch
    from transformers import BertTokenizerFast, NomicBertConfig, NomicBertModel  # type: ignore[attr-defined]

    reader = gguf.GGUFReader(str(gguf_path))
    fields = {k: v.contents() for k, v in reader.fields.items() if not k.startswith("tokenizer.ggml.scores")}
    if fields.get("general.architecture") != "nomic-bert":
        raise SystemExit(f"{gguf_path} is a {fields.get('general.architecture')!r} model, not nomic-bert")
    arch = "nomic-bert."
    tokens = list(fields["tokenizer.ggml.tokens"])
    config = NomicBertConfig(
        vocab_size=len(tokens),
        hidden_size=int(fields[arch + "embedding_length"]),
        num_hidden_layers=int(fields[arch + "block_count"]),
        num_attention_heads=int(fields[arch + "attention.head_count"]),
        intermediate_size=int(fields[arch + "feed_forward_length"]),
        max_position_embeddings=int(fields[arch + "context_length"]),
        layer_norm_eps=float(fields[arch + "attention.layer_norm_epsilon"]),
        rope_parameters={"rope_type": "default", "rope_theta": float(fields[arch + "rope.freq_base"])},
        pad_token_id=int(fields["tokenizer.ggml.padding_token_id"]),
    )
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    names = parameter_names(config.num_hidden_layers)
    state = {names[name]: value for name, value in tensors.items() if name in names}
    for i in range(config.num_hidden_layers):
        query, key, value = np.split(tensors[FUSED_QKV.format(i=i)], 3, axis=0)
        state.update(
            {
                f"layers.{i}.self_attn.q_proj.weight": query,
                f"layers.{i}.self_attn.k_proj.weight": key,
                f"layers.{i}.self_attn.v_proj.weight": value,
            }
        )
    model: Any = NomicBertModel(config)
    weights = {name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in state.items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise SystemExit(f"the GGUF tensors do not fill NomicBertModel: missing {missing}, unexpected {unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    vocab = {token: number for number, token in enumerate(wordpiece_vocab(tokens))}
    tokenizer_class: Any = BertTokenizerFast
    tokenizer = tokenizer_class(vocab=vocab, do_lower_case=True, model_max_length=config.max_position_embeddings)
    tokenizer.save_pretrained(out)
    for name, content in st_files(config.hidden_size, config.max_position_embeddings).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(content, indent=2))
    (out / "2_Normalize").mkdir(exist_ok=True)
    return out


REFERENCE = """
import json, sys
from pathlib import Path
import numpy as np
from gpt4all import Embed4All
gguf, texts, out = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), sys.argv[3]
model = Embed4All(gguf.name, model_path=str(gguf.parent), allow_download=False, device="cpu", n_threads=2)
np.savez(out, queries=np.array(model.embed(texts["queries"], prefix="search_query")),
         passages=np.array(model.embed(texts["passages"], prefix="search_document")))
"""


def check_texts(count: int, seed: int = 0) -> dict[str, list[str]]:
    """Real questions of the dev sets and passages of the Milvus docs of several lengths (up to ~500 tokens)."""
    from bench.common import CORPUS, DEVSET

    rng = random.Random(seed)
    questions = [
        json.loads(line)["question"]
        for path in sorted(DEVSET.glob("*real_questions.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    passages = []
    for page in rng.sample(sorted(CORPUS.rglob("*.md")), count):
        text = page.read_text(encoding="utf-8", errors="replace")
        length = rng.choice((200, 600, 1500))
        start = rng.randrange(0, max(1, len(text) - length))
        passages.append(text[start : start + length])
    return {"queries": rng.sample(questions, count), "passages": passages}


def check(folder: Path, gguf_path: Path, reference_python: str, count: int = 12) -> dict[str, Any]:
    """Cosines between this folder's vectors (torch and the default backend) and llama.cpp's; writes check.json."""
    import numpy as np

    from rag.embedder import SentenceTransformerEmbedder
    from rag.settings import EmbeddingSettings

    texts = check_texts(count)
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "texts.json").write_text(json.dumps(texts))
        out = Path(work) / "reference.npz"
        done = subprocess.run(
            [reference_python, "-c", REFERENCE, str(gguf_path), str(Path(work) / "texts.json"), str(out)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"the reference (gpt4all) failed: {done.stderr.strip()[-2000:]}")
        with np.load(out) as saved:
            reference = {"queries": saved["queries"], "passages": saved["passages"]}
        result: dict[str, Any] = {"reference": "llama.cpp nomic-bert via gpt4all Embed4All", "texts": count}
        for backend in ("torch", "openvino"):
            settings = EmbeddingSettings(model=str(folder), backend=backend, threads=2)
            model = SentenceTransformerEmbedder(settings, Path(work) / "exports")
            try:
                cosines = []
                for kind, queries in (("queries", True), ("passages", False)):
                    vectors = np.array(model.encode(texts[kind], queries=queries))
                    cosines.extend((vectors * reference[kind]).sum(axis=1).tolist())
            finally:
                model.close()
            result[backend] = {"min_cosine": round(min(cosines), 6), "mean_cosine": round(float(np.mean(cosines)), 6)}
    result["passed"] = all(result[b]["min_cosine"] >= MIN_COSINE for b in ("torch", "openvino"))
    (folder / CHECK_FILE).write_text(json.dumps(result, indent=2))
    return result


def verified(folder: Path) -> bool:
    """Whether ``check`` passed on this folder."""
    try:
        return bool(json.loads((folder / CHECK_FILE).read_text()).get("passed"))
    except (OSError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gguf_embedder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    converting = sub.add_parser("convert", help="write the sentence-transformers folder")
    converting.add_argument("gguf", type=Path)
    converting.add_argument("out", type=Path)
    checking = sub.add_parser("check", help="compare with llama.cpp (gpt4all) on real questions and passages")
    checking.add_argument("folder", type=Path)
    checking.add_argument("gguf", type=Path)
    checking.add_argument("--reference-python", required=True, help="an interpreter with gpt4all installed")
    checking.add_argument("--texts", type=int, default=12, help="questions and passages each (default 12)")
    args = parser.parse_args(argv)
    if args.command == "convert":
        print(convert(args.gguf, args.out))
        return 0
    result = check(args.folder, args.gguf, args.reference_python, args.texts)
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
