"""English and 繁體中文: every text in both languages, none written around the tables.

The tables are aevae/locales/<lang>.json (aevae/i18n.py says how they work).
"""

from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path

import pytest

from aevae import i18n
from aevae.i18n import t, tm

ROOT = Path(__file__).resolve().parent.parent
OTHERS = [lang for lang in i18n.languages() if lang != i18n.DEFAULT]


def fields(text: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]


def test_there_are_english_and_traditional_chinese():
    assert i18n.languages()[:1] == ("en",) and "zh-TW" in i18n.languages()
    assert i18n.name("zh-TW") == "繁體中文"


@pytest.mark.parametrize("lang", OTHERS)
def test_every_key_in_every_language_with_the_same_fields(lang):
    en, other = i18n.catalog("en")["keys"], i18n.catalog(lang)["keys"]
    assert sorted(set(en) - set(other)) == [], f"keys missing in {lang}"
    assert sorted(set(other) - set(en)) == [], f"keys in {lang} but not in English"
    wrong = {k: (en[k], other[k]) for k in en if set(fields(en[k])) != set(fields(other[k]))}
    assert wrong == {}, "a translation must use the same {fields} as the English text"
    assert [k for k, v in other.items() if not v.strip()] == []


@pytest.mark.parametrize("lang", OTHERS)
def test_every_message_the_package_raises_is_translated(lang):
    """A new `raise ValueError(f"...")` in aevae/ needs a line in every language's "messages"."""
    messages = i18n.catalog(lang)["messages"]
    assert sorted(i18n.raised_messages() - set(messages)) == []


@pytest.mark.parametrize("lang", OTHERS)
def test_translated_messages_keep_their_holes_and_still_exist(lang):
    messages = i18n.catalog(lang)["messages"]
    known = i18n.source_templates(ROOT / "aevae", ROOT / "ui")
    assert sorted(set(messages) - known) == [], "translations of messages no source writes any more"
    for src, dst in messages.items():
        holes, used = src.count(i18n.HOLE), [f for f in fields(dst)]
        dst.format(*["x"] * holes)  # raises when the translation asks for more values or names one
        numbered = {int(f) for f in used if f.isdigit()}
        # every value is placed ({2:.0} places one as nothing: an English plural "s")
        assert numbered == set(range(holes)) if numbered else len(used) == holes, (src, dst)


def test_keys_fail_loudly_and_format():
    assert t("picker.now_using", "zh-TW", source="x", latent="8x16x16", size=64).startswith("所有分頁")
    assert t("picker.now_using", "xx", source="x", latent=1, size=2).startswith("Every tab")  # no file: English
    with pytest.raises(KeyError, match="no.such.key"):
        t("no.such.key", "en")


def test_package_messages_are_translated_with_their_values():
    assert tm("latent abc: write a vector size like 256 or a map like 256x8x8", "en").startswith("latent abc")
    zh = tm("latent abc: write a vector size like 256 or a map like 256x8x8", "zh-TW")
    assert "abc" in zh and "256x8x8" in zh and "潛在碼" in zh
    # a value that is itself a message (the name of a setting) is translated too
    assert tm("learning rate must be a finite number, got nan", "zh-TW") == "學習率必須是有限的數字，收到的是 nan"
    assert tm("something no template knows", "zh-TW") == "something no template knows"


@pytest.mark.parametrize("tag, lang", [("zh-TW", "zh-TW"), ("zh_tw", "zh-TW"), ("zh-HK", "zh-TW"), ("zh", "zh-TW"),
                                       ("en-GB", "en"), ("EN", "en"), ("fr", None), ("", None), (None, None)])
def test_a_browser_language_is_matched(tag, lang):
    assert i18n.match(tag) == lang


def test_accept_language_picks_the_first_language_we_have():
    assert i18n.from_accept_language("zh-TW,zh;q=0.9,en-US;q=0.8,en;q=0.7") == "zh-TW"
    assert i18n.from_accept_language("fr-FR,fr;q=0.9,en;q=0.8,zh-TW;q=0.7") == "en"
    assert i18n.from_accept_language("fr;q=0.9,zh-TW;q=0.95") == "zh-TW"
    assert i18n.from_accept_language(None) == "en" and i18n.from_accept_language("de") == "en"


# --- no English written around the tables in the app's code -----------------------------------
# Words that are the same in every language (names, units, file types, metrics).
ALLOWED = {"AE", "VAE", "PSNR", "SSIM", "LPIPS", "KL", "MSE", "PCA", "dB", "px", "aevae", "OpenMoji", "CSV",
           "PNG", "JSON", "npy", "npz", "zip", "png", "csv", "json", "safetensors", "gen_data", "gen_label", "small",
           "md", "html", "nats", "lr", "x", "beta", "sigma", "log", "AlexNet", "N", "I", "uint",
           "ONNX", "PC"}
FILE = re.compile(r"^[\w.-]+\.(png|csv|npy|npz|zip|json|md|html|safetensors)$")
# Calls whose string arguments are keys, column names or file names, never shown as they are.
KEY_CALLS = {"t", "tm", "L", "col", "table", "plot", "png", "csv_file", "I18N", "get", "startswith", "endswith",
             "split", "removeprefix", "mkdir", "new_folder", "write_text", "write_bytes", "save", "index",
             "PairJob", "Path", "open", "gr.File", "replace", "typed", "astype", "partition", "check_whole",
             "check_finite"}
SHOWN_KWARGS = {"label", "info", "placeholder", "title"}
VALUE_SHOWN = {"Markdown", "Button", "HTML", "Textbox", "update"}  # elsewhere a value is a choice, not a text
SHOWN_FIRST_ARG = {"Markdown", "Button", "Tab", "Accordion", "HTML", "Error", "Info", "Warning", "Textbox"}


def prose(text: str) -> list[str]:
    """English words in a text that would be shown as they are."""
    if FILE.match(text.strip()):
        return []
    return [w for w in re.findall(r"[A-Za-z][A-Za-z']+", text) if w not in ALLOWED]


def call_name(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return (f.value.id + "." + f.attr) if isinstance(f.value, ast.Name) and f.value.id == "gr" else f.attr
    return ""


def shown_strings(node: ast.AST):
    """String constants in an expression whose value reaches the page (not keys, not columns)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.JoinedStr):
        yield from (v for v in node.values if isinstance(v, ast.Constant))
        for v in node.values:
            if isinstance(v, ast.FormattedValue):
                yield from shown_strings(v.value)
    elif isinstance(node, ast.Call):
        name = call_name(node)
        if name in KEY_CALLS or name.split(".")[-1] in KEY_CALLS:
            return
        if isinstance(node.func, ast.Attribute):
            yield from shown_strings(node.func.value)
        for a in node.args:
            yield from shown_strings(a)
        for kw in node.keywords:
            yield from shown_strings(kw.value)
    elif isinstance(node, ast.Dict):  # keys are column names: the runtime test reads the headers
        for v in node.values:
            yield from shown_strings(v)
    elif isinstance(node, ast.IfExp):
        yield from shown_strings(node.body)
        yield from shown_strings(node.orelse)
    elif isinstance(node, ast.Subscript):
        yield from shown_strings(node.value)
    elif isinstance(node, (ast.Compare, ast.BoolOp)):
        return
    else:
        for child in ast.iter_child_nodes(node):
            yield from shown_strings(child)


def shown_in(tree: ast.AST):
    """Strings a module shows: what handlers return, yield or raise, and layout texts."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Return, ast.Yield, ast.Raise)) and getattr(node, "value", None) is not None:
            yield from shown_strings(node.value)
        elif isinstance(node, ast.Raise) and node.exc is not None:
            yield from shown_strings(node.exc)
        elif isinstance(node, ast.Call):
            name = call_name(node).split(".")[-1]
            if name in KEY_CALLS:
                continue
            if name in SHOWN_FIRST_ARG and node.args:
                yield from shown_strings(node.args[0])
            for kw in node.keywords:
                if kw.arg in SHOWN_KWARGS or (kw.arg == "value" and name in VALUE_SHOWN):
                    yield from shown_strings(kw.value)
                elif kw.arg == "choices" or (name in ("Radio", "Dropdown") and kw.arg is None):
                    yield from shown_strings(kw.value)
            if name in ("Radio", "Dropdown") and node.args and isinstance(node.args[0], (ast.List, ast.Tuple)):
                for choice in node.args[0].elts:  # (label, value): the label is shown
                    yield from shown_strings(choice.elts[0] if isinstance(choice, ast.Tuple) else choice)


def english_in(path: Path) -> list[str]:
    """English texts a file shows without the tables; a line marked `# not shown` (a message for
    developers, raised while the page is built) is left out."""
    source = path.read_text(encoding="utf-8")
    lines, tree = source.splitlines(), ast.parse(source)
    seen = {}
    for node in shown_in(tree):
        words = prose(node.value)
        if words and "# not shown" not in lines[node.lineno - 1]:
            seen[(node.lineno, node.col_offset, node.value)] = f"{path.name}:{node.lineno}: {node.value!r}"
    return sorted(set(seen.values()))


UI_FILES = [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py"))]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.name)
def test_no_english_text_bypasses_the_tables(path):
    assert english_in(path) == []


def test_the_scan_finds_english_written_around_the_tables(tmp_path):
    """The scan above would catch a regression of each kind it looks for."""
    bad = tmp_path / "bad_tab.py"
    bad.write_text(
        "import gradio as gr\n"
        "def handler(x):\n"
        "    if not x:\n"
        "        raise gr.Error('Upload one or more images first.')\n"
        "    return f'Done: {x} images', gr.update(label='Per image')\n"
        "def build():\n"
        "    gr.Button('Stop')\n"
        "    gr.Slider(1, 5, label='Epochs')\n"
        "    gr.Radio(['openmoji', 'upload'], label=L('train.data'))\n"
        "    gr.Markdown(L('ok') + ' Shipped rungs')\n")
    found = english_in(bad)
    for text in ["Upload one", "Done: ", "Per image", "Stop", "Epochs", "openmoji", "upload", "Shipped rungs"]:
        assert any(text in f for f in found), (text, found)
    good = tmp_path / "good_tab.py"
    good.write_text(
        "import gradio as gr\n"
        "def handler(x, lang):\n"
        "    return t('done', lang, n=x), png(folder, grid, 'latent-sizes.png'), 'AE', f'{x} dB'\n"
        "def build():\n"
        "    gr.Button(L('stop'), variant='stop')\n"
        "    gr.Radio([(L('data.openmoji'), 'openmoji')], value='openmoji', label=L('data'))\n"
        "    gr.LinePlot(x='iteration', y='MSE per pixel', label=L('plot'))\n")
    assert english_in(good) == []


# --- what the handlers answer, in each language ------------------------------------------------
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def texts(value) -> list[str]:
    """Every text an output shows: Markdown, table headers and message cells, plot axes, choices, captions."""
    import pandas as pd

    if isinstance(value, str):
        return [] if Path(value).suffix in (".png", ".csv", ".zip", ".json", ".npy", ".safetensors", ".txt") else [value]
    if isinstance(value, pd.DataFrame):
        return [str(c) for c in value.columns] + cells_of(value)
    if isinstance(value, dict):  # an update; a dropdown's value is a choice's value, not its label
        out = [] if "choices" in value else texts(value.get("value"))
        shown = ("x", "y", "color", "label")
        if "x_title" in value:  # a plot named by its titles: its columns are field names, never shown
            out = cells_of(value["value"]) if isinstance(value.get("value"), pd.DataFrame) else out
            shown = ("x_title", "y_title", "color_title", "label")
        out += [value[k] for k in shown if isinstance(value.get(k), str)]
        out += [label for label, _ in value.get("choices") or []]
        return out
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in texts(v)]
    return []


def cells_of(frame) -> list[str]:
    return [v for c in ("ended", "trained", "data", "source", "made by", "vs image values") if c in frame.columns
            for v in frame[c] if isinstance(v, str)]


def english_words(text: str, names: set[str]) -> list[str]:
    """English words in a text other than names (of images, labels, models, presets) and units."""
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    text = re.sub(r"https?://\S+|`[^`]*`|\b[\w.-]+\.(?:zip|npy|npz|png|json|safetensors)\b", " ", text)
    return [w for w in re.findall(r"[A-Za-z][A-Za-z']+", text) if w not in ALLOWED]


def variant_words(out, at: int = 3):
    """A view's answers after its picture, with its live panel's words instead of the payload (at `at`)."""
    words = [string.Formatter().vformat(v, (), FIELDS) for v in json.loads(out[at])["texts"].values()]
    return [*out[1:at], words]


def live_words(out):
    """The map's answers, its live panel's words and legend instead of its payload's numbers."""
    payload = json.loads(out[6])
    words = [string.Formatter().vformat(v.replace("onnxruntime-web", ""), (), FIELDS) for v in payload["texts"].values()]
    return [*out[:6:2], words, payload["label_names"]]


class _Holes(dict):  # a template's {fields} left empty
    def __missing__(self, key):
        return ""


FIELDS = _Holes()


def answers(app, who):
    """What the tabs answer for one page: reconstructions, variants, latent sizes, latent space, beta,
    models, runs (after a short training) and the picker."""
    out = {"reconstruct": app.reconstruct("", 4, 0, False, who),
           "variants": variant_words(app.make_variants("1-3", "(none)", 4, 2, 1.0, 0, who)),
           "latent_sizes": app.compare_latents("", 3, 0, False, who)[1:],
           "prior": app.prior_samples("in use", 4, 0, who)[1:],
           "interpolate": variant_words(app.interpolate("in use", 3, 5, 4, who), 2),
           "code_map": live_words(app.code_map("in use", "VAE", who)),
           "beta": app.shipped_beta_sweep(who)[::3],
           "models": app.describe_models(who)[:3],
           "metrics": app.metric_help(who)}
    args = dict(preset="quick", image_size=32, latent="16x4x4", epochs=1, seconds=120, batch_size=64, lr=2e-3,
                weight_decay=1e-5, beta=0.1, seed=0, dataset="openmoji", upload=None, use_when_done=False)
    out["plan"] = app.plan_training(*list(args.values())[:10], "openmoji", who)
    out["train"] = list(app.train_models(*args.values(), request=who))[-1][:4]
    out["runs"] = app.show_runs(who)
    out["picker"] = app.load_picker(who)
    out["stop"] = app.stop_training(who)
    return out


def names_in(app_module) -> set[str]:
    from aevae import data
    from aevae.config import PRESETS
    from ui.sessions import store

    split = store().get("names", False).split(32)
    zoo = store().zoo
    return ({*split.all.names, *data.OPENMOJI_GROUPS, *PRESETS, *zoo.pairs(), data.OPENMOJI_CREDIT, "OpenMoji",
             "in use", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "ReLU", "Sigmoid", "Linear", "MaxPool2d",
             "Flatten", "Unflatten", "Upsample", "logvar", "mu", "enc", "dec", "head"})


@pytest.mark.slow
def test_every_tab_answers_in_chinese_and_in_english(app_module):
    """A zh-TW page gets Chinese answers (no English beyond names and units); an English page no Chinese."""
    from types import SimpleNamespace

    zh = answers(app_module, SimpleNamespace(session_hash="zh-answers", headers={"accept-language": "zh-TW,zh;q=0.9"}))
    names = names_in(app_module)
    found = {tab: sorted({w for text in texts(out) for w in english_words(text, names)}) for tab, out in zh.items()}
    assert {tab: words for tab, words in found.items() if words} == {}
    assert all(CJK.search(" ".join(texts(out))) for tab, out in zh.items() if tab != "picker"), "a tab answered without Chinese"
    en = answers(app_module, SimpleNamespace(session_hash="en-answers", headers={"accept-language": "en-US,en"}))
    assert {tab: [x for x in texts(out) if CJK.search(x)] for tab, out in en.items()} == {tab: [] for tab in en}


def test_errors_come_in_the_pages_language(app_module):
    from types import SimpleNamespace

    import gradio as gr

    who = SimpleNamespace(session_hash="zh-errors", headers={"accept-language": "zh-TW"})
    with pytest.raises(gr.Error, match="潛在碼 「abc」：請寫向量大小"):
        list(app_module.train_models("quick", 32, "abc", 1, 60, 32, 0.003, 0, 0.1, 0, "openmoji", None, False,
                                     request=who))
    assert "無法用這些設定訓練" in app_module.plan_training("quick", 32, "abc", 1, 60, 32, 0.003, 0, 0.1, 0,
                                                            "openmoji", who)[0]
    with pytest.raises(gr.Error, match="不是編號") as refused:
        app_module.reconstruct("1, abc", 3, 0, False, who)
    assert refused.value.title == "錯誤"  # the toast's title too
    with pytest.raises(gr.Error, match="沒有編號為 99999 的影像：使用中的資料編號為 1-") as refused:
        app_module.make_variants("99999", "(none)", 4, 3, 1.0, 0, who)
    assert refused.value.title == "錯誤"
    with pytest.raises(gr.Error, match="影像數量必須介於 1 與 64 之間"):
        app_module.reconstruct("", 0, 0, False, who)
    with pytest.raises(gr.Error, match="學習率必須是有限的數字"):
        list(app_module.train_models("quick", 32, "16x4x4", 1, 60, 32, float("nan"), 0, 0.1, 0, "openmoji", None,
                                     False, request=who))
    # ?lang= in the page's address wins over the browser's languages; a choice made on the page over both
    who = SimpleNamespace(session_hash="zh-link", headers={"accept-language": "en"}, query_params={"lang": "zh-TW"})
    assert "計畫" in app_module.plan_training("quick", 32, "16x4x4", 1, 60, 32, 0.003, 0, 0.1, 0, "openmoji", who)[0]
    app_module.set_language("en", who)
    assert "Plan" in app_module.plan_training("quick", 32, "16x4x4", 1, 60, 32, 0.003, 0, 0.1, 0, "openmoji", who)[0]


def test_the_report_comes_in_the_pages_language(app_module, tmp_path):
    import zipfile
    from types import SimpleNamespace

    who = SimpleNamespace(session_hash="zh-report", headers={"accept-language": "zh-TW"})
    path, msg = app_module.download_report(who)
    assert msg.startswith("報告完成")
    with zipfile.ZipFile(path) as zf:
        md = zf.read("aevae-report/report.md").decode()
        html = zf.read("aevae-report/report.html").decode()
    for heading in ("## 1. 架構", "## 2. 訓練", "## 3. 原圖、AE 與 VAE 的比較", "## 4. 指標的意義", "## 5. VAE 雜訊變體",
                    "## 6. 潛在碼大小", "## 7. 超參數實驗"):
        assert heading in md
    assert "<html lang='zh-TW'>" in html and "峰值訊雜比" in html
    # Prose and table headers are Chinese; table cells keep names and numbers.
    names = names_in(app_module) | {"setting", "value"}  # the training table's rows are the config's fields
    prose = [line for line in md.splitlines() if line and not line.startswith(("| ", "|---", "- `", "!["))]
    headers = [line for i, line in enumerate(md.splitlines()) if line.startswith("| ") and
               md.splitlines()[i + 1].startswith("|---")]
    assert [(x, w) for x in prose + headers if (w := english_words(x, names))] == []
    en = SimpleNamespace(session_hash="en-report", headers={"accept-language": "en"})
    with zipfile.ZipFile(app_module.download_report(en)[0]) as zf:
        assert not CJK.search(zf.read("aevae-report/report.md").decode())


def test_openmoji_groups_are_named_in_chinese_and_a_students_labels_as_written(app_module):
    from types import SimpleNamespace

    from ui.lang import group

    who = SimpleNamespace(session_hash="zh-groups", headers={"accept-language": "zh-TW"})
    points, *_, labels, _payload = app_module.code_map("in use", "VAE", who)
    from aevae.data import OPENMOJI_GROUPS

    assert labels and set(labels) <= {tm(g, "zh-TW") for g in OPENMOJI_GROUPS} - set(OPENMOJI_GROUPS)
    assert set(points["value"][i18n.col("label", "zh-TW")]) == set(labels)  # the legend's names: the points'
    choices = app_module.label_choices("(none)", who)["choices"]
    assert ("笑臉與情緒", "smileys & emotion") in choices  # shown in Chinese, chosen by its own name
    assert group("cats", "zh-TW") == "cats" and group("flags", "en") == "flags"


# One term per concept in 繁體中文, as a teacher in Taiwan reads it: each wrong variant (a term of
# mainland usage, a second word for the same thing, half-English) with the term used instead.
ZH_TW_WRONG = {
    "信噪比": "訊雜比", "影像塊": "影像區塊", "學習感知": "學習式感知", "碼率": "位元率", "走樣": "嚴重失真",
    "抽樣": "取樣", "抽出": "取樣", "sigma": "σ", "plateau": "停滯", "耐心值": "停滯容忍週期數",
    "M 個參數": "百萬個參數", "簡短訓練": "快速訓練", "誰的潛在碼": "顯示哪個模型的潛在碼", "值數": "數值個數",
}
# Where an "x" between numbers is what the user types (the latent's format), not a size shown.
TYPED_X = ("train.latent", "lat.rung_latent", "latent {}: ")


def test_traditional_chinese_uses_one_term_per_concept():
    cat = i18n.catalog("zh-TW")
    texts = [*cat["keys"].items(), *cat["messages"].items(), *cat.get("names", {}).items()]
    found = [(k, wrong, right) for k, v in texts for wrong, right in ZH_TW_WRONG.items() if wrong in v.lower()]
    assert found == [], "use the term on the right"
    sizes = [(k, v) for k, v in texts if re.search(r"(?<=[\d}])x(?=[\d{])", v) and not k.startswith(TYPED_X)]
    assert sizes == [], "sizes are written with ×"
    quoted = [(k, v) for k, v in texts if "'" in v]
    assert quoted == [], "quoted input goes in 「」"
    # the VAE is explained with its standard terms where it is explained (Models tab, report)
    for key in ("models.lead", "rep.arch"):
        assert "KL 散度" in cat["keys"][key] and "重參數化" in cat["keys"][key]


def test_shipped_names_and_quoted_input_read_as_chinese():
    assert tm("shipped: default", "zh-TW") == "內建模型「預設」"
    assert tm("shipped: ladder-64x8x8", "zh-TW") == "內建模型「潛在碼階梯 64x8x8」"
    assert tm("report-b", "zh-TW") == "報告 B" and tm("report-b", "en") == "report-b"
    assert tm("unknown preset 'abc'", "zh-TW") == "沒有預設組合「abc」"
    assert tm("1.5 M parameters", "zh-TW") == "1.5 百萬個參數"


def test_a_zip_from_traditional_chinese_windows_shows_its_folder_names(app_module, tmp_path):
    """Windows' "Compressed folder" writes names in cp950, unmarked: the labels are the folders' own
    Chinese names, the summary says how they were read, and a skipped file's reason is Chinese."""
    import io
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from tests.test_data import zip_with_raw_names

    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(buf, "PNG")
    names = [f"{label}/{i}.png" for i in range(12) for label in ("貓", "狗")] + ["貓/說明.txt"]
    path = zip_with_raw_names(tmp_path / "作業.zip", names, "cp950", [buf.getvalue()] * 24 + [b"a note"])
    who = SimpleNamespace(session_hash="zh-zip", headers={"accept-language": "zh-TW"})
    dataset, text, _ = app_module.upload_data([str(path)], 32, who)
    assert dataset == "upload"
    assert "`狗` (12)" in text and "`貓` (12)" in text
    assert "Big5（cp950" in text
    assert "貓/說明.txt: 不是 PNG、JPEG、WebP 或 BMP 影像" in text


def test_a_new_language_keeps_the_latent_space_choice_and_renews_the_note(app_module):
    """After a training made its pair the one in use, the Latent space tab shows it once; a first
    view again in another language keeps what the student picked since. The note beside the
    models in use speaks of the pair in use now, in the new language."""
    from types import SimpleNamespace

    who = SimpleNamespace(session_hash="zh-switch", headers={"accept-language": "zh-TW"})
    assert app_module.now_using(who) == app_module.module.gr.update()  # nothing said before a pick
    app_module.use_models("shipped:default", who)
    list(app_module.train_models("quick", 32, "16x4x4", 1, 60, 64, 0.003, 0, 0.1, 0, "openmoji", None, True,
                                 request=who))
    assert app_module.now_using(who).startswith("所有分頁現在都使用 **實驗 ")  # the new pair, not 內建
    view = ("shipped:default", 4, 0, 1, 2, 3, "VAE")
    first = app_module.open_latent_space(*view, request=who)
    assert first[0]["value"] == "in use"  # the student's new pair, once
    app_module.set_language("en", who)  # the student picked a shipped pair, then switched
    again = app_module.open_latent_space(*view, request=who)
    assert again[0]["value"] == "shipped:default"
    assert app_module.now_using(who).startswith("Every tab now uses **run ")


def test_the_beta_values_asked_for_are_the_ones_accepted(app_module):
    """One beta is refused by the very message that says how many to give (it said 1 to 8, then
    that 2 were needed)."""
    from types import SimpleNamespace

    import gradio as gr

    who = SimpleNamespace(session_hash="zh-betas", headers={"accept-language": "zh-TW"})
    with pytest.raises(gr.Error, match="請輸入 2 到 8 個「beta 值」（每個都介於 0 與 100 之間）"):
        list(app_module.beta_sweep("1", 2, who))


@pytest.mark.slow
def test_a_running_training_speaks_the_language_switched_to(app_module):
    """Chinese page, Train pressed, then English chosen: the progress (and the outcome) switch at
    the next tick, without waiting for the training to end."""
    from types import SimpleNamespace

    who = SimpleNamespace(session_hash="zh-mid-training", headers={"accept-language": "zh-TW"})
    app_module.set_language("zh-TW", who)
    steps = app_module.train_models("quick", 32, "16x4x4", 3, 120, 64, 2e-3, 1e-5, 0.1, 4242, "openmoji", None, False,
                                    request=who)
    before = [next(steps)[0] for _ in range(2)]
    assert all(CJK.search(text) for text in before), before
    app_module.set_language("en", who)
    after = [out[0] for out in steps]
    assert len(after) >= 2 and not any(CJK.search(text) for text in after), after[:2]
    assert "epoch" in after[0] or "Loading" in after[0] or "waiting" in after[0], after[0]


def test_every_bold_and_emphasis_of_a_text_closes():
    # "**計畫：**{n}" showed its asterisks: CommonMark closes ** after punctuation only before a
    # space or punctuation, so a full-width colon inside the bold, before a digit or a CJK
    # character, left it open. Rendered as the page renders Markdown, with every hole filled.
    from markdown_it import MarkdownIt

    class Filled(dict):
        def __missing__(self, key):
            return "1"

    render = MarkdownIt("commonmark").render
    for lang in i18n.languages():
        texts = i18n.catalog(lang)["keys"]
        open_marks = [k for k, v in texts.items() if "**" in render(string.Formatter().vformat(v, (), Filled()))]
        assert open_marks == [], (lang, open_marks)
