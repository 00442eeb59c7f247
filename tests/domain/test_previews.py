"""server.domain.previews: list previews and search snippets, pure."""

from __future__ import annotations

from server.domain.previews import (
    ELLIPSIS,
    PREVIEW_CHARS,
    SNIPPET_CHARS,
    html_to_text,
    message_preview,
    snippet,
)


def test_preview_collapses_whitespace() -> None:
    assert message_preview("  Hello,\n\n  my order\tis late  ", None) == "Hello, my order is late"


def test_preview_uses_html_only_without_text() -> None:
    html = (
        "<html><head><title>Invoice</title><style>p { color: red }</style></head>"
        "<body><p>Hi&nbsp;<b>there</b> &amp; welcome</p><p>second</p>"
        "<script>alert(1)</script><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert message_preview("", html) == "Hi there & welcome second one two"
    assert message_preview(" \n ", html) == "Hi there & welcome second one two"
    assert message_preview("plain wins", html) == "plain wins"
    assert message_preview("", None) == ""


def test_html_cut_off_mid_tag_still_reads() -> None:
    assert html_to_text("<p>Dear customer,</p><p>your ord") == "Dear customer, your ord"
    assert html_to_text("<p>Dear customer</p><a href='https://x") == "Dear customer"


def test_long_preview_is_cut_at_a_word_with_an_ellipsis() -> None:
    text = " ".join(f"word{i}" for i in range(100))
    preview = message_preview(text, None)
    assert len(preview) <= PREVIEW_CHARS
    assert preview.endswith(ELLIPSIS)
    assert text.startswith(preview[:-1])
    assert preview[-2].isdigit()  # a whole word before the ellipsis
    unbroken = "x" * 500
    assert message_preview(unbroken, None) == "x" * (PREVIEW_CHARS - 1) + ELLIPSIS


def test_snippet_of_a_short_text_is_the_text() -> None:
    assert snippet("Where is  my\norder?", "order") == "Where is my order?"


def test_snippet_centres_the_hit() -> None:
    text = "a" * 300 + " the refund number " + "b" * 300
    cut = snippet(text, "REFUND")
    assert len(cut) <= SNIPPET_CHARS
    assert cut.startswith(ELLIPSIS) and cut.endswith(ELLIPSIS)
    assert "the refund number" in cut
    middle = cut.index("refund")
    assert abs(middle - (len(cut) - middle - len("refund"))) <= 2


def test_snippet_near_either_end() -> None:
    early = "refund " + "x" * 400
    assert snippet(early, "refund").startswith("refund")
    assert snippet(early, "refund").endswith(ELLIPSIS)
    late = "x" * 400 + " refund"
    assert snippet(late, "refund").endswith("refund")
    assert snippet(late, "refund").startswith(ELLIPSIS)
    assert len(snippet(late, "refund")) == SNIPPET_CHARS


def test_snippet_without_the_needle_starts_at_the_beginning() -> None:
    text = "Straße " + "x" * 400
    assert snippet(text, "nothing").startswith("Straße")
    assert len(snippet(text, "nothing")) <= SNIPPET_CHARS


def test_snippet_of_a_needle_longer_than_the_window() -> None:
    text = "intro " + "y" * 300 + " outro"
    cut = snippet(text, "y" * 200)
    assert len(cut) <= SNIPPET_CHARS
    assert "yyyy" in cut
