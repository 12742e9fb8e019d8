"""The committed configuration reference is exactly what the settings model generates."""

from __future__ import annotations

from pathlib import Path

from rag.config_reference import render
from rag.settings import RetrievalSettings, Settings

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
    assert "`DOCENT_RETRIEVAL__MIN_SCORE` | float | `0.3`" in text
    description = RetrievalSettings.model_fields["min_score"].description
    assert description is not None and description in text
