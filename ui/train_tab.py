"""The Train tab: settings, the plan, live progress and curves, checkpoints."""

from __future__ import annotations

import json
import threading
import time

import gradio as gr

from aevae import (
    checkpoints,
    data,
    datasets,
    figures,
    pair_training,
    session_state,
    train_settings,
    training_jobs,
)
from aevae.config import (
    MAX_SIZE,
    MIN_SIZE,
    PRESETS,
    adapt_latent,
    check_finite,
    check_seed,
    nearest_latents,
)
from aevae.i18n import t, tm
from aevae.train_settings import TrainSettings

from .lang import L, drawn, on_switch, plot, rerender, shown
from .limits import (
    DEFAULT_CAP,
    HEAVY,
    HEAVY_SLOTS,
    MAX_EPOCHS,
    MAX_SECONDS,
    TRAIN_WATCHERS,
)
from .messages import fail, md, need, refuse, tmd
from .outputs import COLORS, PerObject, curves
from .picker import picker_update
from .sessions import lang_of, session, stop_training
from .train_data import DATA_VIEW, UPLOAD, choose_data, show_data, upload_data
from .work import background, bar, replay, watch

# The name under which the session keeps this tab's last result, to show it again in a new language
VIEW = "train"


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
    """The plan shown under the settings: epochs, steps, estimated time; or what is wrong, with
    the nearest latents that work at this image size as choices to click. Too few steps for the
    data in use (a small upload) come with the epochs that make enough, to click."""
    s, lang = session(request), lang_of(request)
    try:
        settings = _settings(preset, image_size, latent, epochs, cap, batch_size, lr, weight_decay, beta, seed, lang)
        # The plan needs counts only, the same at every size: nothing is decoded or rendered for it.
        split = s.any_split() if dataset == "upload" and s.upload else datasets.openmoji_counts()
        hidden = gr.update(visible=False, value=None)
        if split is None:
            return t("train.plan_after_load", lang), hidden, hidden
        plan = t("train.plan", lang, plan=tmd(train_settings.plan_text(settings, split), lang))
        more = train_settings.more_epochs(settings, split, MAX_EPOCHS)
        if more is None:
            return plan, hidden, hidden
        epochs, steps, seconds = more
        plan += "\n\n" + t("train.few_steps", lang, steps=f"{train_settings.steps_of(settings, len(split.train)):,}",
                            good=f"{train_settings.GOOD_STEPS:,}", epochs=epochs, seconds=f"{seconds:.0f}")
        label = t("train.use_epochs", lang, epochs=epochs, steps=f"{steps:,}", seconds=f"{seconds:.0f}")
        return plan, hidden, gr.update(choices=[(label, epochs)], value=None, visible=True)
    except (gr.Error, ValueError) as e:
        why = md(getattr(e, "plain", e.message)) if isinstance(e, gr.Error) else tmd(str(e), lang)
        try:
            near = nearest_latents(latent, int(image_size))
        except (TypeError, ValueError):
            near = []
        near = [v for v in near if v != str(latent).strip()]
        pick = gr.update(choices=near, value=None, visible=bool(near))
        return t("train.cannot", lang, error=why), pick, gr.update(visible=False, value=None)


def adapt_table() -> dict:
    """Per preset: the latents it gives at some image size, and its latent at each size (or None).

    A new image size brings the preset's latent with it (same stages, see config.adapt_latent) while
    the latent box holds the preset's latent for some size; a latent the user typed is never
    replaced. Looked up in the browser (ADAPT_JS), at once: a reply from the server could land
    after the student has typed a latent of their own."""
    out = {}
    for name, p in PRESETS.items():
        by_size = {n: adapt_latent(p.model.latent, p.model.image_size, n) for n in range(MIN_SIZE, MAX_SIZE + 1)}
        out[name] = {"ours": sorted({v for v in by_size.values() if v}), "by_size": by_size}
    return out


ADAPT_JS = ("(preset, size, latent) => { const t = " + json.dumps(adapt_table()) + "[preset];"
            " const typed = String(latent).trim().toLowerCase().replace(/[×,]/g, 'x').replace(/\\s/g, '');"
            " const next = t ? t.by_size[String(Math.round(Number(size)))] : null;"
            " return (t && t.ours.includes(typed) && next) ? next : latent; }")


def _strip(snap: pair_training.Snapshot | None, lang: str):
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


def _strip_file(s: session_state.Session, snap, lang: str) -> str | None:
    """The before/now strip as this session's own file; rendered once per step and language for
    all who watch the run (ten watchers must not render it ten times)."""
    if snap is None:
        return None
    with _strip_lock:
        rendered = _STRIP_PNGS.of(snap)
        key = (snap.step, lang)
        if key not in rendered:
            rendered.clear()  # older steps are not shown again
            rendered[key] = figures.png_bytes(_strip(snap, lang))
        body = rendered[key]
    path = s.new_folder("strip", keep=4) / "before-now.png"
    path.write_bytes(body)
    return str(path)


_strip_lock = threading.Lock()
_STRIP_PNGS = PerObject()  # a strip's PNG per (step, language), while its snapshot lives


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
        raise refuse(t("error.training_running", lang), lang)
    training = None
    try:
        s.stop.clear()  # a Stop pressed from here on (even while the data loads) is kept
        split, job, head = yield from _load_and_start(s, settings, dataset, upload, bool(use_when_done), lang)
        training = s.training = Training(job, settings, split, bool(use_when_done))
        yield from _follow(s, training, head, request)
    finally:
        if training is None or not training.kept:  # a kept training's keeper lets go of the lock
            s.lock.release()


def _load_and_start(s: session_state.Session, settings: TrainSettings, dataset: str, upload, use: bool,
                    lang: str):
    """Load the data (a new upload, or the data chosen), start the training on it, then make that
    data the session's; yields the loading status meanwhile, returns (split, job, head). Nothing of
    the session changes until the training has started: a refused Train (bad data, over the memory
    budget, stopped while loading) leaves its data and pair as they were."""
    new = dataset == "upload" and bool(upload) and not s.same_upload(upload)  # new files (or from the API)

    def prepare():
        try:
            if new:
                return s.load_upload(upload, settings.image_size, s.stop.is_set)
            return s.data_split(dataset, settings.image_size, s.stop.is_set)
        except data.Cancelled:
            raise RuntimeError(t("train.stopped_loading", lang)) from None

    loading = t("train.loading", lang)
    got = yield from background(s, prepare, lambda: (loading, *[gr.update()] * 6), lang)
    loaded, split = (got, got.split) if new else (None, got)
    try:
        try:
            head = _head(split, settings, lang)
            job = training_jobs.PairJob(s, settings, split, "Train", use)
        except ValueError as e:
            raise fail(e, lang) from None
        try:  # the training started: now the data it trains on is the session's
            if new:
                s.use_upload(loaded)
            else:
                s.use_data("upload" if dataset == "upload" else "openmoji")
        except BaseException:
            job.leave()
            raise
        loaded = None
    finally:
        if loaded is not None:  # not made the session's: its memory goes now
            loaded.discard()
    return split, job, head


def _follow(s: session_state.Session, training: Training, head: str, request: gr.Request):
    """Yield the training's progress (in the page's language of the moment) until it ends, then
    its results; a run handed over finished is replayed quickly first."""
    job, split, settings, lang = training.job, training.split, training.settings, lang_of(request)
    drawn_strip = {"snap": None, "step": -1, "lang": lang}
    sent = {"plots": -1.0, "lang": lang, "head": head}

    def strip_update(snap):
        lg = sent["lang"]
        if snap is None or (snap is drawn_strip["snap"] and snap.step == drawn_strip["step"]
                            and lg == drawn_strip["lang"]):
            return gr.update()
        drawn_strip.update(snap=snap, step=snap.step, lang=lg)
        return _strip_file(s, snap, lg)

    def show():  # in the page's language of the moment: a switch mid-training shows at the next tick
        lg = lang_of(request)
        if lg != sent["lang"]:
            sent.update(lang=lg, head=_head(split, settings, lg), plots=-1.0)  # plots and strip redrawn now
        joined = t("train.joined", lg) if job.how == "running" else ""
        return _progress(sent["head"], job.live, lg, sent, strip_update, joined)

    if job.how == "finished":  # replay the curves quickly, so the student still sees them grow
        # 4 frames: Gradio diffs and re-encodes every streamed plot on its event loop, where 10
        # students handed the same run at once held up everyone's answers (py-spy, 8 frames)
        for frame in replay(job.shared.result[1], frames=4):
            lg = lang_of(request)
            yield (_head(split, settings, lg) + t("train.handing_over", lg), *_plots(curves(frame), lg), None,
                   strip_update(job.live.snapshot), gr.update())
            time.sleep(0.3)
    try:
        run = yield from watch(s, job, show, lang, keep=lambda: training.keep(s))
    except gr.Error as e:
        training.end(error=e)
        raise
    training.end(run=run)
    yield _finished(s, training, lang_of(request))


def _head(split, settings: TrainSettings, lang: str) -> str:
    """The status's first lines: the data the training uses and its plan."""
    plan = tmd(train_settings.plan_text(settings, split), lang)
    skipped = t("train.skipped", lang, n=len(split.skipped)) if split.skipped else ""
    return t("train.head", lang, source=tmd(split.all.source, lang), train=f"{len(split.train):,}",
             val=f"{len(split.val):,}", skipped=skipped, plan=plan) + "  \n"


def _progress(head: str, live, lang: str, sent: dict, strip, joined: str = "") -> tuple:
    """The Train tab's outputs while a training runs (or waits for a slot): the text at each call;
    the plots and the strip (`strip(snapshot)`) every few seconds, made once per run for all its
    watchers: ten students watching one training must not slow it down. `sent["plots"]`: when
    the plots were last sent to this page."""
    if live.queued:
        return (head + t("status.queued", lang, where=tmd(live.queued, lang)), *[gr.update()] * 6)
    plots, strip_out = [gr.update()] * 3, gr.update()
    if time.monotonic() - sent["plots"] >= PLOT_EVERY_S:
        sent["plots"] = time.monotonic()
        plots, strip_out = _plots(live_curves(live), lang), strip(live.snapshot)
    return (head + f"{bar(live.fraction)} — {tmd(live.text, lang)}{joined}", *plots, None, strip_out, gr.update())


def _finished(s: session_state.Session, training: Training, lang: str) -> tuple:
    """The Train tab's outputs once a training made its run: what ended it, its scores, its
    curves, its checkpoints, the last before/now strip and the picker; kept so that a new
    language shows it again (lang.shown)."""
    run, settings, split = training.run, training.settings, training.split
    pair, rec = run.pair, run.record
    files = []
    folder = s.tmpdir / f"run-{run.number}"
    folder.mkdir(exist_ok=True)
    for kind, model in (("ae", pair.ae), ("vae", pair.vae)):
        p = checkpoints.save(model, folder / f"run-{run.number}-{kind}", train=pair.train, history=pair.history[kind],
                             dataset=pair.dataset, name=f"{pair.source} {kind}")
        files += [str(p), str(p.with_suffix(".safetensors"))]
    snapshot = training.job.live.snapshot

    def finished(lg):  # the outcome in `lg`: now, and again in a language chosen later
        ended = {"epochs": t("train.done", lg), "stop request": t("train.stopped", lg),
                 "time cap": t("train.cut_short", lg, cap=f"{settings.seconds:.0f}", done=rec.epochs_done,
                               epochs=settings.epochs)}[rec.stopped_by]
        if rec.finished:
            repro, used = t("train.repro", lg), t("train.used" if training.use else "train.not_used", lg)
        else:  # kept as a run, never the pair in use by itself (Session.add_run)
            repro = t("train.not_repro", lg, epoch=rec.stopped_at_epoch, epochs=rec.epochs,
                      step=f"{rec.steps:,}", steps=f"{rec.steps_planned:,}")
            used = t("train.kept_not_used", lg, title=tmd(run.title, lg))
        return (_head(split, settings, lg) + t("train.finished", lg, ended=ended, title=tmd(run.title, lg),
                                               ae=f"{rec.ae.val_psnr:.2f}", vae=f"{rec.vae.val_psnr:.2f}",
                                               steps=f"{rec.steps:,}", seconds=f"{rec.seconds:.1f}",
                                               trained=tmd(rec.trained, lg), repro=repro, used=used),
                *_plots(curves(pair.history), lg), _strip_file(s, snapshot, lg))

    status, *plots, strip = shown(s, VIEW, finished, lang)
    return (status, *plots, files, strip, picker_update(s, lang))


class Training:
    """A session's latest Train, kept on the session (Session.training) so that a page reloaded
    while it runs can watch it again (rewatch). When the page that started it goes away and the
    session can be reattached to, keep() carries it on in a thread of its own, which makes its
    run and then lets go of the session's training lock."""

    def __init__(self, job: training_jobs.PairJob, settings: TrainSettings, split, use: bool):
        self.job, self.settings, self.split, self.use = job, settings, split, use
        self.run = None
        self.error: Exception | None = None
        self.ended = threading.Event()
        self.kept = False

    def end(self, run=None, error: Exception | None = None) -> None:
        self.run, self.error = run, error
        self.ended.set()

    def keep(self, s: session_state.Session) -> None:
        self.kept = True
        threading.Thread(target=self._carry_on, args=(s,), daemon=True, name=f"aevae-kept-{id(s)}").start()

    def _carry_on(self, s: session_state.Session) -> None:
        job, run, error = self.job, None, None
        try:
            while not job.done:
                if s.closed:  # the session ended (its grace passed): its training stops with it
                    job.leave()
                    error = session_state.SessionEnded()
                    return
                if s.stop.is_set():  # Stop pressed on the reattached page
                    job.stop()
                job.shared.done.wait(0.5)
            try:
                run = job.result()
            except Exception as e:  # noqa: BLE001 - shown to the page that watches it, if any
                error = e
        finally:
            self.end(run, error)
            s.lock.release()


def rewatch(request: gr.Request):
    """A page that reattached to its session after a reload: the Train tab shows the session's
    latest training again, its progress live while it runs, then its result."""
    s, lang = session(request), lang_of(request)
    training = s.training
    if training is None:
        yield (gr.update(),) * 17
        return
    head = _head(training.split, training.settings, lang)
    settings = training.settings
    # its settings come back, unless the page came from a link: then the link's (settings_from_link)
    restored = [gr.update() if link_params(request) else gr.update(value=v)
                for v in (settings.preset, settings.image_size, settings.latent, settings.epochs, settings.seconds,
                          settings.batch_size, settings.lr, settings.weight_decay, settings.beta, settings.seed)]
    yield (gr.update(),) * 7 + tuple(restored)
    sent = {"plots": -1.0}
    while not training.ended.is_set():
        yield _progress(head, training.job.live, lang, sent, lambda snap: _strip_file(s, snap, lang)) + (
            gr.update(),) * 10
        training.ended.wait(0.5)
    if training.run is None:
        error = training.error
        why = (getattr(error, "plain", None) or tm(str(error), lang)) if error is not None else ""
        yield (head + md(why), *[gr.update()] * 6) + (gr.update(),) * 10
        return
    yield _finished(s, training, lang) + (gr.update(),) * 10



SHARE_KEYS = list(train_settings.QUERY_KEYS)


# Builds the link in the browser, which knows the page's own address.
# The Data choice comes last: a link made on an upload says so (data=upload), so the page it opens
# can tell the classmate to upload the same files.
SHARE_JS = ("(...v) => { const keys = " + json.dumps(SHARE_KEYS) + "; const q = new URLSearchParams();"
            " keys.forEach((k, i) => q.set(k, v[i]));"
            " if (v[keys.length] === 'upload') q.set('" + train_settings.DATA_KEY + "', 'upload');"
            " return window.location.origin + window.location.pathname + '?' + q.toString(); }")


def settings_from_link(request: gr.Request):
    """Fill the Train tab from the page's query parameters (a teacher's shared link): exactly what
    the link says, and for what it leaves out its preset's values."""
    lang = lang_of(request)
    params = link_params(request)
    if not params:
        return *[gr.update()] * len(SHARE_KEYS), gr.update()
    values, problems = train_settings.settings_from_query(params)
    full = train_settings.complete_settings(values)
    controls = [gr.update(value=full[k]) if k in full else gr.update() for k in SHARE_KEYS]
    note = ""
    if values:
        note = t("train.from_link", lang, settings=md(", ".join(f"{k}={v}" for k, v in values.items())))
    if values.get(train_settings.DATA_KEY) == UPLOAD:  # the files stay with whoever made the link
        note += " " + t("train.link_needs_files", lang)
    if problems:
        # a link is anyone's text: its problems shown as text, the first few
        listed = "; ".join(tm(p, lang) for p in problems[:5]) + ("; …" if len(problems) > 5 else "")
        note += " " + t("train.not_applied", lang, problems=md(listed))
    return *controls, note


def link_params(request: gr.Request) -> dict:
    """The page address's settings (its ?lang= is the language's, not the Train tab's)."""
    return {k: v for k, v in dict(getattr(request, "query_params", {}) or {}).items() if k != "lang"}


def preset_note(name: str, lang: str) -> str:
    return t(f"preset.{name}", lang) if name in PRESETS else ""


def show_note(name: str, request: gr.Request):
    """The note under the settings in a newly chosen language: the link's, if the page came from one."""
    if link_params(request):
        return settings_from_link(request)[-1]
    return preset_note(name, lang_of(request))


def preset_choices(request: gr.Request):
    """The presets named in the page's language; their values stay their names (the API's)."""
    lang = lang_of(request)
    return gr.update(choices=[(tm(name, lang), name) for name in PRESETS])


def apply_preset(name: str, request: gr.Request):
    p = PRESETS[name]
    return (p.model.image_size, p.model.latent, p.train.batch_size, p.train.lr, p.train.weight_decay,
            p.train.beta, preset_note(name, lang_of(request)))


def build(ctx) -> None:
    """The tab's layout and events; ctx carries the page-wide parts (demo, in_use, zoo)."""
    d = PRESETS[train_settings.TRAIN_DEFAULT]
    with gr.Tab(L("tab.train")):
        gr.Markdown(L("train.lead"), elem_classes="lead")
        with gr.Row():
            train_btn = gr.Button(L("train.btn"), variant="primary", scale=2)
            stop_btn = gr.Button(L("common.stop"), variant="stop", scale=1)
            use_new = gr.Checkbox(True, label=L("train.use_new"), scale=2)
        plan_md = gr.Markdown()
        epochs_pick = gr.Radio([], label=L("train.epochs_pick"), visible=False)
        status = gr.Markdown()
        with gr.Row():
            mse_plot = gr.LinePlot(x="iteration", x_axis_format="d", y="MSE per pixel", color="model", color_map=COLORS,
                                   label=L("train.mse_plot"))
            val_plot = gr.LinePlot(x="epoch", y="val PSNR (dB)", color="model", color_map=COLORS,
                                   label=L("train.val_plot"))
            kl_plot = gr.LinePlot(x="iteration", x_axis_format="d", y="KL (nats/image)", color="model", color_map=COLORS,
                                  label=L("train.kl_plot"))
        strip = gr.Image(label=L("train.strip"), format="png",
                         elem_classes="pixelated", buttons=["download"], height=300)
        with gr.Row():
            preset = gr.Dropdown(list(PRESETS), value=train_settings.TRAIN_DEFAULT, label=L("train.preset"))
            image_size = gr.Number(d.model.image_size, label=L("train.image_size"), precision=0)
            latent = gr.Textbox(d.model.latent, label=L("train.latent"))
        latent_pick = gr.Radio([], label=L("train.latent_pick"), visible=False)
        with gr.Row():
            dataset = gr.Radio([(L("train.data_openmoji"), "openmoji"), (L("train.data_upload"), "upload")],
                               value="openmoji", label=L("train.data"), scale=1)
            # A row of its own: in a narrow column the file list shows only the extensions.
            upload = gr.File(label=L("train.upload"),
                             file_count="multiple",  # no file_types: Gradio's own refusal is English only
                             type="filepath", scale=3, height=140)
        data_md = gr.Markdown()
        data_strip = gr.Image(label=L("train.data_strip"), format="png",
                              elem_classes="pixelated", buttons=["download"], visible=False, height=260)
        with gr.Row():
            epochs = gr.Slider(1, MAX_EPOCHS, d.train.epochs, step=1, label=L("train.epochs"))
            cap = gr.Slider(10, MAX_SECONDS, DEFAULT_CAP, step=1, label=L("train.cap"))
            batch = gr.Slider(1, 512, d.train.batch_size, step=1, label=L("train.batch"))
        with gr.Row():
            lr = gr.Number(d.train.lr, label=L("train.lr"))
            wd = gr.Number(d.train.weight_decay, label=L("train.wd"))
            beta = gr.Number(d.train.beta, label=L("train.beta"))
            seed = gr.Number(0, label=L("common.seed"), precision=0)
        preset_note = gr.Markdown(L(f"preset.{train_settings.TRAIN_DEFAULT}"))
        ckpt_files = gr.File(label=L("train.ckpt"), file_count="multiple", height=120)
        with gr.Row():
            share_btn = gr.Button(L("train.share_btn"), size="sm")
            share_url = gr.Textbox(label=L("train.share_url"), buttons=["copy"], interactive=False)
        # .input, not .change: a preset the user picks sets its values; one set by a shared link
        # must not overwrite the values the link gives.
        preset.input(apply_preset, preset, [image_size, latent, batch, lr, wd, beta, preset_note],
                     api_visibility="private")
        image_size.input(None, [preset, image_size, latent], latent, js=ADAPT_JS, api_visibility="private")
        latent_pick.input(lambda v: v or gr.update(), latent_pick, latent, api_visibility="private")
        epochs_pick.input(lambda v: v or gr.update(), epochs_pick, epochs, api_visibility="private")
        shared = [preset, image_size, latent, epochs, cap, batch, lr, wd, beta, seed]
        share_btn.click(None, [*shared, dataset], share_url, js=SHARE_JS, api_visibility="private")
        ctx.demo.load(settings_from_link, None, [*shared, preset_note], api_visibility="private")
        # always_last: one plan at a time, the latest settings last (replies of parallel calls can
        # arrive out of order and leave a stale plan on screen).
        gr.on([ctx.demo.load] + [c.change for c in [*shared, dataset]], plan_training, [*shared, dataset],
              [plan_md, latent_pick, epochs_pick], api_visibility="private", queue=False, trigger_mode="always_last")
        on_switch(ctx, plan_training, [*shared, dataset], [plan_md, latent_pick, epochs_pick])
        on_switch(ctx, show_note, preset, preset_note)
        on_switch(ctx, preset_choices, None, preset)
        upload.change(upload_data, [upload, image_size], [dataset, data_md, data_strip], api_visibility="private",
                      concurrency_id=HEAVY, concurrency_limit=HEAVY_SLOTS).then(
            plan_training, [*shared, dataset], [plan_md, latent_pick, epochs_pick], api_visibility="private",
            queue=False)  # a new upload while Data already says upload: the plan counts the new data
        dataset.input(choose_data, [dataset, upload, image_size], [dataset, data_md, data_strip],
                      api_visibility="private")
        train_btn.click(
            train_models, [*shared, dataset, upload, use_new],
            [status, mse_plot, kl_plot, val_plot, ckpt_files, strip, ctx.in_use], api_name="train",
            concurrency_limit=TRAIN_WATCHERS, concurrency_id="train")
        stop_btn.click(stop_training, None, status, api_name="stop", queue=False)
        # A reload: the session's upload and its latest training (live while it runs) come back.
        ctx.attached.then(show_data, image_size, [dataset, data_md, data_strip], api_visibility="private",
                          concurrency_id=HEAVY, concurrency_limit=HEAVY_SLOTS)
        ctx.attached.then(rewatch, None, [status, mse_plot, kl_plot, val_plot, ckpt_files, strip, ctx.in_use, *shared],
                          api_visibility="private", concurrency_limit=TRAIN_WATCHERS, concurrency_id="train")
        rerender(ctx, VIEW, [status, mse_plot, kl_plot, val_plot, strip], on_reload=False)  # rewatch
        rerender(ctx, DATA_VIEW, [data_md, data_strip], on_reload=False)  # show_data


