"""What a new user meets first, through the real CLI (a subprocess, output not a terminal, as in a
log): `sbsearch` alone, a folder with nothing readable, the first index, results in 80 columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SB = [sys.executable, "-m", "sbsearch"]


def run(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "80", "SBSEARCH_FAKE_MODELS": "1"}
    return subprocess.run([*SB, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_sbsearch_alone_prints_a_five_line_quick_start():
    done = run()
    assert done.returncode == 0
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 5 and "sbsearch index DIR" in done.stdout and "sbsearch query" in done.stdout
    assert "Usage:" not in done.stdout


def test_a_folder_with_nothing_readable_is_one_line_and_fails(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "data.bin").write_bytes(b"\x00\x01")
    done = run("index", tmp_path / "docs", "-i", tmp_path / "idx", "-m", "fake")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "nothing to search" in errors[0] and "Traceback" not in done.stderr


def test_a_first_index_names_the_next_command_and_results_read_well_in_80_columns(tmp_path):
    deep = tmp_path / "docs" / "handbooks" / "human-resources" / "2025-edition"
    deep.mkdir(parents=True)
    (deep / "employee-travel-and-expenses-handbook-for-all-offices.md").write_text(
        "# Travel and expenses handbook for all offices worldwide\n\n"
        "## Meals and allowances while travelling on business for the company\n\n"
        + "Dinner on a business trip is reimbursed up to 45 EUR per evening with receipts. " * 6, encoding="utf-8")
    idx = tmp_path / "idx"
    first = run("index", tmp_path / "docs", "-i", idx, "-m", "fake")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith('next: sbsearch query "')
    again = run("index", tmp_path / "docs", "-i", idx, "-m", "fake")
    assert "next:" not in again.stdout  # only after a first index
    done = run("query", "dinner allowance on a business trip", "-i", idx, "-k", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    path = "docs/handbooks/human-resources/2025-edition/employee-travel-and-expenses-handbook-for-all-offices.md"
    assert any(line.split()[2:] == [path] for line in lines if line.strip()), done.stdout  # whole, on one line
    assert any(line.strip() == "Travel and expenses handbook for all offices worldwide > Meals and allowances "
               "while travelling on business for the company" for line in lines)
    snippet = [line for line in lines if "reimbursed" in line]
    assert snippet and all(len(line.rstrip()) <= 80 for line in snippet)
    assert lines[-1].startswith("mode: ") and "model: fake" in lines[-1]  # the footer: one line in a log
