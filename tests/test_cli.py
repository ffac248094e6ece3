"""The CLI end to end on a real model (all-MiniLM-L6-v2 from its PyPI package) and real files."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from docgen import make_pdf
from sbsearch.cli import cli

pytestmark = pytest.mark.slow


def invoke(*args, ok=True):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def company(tmp_path):
    docs = tmp_path / "company"
    (docs / "handbooks").mkdir(parents=True)
    make_pdf(docs / "handbooks" / "expenses.pdf", [
        ("Welcome", ["This handbook explains how the company reimburses business costs."]),
        ("Travel claims", ["Submit your travel expense claim within 30 days of returning, "
                           "with receipts attached, through the ExpenseFlow portal."]),
        ("Company cars", ["Pool cars are booked at the reception desk and must be returned with a full tank."]),
    ])
    (docs / "faq.csv").write_text(
        "question,answer\n"
        "How do I reset my password?,Open id.halden.example and choose 'Forgot password'; a code is sent by SMS.\n"
        "Where can I print in colour?,The colour printer is on floor 3 next to the kitchen.\n"
        "How do I get a new laptop?,Raise a hardware request in the IT portal; approval takes two days.\n")
    (docs / "tokyo.txt").write_bytes(
        "東京オフィスのご案内\n\n営業時間は午前九時から午後六時までです。\n\n"
        "来客の方は受付で入館登録をしてください。地震の際は机の下に身を守ってください。".encode("cp932"))
    (docs / "vpn.md").write_text("# VPN\n\n## Connecting from home\n\n"
                                 "Start the GlobalConnect client and sign in with your badge number and MFA code. "
                                 "If the tunnel drops every few minutes, switch the protocol to TCP.\n")
    return docs


def results(output):
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_index_query_status_on_real_files(company, tmp_path):
    summary = json.loads(invoke("index", company, "--model", "minilm", "--json").output)
    assert summary["added"] == 4 and summary["failed"] == 0
    assert summary["chunks_embedded"] == summary["chunks_total"] > 4

    hits = results(invoke("query", "--json", "-k", "3", "how long do I have to hand in travel receipts").output)
    assert hits[0]["path"].endswith("handbooks/expenses.pdf") and hits[0]["page"] == 2
    assert hits[0]["heading"] == "Travel claims"
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert {"query", "rank", "score", "path", "page", "heading", "text"} <= hits[0].keys()

    hits = results(invoke("query", "--json", "-k", "1", "forgot my password").output)
    assert hits[0]["path"].endswith("faq.csv") and "Forgot password" in hits[0]["text"]

    hits = results(invoke("query", "--json", "-k", "1", "東京オフィスの営業時間").output)
    assert hits[0]["path"].endswith("tokyo.txt") and "午前九時" in hits[0]["text"]

    table = invoke("query", "vpn keeps disconnecting at home").output
    assert "vpn.md" in table and "model: minilm (6 layers)" in table

    status = json.loads(invoke("status", "--json").output)
    assert status["documents"] == 4 and status["chunks"] == summary["chunks_total"]
    assert status["models"][0]["name"] == "minilm" and status["models"][0]["vectors"] == status["chunks"]
    assert status["last_runs"][0]["added"] == 4


def test_batch_queries_file(company, tmp_path):
    invoke("index", company, "--model", "minilm", "--quiet")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "a1", "query": "colour printing"}\n{"query": "new laptop", "id": 7}\n')
    rows = results(invoke("query", "--queries", qfile, "-k", "2").output)
    assert [r["query_id"] for r in rows] == ["a1", "a1", "7", "7"]
    assert "faq.csv" in rows[0]["path"]
    plain = tmp_path / "q.txt"
    plain.write_text("colour printing\n\npool car booking\n")
    rows = results(invoke("query", "--queries", plain, "-k", "1").output)
    assert [r["query"] for r in rows] == ["colour printing", "pool car booking"]
    assert "query_id" not in rows[0]


def test_incremental_reindex_through_cli(company):
    invoke("index", company, "--model", "minilm", "--quiet")
    (company / "vpn.md").unlink()
    (company / "tokyo.txt").rename(company / "tokyo-office.txt")
    (company / "new.md").write_text("# Parking\n\nBoston staff park in garage B, level 2.\n")
    s = json.loads(invoke("index", company, "--json").output)
    assert (s["added"], s["updated"], s["removed"], s["unchanged"]) == (2, 0, 2, 2)
    assert s["chunks_embedded"] == 1, "only the new file's text is embedded; the renamed one is reused"
    hits = results(invoke("query", "--json", "-k", "5", "vpn client").output)
    assert all("vpn.md" not in h["path"] for h in hits)


def test_failed_files_are_listed(company):
    (company / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (company / "zero.txt").write_bytes(b"")
    s = json.loads(invoke("index", company, "--model", "minilm", "--json").output)
    assert s["failed"] == 2
    status = json.loads(invoke("status", "--json").output)
    assert {f["path"].rsplit("/", 1)[-1] for f in status["failed_files"]} == {"broken.pdf", "zero.txt"}


@pytest.mark.parametrize("args, message", [
    (["query", ""], "empty query"),
    (["query", "anything"], "no index at"),
    (["status"], "no index at"),
    (["index", "/no/such/folder"], "no such file or folder"),
    (["index", ".", "--model", "no-such-model"], "unknown model"),
    (["query", "--queries", "/no/such/file"], "cannot read queries file"),
])
def test_bad_input_is_one_line_and_nonzero(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_query_with_model_missing_from_index(company):
    invoke("index", company, "--model", "minilm", "--quiet")
    result = CliRunner().invoke(cli, ["query", "vpn", "--model", "full"])
    assert result.exit_code == 1 and "no vectors for model 'full'" in result.output


@pytest.mark.parametrize("argv", [["--help"], ["status"]])
def test_light_commands_do_not_import_torch(tmp_path, argv):
    code = ("import sys; from sbsearch.cli import cli\n"
            f"try:\n    cli({argv!r})\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'sentence_transformers' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_chunking_is_chosen_for_a_new_index_and_kept_by_later_runs(tmp_path, company):
    from sbsearch.index.store import Store

    idx = tmp_path / "idx"
    out = invoke("index", company, "-i", idx, "--chunk-tokens", "64", "--chunk-overlap", "8", "--json")
    small = json.loads(out.stdout)["chunks_total"]
    store = Store(idx)
    assert (store.get_meta("chunk_tokens"), store.get_meta("chunk_overlap")) == ("64", "8")
    invoke("index", company, "-i", idx, "--chunk-tokens", "64")  # as the index has it: fine
    r = invoke("index", company, "-i", idx, "--chunk-tokens", "128", ok=False)
    assert r.exit_code != 0 and "fixed by its first run" in r.output and "Traceback" not in r.output
    default = json.loads(invoke("index", company, "-i", tmp_path / "idx2", "--json").stdout)["chunks_total"]
    assert small > default  # shorter passages: more of them
