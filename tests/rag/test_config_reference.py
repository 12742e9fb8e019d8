"""The committed configuration reference is exactly what the settings model generates."""

from __future__ import annotations

from pathlib import Path

from rag.config_reference import render
from rag.settings import Settings, TuningSettings

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_docs_match_the_settings_model() -> None:
    assert REFERENCE.read_text() == render(), "run: python -m rag.config_reference > docs/configuration.md"


def test_every_setting_is_documented_with_its_variable_and_meaning() -> None:
    text = render()
    for section, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            for key, sub in annotation.model_fields.items():
                assert f"`DOCENT_{section.upper()}__{key.upper()}`" in text
                assert sub.description, f"{section}.{key} needs a description"
    assert "`DOCENT_TUNING__MIN_SCORE` | float | `0.3`" in text
    description = TuningSettings.model_fields["min_score"].description
    assert description is not None and description in text


def test_the_tuning_section_says_the_benchmark_sets_it_and_no_test_knob_is_documented() -> None:
    text = render()
    tuning = text[text.index("## `tuning`") :].split("\n## ")[0]
    assert "Set by the benchmark (``python -m bench.cv``), not by hand" in tuning
    assert "`DOCENT_TUNING__RRF_K` | int | `10`" in tuning and "`DOCENT_TUNING__WINDOW_CHUNKS`" in tuning
    assert "IGNORE_EOS" not in text, "tests and benchmarks pass ignore_eos to the generator, operators never set it"
