"""Write a tiny random-weight Llama chat model to a folder.

vLLM needs a real model to start, and no model hub is reachable in tests or on an
offline machine. This model is a few MB, starts in seconds and speaks gibberish:
use it to exercise the engine, streaming and the whole pipeline, never to judge
answer quality.

    python -m rag.tiny_model .data/tiny-model
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_MARKER = "docent-tiny-model.json"


def _training_text() -> list[str]:
    """A little English and markup so the tokenizer has sensible merges."""
    words = (
        "the a of to in and is for on with as by an be this that it are from or at "
        "milvus vector index search collection partition query insert delete embedding "
        "model docs source answer question cite [1] [2] [3] https:// http:// .md # ## "
        "HNSW IVF_FLAT FLAT metric COSINE L2 IP parameter efConstruction M nlist nprobe"
    ).split()
    lines = [" ".join(words[i : i + 9]) for i in range(0, len(words), 3)]
    return lines * 20 + ["0123456789 ,.;:!?()[]{}<>`'\"-_/\\=+*&^%$@~|"]


def write_tiny_model(out_dir: Path, *, seed: int = 0, max_positions: int = 4096) -> Path:
    """Create the model in ``out_dir`` (idempotent: an existing tiny model is kept)."""
    out_dir = Path(out_dir)
    if (out_dir / _MARKER).exists() and (out_dir / "config.json").exists():
        return out_dir
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer_class: Any = PreTrainedTokenizerFast  # transformers' classes are untyped
    model_class: Any = LlamaForCausalLM

    special = ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_training_text(), trainer=trainer)
    fast = tokenizer_class(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        additional_special_tokens=special[3:],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = max_positions

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=128,
        num_attention_heads=2,  # head_dim 64: CPU attention rejects 16
        num_key_value_heads=1,
        num_hidden_layers=2,
        intermediate_size=256,
        max_position_embeddings=max_positions,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    model = model_class(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    (out_dir / _MARKER).write_text(json.dumps({"seed": seed, "max_positions": max_positions}))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.tiny_model", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the model to")
    args = parser.parse_args(argv)
    path = write_tiny_model(args.out_dir)
    print(f"tiny model written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
