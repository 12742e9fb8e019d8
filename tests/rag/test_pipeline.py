"""The question path end to end: MiniLM, Milvus Lite and the real vLLM engine with the tiny model.

Tests about what the pipeline does around generation (refusals, retrieval, streaming) use a scripted
generator; only those marked ``slow`` start the engine.
"""

from __future__ import annotations

import math
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import rag.citations
import rag.pipeline
from rag.citations import ZWSP, number_sources
from rag.errors import BadQuestion, StoreUnavailable
from rag.generator import Generator
from rag.pipeline import REFUSAL, RELEVANCE_QUESTION, UNCERTAIN, AnswerPipeline, clean_question
from rag.prompt import NOT_COVERED, Turn, build_messages
from rag.retrieval import Retriever
from rag.settings import AnswerSettings, MilvusSettings, RetrievalSettings, TuningSettings
from rag.store import MilvusStore
from tests.conftest import index_pages
from tests.scripted import ScriptedGenerator

DOCS = {
    "index.md": "# In-memory Index\n\n## HNSW\n\nHNSW is a graph-based index. `M` is the maximum degree of a node "
    "and `efConstruction` controls the search range while building the graph. `ef` sets the search range "
    "at query time.\n\n## IVF_FLAT\n\nIVF_FLAT divides vectors into `nlist` clusters and searches `nprobe` of them.\n",
    "collections.md": "# Manage Collections\n\nA collection is like a table. Create one with `create_collection` "
    "and drop it with `drop_collection`.\n",
    "install.md": "# Install Milvus Standalone\n\nRun Milvus with Docker Compose: download the compose file and "
    "run `docker compose up -d`.\n",
}


@pytest.fixture
async def indexed_store(tmp_path: Path, embedder, store) -> MilvusStore:
    report = await index_pages(tmp_path / "docs", DOCS, embedder, store, base_url="https://milvus.io/docs/")
    assert report.pages_new == 3
    return store


def pipeline(embedder, store, generator: Generator, **tuning: object) -> AnswerPipeline:
    """The answering path alone: no worked example, no relevance or grounding check; what the model writes is shown
    as it is."""
    settings = RetrievalSettings()
    plain = AnswerSettings(grounding="off", example=False, relevance_check=False)
    return AnswerPipeline(Retriever(embedder, store, settings, TuningSettings(**tuning)), generator, settings, plain)


class RecordingGenerator:
    """The real engine, recording the prompts it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.context_limit: int = inner.context_limit
        self.prompts: list[list[dict[str, str]]] = []

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        return int(self.inner.prompt_tokens(messages))

    def healthy(self) -> bool:
        return bool(self.inner.healthy())

    def unfinished_requests(self) -> int:
        return int(self.inner.unfinished_requests())

    async def stream(self, messages: Sequence[dict[str, str]], *, request_id: str | None = None) -> AsyncIterator[str]:
        self.prompts.append(list(messages))
        async for text in self.inner.stream(messages, request_id=request_id):
            yield text

    async def likelihoods(
        self, messages: Sequence[dict[str, str]], words: Sequence[str], *, request_id: str | None = None
    ) -> dict[str, float]:
        return dict(await self.inner.likelihoods(messages, words, request_id=request_id))


@pytest.mark.slow
@pytest.mark.integration
async def test_answer_cites_only_retrieved_sources(embedder, indexed_store, generator) -> None:
    answer = await pipeline(embedder, indexed_store, generator).ask("What do the parameters for HNSW mean?")
    assert not answer.refused
    assert answer.text
    assert answer.citations, "an answer always lists its sources"
    retrieved = {hit.url for hit in answer.hits}
    assert {c.url for c in answer.citations} <= retrieved
    assert answer.hits[0].url == "https://milvus.io/docs/index.md#hnsw"
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert {"embed_ms", "search_ms", "generate_ms", "total_ms"} <= set(answer.timings_ms)


@pytest.mark.slow
@pytest.mark.integration
async def test_streaming_yields_progress_then_one_answer(embedder, indexed_store, generator) -> None:
    updates = [u async for u in pipeline(embedder, indexed_store, generator).stream("How do I install it?")]
    assert updates[0].stage == "retrieving"
    assert [u.answer is not None for u in updates].count(True) == 1
    assert updates[-1].answer is not None and updates[-1].stage == "done"


@pytest.mark.integration
async def test_streamed_text_is_cleaned_only_when_read(embedder, indexed_store, monkeypatch) -> None:
    """Cleaning the whole answer on every token is quadratic; a consumer reads the text only now and then."""
    calls = 0
    real = rag.citations.postprocess

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(rag.pipeline, "postprocess", counting)
    words = [f"word{i} " for i in range(400)]
    generator = ScriptedGenerator([*words, "@everyone [1]."])
    reads: list[str] = []
    generating = 0
    answer = None
    async for update in pipeline(embedder, indexed_store, generator, min_score=-1.0).stream("What is HNSW?"):
        if update.answer is not None:
            answer = update.answer
        elif update.stage == "generating":
            generating += 1
            if generating % 20 == 0:  # as the Discord client does: read only when it edits
                reads.append(update.text)
                assert update.text == reads[-1]  # a second read is free
    assert answer is not None and generating > len(words)
    assert len(reads) == generating // 20 >= 20
    assert calls <= len(reads) + 1, f"postprocess ran {calls} times for {len(reads)} reads"
    assert answer.text == "".join(words).strip() + f" @{ZWSP}everyone [1]."
    assert all(answer.text.startswith(text) and text == text.strip() for text in reads)
    assert reads[0] == "".join(words[:19]).strip()


@pytest.mark.integration
async def test_below_threshold_refuses_without_generating(embedder, indexed_store) -> None:
    generator = ScriptedGenerator()
    answer = await pipeline(embedder, indexed_store, generator, min_score=0.99).ask("best pizza in Naples?")
    assert not generator.prompts
    assert answer.refused
    assert answer.text.startswith(REFUSAL)
    assert "generate_ms" not in answer.timings_ms
    assert 0 < len(answer.citations) <= 3
    assert all("#" not in c.url for c in answer.citations), "closest pages link to the page, not a section"
    assert answer.confidence == max(hit.similarity for hit in answer.hits), "the refusal keeps what it compared"


@pytest.mark.integration
async def test_a_stricter_threshold_per_call_refuses_what_the_default_answers(embedder, indexed_store) -> None:
    generator = ScriptedGenerator()
    docent = pipeline(embedder, indexed_store, generator, min_score=0.0)
    assert not (await docent.ask("What is HNSW?")).refused
    strict = [u.answer async for u in docent.stream("What is HNSW?", min_score=0.99) if u.answer is not None]
    assert strict[0].refused and len(generator.prompts) == 1, "refused before generating"


@pytest.mark.integration
async def test_follow_up_uses_earlier_turn_for_retrieval(embedder, indexed_store) -> None:
    history = [Turn("How does IVF_FLAT work?", "It clusters vectors [1].")]
    answer = await pipeline(embedder, indexed_store, ScriptedGenerator()).ask(
        "and what does nprobe do?", history=history
    )
    assert answer.hits[0].url == "https://milvus.io/docs/index.md#ivf_flat"


@pytest.mark.slow
@pytest.mark.integration
async def test_context_is_trimmed_to_the_model_window(embedder, indexed_store, generator) -> None:
    question, settings = "What is HNSW?", RetrievalSettings(max_context_chars=20000)
    retriever = Retriever(embedder, indexed_store, settings, TuningSettings(min_score=-1.0))
    hits = list((await retriever.retrieve(question)).hits)

    def tokens(some: list) -> int:
        return generator.prompt_tokens(build_messages(question, some, number_sources(some), max_context_chars=20000))

    one, everything = tokens(hits[:1]), tokens(hits)
    assert len(hits) >= 3 and one < everything
    # A window the best source fits in and all of them don't: without trimming the prompt cannot fit.
    limit = (one + everything) // 2
    small = RecordingGenerator(generator.with_settings(generator_settings(max_model_len=limit + 32, max_tokens=32)))
    assert small.context_limit == limit < everything

    unchecked = AnswerSettings(relevance_check=False)  # the tiny model's "yes" is random
    answering = AnswerPipeline(retriever, small, settings, unchecked)
    answer = await answering.ask(question)
    assert answer.text
    [prompt] = small.prompts
    assert one <= small.prompt_tokens(prompt) <= small.context_limit, "the prompt the model got must fit its window"
    assert hits[0].text in prompt[-1]["content"], "the weakest sources go first"


def generator_settings(**changes: object):
    from rag.settings import LLMSettings

    return LLMSettings(model="x", timeout_s=60, **changes)


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "Please ask"), ("   \n\t ", "Please ask"), ("\x00\x07", "Please ask"), ("x" * 2001, "2,001 characters")],
)
def test_bad_questions_get_clear_messages(question: str, message: str) -> None:
    with pytest.raises(BadQuestion, match=message):
        clean_question(question, 2000)


def test_control_characters_are_removed() -> None:
    assert clean_question("what\x00 is\u202e HNSW\x1b?", 100) == "what is HNSW?"


@pytest.mark.integration
async def test_store_failure_is_a_store_error(embedder) -> None:
    broken = MilvusStore("http://127.0.0.1:9", MilvusSettings(timeout_s=2))
    with pytest.raises(StoreUnavailable):
        await pipeline(embedder, broken, ScriptedGenerator()).ask("What is HNSW?")


class MeasuringGenerator(ScriptedGenerator):
    """Counts how often (and on which thread) the prompt is tokenised; 4 characters a token."""

    def __init__(self) -> None:
        super().__init__()
        self.measured: list[int] = []
        self.threads: set[int] = set()

    def prompt_tokens(self, messages: Sequence[dict[str, str]]) -> int:
        self.threads.add(threading.get_ident())
        tokens = sum(len(m["content"]) for m in messages) // 4
        self.measured.append(tokens)
        return tokens


@pytest.mark.integration
async def test_the_context_is_fitted_off_the_event_loop_in_few_measurements(embedder, indexed_store) -> None:
    question, settings = "What is HNSW?", RetrievalSettings(top_k=8, chunks_per_page=3)
    retriever = Retriever(embedder, indexed_store, settings, TuningSettings(min_score=-1.0))
    hits = list((await retriever.retrieve(question)).hits)
    model = MeasuringGenerator()

    def tokens(count: int) -> int:
        kept = hits[:count]
        return model.prompt_tokens(build_messages(question, kept, number_sources(kept), max_context_chars=6000))

    assert len(hits) >= 4 and tokens(2) < tokens(3)
    model.context_limit = tokens(2)  # exactly the two strongest sources fit
    model.measured.clear()
    model.threads.clear()
    answering = AnswerPipeline(retriever, model, settings, AnswerSettings(relevance_check=False))
    answer = await answering.ask(question)
    assert answer.text
    prompt = model.prompts[0][-1]["content"]
    assert hits[0].text in prompt and hits[1].text in prompt and hits[2].text not in prompt
    assert len(model.measured) <= 1 + math.ceil(math.log2(len(hits))), model.measured
    assert threading.get_ident() not in model.threads, "tokenising never runs on the event loop"


def checked(embedder, store, generator: Generator, **answer: object) -> AnswerPipeline:
    """A pipeline that checks grounding (the configured default) with these answer settings; the relevance check
    only when asked for (a test reads the answer's prompt as the generator's first)."""
    settings = RetrievalSettings()
    options = AnswerSettings(**{"grounding": "check", "relevance_check": False, **answer})
    return AnswerPipeline(
        Retriever(embedder, store, settings, TuningSettings(min_score=-1.0)), generator, settings, options
    )


@pytest.mark.integration
async def test_the_model_saying_the_docs_lack_it_is_a_refusal_with_the_closest_pages(embedder, indexed_store) -> None:
    answer = await checked(embedder, indexed_store, ScriptedGenerator(NOT_COVERED)).ask("replication in Postgres?")
    assert answer.refused and answer.text.startswith(REFUSAL)
    assert answer.citations and answer.sources_heading == "Closest pages"


@pytest.mark.integration
async def test_an_answer_with_no_valid_citation_is_not_presented_as_grounded(embedder, indexed_store) -> None:
    generator = ScriptedGenerator("Postgres replicates with streaming replication [9].")
    answer = await checked(embedder, indexed_store, generator).ask("What is HNSW?")
    assert answer.uncertain and not answer.refused and answer.unsure
    assert answer.confidence is not None and answer.confidence > 0, "an answer keeps retrieval's confidence"
    assert answer.text.startswith(UNCERTAIN)
    assert answer.sources_heading == "Pages that might help"
    seed = await pipeline(embedder, indexed_store, generator, min_score=-1.0).ask("What is HNSW?")
    assert not seed.uncertain and seed.sources_heading == "Sources", "grounding off: as before"


@pytest.mark.integration
async def test_a_sentence_cited_to_the_wrong_source_is_cited_to_the_one_that_says_it(embedder, indexed_store) -> None:
    probe = await pipeline(embedder, indexed_store, ScriptedGenerator(), min_score=-1.0).ask("What is IVF_FLAT?")
    numbers = {c.title.split(" › ")[-1]: c.number for c in number_sources(list(probe.hits))}
    wrong = numbers.get("HNSW", 9)
    generator = ScriptedGenerator(
        f"IVF_FLAT divides vectors into nlist clusters and searches nprobe of them [{wrong}]."
    )
    answer = await checked(embedder, indexed_store, generator).ask("What is IVF_FLAT?")
    assert not answer.uncertain
    assert [c.title for c in answer.citations] == ["In-memory Index › IVF_FLAT"]


@pytest.mark.integration
async def test_the_prompt_holds_the_first_pages_cut_to_what_matches(embedder, indexed_store) -> None:
    generator = ScriptedGenerator()
    await checked(embedder, indexed_store, generator, sources=1, passage_chars=60, project="Milvus").ask(
        "what does efConstruction control in HNSW?"
    )
    system, user = generator.prompts[0][0]["content"], generator.prompts[0][-1]["content"]
    assert system.startswith("You answer questions about Milvus")
    assert "Manage Collections" not in user and "Install" not in user, "one page"
    hnsw = user.split("[1] In-memory Index › HNSW\n", 1)[1].split("\n\n", 1)[0]
    assert "efConstruction" in hnsw and len(hnsw) <= 60 + 4, "the passage is cut to the sentences that match"


@pytest.mark.integration
async def test_a_chinese_question_is_told_to_be_answered_in_chinese(embedder, indexed_store) -> None:
    generator = ScriptedGenerator()
    await checked(embedder, indexed_store, generator, language_hint=True).ask("HNSW 的参数是什么意思？")
    assert generator.prompts[0][-1]["content"].endswith("Answer in Chinese.")
    await checked(embedder, indexed_store, generator, language_hint=True).ask("What is HNSW?")
    assert generator.prompts[1][-1]["content"].endswith("Question: What is HNSW?")


@pytest.mark.integration
async def test_below_the_relevance_the_model_gives_docent_refuses_without_generating(embedder, indexed_store) -> None:
    unsure = ScriptedGenerator(yes=0.2)
    answer = await checked(embedder, indexed_store, unsure, relevance_check=True, min_relevance=0.5).ask(
        "What is HNSW?"
    )
    assert answer.refused and answer.relevance == 0.2 and answer.text.startswith(REFUSAL)
    assert len(unsure.prompts) == 1, "asked once; never generated"
    assert unsure.prompts[0][-1]["content"] == RELEVANCE_QUESTION
    asked = unsure.prompts[0][-2]["content"]
    assert asked.startswith("Sources:") and asked.endswith("Question: What is HNSW?"), "the answer's own prompt"
    sure = ScriptedGenerator("HNSW is a graph-based index [1].", yes=0.9)
    answer = await checked(embedder, indexed_store, sure, relevance_check=True, min_relevance=0.5).ask("What is HNSW?")
    assert not answer.refused and answer.relevance == 0.9 and len(sure.prompts) == 2
    assert sure.prompts[1] == sure.prompts[0][:-1], "the answer's prompt is the check's without its last turn"


class BrokenCheck(ScriptedGenerator):
    """A model whose relevance step fails the way one did in a benchmark run (an error inside the engine)."""

    async def likelihoods(self, messages: Any, words: Any, *, request_id: str | None = None) -> dict[str, float]:
        raise IndexError("string index out of range")


@pytest.mark.integration
async def test_a_failed_relevance_check_still_answers(embedder, indexed_store, caplog) -> None:
    """The check filters answers; when it breaks, the asker still gets one (and the log says why it went unchecked)."""
    model = BrokenCheck("HNSW is a graph-based index [1].")
    answer = await checked(embedder, indexed_store, model, relevance_check=True, min_relevance=0.5).ask("What is HNSW?")
    assert not answer.refused and answer.relevance is None and answer.text.startswith("HNSW is a graph")
    assert "relevance check failed" in caplog.text
