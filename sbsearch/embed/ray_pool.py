"""Embedding on a Ray cluster: a pool of actors, each holding the model once (torch or int8 ONNX),
behind the Embedder interface, so the indexer's reading, chunking and publishing stay with the one
writer and only `encode` goes out.

`encode` deals the batches a local run would form out to the actors and gathers the rows in order. An actor that
dies (its node lost, its process killed) is replaced and its slice sent again, so a run never
publishes half a batch; a cluster that does not answer is one line. The model's files must be at
the same path on every node (a shared models folder, or the same sbsearch install).
"""

from __future__ import annotations

import os
import re
from typing import Callable

import numpy as np

from ..errors import SbsearchError
from .model_info import ModelInfo
from .onnx_backend import TOKENS_PER_BATCH, token_batches

# a slice smaller than this costs more in messages than it saves in time
MIN_SLICE = 16
RETRIES = 3


def _ray():
    try:
        import ray
    except ImportError:
        raise SbsearchError("--ray needs Ray: pip install 'sbsearch[scale]'") from None
    return ray


def probe(address: str, timeout: float = 5.0) -> None:
    """One clear line when nothing answers at a cluster's HOST:PORT: Ray itself would retry for
    minutes, logging to the terminal."""
    import socket

    m = re.fullmatch(r"(?:[a-z]+://)?\[?([^\]/]*?)\]?:(\d+)/?", address.strip())
    if m is None:
        raise SbsearchError(f"--ray takes auto or HOST:PORT of a Ray cluster's head (got {address!r})")
    host, port = m.group(1), int(m.group(2))
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SbsearchError(f"cannot reach the Ray cluster at {address}: {reason} "
                            f"(is `ray start --head` running there?)") from None


def connect(address: str, num_cpus: int | None = None) -> None:
    """Join the cluster at address ("auto": the one this machine belongs to, else a local one with
    num_cpus workers). Settings of sbsearch (SBSEARCH_*) travel to the workers."""
    ray = _ray()
    if ray.is_initialized():
        return
    env = {k: v for k, v in os.environ.items() if k.startswith(("SBSEARCH_", "HF_", "TRANSFORMERS_"))}
    kwargs = {"runtime_env": {"env_vars": env}, "include_dashboard": False, "log_to_driver": False,
              "configure_logging": False}
    try:
        if address == "auto" and not os.environ.get("RAY_ADDRESS"):
            try:
                ray.init(address="auto", **kwargs)
            except (ConnectionError, RuntimeError):
                ray.init(num_cpus=num_cpus, **kwargs)  # no cluster here: a local one
        else:
            if address != "auto":
                probe(address)
            ray.init(address=None if address == "auto" else address, **kwargs)
    except SbsearchError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; each is "no cluster there"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SbsearchError(f"cannot reach the Ray cluster at {address}: {reason}") from None


class RayEmbedder:
    """The Embedder of a model whose `encode` runs on a pool of Ray actors."""

    def __init__(self, info: ModelInfo, address: str = "auto", actors: int | None = None,
                 num_cpus: int | None = None):
        connect(address, num_cpus)
        ray = _ray()
        self.info = info
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.n_actors = max(1, actors or cpus)
        self._actor_class = ray.remote(num_cpus=1, max_restarts=0)(_EmbedActor)
        self.actors = [self._actor_class.remote(info) for _ in range(self.n_actors)]
        self.dim, self.batch_size, self._max_seq_length = ray.get(self.actors[0].describe.remote())
        self.retried = 0  # slices sent again after their actor died

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode(texts, progress, query=False)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Queries: the actors call their embedder's encode_query (a model's query prompt, E5's "query: ")."""
        return self._encode(texts, None, query=True)

    def _encode(self, texts: list[str], progress: Callable[[int], None] | None, query: bool) -> np.ndarray:
        ray = _ray()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The batches the model would form in this process, dealt out to the actors in turn: an
        # int8 model quantises each batch's activations by that batch's own range, so the same batches
        # give the same vectors as a local run (and dealing them in turn gives each actor long and
        # short texts alike). The ONNX runtime forms token-budgeted batches of similar length
        # (onnx_backend.token_batches); torch (sentence-transformers) sorts within parts of 4
        # batches in input order. An actor encodes each unit it gets on its own.
        if self.info.on_onnx_runtime:
            # lengths with the prompt the actors' OnnxEmbedder prepends, so the batches are its own
            prompt = self._prompts()[0 if query else 1]
            units = token_batches([len(e.ids) for e in self._tokenizer().encode_batch([prompt + t for t in texts])],
                                  TOKENS_PER_BATCH, self.batch_size)
        else:
            unit = self.batch_size * 4
            units = [list(range(i, min(i + unit, len(texts)))) for i in range(0, len(texts), unit)]
        n_slices = max(1, min(self.n_actors, len(texts) // MIN_SLICE, len(units)))
        index_slices = [[i for u in units[k::n_slices] for i in u] for k in range(n_slices)]
        slices = [[[texts[i] for i in u] for u in units[k::n_slices]] for k in range(n_slices)]
        results: list[np.ndarray | None] = [None] * len(slices)
        pending = {self.actors[i % self.n_actors].encode.remote(s, query): (i, i % self.n_actors, 0)
                   for i, s in enumerate(slices)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            i, slot, tries = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayActorError:
                if tries >= RETRIES:
                    raise SbsearchError(f"Ray workers kept dying while embedding ({tries + 1} tries); "
                                        "nothing was published") from None
                self.retried += 1
                self.actors[slot] = self._actor_class.remote(self.info)  # a fresh worker, same model
                pending[self.actors[slot].encode.remote(slices[i], query)] = (i, slot, tries + 1)
                continue
            if progress is not None:
                progress(sum(len(u) for u in slices[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx, vecs in zip(index_slices, results):
            out[idx] = vecs
        return out

    def _prompts(self) -> tuple[str, str]:
        import json

        from .onnx_backend import META_FILE, prompts

        return prompts(json.loads((self.info.path / META_FILE).read_text()))

    def _tokenizer(self):
        """The int8 model's tokenizer, to form the batches a local run would."""
        if getattr(self, "_tok", None) is None:
            import json

            from .onnx_backend import META_FILE, load_tokenizer

            max_len = int(json.loads((self.info.path / META_FILE).read_text())["max_seq_length"])
            self._tok = load_tokenizer(self.info.path, max_len)
        return self._tok

    def parameter_count(self) -> int:
        return _ray().get(self.actors[0].parameter_count.remote())

    def close(self) -> None:
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


class _EmbedActor:
    """One worker: loads the model once and encodes slices of texts."""

    def __init__(self, info: ModelInfo):
        import ray

        from . import make_embedder

        # the model runtime runs as many threads as the cores Ray gave this worker (one by
        # default), not one per core of the node: workers side by side would oversubscribe it
        cpus = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
        os.environ["SBSEARCH_THREADS"] = str(cpus)
        if cpus == 1:
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
        self.embedder = make_embedder(info)

    def threads(self) -> int:
        """The threads this worker's model runtime uses."""
        from ..config import cpu_threads

        return getattr(self.embedder, "threads", cpu_threads())

    def describe(self) -> tuple[int, int, int]:
        e = self.embedder
        return e.dim, e.batch_size, e.max_seq_length

    def encode(self, units: list[list[str]], query: bool = False) -> np.ndarray:
        """Each unit encoded on its own (one batch of an int8 model; a part of 4 batches in torch);
        queries through encode_query, which applies a model's query prompt."""
        method = self.embedder.encode_query if query else self.embedder.encode
        return np.vstack([method(u) for u in units])

    def parameter_count(self) -> int:
        return self.embedder.parameter_count()

    def pid(self) -> int:
        return os.getpid()
