"""aevae's Gradio app: widgets wired to aevae functions; no model, training or metric logic here.

    python app.py [--host 127.0.0.1] [--port 7860]   (or GRADIO_SERVER_NAME / GRADIO_SERVER_PORT)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from aevae import checkpoints, data, figures, metrics, report, sampling, workbench
from aevae.config import PRESETS
from aevae.models import summary_rows
from aevae.sampling import save_arrays
from aevae.workbench import NoModels, TrainSettings
from aevae.zoo import DEFAULT_DIR, Zoo

MAX_SECONDS = 600  # per training (both models), so one user cannot hold the CPU for long
MAX_EPOCHS = 500
MAX_FILE_SIZE = "200mb"
PLOT_POINTS = 400
DEFAULT_SIZE = PRESETS["default"].model.image_size
COLORS = {"AE": "#3566a8", "VAE": "#e8772e"}
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; image-rendering: crisp-edges; }
.lead { font-size: 0.95em; opacity: 0.85; }
"""

# AEVAE_CHECKPOINTS points the app at another folder of shipped models (the tests use a tiny one).
ZOO = Zoo(os.environ.get("AEVAE_CHECKPOINTS") or DEFAULT_DIR)
STORE = workbench.SessionStore(ZOO)


def session(request: gr.Request | None) -> workbench.Session:
    return STORE.get(getattr(request, "session_hash", None) or "anonymous")


def fail(e: Exception) -> gr.Error:
    return gr.Error(str(e), print_exception=False)


def need(lo, hi, value, name):
    """Out-of-range values (e.g. from the API) are refused, never clipped silently."""
    if value is None or not lo <= value <= hi:
        raise gr.Error(f"{name} must be between {lo} and {hi}, got {value}", print_exception=False)
    return value


@contextmanager
def training_slot(s: workbench.Session):
    """One training at a time per browser tab."""
    if not s.lock.acquire(blocking=False):
        raise gr.Error("A training is already running in this browser tab; stop it first.")
    try:
        yield
    finally:
        s.lock.release()


def numbers(text: str, kind, lo, hi, most: int, what: str, example: str) -> list:
    """'5, 10, 15' -> [5, 10, 15] within bounds, or a clear error."""
    try:
        vals = [kind(v) for v in (text or "").replace(" ", "").split(",") if v]
    except ValueError:
        vals = []
    if not vals or len(vals) > most or any(not lo <= v <= hi for v in vals):
        raise gr.Error(f"give 1 to {most} {what} between {lo} and {hi}, like {example}", print_exception=False)
    return vals


def parse_ids_or_none(text: str | None) -> list[int] | None:
    text = (text or "").strip()
    return data.parse_ids(text) if text else None


def csv_file(rows: list[dict], folder: Path, name: str) -> str:
    path = folder / name
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    path.write_text(buf.getvalue())
    return str(path)


def short_note(note: str) -> str:
    """The first sentence of a long reason, and how to fix it."""
    first = note.split(". Tried:")[0]
    fix = note.split("Fix: ")[-1] if "Fix: " in note else ""
    return f"{first}. {('Fix: ' + fix) if fix else ''}"


def rounded(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).round({c: 4 for c in ("AE SSIM", "VAE SSIM", "AE LPIPS", "VAE LPIPS")} |
                                    {"AE PSNR": 2, "VAE PSNR": 2})


# --- Train ----------------------------------------------------------------------------
def curves(histories: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Loss per iteration (MSE both models, KL for the VAE) and validation PSNR per epoch."""
    mse, kl, val = [], [], []
    for kind, h in histories.items():
        if not h:
            continue
        h = h if isinstance(h, dict) else h.to_dict()
        n = len(h["iter_mse"])
        step = max(1, n // PLOT_POINTS)
        for i in range(0, n, step):
            mse.append({"iteration": i + 1, "MSE per pixel": float(np.mean(h["iter_mse"][i:i + step])),
                        "model": kind.upper()})
            if kind == "vae":
                kl.append({"iteration": i + 1, "KL (nats/image)": float(np.mean(h["iter_kl"][i:i + step])),
                           "model": "VAE"})
        for e in h["epochs"]:
            if "val_psnr" in e:
                val.append({"epoch": e["epoch"], "val PSNR (dB)": e["val_psnr"], "model": kind.upper()})
    return (pd.DataFrame(mse, columns=["iteration", "MSE per pixel", "model"]),
            pd.DataFrame(kl, columns=["iteration", "KL (nats/image)", "model"]),
            pd.DataFrame(val, columns=["epoch", "val PSNR (dB)", "model"]))


def train_models(preset, image_size, latent, epochs, seconds, batch_size, lr, weight_decay, beta, seed,
                 dataset, upload, request: gr.Request):
    """Train an AE and a VAE side by side; yields progress, curves and finally the checkpoints."""
    s = session(request)
    need(1, MAX_EPOCHS, epochs, "epochs")
    need(1, MAX_SECONDS, seconds, "seconds")
    need(1, 512, batch_size, "batch size")
    need(0, 2**31 - 1, seed, "seed")
    try:
        settings = TrainSettings(preset, int(image_size), str(latent), int(epochs), float(seconds),
                                 int(batch_size), float(lr), float(weight_decay), float(beta), int(seed))
        settings.model_config("ae"), settings.train_config()
        if dataset == "upload":
            if not upload:
                raise ValueError("choose 'upload' only after uploading a .zip, .npy or .npz file")
            split = s.set_upload(upload, settings.image_size)
        else:
            s.clear_upload()
            split = s.split(settings.image_size)
    except ValueError as e:
        raise fail(e) from None
    if not s.lock.acquire(blocking=False):
        raise gr.Error("A training is already running in this browser tab; stop it first.")
    t = None
    try:
        live: dict = {"ae": None, "vae": None, "text": "starting", "frac": 0.0}
        result: dict = {}

        def progress(kind, p):
            live[kind] = p.history
            live["text"] = workbench.progress_text(p)
            live["frac"] = p.fraction

        def work():
            try:
                result["pair"] = workbench.train_pair(s, settings, split, progress)
            except MemoryError:
                result["error"] = RuntimeError("out of memory: try a smaller batch, latent or image size; "
                                               "your previous models are unchanged")
            except Exception as e:  # reported to the user below; the previous models stay
                result["error"] = e

        skipped = f" ({len(split.skipped)} files skipped)" if split.skipped else ""
        head = f"**Data:** {split.all.source}: {len(split.train)} train / {len(split.val)} validation{skipped}.  "
        t = threading.Thread(target=work, daemon=True, name=f"aevae-train-{id(s)}")
        t.start()
        while t.is_alive():
            t.join(0.5)
            bar = "█" * int(live["frac"] * 30) + "░" * (30 - int(live["frac"] * 30))
            yield (head + f"`{bar}` {live['frac']:.0%} — {live['text']}", *curves(
                {k: live[k] for k in ("ae", "vae")}), None)
        if "error" in result:
            raise fail(result["error"])
        pair = result["pair"]
        files = []
        for kind, model in (("ae", pair.ae), ("vae", pair.vae)):
            p = checkpoints.save(model, s.tmpdir / f"trained-{kind}", train=pair.train,
                                 history=pair.history[kind], dataset=pair.dataset, name=f"{pair.source} {kind}")
            files += [str(p), str(p.with_suffix(".safetensors"))]
        row = s.runs[-1]
        stopped = " (stopped early: models kept as trained so far)" if any(
            h["stopped_by"] == "stop request" for h in pair.history.values()) else ""
        yield (head + f"**Done{stopped}.** {pair.source}: AE val PSNR {row['AE val PSNR']:.2f} dB, "
               f"VAE val PSNR {row['VAE val PSNR']:.2f} dB in {row['seconds']:.0f} s. "
               "The other tabs now use these models.", *curves(pair.history), files)
    finally:
        # Reached also when the browser goes away mid-training (the generator is closed):
        # the worker must not go on burning CPU for nobody.
        if t is not None and t.is_alive():
            s.stop.set()
            t.join(10)
        s.lock.release()


def stop_training(request: gr.Request):
    session(request).stop.set()
    return "Stopping at the end of the current batch…"


SHARE_KEYS = list(workbench.QUERY_KEYS)
# Builds the link in the browser, which knows the page's own address.
SHARE_JS = ("(...v) => { const keys = " + json.dumps(SHARE_KEYS) + "; const q = new URLSearchParams();"
            " keys.forEach((k, i) => q.set(k, v[i]));"
            " return window.location.origin + window.location.pathname + '?' + q.toString(); }")


def settings_from_link(request: gr.Request):
    """Fill the Train tab from the page's query parameters (a teacher's shared link)."""
    params = dict(getattr(request, "query_params", {}) or {})
    values, problems = workbench.settings_from_query(params)
    controls = [gr.update(value=values[k]) if k in values else gr.update() for k in SHARE_KEYS]
    note = ""
    if values:
        note = "Settings from the link: " + ", ".join(f"{k}={v}" for k, v in values.items()) + "."
    if problems:
        note += " Not applied: " + "; ".join(problems) + "."
    return *controls, note


def choose_models(which: str, request: gr.Request):
    s = session(request)
    s.use_shipped = which == "shipped"
    try:
        p = s.pair()
    except NoModels as e:
        return str(e)
    return f"The other tabs now use **{p.source}** ({p.ae.config.latent} latent, {p.image_size}px)."


def apply_preset(name: str):
    p = PRESETS[name]
    return (p.model.image_size, p.model.latent, p.train.batch_size, p.train.lr, p.train.weight_decay,
            p.train.beta, p.note)


# --- Reconstructions ------------------------------------------------------------------
def reconstruct(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """Ground truth | AE | VAE for chosen or random validation images, with a metrics table."""
    s = session(request)
    need(1, workbench.MAX_RECON_IMAGES, n, "number of images")
    try:
        pair = s.pair()
        images = workbench.choose(s.split(pair.image_size), parse_ids_or_none(ids_text), int(n), int(seed))
        rec = workbench.reconstruct(pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return show_reconstruction(rec, s, pair.source)


def reconstruct_uploads(files, use_lpips: bool, request: gr.Request):
    s = session(request)
    if not files:
        raise gr.Error("Upload one or more images first.")
    try:
        pair = s.pair()
        images = workbench.load_user_images([getattr(f, "name", f) for f in files], pair.image_size)
        rec = workbench.reconstruct(pair, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return show_reconstruction(rec, s, pair.source)


def show_reconstruction(rec: workbench.Reconstruction, s: workbench.Session, source: str):
    s.last["reconstruction"] = rec
    size = rec.images.image_size
    grid = figures.image_grid([rec.images.images, rec.ae.recon, rec.vae.recon], ["ground truth", "AE", "VAE"],
                              [str(i) for i in rec.images.ids], scale=figures.auto_scale(size, 96))
    rows = rec.rows()
    lines = [f"**Models:** {source}. Mean ± std over {len(rows)} images "
             "(PSNR: higher is better; SSIM: up to 1, higher is better; LPIPS: lower is better).", "",
             "| | PSNR (dB) | SSIM | LPIPS |", "|---|---|---|---|"]
    for name, r in (("AE", rec.ae), ("VAE", rec.vae)):
        sm = r.summary()
        lp = f"{sm['lpips'].mean:.4f} ± {sm['lpips'].std:.4f}" if sm["lpips"] else "not measured"
        lines.append(f"| {name} | {sm['psnr'].mean:.2f} ± {sm['psnr'].std:.2f} | "
                     f"{sm['ssim'].mean:.4f} ± {sm['ssim'].std:.4f} | {lp} |")
    if rec.ae.lpips_note:
        lines.append(f"\n<small>LPIPS not measured: {short_note(rec.ae.lpips_note)}</small>")
    if rec.images.skipped:
        lines.append(f"\nSkipped {len(rec.images.skipped)} files: " + "; ".join(rec.images.skipped[:5]))
    table = rounded(rows)
    return grid, "\n".join(lines), table, csv_file(rows, s.tmpdir, "reconstructions.csv")


def new_draw(seed: int) -> int:
    return int(seed) + 1


# --- Noisy variants -------------------------------------------------------------------
def make_variants(ids_text: str, label: str, per_label: int, k: int, scale: float, seed: int,
                  request: gr.Request):
    """Each source with k VAE variants (its own sigma x scale) and the AE with the same noise draws."""
    s = session(request)
    need(1, 10, k, "variants per image")
    need(0, 5, scale, "noise scale")
    need(1, 40, per_label, "images per label")
    notes = []
    try:
        pair = s.pair()
        full = s.split(pair.image_size).all
        ids = parse_ids_or_none(ids_text) or []
        known = [i for i in ids if 1 <= i <= len(full)]
        if len(known) < len(ids):
            notes.append(f"ids beyond this dataset's {len(full)} images were left out: "
                         f"{', '.join(map(str, [i for i in ids if i not in known][:10]))}")
        if label and label != "(none)":
            if label not in full.label_names:
                raise ValueError(f"no label {label!r} in this dataset")
            lab = full.label_names.index(label)
            known += [int(i) for i in full.ids[full.labels == lab][:per_label] if int(i) not in known]
        if not known:
            raise ValueError("choose images by ids and/or a label")
        if len(known) > 40:
            raise ValueError(f"at most 40 source images at once, got {len(known)}")
        images = full.select_ids(known)
        vs = workbench.variants(pair, images, int(k), float(scale), int(seed))
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    s.last["variants"] = (images, vs)
    size = pair.image_size
    sc = figures.auto_scale(size, 72)
    gallery = []
    for i in range(len(images)):
        g = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]),
                                np.concatenate([images.images[i:i + 1], vs.ae[i]])],
                               ["VAE", "AE"], ["source"] + [f"#{j + 1}" for j in range(k)], scale=sc)
        gallery.append((g, f"id {images.ids[i]} · {images.label_names[images.labels[i]]} · {images.names[i]}"))
    gen_data, gen_label = vs.export_arrays()
    folder = s.tmpdir / "variants"
    folder.mkdir(exist_ok=True)
    files = [str(p) for p in save_arrays(folder, gen_data, gen_label)]
    big = figures.image_grid([np.concatenate([images.images[i:i + 1], vs.vae[i]]) for i in range(len(images))],
                             [str(i) for i in images.ids], scale=1)
    from PIL import Image

    Image.fromarray(big).save(folder / "variants.png")
    files.append(str(folder / "variants.png"))
    msg = (f"{len(gen_data)} VAE variants of {len(images)} images ({k} each, noise scale {scale}); "
           f"`gen_data.npy` is {tuple(gen_data.shape)} uint8, `gen_label.npy` follows each source's label.")
    return gallery, "\n\n".join([msg, *notes]), files


# --- Latent sizes ---------------------------------------------------------------------
def compare_latents(ids_text: str, n: int, seed: int, use_lpips: bool, request: gr.Request):
    """The same images through models that differ only in latent size."""
    s = session(request)
    need(1, 16, n, "number of images")
    try:
        rungs = workbench.ladder_models(s)
        if not rungs:
            raise NoModels("No latent ladder is shipped: train a rung below.")
        size = rungs[0]["ae"].config.image_size
        images = workbench.choose(workbench.openmoji_split(size) if s.upload is None else s.split(size),
                                  parse_ids_or_none(ids_text), int(n), int(seed))
        res = workbench.latent_sizes(s, images, use_lpips)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    rows, grid_rows, labels, chart = [], [images.images], ["ground truth"], []
    for r in res:
        ratio = r["values"] / r["image_values"]
        for kind in ("ae", "vae"):
            sm = r["results"][kind].summary()
            rows.append({"latent": r["latent"], "model": kind.upper(), "latent values": r["values"],
                         "vs image values": f"{ratio:.3g}x" + (" (LARGER than the image)" if ratio > 1 else ""),
                         "PSNR": round(sm["psnr"].mean, 2), "SSIM": round(sm["ssim"].mean, 4),
                         "LPIPS": round(sm["lpips"].mean, 4) if sm["lpips"] else None, "source": r["source"]})
            chart.append({"log10 latent values": float(np.log10(r["values"])), "PSNR (dB)": sm["psnr"].mean,
                          "model": kind.upper()})
            grid_rows.append(r["results"][kind].recon)
            labels.append(f"{kind.upper()} {r['latent']}")
    s.last["latent_sizes"] = rows
    grid = figures.image_grid(grid_rows, labels, [str(i) for i in images.ids],
                              scale=figures.auto_scale(images.image_size, 64))
    note = (f"Input: 3x{images.image_size}x{images.image_size} = {3 * images.image_size ** 2:,} values. "
            "A 'bottleneck' with more values than the image compresses nothing: it reconstructs well "
            "but has not learned a compact code.")
    return grid, pd.DataFrame(rows), pd.DataFrame(chart), note


def train_missing_rung(latent: str, seconds: float, request: gr.Request):
    s = session(request)
    need(1, 120, seconds, "seconds")
    ladder = workbench.ladder_models(s)
    size = ladder[0]["ae"].config.image_size if ladder else DEFAULT_SIZE
    with training_slot(s):
        try:
            rung = workbench.train_rung(s, latent, float(seconds), s.split(size))
        except ValueError as e:
            raise fail(e) from None
    return f"Trained latent {rung['latent']} ({rung['source']}); press Compare to see it in the ladder."


# --- Latent space -----------------------------------------------------------------------
def prior_samples(pair_name: str, n: int, seed: int, request: gr.Request):
    """The same N(0, I) draws through the VAE's and the AE's decoder."""
    s = session(request)
    need(1, 32, n, "samples")
    try:
        pair = workbench.pair_named(s, pair_name)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    vae, ae = workbench.prior_pair(pair, int(n), int(seed))
    grid = figures.image_grid([vae, ae], ["VAE", "AE"], scale=figures.auto_scale(pair.image_size, 80))
    return grid, (f"{pair.source}: {n} draws z ~ N(0, I) of shape {'x'.join(map(str, pair.vae.latent_shape))}, "
                  "the same draws through both decoders. The VAE was trained to decode such draws; the AE "
                  "never was, so its codes live elsewhere and its decoder makes little of them.")


def interpolate(pair_name: str, id_a: int, id_b: int, steps: int, request: gr.Request):
    s = session(request)
    need(3, 16, steps, "steps")
    try:
        pair = workbench.pair_named(s, pair_name)
        two = s.split(pair.image_size).all.select_ids([int(id_a), int(id_b)])
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    rows = workbench.interpolations(pair, two.images[0], two.images[1], int(steps))
    grid = figures.image_grid(list(rows.values()), list(rows), scale=figures.auto_scale(pair.image_size, 72))
    return grid, f"From id {id_a} ({two.names[0]}) to id {id_b} ({two.names[1]}), {steps} steps, ends included."


def code_map(pair_name: str, kind: str, request: gr.Request):
    """PCA of the validation codes, coloured by label, and decoded thumbnails across the plane."""
    s = session(request)
    try:
        pair = workbench.pair_named(s, pair_name)
        split = s.split(pair.image_size)
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    model = pair.vae if kind == "VAE" else pair.ae
    cmap = sampling.code_map(model, split.val)
    s.code_map = (pair_name, kind, cmap)
    points = pd.DataFrame({"PC 1": cmap.coords[:, 0], "PC 2": cmap.coords[:, 1],
                           "label": [split.val.label_names[i] for i in split.val.labels],
                           "id": split.val.ids, "name": split.val.names})
    thumbs = sampling.decode_grid(model, cmap, 7)
    grid = figures.image_grid(list(thumbs), scale=1, gap=1)
    sx, sy = cmap.coords.std(0)
    note = (f"{kind} codes of {len(points)} validation images. The two axes hold "
            f"{cmap.explained[0]:.1%} and {cmap.explained[1]:.1%} of the codes' variance. The grid decodes "
            f"points from -2 to +2 standard deviations ({sx:.2f}, {sy:.2f}) along each axis.")
    return points, grid, note, gr.update(minimum=-3 * sx, maximum=3 * sx, value=0), gr.update(
        minimum=-3 * sy, maximum=3 * sy, value=0)


def decode_point(x: float, y: float, request: gr.Request):
    s = session(request)
    cm = s.code_map
    if cm is None:
        raise gr.Error("Map the validation set first.")
    pair_name, kind, cmap = cm
    pair = workbench.pair_named(s, pair_name)
    model = pair.vae if kind == "VAE" else pair.ae
    img = sampling.to_uint8(model.decode(cmap.code_at(float(x), float(y))))
    return figures.upscale(img[0], figures.auto_scale(pair.image_size, 160))


# --- Beta trade-off ---------------------------------------------------------------------
def show_betas(rows: list[dict], source: str):
    table = pd.DataFrame([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                           if k not in ("samples", "recon")} for r in rows])
    chart = pd.DataFrame({"KL (nats/image)": [r["KL (nats/image)"] for r in rows],
                          "MSE per pixel": [r["MSE per pixel"] for r in rows],
                          "beta": [f"{r['beta']:g}" for r in rows]})
    size = rows[0]["samples"].shape[1]
    grid_rows, labels = [], []
    for r in rows:
        grid_rows += [r["recon"], r["samples"]]
        labels += [f"beta {r['beta']:g} recon", f"beta {r['beta']:g} samples"]
    grid = figures.image_grid(grid_rows, labels, scale=figures.auto_scale(size, 64))
    note = (f"{source}. Low beta: sharp reconstructions, a high KL (rate) and prior samples that are not "
            "emoji. High beta: the code carries little (low KL), reconstructions blur, and samples become "
            "smooth average emoji. Report B's VAE sits at the blurry end of this trade-off.")
    return table, chart, grid, note


def shipped_beta_sweep(request: gr.Request):
    s = session(request)
    models = workbench.shipped_betas(s)
    if not models:
        raise gr.Error("No beta sweep is shipped; train one on your data below.")
    size = models[0][1].config.image_size
    return show_betas(workbench.beta_results(models, workbench.openmoji_split(size)),
                      "Shipped VAEs (latent 64, 10 epochs each on OpenMoji)")


def beta_sweep(betas_text: str, seconds: float, request: gr.Request):
    s = session(request)
    need(2, 60, seconds, "seconds per beta")
    betas = numbers(betas_text, float, 0, 100, 8, "betas", "0, 0.1, 1, 4")
    if len(betas) < 2:
        raise gr.Error("give at least 2 betas to compare", print_exception=False)
    try:
        split = s.split(DEFAULT_SIZE)
    except ValueError as e:
        raise fail(e) from None
    with training_slot(s):
        models = workbench.train_betas(s, split, betas, float(seconds))
    return show_betas(workbench.beta_results(models, split),
                      f"Trained here: {seconds:g} s per beta on {split.all.source}")


# --- Hyperparameter runs --------------------------------------------------------------
def runs_table(s: workbench.Session) -> pd.DataFrame:
    return pd.DataFrame([{k: v for k, v in r.items() if k != "histories"} for r in s.runs])


def show_runs(request: gr.Request):
    s = session(request)
    choices = [str(r["run"]) for r in s.runs]
    rows = [{k: v for k, v in r.items() if k != "histories"} for r in s.runs]
    return (runs_table(s), gr.update(choices=choices, value=choices[-1] if choices else None),
            csv_file(rows, s.tmpdir, "runs.csv") if rows else None)


def run_curves(run: str, request: gr.Request):
    s = session(request)
    for r in s.runs:
        if str(r["run"]) == str(run):
            return curves(r["histories"])[:2]
    return curves({})[:2]


def sweep(epochs_text: str, subset: int, latent: str, seed: int, request: gr.Request):
    """Report A's Problem 3: the same set-up at several epoch counts, on a subset to fit the class."""
    s = session(request)
    need(32, 4096, subset, "training images")
    epochs = numbers(epochs_text, int, 1, 50, 5, "epoch counts", "5, 10, 15")
    try:
        full = s.split(DEFAULT_SIZE)
    except ValueError as e:
        raise fail(e) from None
    with training_slot(s):
        small = data.Split(full.all, full.train.subset(np.arange(min(int(subset), len(full.train)))), full.val,
                           full.spec, full.val_fraction, full.seed)
        for e in epochs:
            settings = TrainSettings(latent=str(latent), epochs=e, seconds=MAX_SECONDS, seed=int(seed))
            try:
                workbench.train_pair(s, settings, small)
            except ValueError as err:
                raise fail(err) from None
            s.runs[-1]["data"] = f"{len(small.train)} of {len(full.train)} training images"
            yield show_runs(request)


# --- Models ---------------------------------------------------------------------------
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


def end_session(request: gr.Request):
    """A closed tab stops its training and frees its models and files."""
    STORE.drop(request.session_hash)


def download_report(request: gr.Request):
    """A zip answering the homework questions from what this session did."""
    s = session(request)
    try:
        path = report.build(s, s.tmpdir / "aevae-report.zip")
    except (ValueError, NoModels) as e:
        raise fail(e) from None
    return str(path), "Report ready: Markdown and HTML, figures, tables, checkpoints and the .npy exports."


# --- layout ---------------------------------------------------------------------------
def build_demo() -> gr.Blocks:
    ladder_default = ", ".join(dict.fromkeys(e["rung"] for e in ZOO.ladder())) if ZOO else ""
    labels = ["(none)"] + data.OPENMOJI_GROUPS
    d = PRESETS["default"]
    with gr.Blocks(title="aevae: autoencoders vs VAEs", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# aevae — autoencoders and variational autoencoders\n"
                    "Train an AE and a VAE on small colour images, then compare what they reconstruct "
                    "and generate. " + ("Shipped models are loaded, so every tab works right away."
                                        if ZOO else "**No shipped models found: train a pair first.**"))
        with gr.Tab("Train"):
            gr.Markdown("An AE and a VAE are trained side by side on the very same batches, seed, "
                        "architecture and budget. Watch the VAE's KL term: it is the price of a "
                        "latent space you can sample from.", elem_classes="lead")
            with gr.Row():
                preset = gr.Dropdown(list(PRESETS), value="default", label="Preset")
                image_size = gr.Number(d.model.image_size, label="Image size (px, 32-128)", precision=0)
                latent = gr.Textbox(d.model.latent, label="Latent: vector (256) or spatial (256x8x8)")
                dataset = gr.Radio(["openmoji", "upload"], value="openmoji", label="Data")
                upload = gr.File(label="Your data: .zip of images or .npy/.npz", file_types=[".zip", ".npy", ".npz"],
                                 type="filepath")
            with gr.Row():
                epochs = gr.Slider(1, MAX_EPOCHS, 10, step=1, label="Epochs (at most)")
                seconds = gr.Slider(1, MAX_SECONDS, 30, step=1, label="Seconds for both (at most)")
                batch = gr.Slider(1, 512, d.train.batch_size, step=1, label="Batch size")
            with gr.Row():
                lr = gr.Number(d.train.lr, label="Learning rate")
                wd = gr.Number(d.train.weight_decay, label="Weight decay")
                beta = gr.Number(d.train.beta, label="Beta (KL weight, VAE)")
                seed = gr.Number(0, label="Seed", precision=0)
            preset_note = gr.Markdown(d.note)
            with gr.Row():
                train_btn = gr.Button("Train AE + VAE", variant="primary")
                stop_btn = gr.Button("Stop", variant="stop")
                which = gr.Radio(["yours", "shipped"], value="yours", label="Models used by the other tabs")
            status = gr.Markdown()
            with gr.Row():
                mse_plot = gr.LinePlot(x="iteration", y="MSE per pixel", color="model", color_map=COLORS, label="Reconstruction loss per iteration")
                kl_plot = gr.LinePlot(x="iteration", y="KL (nats/image)", color="model", color_map=COLORS, label="VAE KL per iteration")
                val_plot = gr.LinePlot(x="epoch", y="val PSNR (dB)", color="model", color_map=COLORS, label="Validation PSNR per epoch")
            ckpt_files = gr.File(label="Trained checkpoints (.json + .safetensors)", file_count="multiple", height=120)
            with gr.Row():
                share_btn = gr.Button("Link to these settings", size="sm")
                share_url = gr.Textbox(label="Shareable link", buttons=["copy"], interactive=False)
            preset.change(apply_preset, preset, [image_size, latent, batch, lr, wd, beta, preset_note],
                          api_visibility="private")
            shared = [preset, image_size, latent, epochs, seconds, batch, lr, wd, beta, seed]
            share_btn.click(None, shared, share_url, js=SHARE_JS, api_visibility="private")
            demo.load(settings_from_link, None, [*shared, preset_note], api_visibility="private")
            train_btn.click(
                train_models, [preset, image_size, latent, epochs, seconds, batch, lr, wd, beta, seed, dataset, upload],
                [status, mse_plot, kl_plot, val_plot, ckpt_files], api_name="train", concurrency_limit=2,
                concurrency_id="train")
            stop_btn.click(stop_training, None, status, api_name="stop", queue=False)
            which.change(choose_models, which, status, api_name="use_models")

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
                    rung_secs = gr.Slider(5, 120, 30, step=1, label="Seconds (both models)")
                rung_btn = gr.Button("Train rung")
                rung_msg = gr.Markdown()
            lat_btn.click(compare_latents, [lids, ln, lseed, llpips], [lat_img, lat_table, lat_chart, lat_note],
                          api_name="latent_sizes")
            rung_btn.click(train_missing_rung, [rung_lat, rung_secs], rung_msg, api_name="train_rung",
                           concurrency_id="train")

        with gr.Tab("Latent space"):
            gr.Markdown("What lives in the latent space: random draws decoded, paths between two images, "
                        "and a map of the codes. Look for where the AE fails and the VAE does not.",
                        elem_classes="lead")
            pair_pick = gr.Dropdown(workbench.pair_choices(ZOO), value=workbench.IN_USE,
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
                beta_secs = gr.Slider(2, 60, 10, step=1, label="Seconds per beta")
                beta_train_btn = gr.Button("Train the sweep")
            beta_note = gr.Markdown()
            with gr.Row():
                beta_table = gr.Dataframe(label="Per beta (validation split)")
                beta_chart = gr.ScatterPlot(x="KL (nats/image)", y="MSE per pixel", color="beta",
                                            label="Distortion vs rate", height=360)
            beta_grid = gr.Image(label="reconstructions and prior samples per beta", format="png",
                                 elem_classes="pixelated")
            beta_out = [beta_table, beta_chart, beta_grid, beta_note]
            beta_shipped_btn.click(shipped_beta_sweep, None, beta_out, api_name="beta_shipped")
            beta_train_btn.click(beta_sweep, [betas_text, beta_secs], beta_out, api_name="beta_sweep",
                                 concurrency_id="train")

        with gr.Tab("Hyperparameter runs"):
            gr.Markdown("Every training in this session is a row. The sweep repeats one set-up at several "
                        "epoch counts (report A's Problem 3) on a subset of the data so it fits a lesson.",
                        elem_classes="lead")
            with gr.Row():
                sweep_epochs = gr.Textbox("5,10,15", label="Epochs to sweep")
                sweep_subset = gr.Slider(32, 4096, 512, step=32, label="Training images")
                sweep_latent = gr.Textbox(d.model.latent, label="Latent")
                sweep_seed = gr.Number(0, label="Seed", precision=0)
            with gr.Row():
                sweep_btn = gr.Button("Run sweep", variant="primary")
                refresh_btn = gr.Button("Refresh table")
            runs_df = gr.Dataframe(label="Runs")
            run_pick = gr.Dropdown([], label="Loss curves of run")
            with gr.Row():
                run_mse = gr.LinePlot(x="iteration", y="MSE per pixel", color="model", color_map=COLORS, label="MSE per iteration")
                run_kl = gr.LinePlot(x="iteration", y="KL (nats/image)", color="model", color_map=COLORS, label="VAE KL per iteration")
            runs_csv = gr.File(label="Runs as CSV")
            sweep_btn.click(sweep, [sweep_epochs, sweep_subset, sweep_latent, sweep_seed], [runs_df, run_pick, runs_csv],
                            api_name="sweep", concurrency_id="train")
            refresh_btn.click(show_runs, None, [runs_df, run_pick, runs_csv], api_name="runs")
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
                m_mse = gr.LinePlot(x="iteration", y="MSE per pixel", color="model", color_map=COLORS, label="MSE per iteration")
                m_kl = gr.LinePlot(x="iteration", y="KL (nats/image)", color="model", color_map=COLORS, label="VAE KL per iteration")
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

