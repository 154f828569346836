"""aevae's Gradio app: widgets wired to aevae functions; no model, training or metric logic here.

    python app.py [--host 127.0.0.1] [--port 7860]   (or GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)
"""

from __future__ import annotations

import argparse
import os

import gradio as gr

from aevae import data, metrics, workbench
from aevae.config import PRESETS
from ui.common import (
    COLORS,
    CSS,
    DEFAULT_CAP,
    KL_LABEL,
    MAX_EPOCHS,
    MAX_FILE_SIZE,
    MAX_SECONDS,
    TRAIN_WATCHERS,
    store,
)
from ui.exploring import (
    beta_sweep,
    code_map,
    decode_point,
    download_report,
    end_session,
    interpolate,
    prior_samples,
    shipped_beta_sweep,
)
from ui.training import (
    SHARE_JS,
    apply_preset,
    describe_models,
    load_picker,
    plan_training,
    run_curves,
    settings_from_link,
    show_runs,
    stop_training,
    sweep,
    train_models,
    use_models,
)
from ui.viewing import (
    compare_latents,
    make_variants,
    new_draw,
    reconstruct,
    reconstruct_uploads,
    train_missing_rung,
)


def build_demo() -> gr.Blocks:
    zoo = store().zoo
    ladder_default = ", ".join(dict.fromkeys(e["rung"] for e in zoo.ladder())) if zoo else ""
    labels = ["(none)"] + data.OPENMOJI_GROUPS
    d = PRESETS[workbench.TRAIN_DEFAULT]
    with gr.Blocks(title="aevae: autoencoders vs VAEs", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# aevae — autoencoders and variational autoencoders\n"
                    "Train an AE and a VAE on small colour images, then compare what they reconstruct "
                    "and generate. " + ("Shipped models are loaded, so every tab works right away."
                                        if zoo else "**No shipped models found: train a pair first.**"))
        with gr.Row(elem_classes="in-use"):
            in_use = gr.Dropdown(workbench.pair_choices(zoo)[1:], value=workbench.SHIPPED + "default",
                                 label="Models in use (every tab): a shipped pair or one of your runs", scale=3)
            in_use_msg = gr.Markdown(scale=2)
        with gr.Tab("Train"):
            gr.Markdown("An AE and a VAE are trained side by side on the very same batches, seed, "
                        "architecture and epochs. Watch the VAE's KL term: it is the price of a "
                        "latent space you can sample from. Same settings, seed and data give the same models.",
                        elem_classes="lead")
            with gr.Row():
                train_btn = gr.Button("Train AE + VAE", variant="primary", scale=2)
                stop_btn = gr.Button("Stop", variant="stop", scale=1)
                use_new = gr.Checkbox(True, label="Use the new pair in every tab when done", scale=2)
            plan_md = gr.Markdown()
            status = gr.Markdown()
            with gr.Row():
                mse_plot = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS,
                                       label="Reconstruction loss per iteration", height=260)
                val_plot = gr.LinePlot(x="epoch", y="val PSNR (dB)", color="model", color_map=COLORS,
                                       label="Validation PSNR per epoch", height=260)
                kl_plot = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS,
                                      label=KL_LABEL, height=260)
            strip = gr.Image(label="Fixed validation images: before training and now", format="png",
                             elem_classes="pixelated", buttons=["download"], height=300)
            with gr.Row():
                preset = gr.Dropdown(list(PRESETS), value=workbench.TRAIN_DEFAULT, label="Preset")
                image_size = gr.Number(d.model.image_size, label="Image size (px, 32-128)", precision=0)
                latent = gr.Textbox(d.model.latent, label="Latent: vector (256) or spatial (256x8x8)")
                dataset = gr.Radio(["openmoji", "upload"], value="openmoji", label="Data")
                upload = gr.File(label="Your data: .zip of images, .npz, or .npy (+ a *label*.npy)",
                                 file_types=[".zip", ".npy", ".npz"], file_count="multiple",
                                 type="filepath")
            with gr.Row():
                epochs = gr.Slider(1, MAX_EPOCHS, d.train.epochs, step=1, label="Epochs")
                cap = gr.Slider(10, MAX_SECONDS, DEFAULT_CAP, step=1,
                                label="Time cap (s): a safety stop; a run it cuts is not reproducible")
                batch = gr.Slider(1, 512, d.train.batch_size, step=1, label="Batch size")
            with gr.Row():
                lr = gr.Number(d.train.lr, label="Learning rate")
                wd = gr.Number(d.train.weight_decay, label="Weight decay")
                beta = gr.Number(d.train.beta, label="Beta (KL weight, VAE)")
                seed = gr.Number(0, label="Seed", precision=0)
            preset_note = gr.Markdown(d.note)
            ckpt_files = gr.File(label="Trained checkpoints (.json + .safetensors)", file_count="multiple", height=120)
            with gr.Row():
                share_btn = gr.Button("Link to these settings", size="sm")
                share_url = gr.Textbox(label="Shareable link", buttons=["copy"], interactive=False)
            preset.change(apply_preset, preset, [image_size, latent, batch, lr, wd, beta, preset_note],
                          api_visibility="private")
            shared = [preset, image_size, latent, epochs, cap, batch, lr, wd, beta, seed]
            share_btn.click(None, shared, share_url, js=SHARE_JS, api_visibility="private")
            demo.load(settings_from_link, None, [*shared, preset_note], api_visibility="private")
            demo.load(load_picker, None, in_use, api_visibility="private")
            gr.on([demo.load] + [c.change for c in [*shared, dataset]], plan_training, [*shared, dataset], plan_md,
                  api_visibility="private", queue=False)
            train_btn.click(
                train_models, [*shared, dataset, upload, use_new],
                [status, mse_plot, kl_plot, val_plot, ckpt_files, strip, in_use], api_name="train",
                concurrency_limit=TRAIN_WATCHERS, concurrency_id="train")
            stop_btn.click(stop_training, None, status, api_name="stop", queue=False)
            in_use.input(use_models, in_use, in_use_msg, api_name="use_models")

        with gr.Tab("Reconstructions"):
            gr.Markdown("Ground truth, then the AE's and the VAE's reconstruction of the same images. "
                        "Look at edges and small details: the VAE trades some sharpness for a smooth "
                        "latent space.", elem_classes="lead")
            with gr.Row():
                ids = gr.Textbox("", label="Ids (blank: random validation images)", placeholder="e.g. 3, 227, 841-845")
                n = gr.Slider(1, workbench.MAX_RECON_IMAGES, 10, step=1, label="Random images")
                rseed = gr.Number(0, label="Draw seed", precision=0)
                use_lpips = gr.Checkbox(True, label="LPIPS")
            with gr.Row():
                rec_btn = gr.Button("Reconstruct", variant="primary")
                draw_btn = gr.Button("New random draw")
            rec_img = gr.Image(label="ground truth | AE | VAE", format="png", elem_classes="pixelated",
                               buttons=["download", "fullscreen"])
            rec_summary = gr.Markdown()
            rec_table = gr.Dataframe(label="Per image", max_height=400)
            rec_csv = gr.File(label="Table as CSV")
            with gr.Accordion("Reconstruct your own images", open=False):
                own = gr.File(label="Images (PNG/JPEG/WebP/BMP)", file_count="multiple", type="filepath")
                own_btn = gr.Button("Reconstruct uploads")
            rec_out = [rec_img, rec_summary, rec_table, rec_csv]
            rec_btn.click(reconstruct, [ids, n, rseed, use_lpips], rec_out, api_name="reconstruct")
            draw_btn.click(new_draw, rseed, rseed, queue=False, api_visibility="private").then(
                reconstruct, [ids, n, rseed, use_lpips], rec_out, api_visibility="private")
            own_btn.click(reconstruct_uploads, [own, use_lpips], rec_out, api_name="reconstruct_uploads")

        with gr.Tab("Noisy VAE variants"):
            gr.Markdown("Each source image is encoded, Gaussian noise is added in latent space and the "
                        "result decoded. The VAE samples around its mean with its own sigma; the AE gets "
                        "the very same noise draws. The VAE's variants stay plausible; the AE's drift.",
                        elem_classes="lead")
            with gr.Row():
                vids = gr.Textbox("1-5, 226-230, 841-845, 1471-1475", label="Ids (report A's list by default)")
                vlabel = gr.Dropdown(labels, value="(none)", label="…and/or images of a label")
                per_label = gr.Slider(1, 40, 4, step=1, label="Images per label")
            with gr.Row():
                k = gr.Slider(1, 10, 5, step=1, label="Variants per image")
                scale = gr.Slider(0, 5, 1.0, step=0.1, label="Noise scale")
                vseed = gr.Number(0, label="Noise seed", precision=0)
            var_btn = gr.Button("Draw variants", variant="primary")
            var_msg = gr.Markdown()
            var_gallery = gr.Gallery(label="source | variants (VAE row, AE row with the same noise)", columns=2,
                                     format="png", elem_classes="pixelated", object_fit="contain", height=520)
            var_files = gr.File(label="gen_data.npy, gen_label.npy, grid PNG", file_count="multiple")
            var_btn.click(make_variants, [vids, vlabel, per_label, k, scale, vseed], [var_gallery, var_msg, var_files],
                          api_name="variants")

        with gr.Tab("Latent sizes"):
            gr.Markdown("Models that differ only in latent size, on the same images. Small codes blur; "
                        "large ones reconstruct well but compress little or nothing. Shipped rungs: "
                        f"{ladder_default or 'none'}.", elem_classes="lead")
            with gr.Row():
                lids = gr.Textbox("", label="Ids (blank: random validation images)")
                ln = gr.Slider(1, 16, 6, step=1, label="Random images")
                lseed = gr.Number(0, label="Draw seed", precision=0)
                llpips = gr.Checkbox(True, label="LPIPS")
            lat_btn = gr.Button("Compare latent sizes", variant="primary")
            lat_note = gr.Markdown()
            lat_img = gr.Image(label="ground truth, then each latent size", format="png", elem_classes="pixelated",
                               buttons=["download", "fullscreen"])
            with gr.Row():
                lat_table = gr.Dataframe(label="Quality per latent size (these images)")
                lat_chart = gr.LinePlot(x="log10 latent values", y="PSNR (dB)", color="model", color_map=COLORS, label="PSNR vs latent values")
            with gr.Accordion("Train a missing rung briefly", open=False):
                with gr.Row():
                    rung_lat = gr.Textbox("128", label="Latent (e.g. 128 or 32x8x8)")
                    rung_epochs = gr.Slider(1, 50, d.train.epochs, step=1, label="Epochs (both models)")
                with gr.Row():
                    rung_btn = gr.Button("Train rung")
                    rung_stop = gr.Button("Stop", variant="stop")
                rung_msg = gr.Markdown()
            lat_btn.click(compare_latents, [lids, ln, lseed, llpips], [lat_img, lat_table, lat_chart, lat_note],
                          api_name="latent_sizes")
            rung_btn.click(train_missing_rung, [rung_lat, rung_epochs], [rung_msg, in_use], api_name="train_rung",
                           concurrency_id="train")
            rung_stop.click(stop_training, None, rung_msg, api_visibility="private", queue=False)

        with gr.Tab("Latent space"):
            gr.Markdown("What lives in the latent space: random draws decoded, paths between two images, "
                        "and a map of the codes. Look for where the AE fails and the VAE does not.",
                        elem_classes="lead")
            pair_pick = gr.Dropdown(workbench.pair_choices(zoo), value=workbench.IN_USE,
                                    label="Models (vector latents generate best: try shipped: ladder-64)")
            with gr.Row():
                pn = gr.Slider(1, 32, 12, step=1, label="Prior samples")
                pseed = gr.Number(0, label="Seed", precision=0)
                prior_btn = gr.Button("Decode random draws", variant="primary")
            prior_img = gr.Image(label="VAE row, AE row: the same z", format="png", elem_classes="pixelated")
            prior_note = gr.Markdown()
            with gr.Row():
                ia = gr.Number(3, label="From id", precision=0)
                ib = gr.Number(841, label="To id", precision=0)
                isteps = gr.Slider(3, 16, 8, step=1, label="Steps")
                interp_btn = gr.Button("Interpolate")
            interp_img = gr.Image(label="interpolation", format="png", elem_classes="pixelated")
            interp_note = gr.Markdown()
            with gr.Row():
                map_kind = gr.Radio(["VAE", "AE"], value="VAE", label="Codes of")
                map_btn = gr.Button("Map the validation set")
            map_note = gr.Markdown()
            with gr.Row():
                map_plot = gr.ScatterPlot(x="PC 1", y="PC 2", color="label", tooltip=["id", "name", "label"],
                                          label="Validation codes (PCA)", height=420)
                map_grid = gr.Image(label="decoded across the plane", format="png", elem_classes="pixelated")
            with gr.Row():
                px = gr.Slider(-1, 1, 0, label="PC 1")
                py = gr.Slider(-1, 1, 0, label="PC 2")
                point_img = gr.Image(label="decoded point", format="png", elem_classes="pixelated", height=200)
            prior_btn.click(prior_samples, [pair_pick, pn, pseed], [prior_img, prior_note], api_name="prior_samples")
            interp_btn.click(interpolate, [pair_pick, ia, ib, isteps], [interp_img, interp_note], api_name="interpolate")
            map_btn.click(code_map, [pair_pick, map_kind], [map_plot, map_grid, map_note, px, py], api_name="code_map")
            gr.on([px.release, py.release], decode_point, [px, py], point_img, api_name="decode_point")

        with gr.Tab("Beta trade-off"):
            gr.Markdown("Rate against distortion: VAEs that differ only in beta, the weight of the KL term. "
                        "Each point is one beta; the grid shows its reconstructions and its prior samples.",
                        elem_classes="lead")
            with gr.Row():
                beta_shipped_btn = gr.Button("Show the shipped sweep", variant="primary")
                betas_text = gr.Textbox("0, 0.1, 0.5, 1, 2, 4", label="Betas to train on your data")
                beta_epochs = gr.Slider(1, 30, 3, step=1, label="Epochs per beta")
                beta_train_btn = gr.Button("Train the sweep")
                beta_stop = gr.Button("Stop", variant="stop")
            beta_note = gr.Markdown()
            with gr.Row():
                beta_table = gr.Dataframe(label="Per beta (validation split)")
                beta_chart = gr.ScatterPlot(x="KL (nats/image)", y="MSE per pixel", color="beta",
                                            label="Distortion vs rate", height=360)
            beta_grid = gr.Image(label="reconstructions and prior samples per beta", format="png",
                                 elem_classes="pixelated")
            beta_out = [beta_table, beta_chart, beta_grid, beta_note]
            beta_shipped_btn.click(shipped_beta_sweep, None, beta_out, api_name="beta_shipped")
            beta_train_btn.click(beta_sweep, [betas_text, beta_epochs], beta_out, api_name="beta_sweep",
                                 concurrency_id="train")
            beta_stop.click(stop_training, None, beta_note, api_visibility="private", queue=False)

        with gr.Tab("Hyperparameter runs"):
            gr.Markdown("Every training in this session is a row. The sweep repeats one set-up at several "
                        "epoch counts (report A's Problem 3) on a subset of the data so it fits a lesson.",
                        elem_classes="lead")
            with gr.Row():
                sweep_epochs = gr.Textbox("5,10,15", label="Epochs to sweep")
                sweep_subset = gr.Slider(32, 4096, 512, step=32, label="Training images")
                sweep_latent = gr.Textbox(d.model.latent, label="Latent")
                sweep_seed = gr.Number(0, label="Seed", precision=0)
                sweep_cap = gr.Slider(10, MAX_SECONDS, DEFAULT_CAP, step=1, label="Time cap per row (s)")
            with gr.Row():
                sweep_btn = gr.Button("Run sweep", variant="primary")
                sweep_stop = gr.Button("Stop", variant="stop")
                refresh_btn = gr.Button("Refresh table")
            sweep_msg = gr.Markdown()
            runs_df = gr.Dataframe(label="Runs (every training of this session)")
            runs_note = gr.Markdown()
            run_pick = gr.Dropdown([], label="Loss curves of run")
            with gr.Row():
                run_mse = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS, label="MSE per iteration")
                run_kl = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS, label="VAE KL per iteration")
            runs_csv = gr.File(label="Runs as CSV")
            sweep_btn.click(sweep, [sweep_epochs, sweep_subset, sweep_latent, sweep_seed, sweep_cap],
                            [sweep_msg, runs_df, run_pick, runs_csv, in_use], api_name="sweep", concurrency_id="train")
            sweep_stop.click(stop_training, None, sweep_msg, api_visibility="private", queue=False)
            refresh_btn.click(show_runs, None, [runs_df, run_pick, runs_csv, runs_note], api_name="runs")
            run_pick.change(run_curves, run_pick, [run_mse, run_kl], api_visibility="private")

        with gr.Tab("Models"):
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

        with gr.Tab("Report"):
            gr.Markdown("Everything this session did, as a report answering the homework questions: "
                        "architectures, training, reconstructions with metrics, noisy variants, latent sizes "
                        "and runs. Tabs you did not use are filled in with their defaults.", elem_classes="lead")
            report_btn = gr.Button("Download report", variant="primary")
            report_msg = gr.Markdown()
            report_file = gr.File(label="aevae-report.zip")
            report_btn.click(download_report, None, [report_file, report_msg], api_name="report")

        gr.Markdown(f"<small>Emoji: {data.OPENMOJI_CREDIT}</small>")
        demo.unload(end_session)
    return demo


def serve(host: str = "127.0.0.1", port: int = 7860, block: bool = True,
          max_file_size: str | int = MAX_FILE_SIZE) -> gr.Blocks:
    demo = build_demo()
    demo.queue(max_size=64, default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, max_file_size=max_file_size, css=CSS, show_error=True,
                prevent_thread_lock=not block, quiet=not block)
    return demo


def main() -> None:
    ap = argparse.ArgumentParser(description="aevae web app")
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = ap.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
