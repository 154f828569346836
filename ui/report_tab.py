"""The Report tab: a downloadable report of the session."""

from __future__ import annotations

import gradio as gr

from aevae import report
from aevae.workbench import NoModels

from .common import (
    fail,
    session,
)


def download_report(request: gr.Request):
    """A zip answering the homework questions from what this session did."""
    s = session(request)
    try:
        path = report.build(s, s.new_folder() / "aevae-report.zip")
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return str(path), "Report ready: Markdown and HTML, figures, tables, checkpoints and the .npy exports."


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab("Report"):
        gr.Markdown("Everything this session did, as a report answering the homework questions: "
                    "architectures, training, reconstructions with metrics, noisy variants, latent sizes "
                    "and runs. Tabs you did not use are filled in with their defaults.", elem_classes="lead")
        report_btn = gr.Button("Download report", variant="primary")
        report_msg = gr.Markdown()
        report_file = gr.File(label="aevae-report.zip")
        report_btn.click(download_report, None, [report_file, report_msg], api_name="report")


