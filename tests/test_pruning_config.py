"""PruneConfig, recipes and the stage registry, with no model and no training (quick).

GOLDEN is what the recipes meant before pruning/ was split into recipes, stages and a run (issue
#29): the plan, the settings and each stage's learning rate that pruning.api.prune derived from its
RECIPES / RECIPE_SETTINGS / DEFAULTS / STAGE_LR tables, computed on main at df11d68 for every
recipe, for the recipe chosen by the data given, and with overrides. The refactor must keep them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pruning import recipes
from pruning.config import PruneConfig
from pruning.stages import STAGES, RecoveryStage, parse_stages, register
from sbsearch.errors import SbsearchError

PAPER_LIKE = {"strategy": "top", "distil_split": False, "distil_limit": None, "sts_sentences": None,
              "sts_limit": None, "batch_size": 32, "max_length_cap": 128, "epochs": 1.0, "embedding_weight": 1.0}
BEST = {"strategy": "alternate", "distil_split": "both", "distil_limit": 1500, "sts_sentences": 3000,
        "sts_limit": None, "batch_size": 16, "max_length_cap": 256, "epochs": 1.0, "embedding_weight": 1.0}
GOLDEN = {
    "recipe=best": ("best", [["hidden", None]], BEST, {"hidden": 1e-4}),
    "recipe=best-long": ("best-long", [["hidden", None]],
                         {**BEST, "distil_limit": 12000, "batch_size": 32}, {"hidden": 1e-4}),
    "recipe=paper": ("paper", [["nli", None], ["sts", 2.0]], PAPER_LIKE, {"nli": 2e-5, "sts": 2e-5}),
    "recipe=nli": ("nli", [["nli", None]], PAPER_LIKE, {"nli": 2e-5}),
    "recipe=sts": ("sts", [["sts", None]], PAPER_LIKE, {"sts": 2e-5}),
    "recipe=distil": ("distil", [["distil", None]], PAPER_LIKE, {"distil": 1e-4}),
    "recipe=hidden": ("hidden", [["hidden", None]], PAPER_LIKE, {"hidden": 1e-4}),
    "recipe=distil-nli-sts": ("distil-nli-sts", [["distil", None], ["nli", None], ["sts", 2.0]], PAPER_LIKE,
                              {"distil": 1e-4, "nli": 2e-5, "sts": 2e-5}),
    "data=nli,sts": ("best", [["hidden", None]], BEST, {"hidden": 1e-4}),
    "data=nli": ("nli", [["nli", None]], PAPER_LIKE, {"nli": 2e-5}),
    "data=sts": ("sts", [["sts", None]], PAPER_LIKE, {"sts": 2e-5}),
    "data=distil": ("distil", [["distil", None]], PAPER_LIKE, {"distil": 1e-4}),
    "data=none": (None, [], PAPER_LIKE, {}),
    "stages=hidden,sts:2": ("custom", [["hidden", None], ["sts", 2.0]], PAPER_LIKE, {"hidden": 1e-4, "sts": 2e-5}),
    "stages=mix+recipe=best": ("best", [["mix", None]], BEST, {"mix": 1e-4}),
    "recipe=best,strategy=top,batch_size=8": ("best", [["hidden", None]], {**BEST, "strategy": "top", "batch_size": 8},
                                              {"hidden": 1e-4}),
    "recipe=paper,distil_split=False": ("paper", [["nli", None], ["sts", 2.0]], PAPER_LIKE, {"nli": 2e-5, "sts": 2e-5}),
    # added after the split (issue #27): the paper's plan with Sentence-BERT's softmax NLI objective
    "recipe=paper-softmax": ("paper-softmax", [["nli-softmax", None], ["sts", 2.0]], PAPER_LIKE,
                             {"nli-softmax": 2e-5, "sts": 2e-5}),
    # best as measured on e5-small (docs/PRUNING.md, Japanese section): more text, longer, faster, embedding x10
    "recipe=best-e5": ("best-e5", [["hidden", None]],
                       {**BEST, "distil_limit": 4500, "epochs": 1.5, "embedding_weight": 10.0}, {"hidden": 8e-4}),
    "stages=hidden,sts:2+recipe=best-e5": ("best-e5", [["hidden", None], ["sts", 2.0]],
                                           {**BEST, "distil_limit": 4500, "epochs": 1.5, "embedding_weight": 10.0},
                                           {"hidden": 1e-4, "sts": 2e-5}),
    "recipe=best-e5,lr=1e-3,epochs=2": ("best-e5", [["hidden", None]],
                                         {**BEST, "distil_limit": 4500, "epochs": 2, "embedding_weight": 10.0},
                                         {"hidden": 1e-3}),
}
CASES = {
    **{f"recipe={r}": {"recipe": r} for r in ("best", "best-long", "paper", "nli", "sts", "distil", "hidden",
                                              "distil-nli-sts", "paper-softmax", "best-e5")},
    "data=nli,sts": {"nli": ["a"], "sts": ["b"]},
    "data=nli": {"nli": ["a"]},
    "data=sts": {"sts": ["b"]},
    "data=distil": {"distil": ["c"]},
    "data=none": {},
    "stages=hidden,sts:2": {"stages": "hidden,sts:2"},
    "stages=mix+recipe=best": {"stages": "mix", "recipe": "best"},
    "recipe=best,strategy=top,batch_size=8": {"recipe": "best", "strategy": "top", "batch_size": 8},
    "recipe=paper,distil_split=False": {"recipe": "paper", "distil_split": False},
    "stages=hidden,sts:2+recipe=best-e5": {"stages": "hidden,sts:2", "recipe": "best-e5"},
    "recipe=best-e5,lr=1e-3,epochs=2": {"recipe": "best-e5", "lr": 1e-3, "epochs": 2},
}


def test_every_recipe_is_covered():
    assert {k.partition("=")[2] for k in GOLDEN if k.startswith("recipe=") and "," not in k} == set(recipes.RECIPES)
    assert set(CASES) == set(GOLDEN)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_recipes_resolve_as_before(case):
    recipe, plan, settings, stage_lr = GOLDEN[case]
    cfg = PruneConfig(**CASES[case]).resolved()
    assert cfg.recipe == recipe
    assert [list(p) for p in cfg.plan] == plan
    assert {k: getattr(cfg, k) for k in settings} == settings
    assert {n: cfg.stage_lr(n) for n, _ in cfg.plan} == stage_lr
    assert cfg.resolved() == cfg  # resolving twice changes nothing


def test_a_base_model_gets_the_recipe_measured_on_it():
    """tune names no recipe: e5-small (and any cut of it, by the model it was first cut from) gets
    best-e5, every other model best, as measured (docs/PRUNING.md)."""
    assert recipes.recipe_for_base("e5-small") == "best-e5"
    assert recipes.recipe_for_base("minilm") == recipes.recipe_for_base("full") == "best"
    assert recipes.recipe_for_base(None) == "best"
    assert set(recipes.RECIPE_FOR_BASE.values()) <= set(recipes.RECIPES)


def test_from_recipe_takes_overrides_and_refuses_unknown_names():
    cfg = PruneConfig.from_recipe("best", base="minilm", layers=3, distil_limit=150)
    assert (cfg.base, cfg.layers, cfg.distil_limit, cfg.batch_size, cfg.strategy) == ("minilm", 3, 150, 16, "alternate")
    assert PruneConfig.from_recipe("paper", lr=1e-3).stage_lr("nli") == 1e-3
    with pytest.raises(SbsearchError, match="unknown recipe 'fast'"):
        PruneConfig.from_recipe("fast")
    with pytest.raises(SbsearchError, match="unknown stage 'dance'"):
        PruneConfig(stages="hidden,dance").resolved()
    with pytest.raises(SbsearchError, match="must be a number"):
        parse_stages("sts:two")
    with pytest.raises(TypeError, match="no field 'layer'"):
        PruneConfig.from_recipe("best", layer=3)


def test_a_new_stage_is_one_class_and_one_registry_line(monkeypatch):
    """What adding a recovery stage takes: a RecoveryStage subclass and its registry entry; then
    --stages accepts it (and so could a recipe), with its own learning rate and data, nothing else changed."""
    monkeypatch.setattr("pruning.stages.STAGES", dict(STAGES))

    @register
    class EchoStage(RecoveryStage):
        name = "echo"
        default_lr = 3e-4
        inputs = frozenset({"sentences"})

        @classmethod
        def from_inputs(cls, inputs, **kw):
            return cls(inputs.sentences, **kw)

        def train(self, model, cfg, kept, on_step=None):
            return {"stage": self.name, "rows": len(self.rows), "seconds": 0.0}

    cfg = PruneConfig(stages="echo:3,sts", sts=["pairs.csv"]).resolved()
    assert cfg.plan == [("echo", 3.0), ("sts", None)] and cfg.stage_lr("echo") == 3e-4
    from pruning.inputs import RecoveryInputs

    stage = EchoStage.from_inputs(RecoveryInputs(sentences=["a b c", "d e f"]), epochs=3.0, lr=cfg.stage_lr("echo"))
    assert stage.train(None, None, [0]) == {"stage": "echo", "rows": 2, "seconds": 0.0}
    assert (stage.lr, stage.epochs) == (3e-4, 3.0)


def test_importing_pruning_config_loads_no_torch():
    code = ("import sys; from pruning.config import PruneConfig; import pruning.api, pruning.run, pruning.evaluate; "
            "PruneConfig.from_recipe('best'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_new_suite_is_one_class_and_one_registry_line(monkeypatch, tmp_path):
    """What adding an evaluation suite takes: a Suite subclass and its registry entry; then --eval
    and evaluate_model accept it, its metrics join the others, and missing data reads as skipped."""
    from pruning import evaluate as ev
    from pruning.suites import SUITES, Suite, parse_suites, register as register_suite

    monkeypatch.setattr("pruning.suites.SUITES", dict(SUITES))

    @register_suite
    class WordCountSuite(Suite):
        name = "words"
        primary_metric = "words_per_text"

        def __call__(self, model, ctx):
            f = ctx.ed.file("words.txt")
            if f is None:
                return None
            ctx.say("counting words")
            lines = f.read_text().splitlines()
            return {"words_per_text": sum(len(model(t)) for t in lines) / len(lines)}

    assert parse_suites("words,size") == ("words", "size") and "words" in parse_suites("all")
    with pytest.raises(SbsearchError, match="unknown evaluation suite 'letters'"):
        parse_suites("words,letters")
    split_words = str.split  # a "model" that needs no torch
    said: list[str] = []
    assert ev.evaluate_model(split_words, ("words",), ev.EvalData(tmp_path, None)) == {"skipped": ["words"]}
    (tmp_path / "words.txt").write_text("one two three\nfour five\n")
    out = ev.evaluate_model(split_words, ("words",), ev.EvalData(tmp_path, None), progress=said.append)
    assert out == {"words_per_text": 2.5} and said == ["counting words"]
    assert WordCountSuite.primary_metric in out


def test_prune_keeps_every_keyword_it_took():
    """pruning.api.prune's keywords before the split (main at df11d68), each still a PruneConfig or
    a RunHooks field: the callers written against it (tune, the pruning table) keep working."""
    from dataclasses import fields

    from pruning.config import RunHooks

    old = ("keep_layers nli sts sts_dev distil distil_limit distil_split sts_limit sts_sentences nli_limit teacher "
           "stages recipe epochs batch_size lr max_length max_length_cap seed bf16 freeze_embeddings "
           "group_by_length threads evaluate compare asymmetric resume force progress quiet say on_stage on_step").split()
    known = {f.name for f in fields(PruneConfig)} | {f.name for f in fields(RunHooks)}
    assert not set(old) - known
    assert {f.name for f in fields(PruneConfig)} & {f.name for f in fields(RunHooks)} == set()  # no keyword is ambiguous
