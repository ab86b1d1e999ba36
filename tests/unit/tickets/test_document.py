from __future__ import annotations

from reclaim.tickets.document import Block, Document, Inline, adf_to_text, escape_wiki


def sample() -> Document:
    return Document(
        (
            Block("heading", (Inline("Idle VM"),), level=2),
            Block("paragraph", (Inline("Save "), Inline("$120/month", strong=True))),
            Block(
                "bullets",
                items=((Inline("i-123", code=True),), (Inline("link", href="https://x"),)),
            ),
            Block("code", text="aws ec2 stop-instances"),
        )
    )


def test_adf_has_the_structure_jira_cloud_accepts() -> None:
    adf = sample().to_adf()
    assert adf["type"] == "doc"
    assert adf["version"] == 1
    heading, paragraph, bullets, code = adf["content"]
    assert heading == {
        "type": "heading",
        "attrs": {"level": 2},
        "content": [{"type": "text", "text": "Idle VM"}],
    }
    assert paragraph["content"][1]["marks"] == [{"type": "strong"}]
    item = bullets["content"][1]
    assert item["type"] == "listItem"
    assert item["content"][0]["content"][0]["marks"] == [
        {"type": "link", "attrs": {"href": "https://x"}}
    ]
    assert code["type"] == "codeBlock"


def test_adf_never_has_empty_text_nodes() -> None:
    adf = Document((Block("paragraph", (Inline(""), Inline("x"))),)).to_adf()
    assert adf["content"][0]["content"] == [{"type": "text", "text": "x"}]


def test_wiki_markup_for_data_center() -> None:
    wiki = sample().to_wiki()
    assert wiki.splitlines()[0] == "h2. Idle VM"
    assert "*$120/month*" in wiki
    assert "* {{i-123}}" in wiki
    assert "[link|https://x]" in wiki
    assert "{noformat}\naws ec2 stop-instances\n{noformat}" in wiki


def test_user_text_cannot_inject_wiki_markup() -> None:
    assert escape_wiki("[evil|http://x] *bold* {code}") == r"\[evil\|http://x\] \*bold\* \{code\}"


def test_text_of_adf_and_of_plain_text() -> None:
    assert adf_to_text(Document.of_text("one\n\ntwo").to_adf()) == "one\ntwo"
    assert adf_to_text("wiki text") == "wiki text"


def test_adf_json_is_the_encoded_adf_byte_for_byte() -> None:
    import msgspec

    tricky = Document(
        (
            *sample().blocks,
            Block("paragraph", (Inline('quote " back\\slash é ✓ \n\t\x01'), Inline(""))),
            Block("heading", (Inline("h6", code=True, strong=True, href="https://x/?a=1&b"),), 6),
            Block("bullets", items=((Inline("one"), Inline("")), ())),
            Block("code", text=""),
            Block("rule"),
        )
    )
    for document in (tricky, Document(), sample()):
        assert document.adf_json() == msgspec.json.encode(document.to_adf())
