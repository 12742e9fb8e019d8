"""The nomic GGUF conversion's pure parts: the vocabulary written back, every tensor mapped, the prompts."""

from __future__ import annotations

from bench.gguf_embedder import DOCUMENT_PROMPT, QUERY_PROMPT, TENSORS, parameter_names, st_files, wordpiece_vocab
from rag import encoders


def test_llama_cpp_word_starts_become_bert_words_and_bare_pieces_continuations() -> None:
    assert wordpiece_vocab(["[PAD]", "[unused0]", "\u2581hello", "\u2581!", "ns", "\u2581"]) == [
        "[PAD]",
        "[unused0]",
        "hello",
        "!",
        "##ns",
        "",
    ]


def test_every_layer_tensor_is_mapped_once() -> None:
    names = parameter_names(2)
    per_layer = sum("{i}" in name for name in TENSORS)
    assert len(names) == len(TENSORS) - per_layer + 2 * per_layer
    assert names["blk.1.ffn_gate.weight"] == "layers.1.mlp.gate_proj.weight"
    assert len(set(names.values())) == len(names)


def test_the_folder_carries_the_models_prompts_as_every_backend_reads_them() -> None:
    files = st_files(768, 2048)
    assert encoders.prompts(files["config_sentence_transformers.json"]) == (QUERY_PROMPT, DOCUMENT_PROMPT)
    assert files["sentence_bert_config.json"]["max_seq_length"] == 2048
    assert [m["type"].rsplit(".", 1)[-1] for m in files["modules.json"]] == ["Transformer", "Pooling", "Normalize"]
