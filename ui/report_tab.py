"""The Report tab: a downloadable report of the session, in the page's language."""

from __future__ import annotations

import gradio as gr

from aevae import report
from aevae.i18n import t
from aevae.session_state import NoModels

from .lang import L, rerender, shown
from .limits import HEAVY, HEAVY_SLOTS
from .messages import fail
from .sessions import lang_of, session

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "report"


def download_report(request: gr.Request):
    """A zip answering the homework questions from what this session did."""
    s, lang = session(request), lang_of(request)
    try:
        path = report.build(s, s.new_folder() / "aevae-report.zip", lang=lang)
    except (ValueError, NoModels) as e:
        raise fail(e, lang) from None
    return str(path), shown(s, VIEW, lambda lg: t("report.ready", lg), lang)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab(L("tab.report")):
        gr.Markdown(L("report.lead"), elem_classes="lead")
        report_btn = gr.Button(L("report.btn"), variant="primary")
        report_msg = gr.Markdown()
        report_file = gr.File(label="aevae-report.zip")
        report_btn.click(download_report, None, [report_file, report_msg], api_name="report", concurrency_id=HEAVY,
                         concurrency_limit=HEAVY_SLOTS)
        rerender(ctx, VIEW, [report_msg])
