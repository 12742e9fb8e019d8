"""Which community answers a question may read: its own server's or workspace's, and those of the spaces the
operator made one community with it, never another space's private-channel answers."""

from __future__ import annotations

from rag.scope import SearchScope, community_source, is_community, visible_communities


def test_a_space_sees_its_own_answers_and_a_direct_message_none() -> None:
    assert visible_communities("discord", 1) == ("community:discord:1", "community:discord:1:private")
    assert visible_communities("discord", None) == ()
    assert community_source("slack", "T1", private=None) == "community:slack:T1:private", "unknown counts as private"


def test_shared_spaces_see_each_others_public_answers_only() -> None:
    shared = ["discord:1", "slack:T1", "discord:1"]
    assert visible_communities("slack", "T1", shared) == (
        "community:slack:T1",
        "community:slack:T1:private",
        "community:discord:1",
    )
    assert visible_communities("discord", 2, shared) == ("community:discord:2", "community:discord:2:private")


def test_a_scope_admits_what_its_channel_and_space_allow() -> None:
    mine = SearchScope(communities=visible_communities("discord", 1))
    assert mine.admits("docs") and mine.admits("community:discord:1:private")
    assert not mine.admits("community:discord:2") and not mine.admits("community"), "older unscoped rows: no one's"
    assert SearchScope().admits("community:discord:2"), "the operator's view"
    docs_only = SearchScope(("docs",), mine.communities)
    assert docs_only.admits("docs") and not docs_only.admits("sdk") and not docs_only.admits("community:discord:1")
    with_answers = SearchScope(("docs", "community"), mine.communities)
    assert with_answers.admits("community:discord:1") and not with_answers.admits("community:discord:2")
    assert is_community("community") and is_community("community:x") and not is_community("community-docs")
