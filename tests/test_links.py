"""Links on the share (issue #26): a symbolic or hard link must not carry a file past its access
rules. Real links on disk, the real CLI index run, a real server process and real HTTP: a file is
readable only by those whom the rules of every path it is reached by allow, a link out of the
indexed folders is not read, and /doc serves only the bytes that were indexed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sbsearch.cli import cli
from sbsearch.index.store import Store
from test_serve import ACCESS, Server, api_paths, invoke, sign_in

HR_TEXT = "# Salary bands 2025\n\nBand S3 pays 71,000 EUR. The confidential code is ZEBRA-9931.\n"
TRAVEL_TEXT = "# Travel rules\n\nBook trains through the travel desk. Receipts within 30 days. Code TRAVEL-1200.\n"


@pytest.fixture
def share(tmp_path) -> Path:
    docs = tmp_path / "share"
    for folder in ("hr", "public", "secret"):
        (docs / folder).mkdir(parents=True)
    (docs / "hr" / "salaries-2025.md").write_text(HR_TEXT)
    (docs / "public" / "travel.md").write_text(TRAVEL_TEXT)
    (docs / "public" / "memo.md").write_text("# Memo\n\nThe canteen opens at eight. MEMO-6060.\n")
    (docs / "secret" / "board.md").write_text("# Board minutes\n\nThe merger code name is FALCON-7788.\n")
    return docs


def index_share(tmp_path, *roots, rules_text=ACCESS) -> Path:
    rules = tmp_path / "access.toml"
    rules.write_text(rules_text)
    idx = tmp_path / "idx"
    invoke("index", *roots, "-i", idx, "-m", "fake", "-q", "--access", rules)
    if not Store(idx).user("sam"):
        invoke("users", "add", "harriet", "-i", idx, "--groups", "hr,staff", "--password-stdin",
               input="correct horse\n")
        invoke("users", "add", "sam", "-i", idx, "--groups", "staff", "--password-stdin", input="battery staple\n")
    return idx


def doc_ids(idx: Path) -> dict[str, int]:
    """Document id by file name, from the index itself (also documents nobody may read)."""
    return {Path(p).name: row.id for p, row in Store(idx).documents().items()}


def failed_files(idx: Path) -> dict[str, str]:
    status = json.loads(invoke("status", "-i", idx, "--json").output)
    return {Path(f["path"]).name: f["error"] for f in status["failed_files"]}


def bodies(client, ids) -> str:
    """Everything the client can download among these document ids."""
    out = []
    for i in ids:
        r = client.get(f"/doc/{i}")
        assert r.status_code in (200, 404), r.status_code
        if r.status_code == 200:
            out.append(r.text)
    return "".join(out)


def test_a_symlink_into_a_stricter_folder_gets_the_stricter_access(share, tmp_path):
    os.symlink("../hr/salaries-2025.md", share / "public" / "link-into-hr.md")
    idx = index_share(tmp_path, share)
    ids = doc_ids(idx)
    assert "link-into-hr.md" in ids  # read (its target is inside the indexed folder) ...
    server = Server(idx)
    try:
        sam, harriet = sign_in(server, "sam", "battery staple"), sign_in(server, "harriet", "correct horse")
        assert not api_paths(sam, "ZEBRA-9931 salary band 71,000", mode="lexical")  # ... but not for sam
        assert set(api_paths(sam, "ZEBRA-9931 salary band", mode="hybrid")) <= {"public/travel.md", "public/memo.md"}
        assert sam.get(f"/doc/{ids['link-into-hr.md']}").status_code == 404
        assert "ZEBRA" not in bodies(sam, range(1, 20))
        page = sam.get("/", params={"q": "ZEBRA-9931 salary band"}).text
        assert "71,000" not in page and "link-into-hr" not in page
        # the HR reader finds it through both paths and can open the link
        assert set(api_paths(harriet, "ZEBRA-9931", mode="lexical")) == {"hr/salaries-2025.md",
                                                                          "public/link-into-hr.md"}
        r = harriet.get(f"/doc/{ids['link-into-hr.md']}")
        assert r.status_code == 200 and "ZEBRA-9931" in r.text
        assert "link-into-hr.md" in r.headers["content-disposition"]
        assert r.headers["content-security-policy"].startswith("sandbox; default-src 'none'")
        assert r.headers["x-content-type-options"] == "nosniff"
    finally:
        server.stop()
    public = Server(idx, "--public")
    try:
        c = public.client()
        assert not api_paths(c, "ZEBRA-9931 salary band", mode="lexical")
        assert "ZEBRA" not in bodies(c, range(1, 20))
        assert api_paths(c, "TRAVEL-1200", mode="lexical") == ["public/travel.md"]
    finally:
        public.stop()
    # the admin at the CLI sees that the link is HR's: its stored readers are those of its target
    out = CliRunner().invoke(cli, ["query", "ZEBRA-9931", "-i", str(idx), "--json", "--as", "sam", "--mode",
                                   "lexical"]).output
    assert "ZEBRA" not in out and "link-into-hr" not in out


def test_a_file_swapped_for_a_link_is_not_served_before_the_next_index(share, tmp_path):
    idx = index_share(tmp_path, share)
    ids = doc_ids(idx)
    server = Server(idx)
    try:
        sam, harriet = sign_in(server, "sam", "battery staple"), sign_in(server, "harriet", "correct horse")
        assert sam.get(f"/doc/{ids['travel.md']}").status_code == 200
        travel = share / "public" / "travel.md"
        travel.unlink()
        os.symlink("../hr/salaries-2025.md", travel)
        for who in (sam, harriet):  # not what was indexed: refused to everyone, as if missing
            r = who.get(f"/doc/{ids['travel.md']}")
            assert r.status_code == 404 and "ZEBRA" not in r.text
        # a link to a file outside the share, with the indexed text: still not served (the
        # server opens the path it resolved without following links, inside the indexed folder)
        outside = tmp_path / "copy-of-memo.md"
        outside.write_bytes((share / "public" / "memo.md").read_bytes())
        memo = share / "public" / "memo.md"
        memo.unlink()
        os.symlink(outside, memo)
        assert sam.get(f"/doc/{ids['memo.md']}").status_code == 404
        # changed in place (same name, other bytes): refused until indexed again
        travel.unlink()
        travel.write_text(TRAVEL_TEXT + "\nA line added after indexing.\n")
        assert sam.get(f"/doc/{ids['travel.md']}").status_code == 404
        invoke("index", share, "-i", idx, "-q")
        assert sam.get(f"/doc/{doc_ids(idx)['travel.md']}").status_code == 200
    finally:
        server.stop()


def test_links_inside_the_same_access_keep_working(share, tmp_path):
    public = share / "public"
    os.symlink("travel.md", public / "travel-alias.md")  # a symbolic link next to its target
    os.link(public / "memo.md", public / "memo-copy.md")  # a hard link, both names public
    (share / "hr" / "letters").mkdir()
    os.symlink("../salaries-2025.md", share / "hr" / "letters" / "bands.md")  # HR to HR
    idx = index_share(tmp_path, share)
    assert not failed_files(idx)
    ids = doc_ids(idx)
    server = Server(idx)
    try:
        sam, harriet = sign_in(server, "sam", "battery staple"), sign_in(server, "harriet", "correct horse")
        assert set(api_paths(sam, "TRAVEL-1200", mode="lexical")) == {"public/travel.md", "public/travel-alias.md"}
        assert set(api_paths(sam, "MEMO-6060", mode="lexical")) == {"public/memo.md", "public/memo-copy.md"}
        for name in ("travel-alias.md", "memo-copy.md"):
            r = sam.get(f"/doc/{ids[name]}")
            assert r.status_code == 200 and ("TRAVEL-1200" in r.text or "MEMO-6060" in r.text)
        assert set(api_paths(harriet, "ZEBRA-9931", mode="lexical")) == {"hr/salaries-2025.md",
                                                                          "hr/letters/bands.md"}
        assert "ZEBRA-9931" in harriet.get(f"/doc/{ids['bands.md']}").text
        assert not api_paths(sam, "ZEBRA-9931", mode="lexical")
    finally:
        server.stop()


def test_hard_links_out_of_the_share_or_across_rules(share, tmp_path):
    outside = tmp_path / "server-secret.txt"
    outside.write_text("root password is hunter2 OUTSIDE-5555\n")
    os.link(outside, share / "public" / "notes.txt")  # a name outside the indexed folder
    os.link(share / "hr" / "salaries-2025.md", share / "public" / "pay.md")  # both inside, HR's rules win
    idx = index_share(tmp_path, share)
    failed = failed_files(idx)
    assert set(failed) == {"notes.txt"}
    assert failed["notes.txt"].startswith("hard link to a file outside the indexed folders: not read")
    ids = doc_ids(idx)
    # not even the admin at the CLI finds the outside file's text
    out = CliRunner().invoke(cli, ["query", "OUTSIDE-5555 hunter2", "-i", str(idx), "--json", "--mode",
                                   "lexical"]).output
    assert "hunter2" not in out
    server = Server(idx)
    try:
        sam, harriet = sign_in(server, "sam", "battery staple"), sign_in(server, "harriet", "correct horse")
        assert not api_paths(harriet, "OUTSIDE-5555 hunter2", mode="lexical")
        assert harriet.get(f"/doc/{ids['notes.txt']}").status_code == 404
        assert not api_paths(sam, "ZEBRA-9931 salary", mode="lexical")
        assert sam.get(f"/doc/{ids['pay.md']}").status_code == 404
        assert "public/pay.md" in api_paths(harriet, "ZEBRA-9931", mode="lexical")
        assert "ZEBRA" in harriet.get(f"/doc/{ids['pay.md']}").text
        # a public file that becomes a hard link to an outside file: refused at once (other
        # bytes), and out of the index at the next run
        memo = share / "public" / "memo.md"
        assert sam.get(f"/doc/{ids['memo.md']}").status_code == 200
        memo.unlink()
        os.link(outside, memo)
        assert sam.get(f"/doc/{ids['memo.md']}").status_code == 404
        invoke("index", share, "-i", idx, "-q")
        assert failed_files(idx)["memo.md"].startswith("hard link to a file outside the indexed folders")
        assert not api_paths(harriet, "MEMO-6060 canteen", mode="lexical")
        assert not api_paths(harriet, "hunter2 OUTSIDE-5555", mode="lexical")
        assert "hunter2" not in bodies(harriet, range(1, 20))
    finally:
        server.stop()


def test_an_unchanged_file_that_becomes_a_link_and_rule_changes_follow_the_target(share, tmp_path):
    # a public copy of the HR file (same bytes): public, as any copy someone made
    copy = share / "public" / "bands.md"
    copy.write_text(HR_TEXT)
    os.symlink("../secret/board.md", share / "public" / "board-link.md")
    idx = index_share(tmp_path, share)
    server = Server(idx)
    try:
        sam = sign_in(server, "sam", "battery staple")
        assert api_paths(sam, "ZEBRA-9931", mode="lexical") == ["public/bands.md"]
        assert not api_paths(sam, "FALCON-7788", mode="lexical")  # secret: default deny wins over public
        # the copy is replaced by a link to the HR file: the same bytes, so it is not read again,
        # but its readers are now the HR file's
        copy.unlink()
        os.symlink("../hr/salaries-2025.md", copy)
        summary = json.loads(invoke("index", share, "-i", idx, "--json").output)
        assert summary["chunks_embedded"] == 0 and summary["updated"] == 0
        assert not api_paths(sam, "ZEBRA-9931", mode="lexical")
        # rules change without any file read again: the link follows its target's new rules
        rules = tmp_path / "access.toml"
        rules.write_text(ACCESS + '[[rule]]\nfolders = ["secret"]\ngroups = ["staff"]\n')
        invoke("index", share, "-i", idx, "-q")
        assert set(api_paths(sam, "FALCON-7788", mode="lexical")) == {"secret/board.md", "public/board-link.md"}
        assert not api_paths(sam, "ZEBRA-9931", mode="lexical")
        # and a run over another folder re-resolves them the same way (their links are remembered)
        other = tmp_path / "other"
        other.mkdir()
        (other / "note.md").write_text("# Note\n\nNothing to see. NOTE-1111.\n")
        rules.write_text(ACCESS)
        invoke("index", other, "-i", idx, "-q")
        assert not api_paths(sam, "FALCON-7788", mode="lexical")
        rules.write_text(ACCESS.replace('folders = ["hr"]', 'folders = ["hr", "zzz"]'))
        invoke("index", other, "-i", idx, "-q")
        assert not api_paths(sam, "ZEBRA-9931", mode="lexical")
    finally:
        server.stop()


def test_a_link_into_another_indexed_folder_follows_that_folders_rules(share, tmp_path):
    second = tmp_path / "second"
    (second / "hr").mkdir(parents=True)
    (second / "hr" / "plan.md").write_text("# Hiring plan\n\nTwo engineers in Q3. PLAN-3030.\n")
    os.symlink(second / "hr" / "plan.md", share / "public" / "plan-link.md")
    idx = index_share(tmp_path, share, second)
    assert not failed_files(idx)
    ids = doc_ids(idx)
    server = Server(idx)
    try:
        sam, harriet = sign_in(server, "sam", "battery staple"), sign_in(server, "harriet", "correct horse")
        assert not api_paths(sam, "PLAN-3030 hiring", mode="lexical")
        assert sam.get(f"/doc/{ids['plan-link.md']}").status_code == 404
        assert set(api_paths(harriet, "PLAN-3030", mode="lexical")) == {"hr/plan.md", "public/plan-link.md"}
        r = harriet.get(f"/doc/{ids['plan-link.md']}")
        assert r.status_code == 200 and "PLAN-3030" in r.text
    finally:
        server.stop()
    # indexed alone, the first folder's link leads outside the indexed folders: not read
    idx2 = tmp_path / "idx2"
    invoke("index", share, "-i", idx2, "-m", "fake", "-q", "--access", tmp_path / "access.toml")
    assert failed_files(idx2)["plan-link.md"] == "symbolic link to a file outside the indexed folders: not read"


def test_a_link_kept_in_its_previous_version_keeps_its_targets_access(share, tmp_path, monkeypatch):
    import sbsearch.index.indexer as indexer_mod

    pay = share / "public" / "pay.md"
    os.symlink("../hr/salaries-2025.md", pay)
    idx = index_share(tmp_path, share)
    # the link becomes a plain public file that the indexer cannot read (chmod 000 does not stop
    # root, so the permission error is injected): the HR text indexed under it is kept, and so
    # must be its HR readers
    pay.unlink()
    pay.write_text("# Pay\n\nNothing to see here.\n")
    real_read = indexer_mod._read_checked

    def deny(real, st):
        if real.endswith("/public/pay.md"):
            raise PermissionError(13, "Permission denied", real)
        return real_read(real, st)

    monkeypatch.setattr(indexer_mod, "_read_checked", deny)
    summary = json.loads(invoke("index", share, "-i", idx, "--json").output)
    assert [f["error"] for f in summary["failures"]] == ["cannot read: Permission denied (previous version kept)"]
    for as_user, visible in (("sam", False), ("harriet", True)):
        out = invoke("query", "ZEBRA-9931", "-i", idx, "--json", "--as", as_user, "--mode", "lexical").output
        assert ("public/pay.md" in out) is visible
