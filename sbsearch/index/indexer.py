"""Incremental indexing: scan folders, diff by (path, sha256), embed only new text, publish once.

Flow of one run:
  scan      walk the roots (no symlink following, hidden files and .sbsearchignore patterns skipped)
  diff      a file is unchanged when its path is known with the same sha256; known paths under
            the roots that are gone are removed (files of other roots are never touched)
  ingest    changed files are read and chunked (no model needed); pages without a text layer
            and images are read by OCR (cached by the file's sha256); an e-mail's attachments
            become documents of their own under the message (`mail.eml#price-list.xlsx`), kept,
            replaced and removed with it
  embed     vectors are reused for any chunk whose exact text is already embedded (renames,
            swaps, partly edited files); the model is loaded only if something is left to embed
  publish   one SQLite transaction; then the model's vector index (FAISS file) is updated or rebuilt
A failure before publish leaves the previous index exactly as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import queue
import stat
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..embed.models import ModelInfo, default_model, resolve, split_spec
from ..errors import IngestError, SbsearchError
from ..hashing import sha256_bytes
from ..ingest import Attachment, ReadOptions, is_supported, load_document
from ..ingest.chunking import chunk_document, embedding_text, tokenizer_counter, word_counter
from ..ingest.ocr import OCR_UNAVAILABLE, Ocr
from ..ingest.scan import scan
from ..progress import NullProgress, Progress
from ..vectors import open_vector_index
from .language import MODEL_REASON_META, LetterCount, choose_model, sample_indices
from .location import open_store
from .store import NewChunk, NewDocument, relpath_of
from .store.vector_codec import decode_matrix, encode_matrix

# Chosen by benchmarks/chunking.py (docs/BENCHMARKS.md, "Chunk size and overlap"): 200 word pieces
# without overlap ranked as well as 200/40 and 128/x on sample_docs and StackFAQ, with fewer
# passages and less to embed; 256 and more lost quality (vector nDCG@10 on sample_docs).
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_CHUNK_OVERLAP = 0
PENDING_BATCH = 256  # texts embedded, and committed to pending_vectors, at a time during a run
READ_AHEAD = 32  # documents the reading thread may hold ready before the embedding catches up
DEFAULT_MAX_FILE_MB = 32  # larger files are reported, not read: a 50 MB log is rarely a document
# meta key: path -> [[other path, its root], ...] of the indexed files reached by more than one path
# (a symbolic link's target, a hard link's other names), whose rules all apply to the file
LINK_NAMES_META = "link_names"
OUTSIDE_LINK = "symbolic link to a file outside the indexed folders: not read"
OUTSIDE_HARD_LINK = "hard link to a file outside the indexed folders: not read"


@dataclass
class IndexSummary:
    index: str
    model: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    generation: int = 0
    failures: list[dict] = field(default_factory=list)  # {"path", "error"} for files that failed this run
    # {"path", "warning"} for files indexed in part this run (pages OCR could not read, rows over a cap)
    warnings: list[dict] = field(default_factory=list)
    skipped_files: list[dict] = field(default_factory=list)  # unsupported types, ignored files are not listed
    # OCR in this run: "engine" (or why there is none), "pages_read" by Tesseract, "cache_hits", "seconds"
    ocr: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ReadOutcome:
    """What reading a new or changed file gave the run (Indexer._read), one of three kinds:
    "read": its row (document, with its chunks; failed, with the reason), its attachments' rows,
    embedding_texts (text_sha -> the text a model embeds, for every chunk of them) and the
    attachments of unsupported types (skipped); "gone": deleted since the scan, as if never seen;
    "kept": unreadable now (permissions, a file being replaced), its indexed version stays (error)."""

    kind: Literal["read", "gone", "kept"]
    path: str
    document: NewDocument | None = None
    attachments: list[NewDocument] = field(default_factory=list)
    embedding_texts: dict[str, str] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def read(cls, document: NewDocument, embedding_texts: dict[str, str] | None = None) -> "ReadOutcome":
        return cls("read", document.path, document, embedding_texts=dict(embedding_texts or {}))


def text_sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _access_json(rules, path: str, root: str | None, names: list | None = None) -> str | None:
    """A document's readers as stored: JSON list of groups, or None when the index has no rules.
    names: the other [path, root] by which its bytes are reached (a link's target, a hard link's
    other names); the readers are those that the rules of every one of them allow."""
    if rules is None:
        return None
    relpaths = [relpath_of(path, root)] + [relpath_of(name, name_root) for name, name_root in names or []]
    return json.dumps(rules.groups_for_all(relpaths))


def _under(path: str, roots: list[Path]) -> bool:
    return any(path == str(r) or path.startswith(str(r).rstrip("/") + "/") for r in roots)


def _root_of(path: str, roots: list[Path]) -> str:
    """The indexed folder a path is under (the first that holds it), "" when none."""
    return next((str(r) for r in roots if _under(path, [r])), "")


def _read_checked(real: str, st: os.stat_result) -> bytes:
    """The bytes of the file that was checked: opened without following a link, and only if it is
    still the same file (device, inode, number of names) as st."""
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        now = os.fstat(f.fileno())
        if (now.st_dev, now.st_ino, now.st_nlink) != (st.st_dev, st.st_ino, st.st_nlink):
            raise OSError(errno.ESTALE, "the file was replaced while being read")
        return f.read()


# ------------------------------------------------------------------------------------ indexing

class Indexer:
    def __init__(self, index_path: Path, model: str | None = None, progress: Progress | None = None,
                 chunk_tokens: int | None = None, chunk_overlap: int | None = None,
                 max_file_mb: float = DEFAULT_MAX_FILE_MB, embedder=None, access_rules: Path | str | None = None,
                 ocr_languages: str | None = None, ray: str | None = None, read_ahead: int = READ_AHEAD):
        self.store = open_store(index_path, create=True)
        self._ray = ray  # embed on a Ray cluster (its address, or "auto") instead of in this process
        # a rules file to resolve each document's readers from ("none" drops the rules); remembered
        # by the index, so later runs (watch, cron) follow edits of the same file
        self._access_rules = access_rules
        self.read_options = ReadOptions(ocr=Ocr(ocr_languages))
        self.progress = progress or NullProgress()
        # For an asymmetric spec 'Q@D' the documents are embedded by D (see models.split_spec);
        # a ready embedder (a test's fake, one shared by several indexers) is D itself.
        asked = model or getattr(embedder, "name", None)
        spec = asked or self.store.get_meta("default_model")
        # a new index with no model named: chosen by its documents' language on the first run
        # (language.py); until then the global default stands in
        self._choose_by_language = spec is None and not self.store.models()
        self._model_reason = None if asked is None else "named when the index was made (-m)"
        spec = spec or default_model()
        self.model_name = split_spec(spec)[1]
        self._preloaded: dict[str, tuple[str, object]] = {}  # path -> (sha256, Document) read by the sample
        if embedder is not None and embedder.name != self.model_name:
            raise SbsearchError(f"model {model!r} given with an embedder for {embedder.name!r}")
        self._info: ModelInfo | None = embedder.info if embedder is not None else None
        self._embedder = embedder
        self._chunk_tokens = chunk_tokens
        self._chunk_overlap = chunk_overlap
        self.max_file_bytes = int(max_file_mb * (1 << 20))
        self.read_ahead = read_ahead  # 0: files are read in the calling thread, between batches

    @property
    def info(self) -> ModelInfo:
        """Resolved on first use, so that bad input (a missing folder) is reported before a model
        is assembled or exported."""
        if self._info is None:
            self._info = resolve(self.model_name)
        return self._info

    # The chunking tokenizer and budget are fixed by the first run so every model of the index
    # embeds the same chunks (a comparison of two models is then a comparison of models only).
    def _chunk_settings(self):
        s = self.store
        if s.get_meta("chunk_tokens") is None:
            tokens, overlap = self._asked_chunking(DEFAULT_CHUNK_TOKENS, DEFAULT_CHUNK_OVERLAP)
            s.set_meta("chunk_tokens", str(tokens))
            s.set_meta("chunk_overlap", str(overlap))
            tok = self.info.path / "tokenizer.json"
            s.set_meta("chunk_tokenizer", str(tok) if tok.exists() else "")
        kept = (int(s.get_meta("chunk_tokens")), int(s.get_meta("chunk_overlap")))
        if (self._chunk_tokens, self._chunk_overlap) != (None, None) and self._asked_chunking(*kept) != kept:
            raise SbsearchError(f"this index chunks {kept[0]} tokens with {kept[1]} overlap, fixed by its first "
                                "run; to chunk differently, build a new index (--index)")
        tok = s.get_meta("chunk_tokenizer") or ""
        count = tokenizer_counter(tok) if tok and Path(tok).exists() else word_counter
        return kept[0], kept[1], count

    def _asked_chunking(self, tokens: int, overlap: int) -> tuple[int, int]:
        """(tokens, overlap) as asked of this Indexer, each falling back to the given value, capped
        by the model's length and a third of the tokens."""
        tokens = min(self._chunk_tokens or tokens, max(32, self.info.max_seq_length - 8))
        # `is None`, not `or`: an overlap of 0 is a choice (benchmarks/chunking.py measures it)
        overlap = overlap if self._chunk_overlap is None else max(0, self._chunk_overlap)
        return tokens, min(overlap, tokens // 3)

    def embedder(self):
        if self._embedder is None:
            from ..embed import make_embedder

            if self._ray:
                from ..embed.ray_pool import RayEmbedder

                self.progress.message(f"starting {self.info.name} on the Ray cluster ({self._ray})")
                self._embedder = RayEmbedder(self.info, self._ray)
            else:
                self.progress.message(f"loading model {self.info.name}")
                self._embedder = make_embedder(self.info)
        return self._embedder

    def _embedder_registered(self):
        """The embedder, with the model (re-)recorded in the index once per run before its first vector."""
        emb = self.embedder()
        if not self._registered:
            self._register(emb)
            self._registered = True
        return emb

    def _embed_unseen(self, unseen: dict[str, str], vectors: dict[str, dict[str, bytes]]) -> int:
        """Look the texts up in the index (pending vectors of a stopped run included), embed the
        ones with no vector for this model, and keep those in pending_vectors, which survive a kill
        and are reused by the next run. Merges everything found into vectors; returns how many
        texts were embedded."""
        if not unseen:
            return 0
        for model, by_sha in self.store.vectors_by_text(unseen).items():
            vectors.setdefault(model, {}).update(by_sha)
        mine = vectors[self.model_name]
        todo = [sha for sha in unseen if sha not in mine]
        if not todo:
            return 0
        mat = self._embedder_registered().encode([unseen[sha] for sha in todo])
        batch = {sha: vec.tobytes() for sha, vec in zip(todo, mat)}
        self.store.save_pending(self.model_name, batch)
        mine.update(batch)
        return len(todo)

    def _read_ahead(self, files: dict[str, Path], known: dict, attachments_of: dict[str, list[str]],
                    max_tokens: int, overlap: int, count):
        """(path, its row, its old attachments' paths, what _read made of it) for each file, in
        order, read by a thread up to read_ahead files ahead: parsing and OCR of the next files
        overlap the encoding of this batch (ONNX Runtime and the tokenizer release the GIL). The
        thread only reads files; the store is touched by the caller's thread alone."""
        def read(path_str: str, path: Path) -> tuple:
            old = attachments_of.get(path_str, [])
            row = known.get(path_str)
            return path_str, row, old, self._read(path, row, [known[p] for p in old], max_tokens, overlap, count)

        if self.read_ahead <= 0:
            for path_str, path in files.items():
                yield read(path_str, path)
            return
        out: queue.Queue = queue.Queue(maxsize=self.read_ahead)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def work() -> None:
            try:
                for path_str, path in files.items():
                    if not put(read(path_str, path)):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
                put(exc)
                return
            put(None)

        reader = threading.Thread(target=work, name="sbsearch-reader", daemon=True)
        reader.start()
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            # after a failure here the thread may be inside a long PDF or OCR call; it is a daemon
            # and only reads, so it is not waited for long
            reader.join(timeout=2)

    def run(self, roots: list[Path], reembed: bool = False, wait: bool | float = False) -> IndexSummary:
        """One indexing run under the index's writer lock (wait: see locking.writer_lock; one per database for a PostgreSQL store)."""
        t0 = time.perf_counter()
        roots = [Path(r).expanduser() for r in roots]
        for r in roots:
            if not r.exists():
                raise SbsearchError(f"no such file or folder: {r}")
            if not os.access(r, os.R_OK):
                raise SbsearchError(f"cannot read {r}: permission denied")
        roots = [r.resolve() for r in roots]
        if not self._choose_by_language:
            self.info  # an unknown model is reported now, before a run is recorded
        self.read_options.ocr.languages  # and so is an OCR language that is not installed
        with self.store.writer_lock(wait):
            return self._locked_run(roots, reembed, t0)

    def _locked_run(self, roots: list[Path], reembed: bool, t0: float) -> IndexSummary:
        store = self.store
        store.mark_running_runs_interrupted()  # we hold the lock: their writers died
        summary = IndexSummary(str(store.path), self.model_name)
        run_id = store.start_run(self.model_name, [str(r) for r in roots])
        ocr = self.read_options.ocr
        before = dict(ocr.stats.__dict__)
        try:
            self._run(roots, reembed, summary)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_run(run_id, status=status, error=str(exc) or type(exc).__name__,
                             seconds=round(time.perf_counter() - t0, 3))
            raise
        summary.ocr = {"engine": ocr.describe(),
                       **{k: round(v - before[k], 3) for k, v in ocr.stats.__dict__.items()}}
        store.checkpoint()  # passive: never waits for the readers
        summary.seconds = round(time.perf_counter() - t0, 3)
        store.finish_run(run_id, status="ok", seconds=summary.seconds, model=self.model_name, **{
            k: getattr(summary, k) for k in ("added", "updated", "removed", "unchanged", "failed", "chunks_embedded")})
        return summary

    def _run(self, roots: list[Path], reembed: bool, summary: IndexSummary) -> None:
        store = self.store
        rules = self._load_access_rules()
        self._roots = roots
        self._inodes: dict = {}  # (st_dev, st_ino) -> names under the roots, of files with several names
        self._names: dict[str, list] = {}  # path -> its other names, of every file read this run

        files, skipped = scan(roots, inodes=self._inodes)
        if store.get_meta("default_model") is None:
            if self._choose_by_language and not store.models():
                self._choose_model(files)
                summary.model = self.model_name
            store.set_meta("default_model", self.model_name)
            if self._model_reason:
                store.set_meta(MODEL_REASON_META, self._model_reason)
        if reembed:
            store.drop_model_vectors(self.model_name)
            open_vector_index(store, self.model_name).remove()
        max_tokens, overlap, count = self._chunk_settings()
        summary.skipped = len(skipped)
        summary.skipped_files = skipped
        known = store.documents()
        attachments_of: dict[str, list[str]] = {}
        for p, row in known.items():
            if row.parent is not None:
                attachments_of.setdefault(row.parent, []).append(p)
        # an attachment goes with its message: when the message file is gone
        removed = [p for p, row in known.items() if _under(p, roots) and p not in files and row.parent not in files]
        summary.removed = len(removed)

        new_docs: list[NewDocument] = []
        self._touched: dict[str, float] = {}
        self._registered = False
        # Vectors for identical text already in the index (any model) are reused as they are;
        # the rest are embedded while the next files are read (see _read_ahead).
        vectors: dict[str, dict[str, bytes]] = {}
        mine = vectors.setdefault(self.model_name, {})
        unseen: dict[str, str] = {}  # text_sha -> text, not yet looked up in the index or embedded
        n_chunks = 0
        self.progress.start("reading files", len(files))
        for path_str, row, old_attachments, outcome in self._read_ahead(files, known, attachments_of, max_tokens,
                                                                        overlap, count):
            self.progress.advance(1)
            if outcome is None:
                summary.unchanged += 1
                continue
            if outcome.kind == "gone":
                gone = ([path_str] if row is not None else []) + old_attachments
                removed += gone
                summary.removed += len(gone)
                continue
            if outcome.kind == "kept":
                summary.failed += 1
                summary.failures.append({"path": path_str, "error": outcome.error + " (previous version kept)"})
                continue
            summary.skipped_files += outcome.skipped
            stale = [p for p in old_attachments if p not in {a.path for a in outcome.attachments}]
            removed += stale
            summary.removed += len(stale)
            root = _root_of(path_str, roots)
            for d in [outcome.document] + outcome.attachments:
                d.root = root
                # attachments: their message's readers
                d.access = _access_json(rules, path_str, root, self._names.get(path_str))
                new_docs.append(d)
                for c in d.chunks:
                    n_chunks += 1
                    if c.text_sha not in mine:
                        unseen[c.text_sha] = outcome.embedding_texts[c.text_sha]
                if d.status == "failed":
                    summary.failed += 1
                    summary.failures.append({"path": d.path, "error": d.error})
                    continue
                if d.error:
                    summary.warnings.append({"path": d.path, "warning": d.error})
                if d.path in known:
                    summary.updated += 1
                else:
                    summary.added += 1
            if len(unseen) >= PENDING_BATCH:
                summary.chunks_embedded += self._embed_unseen(unseen, vectors)
                unseen = {}
        summary.chunks_embedded += self._embed_unseen(unseen, vectors)
        self.progress.stop()
        self._preloaded.clear()
        summary.chunks_reused = n_chunks - summary.chunks_embedded
        link_names = self._save_link_names(removed)
        self._apply_access_changes(rules, {d.path for d in new_docs} | set(removed), link_names)

        backfill = [(cid, embedding_text(text, heading))
                    for cid, text, heading in store.chunks_without_vectors(self.model_name)]
        backfill_vecs: dict[int, np.ndarray] = {}
        if backfill:
            emb = self._embedder_registered()
            self.progress.start(f"embedding with {self.info.name}", len(backfill))
            for i in range(0, len(backfill), PENDING_BATCH):
                part = backfill[i:i + PENDING_BATCH]
                mat = emb.encode([t for _, t in part], progress=self.progress.advance)
                batch = {cid: vec for (cid, _), vec in zip(part, mat)}
                # vectors of chunks already published are valid at once: commit them batch by batch
                store.add_vectors(self.model_name, batch)
                backfill_vecs.update(batch)
            self.progress.stop()
            summary.chunks_embedded += len(backfill)
        elif store.model_row(self.model_name) is None and (new_docs or store.vector_count(self.model_name) == 0):
            self._embedder_registered()

        if not new_docs and not removed and not backfill_vecs:
            if self._touched:
                store.touch_documents(self._touched)
            summary.generation = store.generation
            summary.chunks_total = store.chunk_count()
            self._ensure_vector_index()
            return
        self.progress.message("saving")
        gen, removed_ids, added = store.publish(new_docs, removed, vectors, touched=self._touched)
        summary.generation = gen
        summary.chunks_total = store.chunk_count()
        dim = store.model_row(self.model_name)["dim"]
        added_ids, mat = self._added_vectors(added, mine, backfill_vecs)
        # update() patches the vector index only if it reflects the generation just before this
        # publish (gen - 1); after back-fill batches it does not, and the file is rebuilt instead.
        open_vector_index(store, self.model_name, dim).update(gen - 1, gen, removed_ids, added_ids, mat)

    def _added_vectors(self, added: list[tuple[int, str]], mine: dict[str, bytes],
                       backfill_vecs: dict[int, np.ndarray]) -> tuple[list[int], np.ndarray | None]:
        """(chunk ids, vectors) a run added, for the vector index, as the store keeps them (through
        its encoding and back: int8 is a little off the embedder's float32), so that a patched index
        holds what a rebuild from the store would."""
        added_ids = [cid for cid, sha in added if sha in mine] + list(backfill_vecs)
        if not added_ids:
            return [], None
        vecs = [np.frombuffer(mine[sha], dtype=np.float32) for cid, sha in added if sha in mine]
        encoding = self.store.vector_encoding()
        return added_ids, decode_matrix(encode_matrix(np.vstack(vecs + list(backfill_vecs.values())), encoding), encoding)

    def _choose_model(self, files: dict[str, Path]) -> None:
        """The model of a new index by the language of a sample of its files (language.py). The
        sampled documents are kept for this run's reading: none is read twice."""
        count = LetterCount()
        paths = list(files.items())
        for i in sample_indices(len(paths)):
            path_str, path = paths[i]
            try:
                names, real, st = self._other_names(path)
                if st.st_size > self.max_file_bytes:
                    continue
                data = _read_checked(real, st)
                doc = load_document(path, data, self.read_options)
            except Exception:  # noqa: BLE001 - the run reads it again and reports what is wrong with it
                continue
            self._preloaded[path_str] = (sha256_bytes(data), doc)
            count.files += 1
            count.add("\n".join(section.text for section in doc.sections))
        choice = choose_model(count)
        self.progress.message(f"model {choice.model}: {choice.reason}")
        self.model_name, self._info, self._model_reason = choice.model, None, choice.reason
        self._choose_by_language = False

    def _ensure_vector_index(self) -> None:
        row = self.store.model_row(self.model_name)
        if row is not None:
            open_vector_index(self.store, self.model_name, row["dim"]).load()

    def _register(self, emb) -> None:
        info = self.info
        self.store.register_model(
            info.name, str(info.path), info.weights_sha256(), emb.dim, info.layers, info.total_layers,
            {"description": info.description},
        )

    def _load_access_rules(self):
        """The access rules of this index (AccessRules), or None when it has none."""
        from ..access import AccessRules

        store = self.store
        if self._access_rules is not None:
            if str(self._access_rules) == "none":
                store.set_meta("access_rules", "")
            else:
                path = Path(self._access_rules).expanduser().resolve()
                AccessRules.load(path)  # a bad file is refused before the index remembers it
                store.set_meta("access_rules", str(path))
        path = store.get_meta("access_rules")
        # A missing or broken rules file fails the run (the previous state and permissions stay):
        # indexing documents without their rules could open them to everyone.
        return AccessRules.load(Path(path)) if path else None

    def _save_link_names(self, removed: list[str]) -> dict[str, list]:
        """The other names of every indexed file reached by more than one path, as this run found
        them for the files it read, as kept by the index for the others (files of other indexed
        folders, files this run could not read and whose previous version stays); saved in the index."""
        try:
            stored = json.loads(self.store.get_meta(LINK_NAMES_META) or "{}")
        except ValueError:
            stored = {}
        merged = {p: names for p, names in stored.items() if p not in self._names}
        merged.update({p: names for p, names in self._names.items() if names})
        for p in removed:
            merged.pop(p, None)
        if merged != stored:
            self.store.set_meta(LINK_NAMES_META, json.dumps(merged, sort_keys=True))
        return merged

    def _apply_access_changes(self, rules, skip: set[str], link_names: dict[str, list] | None = None) -> None:
        """Re-resolve the readers of every indexed document that this run does not rewrite: a rules
        change (or a file that became a link) takes effect now, without reading or embedding anything
        again. A file reached by several paths gets the readers all of them allow, as when indexed."""
        link_names = link_names or {}
        changes = {}
        for path, (root, access, parent) in self.store.document_access().items():
            if path not in skip:
                wanted = _access_json(rules, parent or path, root, link_names.get(parent or path))
                if wanted != access:
                    changes[path] = wanted
        if changes:
            self.store.set_document_access(changes)

    def _read(self, path: Path, row, attachment_rows: list, max_tokens: int, overlap: int,
              count) -> ReadOutcome | None:
        """What a new or changed file gives this run (ReadOutcome); None when unchanged."""
        base = NewDocument(path=str(path), root="", format=path.suffix.lower().lstrip("."), status="failed")
        try:
            names, real, st = self._other_names(path)
            base = replace(base, mtime=st.st_mtime, size=st.st_size)
            if st.st_size > self.max_file_bytes:
                raise IngestError(f"file too large ({st.st_size / (1 << 20):.0f} MB > "
                                  f"{self.max_file_bytes / (1 << 20):.0f} MB; see --max-file-mb)")
            data = _read_checked(real, st)
            # recorded once read: a file kept in its previous version (unreadable now) keeps the
            # names its indexed bytes were decided on
            self._names[str(path)] = names
        except IngestError as exc:
            return ReadOutcome.read(replace(base, error=str(exc)))
        except FileNotFoundError:
            if path.is_symlink():
                return ReadOutcome.read(replace(base, error="cannot read: broken symbolic link"))
            return ReadOutcome("gone", str(path))  # deleted since the scan: as if never seen
        except OSError as exc:
            error = f"cannot read: {exc.strerror or exc}"
            if row is not None and row.status == "ok":
                # Unreadable for now (permissions, a file being replaced): keep what is indexed.
                return ReadOutcome("kept", str(path), error=error)
            return ReadOutcome.read(replace(base, error=error))
        digest = sha256_bytes(data)
        base = replace(base, sha256=digest, size=len(data))
        if row is not None and row.sha256 == digest and not self._ocr_became_available([row, *attachment_rows]):
            if row.mtime != st.st_mtime:  # touched, not changed: --modified-after must see the new date
                for p in [str(path)] + [a.path for a in attachment_rows]:
                    self._touched[p] = st.st_mtime
            return None
        doc, document, texts = self._load(path, data, base, max_tokens, overlap, count)
        result = ReadOutcome.read(document, texts)
        for attachment in doc.attachments if doc is not None else []:
            inner = Path(f"{path}#{attachment.name}")
            if not is_supported(inner):
                result.skipped.append({"path": str(inner), "error": f"unsupported file type {inner.suffix or '(none)'}"})
                continue
            row, texts = self._attachment_row(inner, attachment, document, max_tokens, overlap, count)
            result.attachments.append(row)
            result.embedding_texts.update(texts)
        return result

    def _other_names(self, path: Path) -> tuple[list[list[str]], str, os.stat_result]:
        """([[path, root], ...] of the other paths by which this file's bytes can be read, the real
        path to read, its stat). Anyone who can write to the share could plant a link to a server
        file, or to a folder of stricter rules, and read it through search; so a symbolic link is
        read only when its target is inside the indexed folders, a file of several names (a hard
        link) only when the scan found every one of them there, and the rules of all these paths
        apply to it (see _access_json). IngestError when one is outside."""
        names: list[str] = []
        # the scan walks resolved roots without following linked folders: only the last part of a
        # path can be a link (one lstat, where realpath costs one per folder of the path)
        real = os.path.realpath(path) if os.path.islink(path) else str(path)
        if real != str(path):
            if not _under(real, self._roots):
                raise IngestError(OUTSIDE_LINK)
            names.append(real)
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise IngestError("not a regular file: not read")
        if st.st_nlink > 1:
            seen = self._inodes.get((st.st_dev, st.st_ino), set())
            if len(seen) < st.st_nlink:
                raise IngestError(f"{OUTSIDE_HARD_LINK} (the file has {st.st_nlink} names, "
                                  f"{len(seen)} of them in the indexed folders)")
            names += sorted(n for n in seen if n != str(path) and n not in names)
        return [[n, _root_of(n, self._roots)] for n in names], real, st

    def _ocr_became_available(self, rows: list) -> bool:
        """A file read while OCR was missing is read again, unchanged, once OCR is there."""
        return self.read_options.ocr.available and any(r.error and OCR_UNAVAILABLE in r.error for r in rows)

    def _attachment_row(self, path: Path, attachment: Attachment, message: NewDocument, max_tokens: int,
                        overlap: int, count) -> tuple[NewDocument, dict[str, str]]:
        """An attachment's row and its chunks' embedding texts (text_sha -> text)."""
        base = NewDocument(path=str(path), root="", mtime=message.mtime, format=path.suffix.lower().lstrip("."),
                           status="failed", parent=message.path)
        if attachment.data is None:
            return replace(base, error=attachment.error), {}
        base = replace(base, sha256=sha256_bytes(attachment.data), size=len(attachment.data))
        doc, row, texts = self._load(path, attachment.data, base, max_tokens, overlap, count)
        if doc is not None and doc.attachments:
            note = f"{len(doc.attachments)} attachment(s) inside this attachment not read (one level is read)"
            row.error = "; ".join(filter(None, [row.error, note]))
        return row, texts

    def _load(self, path: Path, data: bytes, base: NewDocument, max_tokens: int, overlap: int,
              count) -> tuple:
        """(Document or None, the document row with its chunks or with the reason it failed, the
        chunks' embedding texts: text_sha -> text)."""
        try:
            pre = self._preloaded.pop(base.path, None)
            doc = pre[1] if pre is not None and pre[0] == base.sha256 else load_document(path, data, self.read_options)
            chunks = chunk_document(doc, max_tokens, overlap, count)
        except IngestError as exc:
            return None, replace(base, error=str(exc)), {}
        except Exception as exc:  # noqa: BLE001 - a loader bug on one hostile file must not stop the run
            return None, replace(base, error=f"could not read file ({type(exc).__name__}: {exc})"[:300]), {}
        rows, texts = [], {}
        for ch in chunks:
            etext = ch.embedding_text()
            sha = text_sha(etext)
            texts[sha] = etext
            rows.append(NewChunk(text=ch.text, text_sha=sha, page=ch.page, heading=ch.heading, location=ch.location,
                                 start=ch.start, end=ch.end))
        return doc, replace(base, format=doc.format, encoding=doc.encoding, status="ok",
                            error="; ".join(doc.warnings) or None, chunks=rows), texts
