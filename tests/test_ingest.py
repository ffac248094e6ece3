import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from docgen import make_docx, make_pdf
from sbsearch.errors import IngestError
from sbsearch.ingest import decode_text, load_document


def test_plain_text_utf8(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("First paragraph.\n\nSecond paragraph with ümlauts.", encoding="utf-8")
    doc = load_document(p)
    assert doc.format == "text" and doc.encoding == "utf-8"
    assert "ümlauts" in doc.sections[0].text


def test_shift_jis_text_is_detected(tmp_path):
    p = tmp_path / "guide.txt"
    text = "東京オフィスの営業時間は午前九時から午後六時までです。来客は受付で登録してください。地震の際は机の下に隠れてください。"
    p.write_bytes(text.encode("cp932"))
    doc = load_document(p)
    assert "営業時間" in doc.sections[0].text
    assert doc.encoding.lower().replace("_", "") in {"cp932", "shiftjis", "shiftjis2004", "shiftjisx0213"}


def test_latin1_text(tmp_path):
    p = tmp_path / "old.txt"
    p.write_bytes("Caf\xe9 men\xfc: cr\xe8me br\xfbl\xe9e und K\xe4se f\xfcr alle Mitarbeiter im B\xfcro.".encode("latin-1"))
    assert "Café" in load_document(p).sections[0].text


def test_binary_with_text_extension_is_refused(tmp_path):
    p = tmp_path / "fake.txt"
    p.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(IngestError, match="binary"):
        load_document(p)


def test_empty_file_is_refused(tmp_path):
    p = tmp_path / "empty.md"
    p.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        load_document(p)


def test_markdown_heading_path_and_code_fences(tmp_path):
    p = tmp_path / "vpn.md"
    p.write_text("# VPN\n\nIntro.\n\n## Setup\n\nInstall the client.\n\n```\n# not a heading\n```\n\n### Linux\n\nUse the deb.\n")
    doc = load_document(p)
    headings = [s.heading for s in doc.sections]
    assert headings == ["VPN", "VPN > Setup", "VPN > Setup > Linux"]
    assert "# not a heading" in doc.sections[1].text


def test_faq_csv_one_section_per_pair(tmp_path):
    p = tmp_path / "faq.csv"
    p.write_text('Question,Answer\n"How do I reset my password?","Use the portal, then log in again."\nWhere is IT?,Room 2.14\n')
    doc = load_document(p)
    assert doc.format == "faq" and len(doc.sections) == 2
    assert doc.sections[0].heading == "How do I reset my password?"
    assert "Use the portal, then log in again." in doc.sections[0].text


def test_faq_jsonl_and_nested_json(tmp_path):
    p = tmp_path / "faq.jsonl"
    p.write_text("\n".join(json.dumps({"question": f"q{i}?", "answer": f"a{i}"}) for i in range(3)))
    assert len(load_document(p).sections) == 3
    j = tmp_path / "faq.json"
    j.write_text(json.dumps({"title": "FAQ", "items": [{"Question": "Why?", "Answer": "Because."}]}))
    assert load_document(j).sections[0].heading == "Why?"


def test_json_without_pairs_is_reported(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"debug": True, "items": [1, 2]}))
    with pytest.raises(IngestError, match="question/answer"):
        load_document(p)
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\n{oops\n')
    with pytest.raises(IngestError, match="line 2"):
        load_document(bad)


def test_html_drops_boilerplate_keeps_headings_and_tables(tmp_path):
    p = tmp_path / "page.html"
    p.write_text("<html><head><script>var tracking = 1;</script></head><body><nav>Home | About</nav>"
                 "<h1>Holidays</h1><p>Office closed on these days.</p><h2>2026</h2>"
                 "<table><tr><th>Date</th><th>Holiday</th></tr><tr><td>1 May</td><td>Labour Day</td></tr></table>"
                 "</body></html>")
    doc = load_document(p)
    text = " ".join(s.text for s in doc.sections)
    assert "tracking" not in text and "Home | About" not in text
    assert "1 May | Labour Day" in text
    assert doc.sections[-1].heading == "Holidays > 2026"


def test_docx_headings(tmp_path):
    p = make_docx(tmp_path / "travel.docx", [("Hotels", ["Book through the portal."]), ("Meals", ["Up to 40 EUR."])])
    doc = load_document(p)
    assert [s.heading for s in doc.sections] == ["Policy > Hotels", "Policy > Meals"]


def test_corrupt_docx(tmp_path):
    p = tmp_path / "broken.docx"
    p.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(IngestError, match="docx"):
        load_document(p)


def test_pdf_pages_and_headings(tmp_path):
    p = make_pdf(tmp_path / "handbook.pdf", [
        ("Welcome", ["Welcome to the company. " * 5]),
        ("Travel claims", ["Submit the travel claim within 30 days of your return. " * 3]),
    ])
    doc = load_document(p)
    assert doc.format == "pdf"
    pages = {s.page for s in doc.sections}
    assert pages == {1, 2}
    travel = [s for s in doc.sections if s.page == 2][0]
    assert travel.heading == "Travel claims"
    assert "30 days" in travel.text


def test_encrypted_pdf_is_reported(tmp_path):
    p = make_pdf(tmp_path / "secret.pdf", [("Secret", ["Salary bands."])], encrypt="hunter2")
    with pytest.raises(IngestError, match="encrypted"):
        load_document(p)


def test_corrupt_pdf_is_reported(tmp_path):
    good = make_pdf(tmp_path / "x.pdf", [("A", ["text"])]).read_bytes()
    p = tmp_path / "corrupt.pdf"
    p.write_bytes(good[: len(good) // 3])
    with pytest.raises(IngestError):
        load_document(p)


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "image.heic"
    p.write_bytes(b"\x00\x00\x00\x18ftypheic")
    with pytest.raises(IngestError, match="unsupported"):
        load_document(p)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".txt", ".md", ".csv", ".jsonl", ".json", ".html", ".pdf", ".docx"]))
def test_random_bytes_never_crash_a_loader(tmp_path_factory, data, suffix):
    p = tmp_path_factory.mktemp("fuzz") / f"f{suffix}"
    p.write_bytes(data)
    try:
        doc = load_document(p)
    except IngestError:
        return
    assert doc.sections and all(s.text.strip() for s in doc.sections)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=500), suffix=st.sampled_from([".txt", ".md", ".csv", ".html"]))
@example(text="\r0", suffix=".csv")  # a lone carriage return once crashed the csv reader
def test_random_text_never_crash_a_loader(tmp_path_factory, text, suffix):
    p = tmp_path_factory.mktemp("fuzz") / f"f{suffix}"
    p.write_text(text, encoding="utf-8")
    try:
        load_document(p)
    except IngestError:
        pass


def test_decode_text_bom():
    assert decode_text("\ufeffhello".encode("utf-8"))[0] == "hello"
    assert decode_text("hello".encode("utf-16"))[0] == "hello"


def test_ocr_reads_the_pages_of_a_file_side_by_side_in_page_order(tmp_path, monkeypatch):
    """One Tesseract per core: pages overlap (at most cores at once), results keep page order, and
    the images are made one at a time (a multi-page image cannot be rendered from two threads)."""
    import threading
    import time

    from sbsearch.ingest import ocr as ocr_module

    monkeypatch.setenv("SBSEARCH_THREADS", "2")
    running, most, making = [0], [0], [0]
    lock = threading.Lock()

    def fake_read(self, image):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return f"text of {image}"

    def maker(n):
        def make():
            making[0] += 1
            assert making[0] == 1, "two images made at once"
            time.sleep(0.01)
            making[0] -= 1
            return n
        return make

    monkeypatch.setattr(ocr_module.Ocr, "read_image", fake_read)
    ocr = ocr_module.Ocr(cache_dir=tmp_path)
    out = ocr.read_pages("ab" * 32, {n: maker(n) for n in range(1, 6)})
    assert out == {n: f"text of {n}" for n in range(1, 6)}
    assert most[0] == 2
    assert ocr.read_pages("ab" * 32, {1: maker(1)}) == {1: "text of 1"} and ocr.stats.cache_hits == 1
