"""Recovery training for a cut model: the trainer the stages share (pruning.stages holds one module
per stage: what it trains on and with which loss) and hidden-state distillation.

Everything is sentence-transformers' own (losses, trainer, evaluators); this file only wires it up
and applies the CPU speed-ups (sequence length fitted to the data, frozen word embeddings, bf16
autocast, all cores), each of which can be turned off to measure it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

from . import teacher_outputs
from .data import split_sentences, texts_hash
from .prompts import prompt_of
from .host import SbsearchError, cache_dir

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 2e-5
    warmup: float = 0.1              # fraction of the steps
    max_length: int | None = None    # None: fitted to the data (longest text, capped by max_length_cap)
    max_length_cap: int = 128
    seed: int = 42
    bf16: bool = False               # bf16 autocast; off: this CPU lacks avx512_bf16, emulated bf16 measured slower
    freeze_embeddings: bool = True   # the word/position embedding matrices take no updates
    threads: int | None = None       # None: every core we may use
    group_by_length: bool = True     # sts/distil batches of similar length (NLI keeps no-duplicate batches)
    progress: bool = True            # a progress bar (on a terminal)
    log_lines: bool = True           # without a bar, a line per 10% of the steps on stderr (log files)
    embedding_weight: float = 1.0    # hidden: the sentence-embedding term's weight beside the layers' terms


def set_threads(n: int | None = None) -> int:
    import torch

    n = n or max(1, len(os.sched_getaffinity(0)))
    torch.set_num_threads(n)
    return n


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fitted_length(model, texts: list[str], cap: int, sample: int = 5000) -> int:
    """Longest tokenized text (a sample of it), plus special tokens, capped; a multiple of 8."""
    rng = np.random.default_rng(0)
    if len(texts) > sample:
        texts = [texts[i] for i in rng.choice(len(texts), sample, replace=False)]
    tok = model.tokenizer
    lengths = [len(ids) for ids in tok(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    longest = int(np.percentile(lengths, 99.5)) if lengths else cap
    return int(min(cap, max(16, -(-longest // 8) * 8)))


def freeze_embeddings(model, frozen: bool = True) -> int:
    """(Un)freeze the embedding matrices of the transformer; returns the number of frozen parameters."""
    from .layers import hf_model

    emb = getattr(hf_model(model), "embeddings", None)
    if emb is None:
        return 0
    n = 0
    for p in emb.parameters():
        p.requires_grad_(not frozen)
        n += p.numel()
    return n if frozen else 0


# ------------------------------------------------------------------------------------ teacher

def teacher_embeddings(teacher, texts: list[str], teacher_sha: str, max_length: int,
                       batch_size: int = 64, progress: bool = True, subdir: str = "pruning-teacher") -> np.ndarray:
    """Teacher vectors for texts, cached in cache_dir()/pruning-teacher keyed by the text set's hash,
    the teacher's weights sha256 and the sequence length."""
    cache = cache_dir() / subdir
    key = f"{teacher_sha[:16]}-{texts_hash(texts)[:16]}-L{max_length}.npy"
    path = cache / key
    if path.exists():
        arr = np.load(path)
        if arr.shape[0] == len(texts):
            return arr
    old = teacher.max_seq_length
    teacher.max_seq_length = max_length
    try:
        arr = teacher.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False,
                             show_progress_bar=progress).astype(np.float32)
    finally:
        teacher.max_seq_length = old
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)
    return arr


# ------------------------------------------------------------------------------------ one stage

def train_stage(model, stage, cfg: TrainConfig, teacher=None, teacher_sha: str = "") -> dict:
    """Run one stage (a pruning.stages.TrainerStage) in place on `model` with sentence-transformers'
    trainer; returns what the card records about it."""
    import torch

    if not stage.rows:
        raise SbsearchError(f"stage {stage.name}: no training data")
    t0 = time.perf_counter()
    threads = set_threads(cfg.threads)
    seed_everything(cfg.seed)
    base_len = model.max_seq_length
    length = cfg.max_length or fitted_length(model, stage.texts(), min(cfg.max_length_cap, base_len))
    info: dict = {"stage": stage.name, "max_length": length, "threads": threads, "bf16": cfg.bf16,
                  "frozen_embeddings": cfg.freeze_embeddings}
    # distillation targets first (the teacher runs at the same fitted length), cached on disk
    targets = _teacher_targets(stage, teacher, teacher_sha, length, cfg, info) if stage.needs_teacher else None
    train, loss = stage.dataset(targets), stage.loss(model)
    evaluator = _dev_evaluator(stage.dev) if stage.dev else None

    freeze_embeddings(model, cfg.freeze_embeddings)
    model.max_seq_length = length
    epochs = stage.epochs if stage.epochs is not None else cfg.epochs
    lr = stage.lr if stage.lr is not None else cfg.lr
    result = _run_trainer(model, stage, cfg, train, loss, epochs, lr)
    model.max_seq_length = base_len
    freeze_embeddings(model, False)
    for p in model.parameters():  # autocast never changes the stored weights, but make sure
        if p.dtype != torch.float32:
            p.data = p.data.float()
    info.update(steps=int(result.global_step), train_loss=round(float(result.training_loss), 5),
                epochs=epochs, lr=lr, batch_size=cfg.batch_size, rows=len(stage.rows))
    if evaluator is not None:
        scores = evaluator(model)
        info["dev_spearman"] = round(float(next((v for k, v in scores.items() if "spearman" in k), 0.0)), 4)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    return info


def _teacher_targets(stage, teacher, teacher_sha: str, length: int, cfg: TrainConfig, info: dict) -> np.ndarray:
    if teacher is None:
        raise SbsearchError(f"stage {stage.name} needs a teacher model")
    t1 = time.perf_counter()
    targets = teacher_embeddings(teacher, list(stage.rows), teacher_sha, length, progress=cfg.progress)
    info["teacher_seconds"] = round(time.perf_counter() - t1, 1)
    info["texts"] = len(stage.rows)
    return targets


def _dev_evaluator(dev):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    s1, s2, sc = zip(*dev)
    return EmbeddingSimilarityEvaluator(list(s1), list(s2), list(sc), main_similarity="cosine",
                                        name="dev", write_csv=False)


def _run_trainer(model, stage, cfg: TrainConfig, train, loss, epochs: float, lr: float):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers.trainer_callback import PrinterCallback

    with tempfile.TemporaryDirectory(prefix="sbsearch-prune-") as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, num_train_epochs=epochs, per_device_train_batch_size=cfg.batch_size,
            learning_rate=lr, warmup_steps=cfg.warmup, seed=cfg.seed, data_seed=cfg.seed,
            bf16=cfg.bf16, use_cpu=True, save_strategy="no", eval_strategy="no", report_to="none",
            logging_steps=50, disable_tqdm=not cfg.progress, dataloader_num_workers=0,
            batch_sampler=stage.batch_sampler(cfg),
            # pairs are symmetric: a model trained with prompts (E5) reads both sides as queries, as it
            # is evaluated; None for models without prompts (MiniLM, mpnet): unchanged
            prompts=prompt_of(model, "query") or None,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=loss,
                                             callbacks=[_LogLines(stage.name)] if (cfg.log_lines and not cfg.progress) else [])
        trainer.remove_callback(PrinterCallback)  # it prints metric dicts on stdout (kept for --json)
        return trainer.train()


def pooled_batches(order: list[int], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Cut a shuffled order into pools of 50 batches, sort each pool by length and batch it: batches
    of similar length (little padding) that still mix the whole data over an epoch."""
    pool = batch_size * 50
    batches = []
    for i in range(0, len(order), pool):
        chunk = sorted(order[i:i + pool], key=lambda j: lengths[j])
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    return batches


def length_grouped_sampler():
    """A batch sampler class that puts texts of similar length together (less padding: the CPU's
    main waste on mixed short/long text), in shuffled order. Each epoch: shuffle, cut into pools of
    50 batches, sort each pool by length, batch, shuffle the batches."""
    import torch
    from sentence_transformers.base.sampler import DefaultBatchSampler

    class LengthGroupedBatchSampler(DefaultBatchSampler):
        def __init__(self, dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
            super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
            cols = [c for c in dataset.column_names if c not in ("label", "score")]
            self.lengths = [sum(len(str(row[c])) for c in cols) for row in dataset]

        def _batches(self):
            g = torch.Generator()
            g.manual_seed(self.seed + getattr(self, "epoch", 0))
            order = torch.randperm(len(self.lengths), generator=g).tolist()
            batches = pooled_batches(order, self.lengths, self.batch_size)
            if self.drop_last:
                batches = [b for b in batches if len(b) == self.batch_size]
            perm = torch.randperm(len(batches), generator=g).tolist()
            return [batches[i] for i in perm]

        def __iter__(self):
            yield from self._batches()

        def __len__(self):
            n = len(self.lengths)
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    return LengthGroupedBatchSampler


def _LogLines(name: str):
    """Without a progress bar (no terminal), a line per 10% of the steps on stderr, for log files."""
    import sys

    from transformers import TrainerCallback

    class LogLines(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            every = max(1, state.max_steps // 10)
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                el = time.perf_counter() - self.t0
                print(f"    {name}: step {state.global_step}/{state.max_steps}, {el:.0f} s", file=sys.stderr, flush=True)

    return LogLines()


def config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d.pop("progress", None)
    d.pop("log_lines", None)
    if d.get("embedding_weight") == 1.0:
        d.pop("embedding_weight")  # the default: keys of runs saved before the setting existed still match
    return d


# ------------------------------------------------------------------------------------ hidden-state distillation

def layer_targets(kept: list[int], teacher_layers: int) -> list[int]:
    """For each kept layer j of the student, the index into the teacher's hidden_states (0 = the
    embeddings, i = output of teacher layer i-1) that the student's layer j should reproduce: the
    input the next kept layer was trained to see, i.e. the teacher's state just before layer
    kept[j+1]; the last kept layer reproduces the teacher's final state (what pooling reads)."""
    return [kept[j + 1] if j + 1 < len(kept) else teacher_layers for j in range(len(kept))]


class RecoveryStopped(Exception):
    """Raised by an `on_step` callback to end a recovery early (nothing is saved)."""


def train_hidden_stage(model, stage, cfg: TrainConfig, teacher, kept: list[int],
                       embedding_weight: float = 1.0, on_step=None) -> dict:
    """Distil every kept layer, token by token, plus the sentence embedding (TinyBERT-style).

    Why: sentence-embedding MSE gives the student one 768-d target per text; the teacher's hidden
    states give one per token per layer, so each minute of CPU carries many times more signal, and
    each kept layer is pulled back to where the next kept layer (and finally the pooling) expects
    its input. The teacher runs alongside, once per text: from the second epoch on, and in the next
    recovery on the same text inside sharing_teacher_outputs(), its outputs are read back from memory
    (pruning.teacher_outputs; too big to keep on disk).

    Loss per batch = Σ_layers mean_tokens ||s - t||² / mean_tokens ||t||²  (scale-free per layer)
                     + embedding_weight · mean ||ŝ - t̂||² over L2-normalised sentence embeddings.

    on_step(step, total_steps, model): called after every step with the model as it would encode
    (its own maximum length, eval mode), e.g. to estimate a partly recovered model; it may raise
    RecoveryStopped to end the recovery there."""
    from .layers import hf_model

    if not stage.rows:
        raise SbsearchError(f"stage {stage.name}: no training data")
    if teacher is None:
        raise SbsearchError("stage hidden needs a teacher model")
    t0 = time.perf_counter()
    threads = set_threads(cfg.threads)
    seed_everything(cfg.seed)
    # each text as the model will read it, teacher and student alike (see prompted_for_distillation)
    texts = prompted_for_distillation(model, stage.rows)
    length = cfg.max_length or fitted_length(model, texts, min(cfg.max_length_cap, model.max_seq_length))
    s_layers = hf_model(model).config.num_hidden_layers
    if len(kept) != s_layers:
        raise SbsearchError(f"stage hidden: {len(kept)} kept layers but the student has {s_layers}")
    targets = layer_targets(kept, hf_model(teacher).config.num_hidden_layers)
    epochs = stage.epochs if stage.epochs is not None else cfg.epochs
    lr = stage.lr if stage.lr is not None else cfg.lr
    total_steps = max(1, int(round(-(-len(texts) // cfg.batch_size) * epochs)))
    # length-grouped batches, as in the other stages: on a CPU, padding is the waste
    batches = _grouped_text_batches(texts, cfg.batch_size, np.random.default_rng(cfg.seed))
    run = _HiddenRun(model, teacher, targets, embedding_weight, length, texts_come_back=epochs > 1)
    losses_seen = run.fit(batches, cfg, lr, total_steps, on_step, t0)
    reused = run.outputs.hits if run.outputs is not None else 0
    return {"stage": stage.name, "max_length": length, "threads": threads, "frozen_embeddings": cfg.freeze_embeddings,
            "layer_targets": targets, "steps": total_steps, "epochs": epochs, "lr": lr, "batch_size": cfg.batch_size,
            "rows": len(texts), "texts": len(texts), "embedding_weight": embedding_weight,
            "teacher_batches_read_back": reused,
            "train_loss": round(float(np.mean(losses_seen)), 5), "final_loss": round(float(np.mean(losses_seen[-20:])), 5),
            "seconds": round(time.perf_counter() - t0, 1)}


def prompted_for_distillation(model, rows: list[str]) -> list[str]:
    """Distillation texts with the prompt of the role each plays: a single sentence (a JSTS sentence,
    a sentence cut from a document) with the query prompt, a passage of several sentences with the
    document prompt. Why: a model with prompts (E5's "query: " / "passage: ") is asked questions under
    its query prompt; distilled under the document prompt alone, the student never saw that prompt
    and its query side drifted from the teacher's. Models without prompts get the texts unchanged."""
    query, document = prompt_of(model, "query"), prompt_of(model, "document")
    if query == document:
        return [query + t for t in rows]
    return [(query if len(split_sentences([t])) <= 1 else document) + t for t in rows]


def _grouped_text_batches(texts: list[str], batch_size: int, rng):
    """Endless length-grouped batches of texts, reshuffled every pass."""
    lengths = [len(t) for t in texts]
    while True:
        bs = pooled_batches(rng.permutation(len(texts)).tolist(), lengths, batch_size)
        for i in rng.permutation(len(bs)):
            yield [texts[j] for j in bs[i]]


class _HiddenRun:
    """The hidden-state distillation loop, with the student and teacher set up for it (their
    length, hidden states on, eval mode) and put back afterwards, whatever happens."""

    def __init__(self, model, teacher, targets: list[int], embedding_weight: float, length: int,
                 texts_come_back: bool):
        from .layers import hf_model

        self.model, self.teacher, self.targets = model, teacher, targets
        self.embedding_weight, self.length = embedding_weight, length
        self.s_hf, self.t_hf = hf_model(model), hf_model(teacher)
        self.base_len = model.max_seq_length
        # the teacher's outputs of earlier runs (sharing_teacher_outputs()), else of this run's earlier epochs
        self.outputs = teacher_outputs.active()
        if self.outputs is None and texts_come_back:
            self.outputs = teacher_outputs.TeacherOutputs(teacher_outputs.default_max_bytes(), layers=targets)
        self.fingerprint = teacher_outputs.fingerprint(self.t_hf) if self.outputs is not None else None

    def fit(self, batches, cfg: TrainConfig, lr: float, total_steps: int, on_step, t0: float) -> list[float]:
        import torch
        from transformers import get_linear_schedule_with_warmup

        model, teacher = self.model, self.teacher
        freeze_embeddings(model, cfg.freeze_embeddings)
        model.max_seq_length = self.length
        teacher_len = teacher.max_seq_length
        teacher.max_seq_length = self.length
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * total_steps), total_steps)
        self.s_prev, t_prev = self.s_hf.config.output_hidden_states, self.t_hf.config.output_hidden_states
        self.s_hf.config.output_hidden_states = self.t_hf.config.output_hidden_states = True
        # Dropout stays off in the student too: the target is a deterministic function of the text, and
        # with dropout the loss is mostly dropout noise (measured on a tiny model: training loss 0.2
        # against an evaluation gap of 0.0005), which for one short epoch only slows the fit.
        model.eval()
        teacher.eval()
        losses_seen: list[float] = []
        report = _StepReport(cfg, total_steps, t0)
        try:
            for step in range(total_steps):
                loss = self.loss(next(batches))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                losses_seen.append(float(loss.detach()))
                if on_step is not None:
                    self.call_on_step(on_step, step + 1, total_steps)
                report.step(step, losses_seen)
        finally:
            report.close()
            self.s_hf.config.output_hidden_states, self.t_hf.config.output_hidden_states = self.s_prev, t_prev
            model.max_seq_length = self.base_len
            teacher.max_seq_length = teacher_len
            freeze_embeddings(model, False)
            model.eval()
        return losses_seen

    def loss(self, batch: list[str]):
        import torch

        feats = self.model.preprocess(batch)
        with torch.no_grad():
            if self.outputs is None:
                t_out = self.teacher(dict(feats))
            else:
                t_out = self.outputs.get((self.fingerprint, self.length), batch, feats["attention_mask"],
                                         lambda: self.teacher(dict(feats)))
        s_out = self.model(dict(feats))
        mask = feats["attention_mask"].unsqueeze(-1).float()
        ntok = mask.sum()
        loss = 0.0
        for j, ti in enumerate(self.targets):
            s_h = s_out["all_layer_embeddings"][j + 1]
            t_h = t_out["all_layer_embeddings"][ti]
            num = (((s_h - t_h) ** 2) * mask).sum() / ntok
            den = ((t_h ** 2) * mask).sum() / ntok
            loss = loss + num / den.clamp_min(1e-6)
        s_e = torch.nn.functional.normalize(s_out["sentence_embedding"], dim=-1)
        t_e = torch.nn.functional.normalize(t_out["sentence_embedding"], dim=-1)
        return loss + self.embedding_weight * ((s_e - t_e) ** 2).sum(-1).mean()

    def call_on_step(self, on_step, step: int, total_steps: int) -> None:
        """on_step sees the model as it encodes (its own length, its own hidden-state setting)."""
        self.model.max_seq_length = self.base_len
        self.s_hf.config.output_hidden_states = self.s_prev
        try:
            on_step(step, total_steps, self.model)
        finally:
            self.model.max_seq_length = self.length
            self.s_hf.config.output_hidden_states = True
            self.model.eval()


class _StepReport:
    """A progress bar on a terminal; else a line per 10% of the steps on stderr (log files)."""

    def __init__(self, cfg: TrainConfig, total_steps: int, t0: float):
        self.cfg, self.total_steps, self.t0 = cfg, total_steps, t0
        self.bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, desc="hidden distil", unit="step")

    def step(self, step: int, losses_seen: list[float]) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{np.mean(losses_seen[-20:]):.4f}")
        elif self.cfg.log_lines and ((step + 1) % max(1, self.total_steps // 10) == 0 or step + 1 == self.total_steps):
            import sys

            print(f"    hidden: step {step + 1}/{self.total_steps}, {time.perf_counter() - self.t0:.0f} s, "
                  f"loss {np.mean(losses_seen[-20:]):.4f}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
