"""The Models tab: the pair in use layer by layer, its training, the metrics explained."""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from aevae import metrics
from aevae.models import summary_rows
from aevae.workbench import NoModels

from .common import (
    COLORS,
    curves,
    session,
)


def describe_models(request: gr.Request):
    s = session(request)
    try:
        pair = s.pair()
    except NoModels as e:
        return str(e), None, None, "{}", *curves({})
    head = (f"**{pair.source}** — AE {pair.ae.n_params:,} parameters, VAE {pair.vae.n_params:,}; latent "
            f"{'x'.join(map(str, pair.ae.latent_shape))} ({pair.ae.latent_numel:,} values) for a "
            f"3x{pair.image_size}x{pair.image_size} image ({3 * pair.image_size ** 2:,} values).")
    info = {"training": pair.train, "data": pair.dataset,
            "stopped by": {k: (h or {}).get("stopped_by") for k, h in pair.history.items()},
            "seconds": {k: round((h or {}).get("seconds", 0), 1) for k, h in pair.history.items()}}
    mse, kl, val = curves(pair.history)
    return (head, pd.DataFrame(summary_rows(pair.ae)), pd.DataFrame(summary_rows(pair.vae)),
            json.dumps(info, indent=1, default=str), mse, kl)


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    with gr.Tab("Models") as tab:
        gr.Markdown("The loaded AE and VAE layer by layer, how they were trained, and what the three "
                    "metrics mean.", elem_classes="lead")
        models_btn = gr.Button("Show the models in use")
        m_head = gr.Markdown()
        with gr.Row():
            ae_layers = gr.Dataframe(label="AE layers")
            vae_layers = gr.Dataframe(label="VAE layers")
        m_info = gr.Code(language="json", label="Training config and data")
        with gr.Row():
            m_mse = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS, label="MSE per iteration")
            m_kl = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS, label="VAE KL per iteration")
        gr.Markdown("\n\n".join(f"**{k.upper()}** — {v}" for k, v in metrics.METRIC_HELP.items()))
        models_btn.click(describe_models, None, [m_head, ae_layers, vae_layers, m_info, m_mse, m_kl],
                         api_name="models")
        tab.select(describe_models, None, [m_head, ae_layers, vae_layers, m_info, m_mse, m_kl],
                   api_visibility="private")  # cheap: always the pair in use now


