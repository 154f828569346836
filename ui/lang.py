"""The page's language: the switch in the header, and which language a handler answers in.

Layout texts (tab names, labels, buttons, explanations) are `L("key")`: Gradio's I18n looks them
up in the browser. Texts that handlers make are formatted on the server with `t(key, lang)`, in
the language of `lang_of(request)`: the one chosen on the page (the switch, set on load from
`?lang=` or the browser's languages), else the link's `?lang=`, else Accept-Language, else English
(sessions.lang_of).
"""

from __future__ import annotations

import inspect
import json
import logging
import re

import gradio as gr
import pandas as pd
from gradio.i18n import I18nData

from aevae import figures, i18n
from aevae.data import label_shown as group
from aevae.i18n import DEFAULT

from .sessions import lang_of, session

log = logging.getLogger("aevae.app")

# The app's keys, and Gradio's own that Gradio 6.31 leaves without a translation (or without any
# text: "common.complete" and "common.upload" showed as such): a catalog's "gradio" section.
I18N = gr.I18n(**{lang: {**i18n.catalog(lang).get("gradio", {}), **i18n.catalog(lang)["keys"]}
                  for lang in i18n.languages()})


class Text(I18nData):
    """A layout text that may be joined with plain text, not with another: Gradio's browser side
    translates only the first key of a string."""

    def __add__(self, other):
        if "__i18n__" in str(other):
            raise ValueError(f"{self.key!r} joined with another key: make it one key")  # not shown: a bug
        return str(self) + str(other)

    def __radd__(self, other):
        if "__i18n__" in str(other):
            raise ValueError(f"{self.key!r} joined with another key: make it one key")  # not shown: a bug
        return str(other) + str(self)


def L(key: str) -> Text:  # noqa: N802 (reads like a label in the layout code)
    """A layout text, translated in the browser."""
    text = i18n.t(key)  # an unknown key fails when the page is built, not silently in the browser
    if re.search(r"{\w*}", text):
        raise ValueError(f"{key!r} has fields to fill: a handler formats it with t()")  # not shown: a bug
    return Text(key)


def set_language(lang: str, request: gr.Request):
    """The switch (or the page on load) chose a language: handlers answer in it from now on."""
    s = session(request, page=True)
    s.lang = i18n.match(lang) or DEFAULT


# The same choice as i18n.match, in the browser: the link's ?lang=, else the browser's languages.
_MATCH_JS = ("const langs = " + json.dumps(list(i18n.languages())) + ";"
             " const match = (tag) => { tag = (tag || '').trim().replace('_', '-').toLowerCase();"
             " if (!tag) return null;"
             " return langs.find(l => l.toLowerCase() === tag)"
             " || langs.find(l => l.toLowerCase().split('-')[0] === tag.split('-')[0]) || null; };")
CHOOSE_JS = ("() => { " + _MATCH_JS +
             " const q = new URLSearchParams(window.location.search).get('lang');"
             " return match(q) || (navigator.languages || [navigator.language]).map(match).find(Boolean)"
             " || '" + DEFAULT + "'; }")
# Gradio writes some tooltips and screen-reader labels in English whatever the locale ("Copy",
# "Remove this file", "number input for ..."), and keeps a few texts in the language it started in
# (a file box's "Drop File Here", an error toast's title): a catalog's "gradio_text" gives them in
# its language ("{}" stands for any text in a label), put on by an observer and taken off again for
# a language without (and a text Gradio drew in the page's first language goes back to English).
# Texts that are the app's or the user's (Markdown, tables, captions) are left.
_ATTRS_JS = ("const T = " + json.dumps({lang: i18n.catalog(lang).get("gradio_text", {}) for lang in i18n.languages()},
                                      ensure_ascii=False) + ";"
             " const esc = (s) => s.replace(/[.*+?^${}()|[\\]\\\\]/g, '\\\\$&');"
             " const pats = {}; for (const [l, m] of Object.entries(T)) pats[l] = Object.entries(m)"
             ".filter(([k]) => k.includes('{}')).map(([k, v]) => [new RegExp('^' + k.split('{}').map(esc).join('(.+)') + '$'), v]);"
             " const said = (en, l) => { const m = T[l] || {}; if (Object.hasOwn(m, en)) return m[en];"
             " for (const [rx, v] of (pats[l] || [])) { const g = en.match(rx);"
             " if (g) { let i = 1; return v.replace(/\\{\\}/g, () => g[i++]); } } return null; };"
             " const fix = (el) => { const l = document.documentElement.lang; el.__aevae = el.__aevae || {};"
             " for (const a of ['title', 'aria-label']) { const v = el.getAttribute(a); if (v == null) continue;"
             " const was = el.__aevae[a]; const en = was && v === was[1] ? was[0] : v; const out = said(en, l);"
             " if (out != null && out !== v) { el.__aevae[a] = [en, out]; el.setAttribute(a, out); }"
             " else if (out == null && was && v === was[1]) { delete el.__aevae[a]; el.setAttribute(a, en); } } };"
             " const REV = {}; for (const m of Object.values(T)) for (const [k, v] of Object.entries(m)) REV[v] = k;"
             " const SKIP = '.prose, table, .gallery, textarea, input, .caption-label, .cm-editor';"
             " const fixText = (n) => { const p = n.parentElement; if (!p || p.closest(SKIP)) return;"
             " const l = document.documentElement.lang; const v = n.nodeValue; const was = n.__aevae;"
             " const en = was && v === was[1] ? was[0] : v; const key = en.trim(); const m = T[l] || {};"
             " const base = Object.hasOwn(REV, key) ? REV[key] : key;"  # drawn by Gradio in the first language
             " const to = Object.hasOwn(m, base) ? m[base] : (base !== key ? base : null);"
             " const out = key && to != null && !base.includes('{}') ? en.replace(key, to) : null;"
             " if (out != null && out !== v) { n.__aevae = [en, out]; n.nodeValue = out; }"
             " else if (out == null && was && v === was[1]) { n.__aevae = null; n.nodeValue = en; } };"
             " const all = (root) => { if (root.nodeType === 3) return fixText(root); if (root.nodeType !== 1) return;"
             " fix(root); root.querySelectorAll('[title], [aria-label]').forEach(fix);"
             " const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT); while (w.nextNode()) fixText(w.currentNode); };"
             " if (!window.__aevaeAttrs) { window.__aevaeAttrs = all; new MutationObserver((ms) => ms.forEach((m) =>"
             " m.type === 'attributes' ? fix(m.target) : m.type === 'characterData' ? fixText(m.target)"
             " : m.addedNodes.forEach(all))).observe(document.body, {subtree: true, childList: true, attributes: true,"
             " characterData: true, attributeFilter: ['title', 'aria-label']}); }"
             " window.__aevaeAttrs(document.body);")
# Gradio keeps its locale in its core module; importing that module again gives the same store.
APPLY_JS = ("async (lang, ...rest) => { document.documentElement.lang = lang; " + _ATTRS_JS +
            " const titles = " + json.dumps({lang: i18n.t("app.title", lang) for lang in i18n.languages()}) + ";"
            " if (titles[lang]) document.title = titles[lang];"
            " const core = performance.getEntriesByType('resource').map(e => e.name)"
            ".find(n => /\\/assets\\/core-[\\w-]+\\.js(\\?.*)?$/.test(n));"
            " if (core) { try { (await import(core)).changeLocale(lang); }"
            " catch (e) { console.error('aevae: cannot switch the language', e); } }"
            " return [lang, ...rest]; }")
# A language picked by hand goes into the address, so a reload or a shared link keeps it.
LINK_JS = ("(lang) => { const u = new URL(window.location.href); u.searchParams.set('lang', lang);"
           " window.history.replaceState(null, '', u); return lang; }")


def on_switch(ctx, fn, inputs, outputs, after=None) -> None:
    """When the page's language changes, `fn(*inputs)` gives `outputs` again (in the new language:
    fn answers in lang_of(request)); `after` (fn, inputs, outputs) runs in the step after, once the
    first step's outputs are in the page. See wire_switch."""
    vars(ctx).setdefault("switched", []).append((fn, _listed(inputs), _listed(outputs)))
    if after:
        vars(ctx).setdefault("after_switch", []).append((after[0], _listed(after[1]), _listed(after[2])))


# --- results shown again in a new language ------------------------------------------------------
def shown(s, view: str, make, lang: str):
    """The outputs of `view` (a tab's result) as make(lang) makes them from a result already
    computed; kept, so that a new language shows them again (see rerender) without computing
    anything but the words and the pictures' labels."""
    vars(s).setdefault("_views", {})[view] = make
    return make(lang)


def rerender(ctx, view: str, outputs: list, then=None, on_reload: bool = True) -> None:
    """When the page's language changes, and when a reloaded page reattaches to its session,
    `view`'s outputs are made again from the session's last result (nothing happens for a view
    not shown yet); `then` (fn, inputs, outputs) runs in the step after. on_reload=False: the
    view comes back after a reload by a handler of its own (the Train tab's live training)."""
    vars(ctx).setdefault("rerenders", []).append((view, _listed(outputs)))
    if on_reload:
        restore(ctx, view, outputs)
    if then:
        vars(ctx).setdefault("after_switch", []).append((then[0], _listed(then[1]), _listed(then[2])))
        if on_reload:
            vars(ctx).setdefault("after_reload", []).append((then[0], _listed(then[1]), _listed(then[2])))


def restore(ctx, view: str, outputs: list) -> None:
    """`view`'s outputs made again from the session when a reloaded page reattaches (not on a
    language switch: for the settings a result was made with, which the student may have changed since)."""
    vars(ctx).setdefault("reloaded", []).append((view, _listed(outputs)))


def wire_switch(ctx) -> None:
    """The switch's event, made once every tab is built: the language set, every tab's name sent
    again (Gradio's tab bar keeps the names it first drew), every kept result and every on_switch
    handler in one event, the `after`s in a second.

    One event for all, and progress shown on the switch only: Gradio's page copies the props of
    every component that ever showed progress (and of its children) at each status change of any
    event, so each extra event cost the page a pass over all results, and progress on the tabs a
    pass over the whole page (the switch took 8 s with 19 events)."""
    tabs = [b for b in ctx.demo.blocks.values() if isinstance(b, gr.Tab) and str(b.label).startswith("__i18n__")]
    keys = [json.loads(str(tab.label).removeprefix("__i18n__"))["key"] for tab in tabs]
    views = vars(ctx).get("rerenders", [])
    first = [(lambda: [gr.update(label=Text(k)) for k in keys], [], tabs),
             (_again(views), [], [o for _, outs in views for o in outs]), *vars(ctx).get("switched", [])]
    run, inputs, outputs = _one_event(first)
    switch = ctx.switch

    def switched(request: gr.Request, lang, *values):
        set_language(lang, request)
        return run(request, values)

    event = switch.change(switched, [switch, *inputs], outputs, js=APPLY_JS, queue=False, api_visibility="private",
                          show_progress="hidden", show_progress_on=switch)
    if after := vars(ctx).get("after_switch"):
        run_after, after_in, after_out = _one_event(after)
        def after_switch(request: gr.Request, *values):
            return run_after(request, values)

        event.then(after_switch, after_in, after_out, queue=False,
                   api_visibility="private", show_progress="hidden", show_progress_on=switch)
    wire_reload(ctx)


def wire_reload(ctx) -> None:
    """A reloaded page that reattached to its session shows every tab's last result again (a
    student's beta sweep, variants, latent sizes...), as a language switch does."""
    views = vars(ctx).get("reloaded", [])
    if not views or ctx.attached is None:
        return
    event = ctx.attached.then(_again(views), None, [o for _, outs in views for o in outs], queue=False,
                              api_visibility="private", show_progress="hidden")
    if after := vars(ctx).get("after_reload"):
        run_after, after_in, after_out = _one_event(after)

        def after_restored(request: gr.Request, *values):
            out = run_after(request, values)
            return out[0] if len(after_out) == 1 else out  # one output: Gradio wants its value alone

        event.then(after_restored, after_in, after_out, queue=False, api_visibility="private",
                   show_progress="hidden")


def _listed(components) -> list:
    return [] if components is None else list(components) if isinstance(components, (list, tuple)) else [components]


_FAILED = object()


def _one_event(handlers):
    """handlers [(fn, inputs, outputs)] as one: (run(request, values), inputs, outputs); a handler
    that fails leaves its outputs as they are (a gr.Error is shown as a warning) and the others run."""
    inputs = list({c._id: c for _, ins, _ in handlers for c in ins}.values())
    outputs = [o for _, _, outs in handlers for o in outs]
    if len({o._id for o in outputs}) != len(outputs):
        raise ValueError("two language-switch handlers write the same component")  # not shown: a bug
    where = {c._id: i for i, c in enumerate(inputs)}

    def run(request, values):
        out = []
        for fn, ins, outs in handlers:
            try:
                made = _call(fn, [values[where[c._id]] for c in ins], request)
            except gr.Error as e:
                gr.Warning(e.message)
                made = _FAILED
            except Exception:  # noqa: BLE001 - one view that cannot be made again must not stop the others
                log.exception("a language switch could not redo %s", getattr(fn, "__name__", fn))
                made = _FAILED
            if made is _FAILED:
                out += [gr.update()] * len(outs)
            else:
                out += list(made) if len(outs) > 1 else [made]
        return out

    return run, inputs, outputs


def _call(fn, args, request):
    """fn called as Gradio would: its gr.Request parameter (by name or annotation) given the request."""
    params = list(inspect.signature(fn).parameters.values())
    wants = [p.name == "request" or p.annotation in (gr.Request, "gr.Request") for p in params]
    it = iter(args)
    return fn(*[request if w else next(it) for w in wants])


def _again(views):
    """The handler that shows every kept view again in the new language."""

    def again(request: gr.Request):
        s, lang = session(request), lang_of(request)
        out = []
        for view, outs in views:
            make = vars(s).get("_views", {}).get(view)
            made = None
            if make is not None:
                try:
                    made = make(lang)
                except Exception:  # noqa: BLE001 - e.g. the result's files were swept: leave it as it is
                    made = None
            out += [gr.update()] * len(outs) if made is None else list(made) if len(outs) > 1 else [made]
        return out

    return again


def build(ctx) -> gr.Radio:
    """The switch; its event is made by wire_switch once every tab is built."""
    switch = gr.Radio([(i18n.name(lang), lang) for lang in i18n.languages()], value=None,
                      show_label=False, container=False, elem_id="aevae-lang", scale=0, min_width=220)
    ctx.demo.load(None, None, switch, js=CHOOSE_JS)
    ctx.switch = switch
    switch.input(None, switch, None, js=LINK_JS)
    return switch


def skipped_file(line: str, lang: str) -> str:
    """A skipped file's "name: reason" with the reason in `lang` (the name, which may hold ": "
    itself, as it is)."""
    at = line.find(": ")
    while at != -1:
        reason = line[at + 2:]
        if (shown := i18n.tm(reason, lang)) != reason:
            return line[:at + 2] + shown
        at = line.find(": ", at + 2)
    return i18n.tm(line, lang)


# --- pictures, tables and plots ---------------------------------------------------------------
def drawn(key: str, lang: str, **fmt) -> str:
    """A label drawn into a picture: in `lang` where this machine has a font for it, else English."""
    text = i18n.t(key, lang, **fmt)
    return text if figures.can_draw(text) else i18n.t(key, DEFAULT, **fmt)


# --- tables and plots ----------------------------------------------------------------------
col = i18n.col


def table(rows, lang: str, cells: tuple[str, ...] = ()) -> pd.DataFrame:
    """Rows (or a frame) with headers in `lang`; the columns in `cells` hold package messages, a
    "label" column labels (group)."""
    df = _values(rows, lang, cells)
    return df.rename(columns={c: col(c, lang) for c in df.columns})


def _values(rows, lang: str, cells: tuple[str, ...] = ()) -> pd.DataFrame:
    """table()'s cells in `lang`, its headers left as they are."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if "label" in df.columns:
        df["label"] = [group(v, lang) if isinstance(v, str) else v for v in df["label"]]
    for c in cells:
        if c in df.columns:
            df[c] = [i18n.tm(v, lang) if isinstance(v, str) else v for v in df[c]]
    return df


def plot(df: pd.DataFrame | None, lang: str, x: str, y: str, color: str, tooltip: list[str] | None = None):
    """A plot's data with its axes, legend and tooltips named in `lang` (None: an empty plot).

    Without extra tooltip columns the data keep their English column names and only the titles
    change: Gradio's plot draws a new x/y/color with the data it had before the new data arrive,
    so a language switch (or a reload, then a switch) left the Train tab's curves as "undefined"
    on a NaN axis. Extra tooltip columns show their field names, so those plots rename them
    (and redraw after: latent_space_tab.redraw_map)."""
    if df is None:
        return None
    if tooltip:
        return gr.update(value=table(df, lang), x=col(x, lang), y=col(y, lang), color=col(color, lang),
                         tooltip=[col(c, lang) for c in tooltip])
    return gr.update(value=_values(df, lang), x=x, y=y, color=color, x_title=col(x, lang), y_title=col(y, lang),
                     color_title=col(color, lang))
