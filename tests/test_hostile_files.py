"""A corpus of hostile files, generated here (no committed binaries): each is reported with its
reason, counted, listed by `status`, and none stops the run or loses what is indexed."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from docgen import make_pdf
from sbsearch.cli import cli
from sbsearch.index import Indexer
from sbsearch.index.store import Store


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "hostile"
    root.mkdir()
    good = make_pdf(root / "good.pdf", [("Parking", ["Staff park in garage B."])])
    (root / "corrupt.pdf").write_bytes(good.read_bytes()[:300])
    (root / "not-a-pdf.pdf").write_bytes(b"hello, I am text pretending to be a PDF")
    make_pdf(root / "encrypted.pdf", [("Salaries", ["Confidential."])], encrypt="secret")
    # a PDF with only a drawing, no text layer (a scan looks like this to a text extractor)
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(root / "scan.pdf"))
    c.rect(50, 50, 300, 300, fill=1)
    c.showPage()
    c.save()
    (root / "zero.txt").write_bytes(b"")
    (root / "whitespace.md").write_text("   \n\n\t\n")
    (root / "binary.txt").write_bytes(os.urandom(4096))
    (root / "bad-utf8.txt").write_bytes(b"Valid start \xff\xfe\xfa then \xc3\x28 broken bytes " * 20)
    (root / "sjis.txt").write_bytes("東京オフィスの案内です。受付は一階にあります。".encode("cp932") + b"\x81")
    big = root / "huge.txt"
    with open(big, "wb") as f:
        line = b"this is a very long log line that repeats many many times to make the file large\n"
        f.write(line * (50 * (1 << 20) // len(line) + 1))
    deep = root
    for i in range(60):
        deep = deep / f"level{i}"
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("# Deep\n\nA document far down the tree about the kitchen rota.")
    os.symlink(root, root / "level0" / "loop-to-root")
    os.symlink(root / "missing-target.txt", root / "dangling.txt")
    (root / "name with spaces & ümlauts – 東京.txt").write_text("Odd names are fine: the fire drill is on Friday.")
    (root / "-starts-with-dash.md").write_text("# Dash\n\nA name that looks like an option.")
    (root / "new\nline.txt").write_text("A newline in a file name, about the printer on floor 3.")
    (root / "faq-no-pairs.json").write_text(json.dumps({"not": "an faq"}))
    (root / "truncated.docx").write_bytes(b"PK\x03\x04\x14\x00")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")  # a JPEG cut off after its first bytes
    (root / "backup.rar").write_bytes(b"Rar!\x1a\x07\x00")
    return root


EXPECTED_FAILED = {
    "corrupt.pdf": "corrupt or unreadable PDF",
    "not-a-pdf.pdf": "not a PDF file",
    "encrypted.pdf": "encrypted PDF",
    "scan.pdf": "no text layer",
    "zero.txt": "empty file",
    "whitespace.md": "empty file",
    "binary.txt": "binary data",
    "huge.txt": "file too large",
    "dangling.txt": "broken symbolic link",
    "faq-no-pairs.json": "no question/answer pairs",
    "truncated.docx": "not a readable .docx",
    "photo.jpg": "not a readable image",
}
EXPECTED_OK = {"good.pdf", "bad-utf8.txt", "sjis.txt", "deep.md", "name with spaces & ümlauts – 東京.txt",
               "-starts-with-dash.md", "new\nline.txt"}


def test_every_hostile_file_is_reported_and_the_run_completes(hostile, tmp_path):
    s = Indexer(tmp_path / "idx", "fake").run([hostile])
    failed = {os.path.basename(f["path"]): f["error"] for f in s.failures}
    assert set(failed) == set(EXPECTED_FAILED), failed
    for name, reason in EXPECTED_FAILED.items():
        assert reason in failed[name], (name, failed[name])
    assert s.failed == len(EXPECTED_FAILED)
    assert s.added == len(EXPECTED_OK)
    assert [os.path.basename(f["path"]) for f in s.skipped_files] == ["backup.rar"]
    docs = Store(tmp_path / "idx").documents()
    assert {os.path.basename(p) for p, d in docs.items() if d.status == "ok"} == EXPECTED_OK
    # status lists each failure with its reason
    result = CliRunner().invoke(cli, ["status", "-i", str(tmp_path / "idx"), "--json"])
    listed = {os.path.basename(f["path"]) for f in json.loads(result.output)["failed_files"]}
    assert listed == set(EXPECTED_FAILED)
    # the loop symlink was not followed: the deep document is indexed once
    assert sum(1 for p in docs if p.endswith("deep.md")) == 1


def test_file_deleted_between_scan_and_read_is_treated_as_gone(tmp_path, monkeypatch):
    import sbsearch.index.indexer as indexer_mod

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Alpha about parking.")
    (docs / "b.txt").write_text("Beta about lunch.")
    Indexer(tmp_path / "idx", "fake").run([docs])
    real_scan = indexer_mod.scan

    def scan_then_delete(roots, **kwargs):
        found = real_scan(roots, **kwargs)
        (docs / "b.txt").unlink()  # vanishes after the scan saw it
        return found

    monkeypatch.setattr(indexer_mod, "scan", scan_then_delete)
    s = Indexer(tmp_path / "idx", "fake").run([docs])
    assert s.removed == 1 and s.failed == 0
    assert list(Store(tmp_path / "idx").documents()) == [str(docs / "a.txt")]


def test_write_failure_keeps_previous_state(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) makes the index's writes fail like a full disk: one clear
    line, non-zero exit, and the previous index still answers."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Parking\n\nStaff park in garage B.")
    index = tmp_path / "idx"
    env = {**os.environ, "SBSEARCH_MODEL": "fake"}
    assert subprocess.run([sys.executable, "-m", "sbsearch", "index", str(docs), "-i", str(index), "-q"],
                          env=env).returncode == 0
    for i in range(60):
        (docs / f"new{i}.md").write_text(f"# Note {i}\n\n" + "filler text about the office kitchen " * 200)
    db_size = (index / "index.db").stat().st_size + (index / "index.db-wal").stat().st_size if \
        (index / "index.db-wal").exists() else (index / "index.db").stat().st_size

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (db_size + 200_000, db_size + 200_000))

    proc = subprocess.run([sys.executable, "-m", "sbsearch", "index", str(docs), "-i", str(index), "-q"],
                          env=env, preexec_fn=limit, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    store = Store(index)
    assert list(store.documents()) == [str(docs / "a.md")]
    check = subprocess.run([sys.executable, "-m", "sbsearch", "check", "-i", str(index)], env=env)
    assert check.returncode == 0
    q = subprocess.run([sys.executable, "-m", "sbsearch", "query", "parking", "-i", str(index), "--json"],
                       env=env, capture_output=True, text=True)
    assert q.returncode == 0 and "garage B" in q.stdout


# ------------------------------------------------------------------------------------ the formats of issue 20

def _zip_bomb(path, megabytes: int = 64):
    """An .xlsx-looking zip whose sheet part unpacks 1000-fold (zeros compress that well)."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as part:
            for _ in range(megabytes):
                part.write(b"\0" * (1 << 20))
    return path


def _png_header(path, width: int, height: int):
    """A PNG that claims width x height pixels: a few hundred bytes on disk."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
                     + chunk(b"IEND", b""))
    return path


def _encrypted_xlsx(path, tmp_path):
    import msoffcrypto.format.ooxml

    from docgen import make_xlsx

    plain = make_xlsx(tmp_path / "plain.xlsx", {"Salaries": [["Name", "Band"], ["A. Example", "E5"]]})
    with open(plain, "rb") as src, open(path, "wb") as out:
        msoffcrypto.format.ooxml.OOXMLFile(src).encrypt("secret", out)
    return path


@pytest.fixture(scope="module")
def hostile_formats(tmp_path_factory):
    """Built once per module: the tests read these files and add none."""
    from docgen import make_image_pdf, make_scan, make_xlsx

    tmp_path = tmp_path_factory.mktemp("hostile-formats")
    root = tmp_path / "files"
    root.mkdir()
    _zip_bomb(root / "bomb.xlsx")
    (root / "truncated.pptx").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    _encrypted_xlsx(root / "locked.xlsx", tmp_path)
    # an old binary .ppt renamed: a compound file without the encrypted-package stream
    (root / "renamed-ppt.pptx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024)
    _png_header(root / "poster.png", 20_000, 20_000)
    make_xlsx(root / "sensor-dump.xlsx", {"Log": [["Timestamp", "Reading"]] +
                                          [[f"2025-01-01 {i // 60 % 24:02d}:{i % 60:02d}", i] for i in range(20_050)]},
              write_only=True)
    # text layers that lie: unmapped glyphs over a real scan (OCR reads the scan), and symbols only
    scan = make_scan(tmp_path / "scan.png", [("Archive", ["The paper archive moves to room 0.12 in June."])])
    make_image_pdf(root / "bad-ocr-layer.pdf", [scan], invisible_text="(cid:3)(cid:17)(cid:42)(cid:9)" * 12)
    symbols = tmp_path / "symbols.png"
    make_scan(symbols, [("¤ § ¶ © ® ° ± ¤ § ¶", ["¤¤ §§ ¶¶ ©© ®® °° ±± ¤¤ §§ ¶¶ ©© ®® °° ±±"])])
    make_image_pdf(root / "garbage-only.pdf", [symbols], invisible_text="¤§¶©®°±" * 12)
    return root


FORMAT_FAILURES = {
    "bomb.xlsx": "zip bomb",
    "truncated.pptx": "not a readable .pptx file (corrupt zip container)",
    "locked.xlsx": "password-protected .xlsx file",
    "renamed-ppt.pptx": "old binary Office format",
    "poster.png": "image too large (400,000,000 pixels",
    "garbage-only.pdf": "OCR found no readable text",
}


def test_hostile_formats_are_reported_and_nothing_indexed_is_lost(hostile_formats, tmp_path):
    from sbsearch.ingest.ocr import tesseract_binary

    if tesseract_binary() is None:
        pytest.skip("Tesseract is not installed (scripts/setup.sh installs it)")
    docs = Path(shutil.copytree(hostile_formats, tmp_path / "docs"))
    (docs / "good.md").write_text("# Parking\n\nStaff park in garage B.")
    runner = CliRunner(env={"COLUMNS": "200"})
    index = tmp_path / "idx"
    first = runner.invoke(cli, ["index", str(docs / "good.md"), "-i", str(index), "-m", "fake", "-q"])
    assert first.exit_code == 0, first.output
    result = runner.invoke(cli, ["index", str(docs), "-i", str(index), "-m", "fake", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    failed = {os.path.basename(f["path"]): f["error"] for f in summary["failures"]}
    assert set(failed) == set(FORMAT_FAILURES), failed
    for name, reason in FORMAT_FAILURES.items():
        assert reason in failed[name], (name, failed[name])
        assert "\n" not in failed[name] and "Traceback" not in failed[name]
    assert summary["warnings"] == [{"path": str(docs / "sensor-dump.xlsx"),
                                    "warning": "sheet Log: only the first 20,000 rows read (limit: 20,000 rows per sheet)"}]
    rows = Store(index).documents()
    assert rows[str(docs / "good.md")].status == "ok"
    assert rows[str(docs / "bad-ocr-layer.pdf")].status == "ok"  # OCR read what the page shows
    hits = runner.invoke(cli, ["query", "-i", str(index), "--json", "--mode", "lexical", "paper archive room"])
    assert json.loads(hits.output.splitlines()[0])["path"].endswith("bad-ocr-layer.pdf")
    hits = runner.invoke(cli, ["query", "-i", str(index), "--json", "--mode", "lexical", "garage"])
    assert json.loads(hits.output.splitlines()[0])["path"].endswith("good.md")
    status = json.loads(runner.invoke(cli, ["status", "-i", str(index), "--json"]).output)
    assert {os.path.basename(f["path"]) for f in status["failed_files"]} == set(FORMAT_FAILURES)
    assert [os.path.basename(f["path"]) for f in status["partly_read_files"]] == ["sensor-dump.xlsx"]


def test_garbage_text_layer_without_tesseract(hostile_formats, tmp_path, monkeypatch):
    monkeypatch.setenv("SBSEARCH_TESSERACT", "")
    s = Indexer(tmp_path / "idx", "fake").run([hostile_formats / "bad-ocr-layer.pdf"])
    assert s.failures[0]["error"] == "page 1: unreadable text layer, OCR not available"


@pytest.mark.slow
def test_mail_with_a_50_mb_attachment(tmp_path):
    """The message is indexed, its attachment reported with its size; by default the whole file
    is over --max-file-mb and reported as such."""
    from docgen import make_email, write_eml

    docs = tmp_path / "docs"
    docs.mkdir()
    message = make_email("Scanned archive", "Jens Pohl <jens.pohl@halden-instruments.example>",
                         "archive@halden-instruments.example", "Mon, 03 Mar 2025 09:00:00 +0100",
                         "The scanned customs archive of 2019 is attached.",
                         attachments=[("customs-2019.pdf", os.urandom(50 << 20)), ("note.txt", b"Shelf 4, box 12.")])
    write_eml(docs / "archive.eml", message)
    runner = CliRunner()
    default = json.loads(runner.invoke(cli, ["index", str(docs), "-m", "fake", "--json", "-i", str(tmp_path / "a")]).output)
    assert default["failures"][0]["error"].startswith("file too large (68 MB > 32 MB")
    result = runner.invoke(cli, ["index", str(docs), "-m", "fake", "--json", "-i", str(tmp_path / "b"),
                                 "--max-file-mb", "100"])
    summary = json.loads(result.output)
    assert summary["added"] == 2  # the message and note.txt
    assert summary["failures"] == [{"path": str(docs / "archive.eml#customs-2019.pdf"),
                                    "error": "attachment too large (50 MB; limit 25 MB)"}]
