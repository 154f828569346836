"""The Models tab: the pair in use layer by layer, its training, the metrics explained."""

from __future__ import annotations

import json

import gradio as gr

from aevae import metrics
from aevae.data import label_shown
from aevae.i18n import col, t, tm
from aevae.models import summary_rows
from aevae.session_state import NoModels

from .lang import L, on_switch, plot, rerender, shown, table
from .messages import tmd
from .outputs import COLORS, curves
from .sessions import lang_of, session

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "models"


def describe_models(request: gr.Request):
    s, lang = session(request), lang_of(request)
    try:
        pair = s.pair()
    except NoModels as e:
        return tmd(str(e), lang), None, None, "{}", None, None
    return shown(s, VIEW, lambda lg: _describe(pair, lg), lang)


def _describe(pair, lang: str):
    head = t("models.head", lang, source=tmd(pair.source, lang), ae=f"{pair.ae.n_params:,}", vae=f"{pair.vae.n_params:,}",
             latent="x".join(map(str, pair.ae.latent_shape)), values=f"{pair.ae.latent_numel:,}", size=pair.image_size,
             image_values=f"{3 * pair.image_size ** 2:,}")
    # The checkpoint's own fields, named in the page's language (English: as the files name them).
    info = {"training": pair.train, "data": pair.dataset,
            "stopped by": {k: (h or {}).get("stopped_by") for k, h in pair.history.items()},
            "seconds": {k: round((h or {}).get("seconds", 0), 1) for k, h in pair.history.items()}}
    info = shown_fields(info, lang)
    mse, kl, val = curves(pair.history)
    return (head, table(summary_rows(pair.ae), lang), table(summary_rows(pair.vae), lang),
            json.dumps(info, indent=1, default=str, ensure_ascii=False), plot(mse, lang, "iteration", "MSE per pixel", "model"),
            plot(kl, lang, "iteration", "KL (nats/image)", "model"))


def shown_fields(value, lang: str, field: str = ""):
    """The checkpoint's description for reading: fields named in `lang`, the messages in it
    (data source, how a training stopped, OpenMoji's groups) translated, yes/no for booleans."""
    if isinstance(value, dict):
        return {(k if k in ("ae", "vae") else col(k, lang)): shown_fields(v, lang, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shown_fields(v, lang, field) for v in value]
    if isinstance(value, bool):
        return t("rep.yes" if value else "rep.no", lang)
    if isinstance(value, str) and field in ("source", "stopped_by", "label_names", "ae", "vae"):
        return label_shown(value, lang) if field == "label_names" else tm(value, lang)
    return value


def metric_help(request: gr.Request) -> str:
    """What PSNR, SSIM and LPIPS mean, in the page's language."""
    lang = lang_of(request)
    return "\n\n".join(t(f"metric.{k}", lang, cap=f"{metrics.PSNR_CAP:.0f}") for k in metrics.METRIC_HELP)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab(L("tab.models")) as tab:
        gr.Markdown(L("models.lead"), elem_classes="lead")
        models_btn = gr.Button(L("models.btn"))
        m_head = gr.Markdown()
        with gr.Row():
            # shares of the width, and wrapped: half a page at 1280 px had 參數數量 cut off
            widths = ["24%", "38%", "19%", "19%"]
            ae_layers = gr.Dataframe(label=L("models.ae_layers"), wrap=True, column_widths=widths)
            vae_layers = gr.Dataframe(label=L("models.vae_layers"), wrap=True, column_widths=widths)
        m_info = gr.Code(language="json", label=L("models.info"))
        with gr.Row():
            m_mse = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS,
                                label=L("runs.mse"))
            m_kl = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS,
                               label=L("runs.kl"))
        help_md = gr.Markdown()
        ctx.demo.load(metric_help, None, help_md, api_visibility="private")
        on_switch(ctx, metric_help, None, help_md)
        models_btn.click(describe_models, None, [m_head, ae_layers, vae_layers, m_info, m_mse, m_kl],
                         api_name="models")
        tab.select(describe_models, None, [m_head, ae_layers, vae_layers, m_info, m_mse, m_kl],
                   api_visibility="private")  # cheap: always the pair in use now
        rerender(ctx, VIEW, [m_head, ae_layers, vae_layers, m_info, m_mse, m_kl])
