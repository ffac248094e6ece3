"""Scans (OCR), slides, spreadsheets and e-mails through the CLI, on files built here with the
libraries that write them (reportlab + pdfium + Pillow for scans, python-pptx, openpyxl, the
email package, aspose-email-foss for .msg); the fake embedder, so nothing here loads a model.
OCR needs Tesseract (scripts/setup.sh installs it); its results are cached by file sha256 in
the session cache, so each generated scan is OCR'd once per test session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import docgen
from sbsearch.cli import cli
from sbsearch.index.store import Store
from sbsearch.ingest.ocr import tesseract_binary

needs_tesseract = pytest.mark.skipif(tesseract_binary() is None, reason="Tesseract is not installed "
                                     "(scripts/setup.sh installs it)")

LETTER = [("Notice to tenants", ["The loading dock at the Hamburg warehouse is closed on Thursday for "
                                 "resurfacing. Deliveries go to gate four until Friday noon."])]
FAX = [("Fax", ["Nordbau confirms the crane arrives on Tuesday at seven in the morning."])]
DECK = [
    {"title": "Welcome to Halden", "bullets": ["Your first week", "Who is who"]},
    {"title": "Badges and doors", "bullets": ["Badges open the doors from 06:30"],
     "notes": "Mention the replacement fee of fifteen euros for a lost badge."},
    {"title": "Travel rules", "table": [["Trip", "Mode"], ["Hamburg-Berlin", "train"], ["Hamburg-Munich", "plane"]]},
]
WORKBOOK = {
    "Prices": [["Calibration kits 2025"], ["Kit", "EUR", "Lead time"], ["Thermo reference kit", 1450, "3 weeks"],
               ["Humidity salt set", 320, "1 week"]],
    "Contacts": [["Name", "Role"], ["Maren Dittmer", "Calibration lab manager"]],
}


def invoke(*args, ok=True, env=None):
    result = CliRunner(env={"COLUMNS": "200", **(env or {})}).invoke(cli, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def hits(*args) -> list[dict]:
    out = invoke("query", "--json", "--mode", "lexical", *args).output
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def garage_mail(extra: list[tuple[str, bytes]] = ()):
    attachment = docgen.pdf_bytes([("Parking plan", ["Electric cars charge at the public chargers Am Kaiserkai."])])
    return docgen.make_email(
        "Garage closed for floor sealing", "Birte Claussen <office@halden-instruments.example>",
        "all-hamburg@halden-instruments.example", "Tue, 04 Mar 2025 09:12:00 +0100",
        "The underground garage is closed from 17 to 21 March for the floor sealing.",
        attachments=[("parking-plan.pdf", attachment), ("photo.heic", b"\x00\x00\x00\x18ftypheic"), *extra])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One of each new format, built once per module (identical bytes: the OCR cache is shared)."""
    root = tmp_path_factory.mktemp("formats")
    for folder in ("scans", "decks", "sheets", "mail"):
        (root / folder).mkdir()
    docgen.make_scan(root / "scans" / "letter-scan.pdf", LETTER, seed=3)
    docgen.make_scan(root / "scans" / "fax.png", FAX, seed=4)
    docgen.make_pptx(root / "decks" / "onboarding.pptx", DECK)
    docgen.make_xlsx(root / "sheets" / "prices.xlsx", WORKBOOK)
    docgen.write_eml(root / "mail" / "garage.eml", garage_mail())
    hotline = docgen.make_email("Hotline hours on holidays", "Ben Okafor <ben.okafor@halden-instruments.example>",
                                "support-americas@halden-instruments.example", "Wed, 08 Jan 2025 11:05:00 -0500",
                                "On Memorial Day the hotline is staffed from ten to two Eastern time.",
                                attachments=[("rota.txt", b"Memorial Day rota: Priya covers the morning shift.")])
    docgen.write_msg(root / "mail" / "hotline.msg", hotline)
    return root


@pytest.fixture
def docs(built, tmp_path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "docs"))


@needs_tesseract
def test_every_new_format_is_indexed_and_shows_its_position(docs):
    summary = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    # 6 files, 2 attachments of supported types (the .heic one is skipped)
    assert summary["added"] == 8 and summary["failed"] == 0, summary["failures"]
    assert [f["path"].rsplit("/", 1)[-1] for f in summary["skipped_files"]] == ["garage.eml#photo.heic"]
    assert summary["ocr"]["pages_read"] + summary["ocr"]["cache_hits"] == 2

    scan = hits("loading dock resurfacing")[0]
    assert scan["path"].endswith("scans/letter-scan.pdf") and scan["location"] == "p.1" and scan["page"] == 1
    assert "gate four" in scan["text"]
    fax = hits("crane Nordbau")[0]
    assert fax["path"].endswith("scans/fax.png") and "Tuesday" in fax["text"]

    notes = hits("replacement fee lost badge")[0]
    assert notes["location"] == "slide 2" and notes["page"] == 2 and notes["heading"] == "Badges and doors"
    assert "Speaker notes:" in notes["text"]
    assert hits("Munich plane")[0]["location"] == "slide 3"

    row = hits("thermo reference kit")[0]
    assert row["location"] == "sheet Prices" and row["heading"] == "Prices > Calibration kits 2025"
    assert "Kit: Thermo reference kit; EUR: 1450; Lead time: 3 weeks" in row["text"]
    assert hits("Dittmer")[0]["location"] == "sheet Contacts"

    mail = hits("floor sealing garage")[0]
    assert mail["path"].endswith("mail/garage.eml") and mail["location"] == "mail"
    assert mail["heading"] == "Garage closed for floor sealing" and "From: Birte Claussen" in mail["text"]
    attached = hits("Kaiserkai chargers")[0]
    assert attached["path"].endswith("mail/garage.eml#parking-plan.pdf") and attached["location"] == "p.1"
    msg = hits("Memorial Day hotline staffed")
    assert msg[0]["path"].endswith("mail/hotline.msg") and msg[0]["location"] == "mail"
    assert any(h["path"].endswith("hotline.msg#rota.txt") for h in hits("Priya morning shift"))

    table = invoke("query", "--mode", "lexical", "-k", "10", "badge fee Munich thermo sealing").output
    for shown in ("slide 2", "slide 3", "sheet Prices", "garage.eml mail"):
        assert shown in table, table


def test_attachments_live_and_die_with_their_message(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    extra = ("agenda.txt", b"Agenda: sealing crew arrives at six, coffee in the cafeteria.")
    docgen.write_eml(docs / "garage.eml", garage_mail([extra]))
    first = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    assert first["added"] == 3  # the message, parking-plan.pdf, agenda.txt
    again = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    assert again["unchanged"] == 1 and again["removed"] == 0 and again["added"] == again["updated"] == 0

    docgen.write_eml(docs / "garage.eml", garage_mail())  # the agenda is no longer attached
    changed = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    assert changed["removed"] == 1 and changed["updated"] == 2
    index = Path(changed["index"])
    assert sorted(p.rsplit("/", 1)[-1] for p in Store(index).documents()) == ["garage.eml", "garage.eml#parking-plan.pdf"]
    assert not [h for h in hits("crew cafeteria") if "agenda" in h["path"]]
    assert invoke("check").exit_code == 0

    (docs / "garage.eml").unlink()
    (docs / "other.txt").write_text("Something else entirely about the printer.")
    gone = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    assert gone["removed"] == 2 and gone["added"] == 1
    assert list(Store(index).documents()) == [str(docs / "other.txt")]
    report = json.loads(invoke("check", "--json").output)
    assert report["ok"] and report["orphan_attachments"] == []


@needs_tesseract
def test_ocr_runs_once_per_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SBSEARCH_CACHE", str(tmp_path / "cache"))
    docs = tmp_path / "docs"
    docs.mkdir()
    docgen.make_scan(docs / "letter-scan.pdf", LETTER, seed=3)
    first = json.loads(invoke("index", docs, "-m", "fake", "--json", "-i", tmp_path / "a").output)
    assert first["ocr"]["pages_read"] == 1 and first["ocr"]["cache_hits"] == 0
    unchanged = json.loads(invoke("index", docs, "-m", "fake", "--json", "-i", tmp_path / "a").output)
    assert unchanged["unchanged"] == 1 and unchanged["ocr"]["pages_read"] == unchanged["ocr"]["cache_hits"] == 0
    # the same bytes elsewhere (another index, a copy under another name) come from the cache
    shutil.copy(docs / "letter-scan.pdf", docs / "copy-of-letter.pdf")
    other = json.loads(invoke("index", docs, "-m", "fake", "--json", "-i", tmp_path / "b").output)
    assert other["added"] == 2 and other["ocr"]["pages_read"] == 0 and other["ocr"]["cache_hits"] == 2


def test_without_tesseract_pages_are_reported_not_silently_empty(built, tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(built / "scans" / "letter-scan.pdf", docs)
    shutil.copy(built / "scans" / "fax.png", docs)
    second = docgen.make_scan(tmp_path / "page2.png", [("Page two", ["The second page was scanned: visitors sign "
                                                                      "in at the gatehouse."])])
    docgen.make_image_pdf(docs / "mixed.pdf", ["The first page has a text layer about the kitchen rota.", second])
    monkeypatch.setenv("SBSEARCH_TESSERACT", "")  # as if Tesseract were not installed
    summary = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    failed = {f["path"].rsplit("/", 1)[-1]: f["error"] for f in summary["failures"]}
    assert failed == {"letter-scan.pdf": "page 1: no text layer, OCR not available",
                      "fax.png": "image: no text layer, OCR not available"}
    assert summary["warnings"] == [{"path": str(docs / "mixed.pdf"),
                                    "warning": "page 2: no text layer, OCR not available"}]
    assert "not available" in summary["ocr"]["engine"]
    status = json.loads(invoke("status", "--json").output)
    assert {f["path"].rsplit("/", 1)[-1] for f in status["failed_files"]} == {"letter-scan.pdf", "fax.png"}
    assert [f["warning"] for f in status["partly_read_files"]] == ["page 2: no text layer, OCR not available"]
    shown = invoke("status").output
    assert "no text layer, OCR not available" in shown and "partly read" in shown
    assert hits("kitchen rota")[0]["path"].endswith("mixed.pdf")  # what could be read was

    monkeypatch.delenv("SBSEARCH_TESSERACT")
    if tesseract_binary() is None:
        return
    # once Tesseract is there, the unchanged files are read again
    later = json.loads(invoke("index", docs, "-m", "fake", "--json").output)
    assert later["failed"] == 0 and later["updated"] == 3 and later["warnings"] == []
    assert hits("gatehouse visitors")[0]["location"] == "p.2"


def test_ocr_languages_are_checked(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Plain text needs no OCR.")
    if tesseract_binary() is None:
        pytest.skip("Tesseract is not installed")
    bad = invoke("index", docs, "-m", "fake", "--ocr-lang", "eng+xyz", ok=False)
    assert bad.exit_code == 1 and "OCR language xyz is not installed" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    good = json.loads(invoke("index", docs, "-m", "fake", "--ocr-lang", "eng", "--json").output)
    assert good["ocr"]["engine"].endswith("languages eng")
