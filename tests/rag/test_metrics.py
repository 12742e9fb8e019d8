"""The resolution gauge's labels stay bounded however many spaces and channels there are."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from rag.metrics import MAX_SERIES, Metrics
from rag.resolution import Resolution


def series(metrics: Metrics) -> dict[tuple[str, str, str, str], float]:
    family = next(
        f for f in text_string_to_metric_families(metrics.render().decode()) if f.name == "docent_resolution_questions"
    )
    return {
        (s.labels["platform"], s.labels["space"], s.labels["channel"], s.labels["state"]): s.value
        for s in family.samples
    }


def test_beyond_the_busiest_channels_the_rest_are_summed_and_direct_messages_have_their_own_space() -> None:
    rows = [Resolution.of("discord", 1, f"busy{i}", 5, 0, 0) for i in range(MAX_SERIES - 1)]
    rows.append(Resolution.of("slack", None, None, 4, 0, 1))  # direct messages
    rows += [Resolution.of("discord", 1, f"quiet{i}", 1, 1, 0) for i in range(30)]  # a known space's tail
    rows += [Resolution.of("discord", 1000 + i, "c", 0, 0, 1) for i in range(30)]  # many small servers
    metrics = Metrics()
    metrics.resolution(rows)
    shown = series(metrics)
    assert len({key[:3] for key in shown}) == MAX_SERIES + 2
    assert shown["discord", "1", "other", "resolved"] == 30 and shown["discord", "1", "other", "handed_off"] == 30
    assert shown["discord", "other", "other", "unresolved"] == 30
    assert shown["slack", "direct", "none", "unresolved"] == 1
    metrics.resolution(rows[:1])
    assert len(series(metrics)) == 3, "a refresh replaces every series"
