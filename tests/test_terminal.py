"""The terminal is a sink too (issue #26): text from documents and file names reaches the admin's
terminal only as text. The real CLI in a subprocess, its raw stdout and stderr bytes checked: no
escape sequence of a document (ESC, C1 CSI 0x9b, OSC 8 hyperlinks, OSC 52 clipboard writes, BEL)
gets through, and rich markup in a heading or a name is printed literally."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ESC = "\x1b"
EVIL_NAME = f"evil{ESC}[2Jname.md"  # clears the screen of whoever lists it
MARKUP_NAME = "[bold red]NAME-INJECTED [link=https:evil.example]x.txt"  # no "/" in a name: no closing tags
OSC_NAME = f"clip{ESC}]52;c;ZXZpbA=={chr(7)}board.txt"  # an OSC 52 clipboard write, empty file
HEADING = "[bold red]INJECTED[/bold red] notice [link=http://evil.example]click[/link]"
BODY = (
    "The quarterly parking notice PAYLOAD-4242 says that staff park in garage B from Monday on. "
    f"Red text {ESC}[31mRED{ESC}[0m and a hidden link {ESC}]8;;http://evil.example{ESC}\\here{ESC}]8;;{ESC}\\ "
    f"and the clipboard {ESC}]52;c;ZXZpbA=={chr(7)} and a C1 CSI \x9b2J and DEL \x7f and a bidi override "
    "\u202etxt.exe\u202c. The notice goes on about visitors, who sign in at the front desk, and about "
    "bicycles, which are kept in the basement room next to the lifts, and about the car wash on Fridays."
)


def sbsearch(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SBSEARCH_FAKE_MODELS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "sbsearch", *map(str, args)], capture_output=True, env=env,
                          timeout=120, cwd=cwd)


def assert_terminal_safe(raw: bytes) -> str:
    """Nothing a terminal acts on: no ESC (so no CSI, OSC 8, OSC 52), no C1 CSI, no BEL, no bidi override."""
    for bad in (b"\x1b", b"\x9b", b"\x07", b"\x7f", "\u202e".encode()):
        assert bad not in raw, (bad, raw[max(0, raw.find(bad) - 80):raw.find(bad) + 80])
    return raw.decode("utf-8")


def strings(value) -> str:
    """Every string of a JSON value, joined."""
    if isinstance(value, dict):
        return " ".join(strings(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(strings(v) for v in value)
    return value if isinstance(value, str) else ""


@pytest.fixture
def share(tmp_path) -> Path:
    docs = tmp_path / "share"
    docs.mkdir()
    (docs / EVIL_NAME).write_text(f"# {HEADING}\n\n{BODY}\n")
    (docs / MARKUP_NAME).write_text("Plain words about the fire drill on Friday, FIRE-5151, nothing else.\n")
    (docs / OSC_NAME).write_text("")  # fails (empty file): its name is in the failure lines
    assert any(ESC in name for name in os.listdir(docs))  # a real file of that name
    return docs


@pytest.fixture
def index(share, tmp_path) -> Path:
    idx = tmp_path / "idx"
    r = sbsearch("index", share, "-i", idx, "-m", "fake")
    assert r.returncode == 0, r.stderr
    return idx


def test_query_shows_names_headings_and_passages_as_text(index):
    r = sbsearch("query", "PAYLOAD-4242 parking notice", "-i", index, "--mode", "lexical", "-k", "3")
    assert r.returncode == 0, r.stderr
    out = assert_terminal_safe(r.stdout + r.stderr)
    assert "PAYLOAD" in out
    assert "evil\\x1b[2Jname.md" in out  # the name, its escape shown
    assert "[bold red]INJECTED" in out and "[link=http://evil.example]" in out  # markup as text
    assert "\\x1b[31mRED" in out and "\\x1b]52;c;ZXZpbA==\\x07" in out and "\\x9b2J" in out
    # the same in a side-by-side comparison with another model
    r = sbsearch("query", "PAYLOAD-4242 parking notice", "-i", index, "--mode", "lexical", "--compare", "fake-48")
    assert r.returncode == 0, r.stderr
    assert "evil\\x1b[2Jname.md" in assert_terminal_safe(r.stdout + r.stderr)


def test_query_json_keeps_the_text_and_escapes_what_a_terminal_acts_on(index):
    r = sbsearch("query", "PAYLOAD-4242 parking notice", "-i", index, "--mode", "lexical", "--json")
    assert r.returncode == 0, r.stderr
    assert_terminal_safe(r.stdout + r.stderr)
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    hit = next(row for row in rows if "PAYLOAD" in row["text"])
    assert hit["path"].endswith(EVIL_NAME)  # the same value, escaped only in its JSON form
    assert HEADING in hit["heading"] and "\x9b2J" in hit["text"] and f"{ESC}]52;c;" in hit["text"]


def test_index_status_and_errors_show_file_names_as_text(share, tmp_path):
    idx = tmp_path / "idx"
    r = sbsearch("index", share, "-i", idx, "-m", "fake")
    assert r.returncode == 0, r.stderr
    out = assert_terminal_safe(r.stdout + r.stderr)
    assert "clip\\x1b]52;c;ZXZpbA==\\x07board.txt" in out and "empty file" in out
    r = sbsearch("status", "-i", idx)
    out = assert_terminal_safe(r.stdout + r.stderr)
    assert "clip\\x1b]52;c;ZXZpbA==\\x07board.txt" in out
    for args in (("status", "-i", idx, "--json"), ("index", share, "-i", tmp_path / "idx2", "-m", "fake", "--json")):
        r = sbsearch(*args)
        assert r.returncode == 0, r.stderr
        assert_terminal_safe(r.stdout + r.stderr)
        assert OSC_NAME in strings(json.loads(r.stdout))  # the same value, escaped only in its JSON form
    # a markup name in the query results is shown literally
    r = sbsearch("query", "FIRE-5151 fire drill", "-i", idx, "--mode", "lexical")
    out = assert_terminal_safe(r.stdout + r.stderr)
    assert "[bold red]NAME-INJECTED" in out and "[link=https:evil" in out  # (the column may fold the name)
    # an error naming a path: one line, the escape shown
    r = sbsearch("index", tmp_path / f"gone{ESC}[2J{ESC}]8;;http://evil.example{ESC}\\", "-i", idx)
    assert r.returncode != 0
    err = assert_terminal_safe(r.stdout + r.stderr)
    assert "no such file or folder" in err and "gone\\x1b[2J" in err


def test_progress_lines_show_text_as_text():
    from rich.console import Console

    from sbsearch.progress import RichProgress

    buf = io.StringIO()
    progress = RichProgress(Console(file=buf, force_terminal=True, width=120))
    progress.message(f"loading model [red]x[/red] {ESC}]52;c;ZXZpbA=={chr(7)}")
    progress.start(f"reading {ESC}[2J files", 3)
    progress.advance(1)
    progress.stop()
    out = buf.getvalue()
    assert f"{ESC}]52" not in out and f"{ESC}[2J" not in out and chr(7) not in out  # rich's own styles only
    assert "[red]x[/red]" in out and "\\x1b]52;c;" in out


@pytest.mark.parametrize("text", [f"a{ESC}[2Jb", "a\x9bb", "a\x7fb", "a\u202eb", "a\x07b", "a\rb", "a\x85b"])
def test_visible_and_json_visible(text):
    from sbsearch.textsafe import json_visible, visible

    shown = visible(text)
    assert shown.startswith("a") and shown.endswith("b") and len(shown) > 3 and shown.isprintable()
    assert visible("line one\n\tline two", newlines=True) == "line one\n\tline two"
    assert visible("name\nfake line") == "name\\x0afake line"
    # JSON written with ensure_ascii=False: C0 is escaped by json.dumps, the rest by json_visible
    dumped = json_visible(json.dumps({"t": text}, ensure_ascii=False))
    assert dumped.isascii() and json.loads(dumped) == {"t": text}
