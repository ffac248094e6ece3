"""IndexLocation: a folder or a PostgreSQL URL, and what differs between them, answered once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbsearch import config
from sbsearch.config import IndexLocation
from sbsearch.index.location import open_store
from sbsearch.index.store import SqliteStore


def test_a_url_is_a_shared_store_named_without_its_password():
    location = IndexLocation.of("postgresql://search:s3cret@db.example:5432/handbooks?sslmode=require")
    assert location.shared and location.value == location.url
    assert location.display == "postgresql://search:***@db.example:5432/handbooks?sslmode=require"
    assert location.name == "handbooks"
    assert location.exists()  # asked only when opened


def test_a_url_without_a_database_never_shows_its_password():
    location = IndexLocation.of("postgres://search:s3cret@db.example")
    assert "s3cret" not in location.name and "s3cret" not in location.display


def test_a_folder_and_the_default(tmp_path, monkeypatch):
    location = IndexLocation.of(str(tmp_path / "idx"))
    assert not location.shared and location.value == tmp_path / "idx" and location.name == "idx"
    assert location.files_dir == tmp_path / "idx" and location.display == str(tmp_path / "idx")
    assert not location.exists()
    SqliteStore(tmp_path / "idx", create=True).close()
    assert location.exists()
    monkeypatch.setenv("SBSEARCH_INDEX", str(tmp_path / "elsewhere"))
    assert IndexLocation.of(None).folder == tmp_path / "elsewhere"
    assert IndexLocation.of(location) is location


def test_files_of_a_shared_store_go_to_this_machines_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SBSEARCH_HOME", str(tmp_path))
    a = IndexLocation.of("postgresql://u:one@host/db").files_dir
    b = IndexLocation.of("postgresql://u:two@host/db").files_dir
    assert a == b and a.parent == tmp_path / "store-files"  # the password is no part of the folder


@pytest.mark.parametrize("given", ["folder", "location"])
def test_open_store_takes_either(tmp_path, given):
    folder = tmp_path / "idx"
    store = open_store(folder if given == "folder" else IndexLocation(folder=Path(folder)), create=True)
    try:
        assert isinstance(store, SqliteStore) and store.path == folder
    finally:
        store.close()
    assert config.is_store_url(IndexLocation(url="postgresql://h/db"))
