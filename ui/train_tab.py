"""The Train tab: settings, the plan, live progress and curves, checkpoints."""

from __future__ import annotations

import json
import threading
import time

import gradio as gr

from aevae import checkpoints, figures, workbench
from aevae.config import PRESETS, check_finite, check_seed
from aevae.i18n import t, tm
from aevae.workbench import TrainSettings

from .common import (
    COLORS,
    DEFAULT_CAP,
    MAX_EPOCHS,
    MAX_SECONDS,
    TRAIN_WATCHERS,
    bar,
    curves,
    fail,
    lang_of,
    need,
    png,
    replay,
    session,
    stop_training,
    watch,
)
from .lang import L, drawn, plot
from .picker import picker_update


def _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed,
              lang: str) -> TrainSettings:
    need(1, MAX_EPOCHS, epochs, "what.epochs", lang)
    need(1, MAX_SECONDS, cap, "what.time_cap", lang)
    need(1, 512, batch_size, "what.batch_size", lang)
    try:
        seed = check_seed(seed)
        for value, name in ((lr, "learning rate"), (weight_decay, "weight decay"), (beta, "beta"),
                            (image_size, "image size")):
            check_finite(value, name)
        settings = TrainSettings(preset, int(image_size), str(latent), int(epochs), float(cap),
                                 int(batch_size), float(lr), float(weight_decay), float(beta), seed)
        settings.model_config("ae"), settings.train_config()
    except (TypeError, ValueError) as e:
        raise fail(e, lang) from None
    return settings


def plan_training(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed, dataset,
                  request: gr.Request):
    """The plan shown under the settings: epochs, steps, estimated time; or what is wrong."""
    s, lang = session(request), lang_of(request)
    try:
        settings = _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed, lang)
        split = s.split(settings.image_size) if dataset == "upload" and s.upload else \
            workbench.openmoji_split(settings.image_size)
        return t("train.plan", lang, plan=tm(workbench.plan_text(settings, split), lang))
    except gr.Error as e:
        return t("train.cannot", lang, error=e.message)
    except ValueError as e:
        return t("train.cannot", lang, error=tm(str(e), lang))


def _strip(snap: workbench.Snapshot | None, lang: str):
    if snap is None:
        return None
    rows = [snap.images, snap.before["ae"], snap.now["ae"], snap.before["vae"], snap.now["vae"]]
    labels = [drawn("pic.ground_truth", lang), drawn("pic.before", lang, model="AE"),
              drawn("pic.step", lang, model="AE", step=snap.step), drawn("pic.before", lang, model="VAE"),
              drawn("pic.step", lang, model="VAE", step=snap.step)]
    return figures.image_grid(rows, labels, scale=figures.auto_scale(snap.images.shape[1], 48))


PLOT_EVERY_S = 2.0  # how often a watcher gets new curves and a new before/now strip


def live_curves(live) -> tuple:
    """The curves of a live run, computed at most once per PLOT_EVERY_S for all who watch it."""
    with _curves_lock:
        cached = getattr(live, "_curves", None)
        if cached is None or time.monotonic() - cached[0] >= PLOT_EVERY_S / 2:
            cached = live._curves = (time.monotonic(), curves(dict(live.histories)))
        return cached[1]


_curves_lock = threading.Lock()


def _strip_file(s: workbench.Session, snap, lang: str) -> str | None:
    return None if snap is None else png(s.new_folder(), _strip(snap, lang), "before-now.png")


def _plots(frames: tuple, lang: str) -> list:
    """The three curves (loss, KL, validation PSNR) with their axes named in `lang`."""
    mse, kl, val = frames
    return [plot(mse, lang, "iteration", "MSE per pixel", "model"), plot(kl, lang, "iteration", "KL (nats/image)", "model"),
            plot(val, lang, "epoch", "val PSNR (dB)", "model")]


def train_models(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed,
                 dataset, upload, use_when_done, request: gr.Request):
    """Train an AE and a VAE side by side; yields progress, curves, the live strip and finally checkpoints."""
    s, lang = session(request), lang_of(request)
    settings = _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed, lang)
    if not s.lock.acquire(blocking=False):
        raise gr.Error(t("error.training_running", lang), print_exception=False)
    try:
        try:
            if dataset == "upload":
                if not upload:
                    raise gr.Error(t("train.upload_first", lang), print_exception=False)
                split = s.set_upload(upload, settings.image_size)
            else:
                s.clear_upload()
                split = s.split(settings.image_size)
            plan = tm(workbench.plan_text(settings, split), lang)
        except ValueError as e:
            raise fail(e, lang) from None
        skipped = t("train.skipped", lang, n=len(split.skipped)) if split.skipped else ""
        head = t("train.head", lang, source=tm(split.all.source, lang), train=f"{len(split.train):,}",
                 val=f"{len(split.val):,}", skipped=skipped, plan=plan) + "  \n"
        s.stop.clear()
        job = workbench.PairJob(s, settings, split, "Train", bool(use_when_done))
        shown = {"snap": None, "step": -1}

        def strip_update(snap):
            if snap is None or (snap is shown["snap"] and snap.step == shown["step"]):
                return gr.update()
            shown.update(snap=snap, step=snap.step)
            return _strip_file(s, snap, lang)

        sent = {"plots": -1.0}

        def show():
            live = job.live
            if live.queued:
                return (head + t("status.queued", lang, where=tm(live.queued, lang)), *[gr.update()] * 6)
            joined = t("train.joined", lang) if job.how == "running" else ""
            # The text every half second; the plots and the strip every few seconds, made once per
            # run for all its watchers: ten students watching one training must not slow it down.
            plots, strip = [gr.update()] * 3, gr.update()
            if time.monotonic() - sent["plots"] >= PLOT_EVERY_S:
                sent["plots"] = time.monotonic()
                plots, strip = _plots(live_curves(live), lang), strip_update(live.snapshot)
            return (head + f"{bar(live.fraction)} — {tm(live.text, lang)}{joined}", *plots, None, strip, gr.update())

        if job.how == "finished":  # replay the curves quickly, so the student still sees them grow
            for frame in replay(job.shared.result[1]):
                yield (head + t("train.handing_over", lang), *_plots(curves(frame), lang), None,
                       strip_update(job.live.snapshot), gr.update())
                time.sleep(0.15)
        run = yield from watch(s, job, show, lang)
        pair, row = run.pair, run.row
        files = []
        folder = s.tmpdir / f"run-{run.number}"
        folder.mkdir(exist_ok=True)
        for kind, model in (("ae", pair.ae), ("vae", pair.vae)):
            p = checkpoints.save(model, folder / f"run-{run.number}-{kind}", train=pair.train, history=pair.history[kind],
                                 dataset=pair.dataset, name=f"{pair.source} {kind}")
            files += [str(p), str(p.with_suffix(".safetensors"))]
        ended = {"finished": t("train.done", lang), "stopped by you": t("train.stopped", lang),
                 "CUT SHORT by the time cap": t("train.cut_short", lang, cap=f"{settings.seconds:.0f}",
                                                done=row["epochs done"], epochs=settings.epochs)}[row["ended"]]
        used = t("train.used" if use_when_done else "train.not_used", lang)
        yield (head + t("train.finished", lang, ended=ended, title=tm(run.title, lang), ae=f"{row['AE val PSNR']:.2f}",
                        vae=f"{row['VAE val PSNR']:.2f}", steps=f"{row['steps']:,}", seconds=f"{row['seconds']:.1f}",
                        trained=tm(row["trained"], lang), used=used),
               *_plots(curves(pair.history), lang), files, _strip_file(s, job.live.snapshot, lang),
               picker_update(s, lang))
    finally:
        s.lock.release()



SHARE_KEYS = list(workbench.QUERY_KEYS)


# Builds the link in the browser, which knows the page's own address.
SHARE_JS = ("(...v) => { const keys = " + json.dumps(SHARE_KEYS) + "; const q = new URLSearchParams();"
            " keys.forEach((k, i) => q.set(k, v[i]));"
            " return window.location.origin + window.location.pathname + '?' + q.toString(); }")


def settings_from_link(request: gr.Request):
    """Fill the Train tab from the page's query parameters (a teacher's shared link)."""
    lang = lang_of(request)
    params = {k: v for k, v in dict(getattr(request, "query_params", {}) or {}).items() if k != "lang"}
    values, problems = workbench.settings_from_query(params)
    controls = [gr.update(value=values[k]) if k in values else gr.update() for k in SHARE_KEYS]
    note = preset_note(values.get("preset", workbench.TRAIN_DEFAULT), lang)
    if values:
        note = t("train.from_link", lang, settings=", ".join(f"{k}={v}" for k, v in values.items()))
    if problems:
        note += " " + t("train.not_applied", lang, problems="; ".join(tm(p, lang) for p in problems))
    return *controls, note


def preset_note(name: str, lang: str) -> str:
    return t(f"preset.{name}", lang) if name in PRESETS else ""


def show_note(name: str, request: gr.Request) -> str:
    """The note under the settings in a newly chosen language: the link's, if the page came from one."""
    lang = lang_of(request)
    if any(k != "lang" for k in dict(getattr(request, "query_params", {}) or {})):
        return settings_from_link(request)[-1]
    return preset_note(name, lang)


def apply_preset(name: str, request: gr.Request):
    p = PRESETS[name]
    return (p.model.image_size, p.model.latent, p.train.batch_size, p.train.lr, p.train.weight_decay,
            p.train.beta, preset_note(name, lang_of(request)))


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    d = PRESETS[workbench.TRAIN_DEFAULT]
    with gr.Tab(L("tab.train")):
        gr.Markdown(L("train.lead"), elem_classes="lead")
        with gr.Row():
            train_btn = gr.Button(L("train.btn"), variant="primary", scale=2)
            stop_btn = gr.Button(L("common.stop"), variant="stop", scale=1)
            use_new = gr.Checkbox(True, label=L("train.use_new"), scale=2)
        plan_md = gr.Markdown()
        status = gr.Markdown()
        with gr.Row():
            mse_plot = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS,
                                   label=L("train.mse_plot"), height=260)
            val_plot = gr.LinePlot(x="epoch", y="val PSNR (dB)", color="model", color_map=COLORS,
                                   label=L("train.val_plot"), height=260)
            kl_plot = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS,
                                  label=L("train.kl_plot"), height=260)
        strip = gr.Image(label=L("train.strip"), format="png",
                         elem_classes="pixelated", buttons=["download"], height=300)
        with gr.Row():
            preset = gr.Dropdown(list(PRESETS), value=workbench.TRAIN_DEFAULT, label=L("train.preset"))
            image_size = gr.Number(d.model.image_size, label=L("train.image_size"), precision=0)
            latent = gr.Textbox(d.model.latent, label=L("train.latent"))
            dataset = gr.Radio([(L("train.data_openmoji"), "openmoji"), (L("train.data_upload"), "upload")],
                               value="openmoji", label=L("train.data"))
            upload = gr.File(label=L("train.upload"),
                             file_types=[".zip", ".npy", ".npz"], file_count="multiple",
                             type="filepath")
        with gr.Row():
            epochs = gr.Slider(1, MAX_EPOCHS, d.train.epochs, step=1, label=L("train.epochs"))
            cap = gr.Slider(10, MAX_SECONDS, DEFAULT_CAP, step=1, label=L("train.cap"))
            batch = gr.Slider(1, 512, d.train.batch_size, step=1, label=L("train.batch"))
        with gr.Row():
            lr = gr.Number(d.train.lr, label=L("train.lr"))
            wd = gr.Number(d.train.weight_decay, label=L("train.wd"))
            beta = gr.Number(d.train.beta, label=L("train.beta"))
            seed = gr.Number(0, label=L("common.seed"), precision=0)
        preset_md = gr.Markdown(L(f"preset.{workbench.TRAIN_DEFAULT}"))
        ckpt_files = gr.File(label=L("train.ckpt"), file_count="multiple", height=120)
        with gr.Row():
            share_btn = gr.Button(L("train.share_btn"), size="sm")
            share_url = gr.Textbox(label=L("train.share_url"), buttons=["copy"], interactive=False)
        preset.change(apply_preset, preset, [image_size, latent, batch, lr, wd, beta, preset_md],
                      api_visibility="private")
        shared = [preset, image_size, latent, epochs, cap, batch, lr, wd, beta, seed]
        share_btn.click(None, shared, share_url, js=SHARE_JS, api_visibility="private")
        ctx.demo.load(settings_from_link, None, [*shared, preset_md], api_visibility="private")
        gr.on([ctx.demo.load] + [c.change for c in [*shared, dataset]], plan_training, [*shared, dataset], plan_md,
              api_visibility="private", queue=False)
        ctx.on_language.then(plan_training, [*shared, dataset], plan_md, api_visibility="private", queue=False)
        ctx.on_language.then(show_note, preset, preset_md, api_visibility="private", queue=False)
        train_btn.click(
            train_models, [*shared, dataset, upload, use_new],
            [status, mse_plot, kl_plot, val_plot, ckpt_files, strip, ctx.in_use], api_name="train",
            concurrency_limit=TRAIN_WATCHERS, concurrency_id="train")
        stop_btn.click(stop_training, None, status, api_name="stop", queue=False)
