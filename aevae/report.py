"""One-click report: a zip with Markdown + HTML answering the homework questions from a session.

It is built from the pair in use and the validation split of the data in use (not from what a
tab showed last): every figure and number in it is computed when the report is made, never typed
in, and its discussion is written from those numbers. Its words are in the
language asked for (aevae/locales); numbers and units are the same in every language.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import zipfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from . import (  # noqa: E402
    __version__,
    analyses,
    checkpoints,
    data,
    datasets,
    figures,
    i18n,
    metrics,
    session_state,
)
from .i18n import t, tm  # noqa: E402
from .models import summary_rows  # noqa: E402
from .runs import BETA, ENDED, MESSAGE_CELLS, SWEEP  # noqa: E402
from .zoo import BETA_LATENT  # noqa: E402


def latent_notes(session: session_state.Session, rows: list[dict], lang: str) -> str:
    """What the latent-size table needs said under it (analyses.latent_rows' rows): rungs
    trained on other data than the data in use, and rungs trained for other numbers of epochs."""
    note, elsewhere = "", {}
    for r in rows[::2]:  # one row per rung (its AE's)
        if r["trained on"] != "the data in use":
            elsewhere.setdefault(r["trained on"], []).append(r["latent"])
    for other, latents in elsewhere.items():
        note += "\n\n" + t("lat.elsewhere_many" if len(latents) > 1 else "lat.elsewhere_one", lang,
                            latents=", ".join(latents), other=i18n.md(tm(other, lang)),
                            data=i18n.md(tm(session.data_source(), lang)))
    epochs = {r["latent"]: r["epochs"] for r in rows}
    if len(set(epochs.values())) > 1:  # a rung trained briefly sits low for that reason, not its latent
        most = max(set(epochs.values()), key=list(epochs.values()).count)
        note += "\n\n" + t("lat.epochs_differ", lang, most=most, rungs=", ".join(
            f"{lat}: {e}" for lat, e in epochs.items() if e != most))
    return note


def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def num(v, digits: int = 4) -> str:
    """A number as a reader wants it: 300, 24.13, 5.4, 0.0123, 1.2e-05 (never 5.4000 or 300.0)."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v.is_integer():
        return f"{v:.0f}"
    if abs(v) >= 10:
        text = f"{v:.2f}"
    elif abs(v) >= 10 ** -digits:
        text = f"{v:.{digits}f}"
    else:
        return f"{v:.2g}"
    return text.rstrip("0").rstrip(".")


def setting_value(value, lang: str):
    """A training setting's value as shown: yes/no in `lang`, the rest as it is."""
    return t("rep.yes" if value else "rep.no", lang) if isinstance(value, bool) else value


def _table(rows: list[dict], lang: str = i18n.DEFAULT, digits: int = 4) -> str:
    if not rows:
        return t("rep.none", lang) + "\n"
    cols = list(rows[0])

    def cell(c, v):
        if isinstance(v, float | np.floating):
            return num(v, digits)
        if v is None:
            return t("rep.na", lang)
        if c == "label" and isinstance(v, str):  # labels and names are someone's text: shown as text
            return i18n.md(data.label_shown(v, lang))
        if not isinstance(v, str):
            return str(v).replace("|", "/")
        return i18n.md(tm(v, lang) if c in MESSAGE_CELLS else v)

    lines = ["| " + " | ".join(i18n.col(c, lang) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(c, r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _chart_lang(lang: str) -> str:
    """The language of the charts' words: `lang` where a font here draws it, else English."""
    return lang if figures.can_draw(t("rep.loss_title", lang)) else i18n.DEFAULT


def _fonts() -> dict:
    """matplotlib settings that draw Chinese too (falling back to a CJK font for its glyphs)."""
    found = figures.cjk_font()
    if not found:
        return {}
    font_manager.fontManager.addfont(found[0])
    return {"font.family": ["DejaVu Sans", font_manager.FontProperties(fname=found[0]).get_name()]}


def loss_curves(history: dict, lang: str = i18n.DEFAULT) -> bytes:
    lang = _chart_lang(lang)
    with plt.rc_context(_fonts()):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        for kind, h in history.items():
            if h and h.get("iter_mse"):
                axes[0].plot(np.arange(1, len(h["iter_mse"]) + 1), h["iter_mse"], label=kind.upper(), lw=0.8)
        axes[0].set(xlabel=t("col.iteration", lang), ylabel=t("rep.mse_axis", lang), title=t("rep.loss_title", lang),
                    yscale="log")
        axes[0].legend()
        vae = history.get("vae") or {}
        if vae.get("iter_kl"):
            axes[1].plot(np.arange(1, len(vae["iter_kl"]) + 1), vae["iter_kl"], color="C1", lw=0.8)
        axes[1].set(xlabel=t("col.iteration", lang), ylabel=t("rep.kl_axis", lang), title="VAE KL")
        return _fig_png(fig)


def latent_chart(rows: list[dict], lang: str = i18n.DEFAULT) -> bytes:
    lang = _chart_lang(lang)
    with plt.rc_context(_fonts()):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for kind in ("AE", "VAE"):
            pts = sorted((r["latent values"], r["PSNR"]) for r in rows if r["model"] == kind)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=kind)
        ticks = sorted({(r["latent values"], r["latent"]) for r in rows})
        ax.set(xscale="log", xlabel=t("col.latent", lang), ylabel="PSNR (dB)", title=t("rep.latent_title", lang))
        ax.set_xticks([v for v, _ in ticks], [name for _, name in ticks])  # the latents, not log10 values
        ax.minorticks_off()
        ax.legend()
        return _fig_png(fig)


def epochs_chart(rows: list[dict], lang: str = i18n.DEFAULT) -> bytes:
    """Validation PSNR against epochs of an epochs sweep (report A's Problem 3)."""
    lang = _chart_lang(lang)
    with plt.rc_context(_fonts()):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        for kind in ("AE", "VAE"):
            ax.plot([r["epochs"] for r in rows], [r[f"{kind} val PSNR"] for r in rows], marker="o", label=kind)
        ax.set(xlabel=t("col.epochs", lang), ylabel="PSNR (dB)", title=t("rep.epochs_title", lang))
        ax.legend()
        return _fig_png(fig)


def beta_chart(rows: list[dict], lang: str = i18n.DEFAULT) -> bytes:
    """Rate (KL) against distortion (MSE) per beta."""
    lang = _chart_lang(lang)
    with plt.rc_context(_fonts()):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.plot([r["KL (nats/image)"] for r in rows], [r["MSE per pixel"] for r in rows], marker="o", color="C1")
        for r in rows:
            ax.annotate(f"beta {r['beta']:g}", (r["KL (nats/image)"], r["MSE per pixel"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set(xlabel=t("col.KL (nats/image)", lang), ylabel=t("col.MSE per pixel", lang),
               title=t("rep.beta_title", lang))
        return _fig_png(fig)


N_RECON = 10  # validation images reconstructed: the Reconstructions tab's first draw (10, draw seed 0)
N_LATENT = 6  # validation images through the latent ladder: the Latent sizes tab's first draw
N_PRIOR = 8  # prior draws decoded by both models
FLAT_DB = 0.1  # a sweep's last step that changes validation PSNR by less than this has levelled off


def _save_npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def stopped_note(pair, lang: str) -> str:
    """A sentence when the pair did not run its plan (stopped, or cut short by the time cap), else ''."""
    h = (pair.history or {}).get("ae") or {}
    if not h or h.get("stopped_by", "epochs") == "epochs":
        return ""
    epochs = (pair.train or {}).get("epochs", "?")
    return t("rep.stopped_pair", lang, ended=tm(ENDED.get(h["stopped_by"], h["stopped_by"]), lang),
             epoch=len(h.get("epochs") or []), epochs=epochs, steps=f"{len(h.get('iter_loss') or []):,}")


def recon_section(session, pair, split, lang: str, files: dict, md: list) -> analyses.Reconstruction:
    """Validation images (the Reconstructions tab's first draw) through the pair in use, with LPIPS."""
    images = datasets.choose(split, None, N_RECON, 0)
    rec = analyses.reconstruct_for(session, pair, images, lpips=True)
    truth = t("pic.ground_truth", _chart_lang(lang))
    files["reconstructions.png"] = figures.png_bytes(figures.image_grid(
        [rec.images.images, rec.ae.recon, rec.vae.recon], [truth, "AE", "VAE"],
        [str(i) for i in rec.images.ids], scale=figures.auto_scale(pair.image_size, 96)))
    md.append(t("rep.recon", lang) + "\n\n" + t("rep.recon_of", lang, n=len(images), ids=", ".join(
        map(str, images.ids)), models=i18n.md(tm(pair.source, lang)), data=i18n.md(tm(split.all.source, lang)))
        + "\n\n![" + t("rep.alt_recon", lang) + "](reconstructions.png)\n")
    return rec


def recon_summary(rec: analyses.Reconstruction) -> list[dict]:
    out = []
    for kind, r in (("AE", rec.ae), ("VAE", rec.vae)):
        s = r.summary()
        out.append({"model": kind, "PSNR mean": s["psnr"].mean, "PSNR std": s["psnr"].std,
                    "SSIM mean": s["ssim"].mean, "SSIM std": s["ssim"].std,
                    "LPIPS mean": s["lpips"].mean if s["lpips"] else None,
                    "LPIPS std": s["lpips"].std if s["lpips"] else None})
    return out


def variants_part(session, pair, split):
    """The student's last variants when made by this pair at its size, else report A's ids."""
    shown = session.last.get("variants")
    if shown is not None and shown.source == pair.source and shown.images.image_size == pair.image_size:
        return shown.images, shown.variants
    ids = [i for i in data.REPORT_A_IDS if i <= len(split.all)]
    chosen = split.all.select_ids(ids)
    return chosen, analyses.variants(pair, chosen, 5, 1.0, 0)


def latest_series(session, kind: str) -> list:
    """The runs of the latest sweep of this kind (one press of its button), oldest first."""
    runs = [r for r in session.runs if r.kind == kind]
    if not runs:
        return []
    last = runs[-1].record.series
    return [r for r in runs if r.record.series == last]


def sweep_rows(runs: list) -> list[dict]:
    return [{"run": r.number, "epochs": r.record.epochs, "epochs done": r.record.epochs_done,
             "AE val PSNR": r.record.ae.val_psnr, "VAE val PSNR": r.record.vae.val_psnr,
             "AE val SSIM": r.record.ae.val_ssim, "VAE val SSIM": r.record.vae.val_ssim, "ended": r.record.ended}
            for r in sorted(runs, key=lambda r: r.record.epochs)]


def beta_part(session, lang: str) -> tuple[list[dict], str, str]:
    """(rows of beta_results, where the models come from in words, whose: "own"/"shipped")."""
    own = [r for r in latest_series(session, BETA) if r.model is not None]
    if len(own) >= 2:
        size = own[0].model.config.image_size
        split = session.split(size)
        rows = analyses.beta_results([(r.record.beta, r.model) for r in own], split)
        rec = own[0].record
        text = t("rep.beta_own", lang, runs=", ".join(str(r.number) for r in own), latent=rec.latent,
                 epochs=rec.epochs, data=i18n.md(tm(rec.data, lang)), split=i18n.md(tm(split.all.source, lang)))
        return rows, text, "own"
    rows = analyses.shipped_beta_results(session)
    if rows:
        return rows, t("rep.beta_shipped", lang, latent=BETA_LATENT), "shipped"
    return [], "", ""


def _pick_two(images: data.ImageSet) -> data.ImageSet:
    """Two validation images to interpolate between: of two labels where there are two."""
    other = np.flatnonzero(images.labels != images.labels[0])
    return images.subset(np.array([0, int(other[0]) if len(other) else min(1, len(images) - 1)]))


def metric_lines(rec: analyses.Reconstruction, lang: str) -> list[str]:
    """Which model reconstructs better by each metric, by how much, on how many images."""
    out = []
    for metric, higher, digits in (("psnr", True, 2), ("ssim", True, 3), ("lpips", False, 3)):
        a, v = getattr(rec.ae, metric), getattr(rec.vae, metric)
        if a is None or v is None:
            continue
        ma, mv = float(np.mean(a)), float(np.mean(v))
        unit = " dB" if metric == "psnr" else ""
        if ma == mv:
            out.append(t("rep.d_tie", lang, metric=metric.upper(), value=num(ma, digits) + unit))
            continue
        ae_better = (ma > mv) == higher
        best, other = (ma, mv) if ae_better else (mv, ma)
        mine, theirs = (np.asarray(a), np.asarray(v)) if ae_better else (np.asarray(v), np.asarray(a))
        wins = int(np.sum(mine > theirs if higher else mine < theirs))  # ties count for neither
        out.append(t("rep.d_higher" if higher else "rep.d_lower", lang, metric=metric.upper(),
                     better="AE" if ae_better else "VAE", best=num(best, digits) + unit,
                     other=num(other, digits) + unit, diff=num(abs(ma - mv), digits) + unit, wins=wins, n=len(a)))
    return out


def epochs_line(series: list, rows: list[dict], lang: str) -> str:
    runs = ", ".join(str(r.number) for r in series)
    if not rows:
        return t("rep.d_no_epochs", lang)
    if len(rows) == 1:
        r = rows[0]
        return t("rep.d_epochs_one", lang, runs=runs, e=r["epochs"], a=num(r["AE val PSNR"], 2),
                 v=num(r["VAE val PSNR"], 2))
    first, prev, last = rows[0], rows[-2], rows[-1]
    da, dv = last["AE val PSNR"] - prev["AE val PSNR"], last["VAE val PSNR"] - prev["VAE val PSNR"]
    trend = ("rep.trend_rising" if max(da, dv) >= FLAT_DB else
             "rep.trend_falling" if max(da, dv) <= -FLAT_DB else "rep.trend_flat")
    return t("rep.d_epochs", lang, runs=runs, e0=first["epochs"], e1=last["epochs"], ep=prev["epochs"],
             a0=num(first["AE val PSNR"], 2), a1=num(last["AE val PSNR"], 2), v0=num(first["VAE val PSNR"], 2),
             v1=num(last["VAE val PSNR"], 2), da=num(da, 2), dv=num(dv, 2), trend=t(trend, lang))


def beta_line(rows: list[dict], whose: str, lang: str) -> str:
    if not rows:
        return t("rep.d_no_beta", lang)
    rows = sorted(rows, key=lambda r: r["beta"])
    lo, hi = rows[0], rows[-1]
    steady = all(b["KL (nats/image)"] <= a["KL (nats/image)"] for a, b in zip(rows, rows[1:]))
    usual = hi["KL (nats/image)"] < lo["KL (nats/image)"] and hi["MSE per pixel"] > lo["MSE per pixel"]
    return t("rep.d_beta" if usual else "rep.d_beta_mixed", lang, source=t(f"rep.beta_src_{whose}", lang),
             b0=f"{lo['beta']:g}", b1=f"{hi['beta']:g}", k0=num(lo["KL (nats/image)"], 2),
             k1=num(hi["KL (nats/image)"], 2), m0=num(lo["MSE per pixel"]), m1=num(hi["MSE per pixel"]),
             p0=num(lo["val PSNR"], 2), p1=num(hi["val PSNR"], 2),
             steady="" if steady or not usual else t("rep.not_steady", lang))


def build(session: session_state.Session, out: str | Path, lang: str = i18n.DEFAULT) -> Path:
    """Write the report zip for `session`, its words in `lang`; returns its path.

    Built from the pair in use and the validation split of the data in use (not from what a tab
    showed last), with every section the tabs can fill and a discussion computed from the numbers."""
    pair = session.pair()
    split = session.split(pair.image_size)
    files: dict[str, bytes] = {}
    md: list[str] = [t("rep.head", lang, when=f"{_dt.datetime.now():%Y-%m-%d %H:%M}", version=__version__,
                       models=i18n.md(tm(pair.source, lang)), data=i18n.md(tm(split.all.source, lang))) + "\n"]
    other = analyses.data_note(session, pair)
    if other:
        md.append(t("common.data_note", lang, note=i18n.md(tm(other, lang))) + "\n")
    stopped = stopped_note(pair, lang)
    if stopped:
        md.append(stopped + "\n")

    # 1. Architecture (report B Q1)
    md.append(t("rep.arch", lang) + "\n")
    for kind, model in (("AE", pair.ae), ("VAE", pair.vae)):
        md.append(t("rep.arch_model", lang, kind=kind, params=f"{model.n_params:,}",
                    latent="x".join(map(str, model.latent_shape)), values=f"{model.latent_numel:,}",
                    size=pair.image_size, image_values=f"{3 * pair.image_size ** 2:,}") + "\n")
        md.append(_table(summary_rows(model), lang))

    # 2. Training (Q2) and loss curves
    md.append(t("rep.training", lang) + "\n")
    md.append(_table([{"setting": i18n.col(k, lang), "value": setting_value(v, lang)}
                      for k, v in (pair.train or {}).items()], lang))
    for kind, h in pair.history.items():
        if h:
            last = (h.get("epochs") or [{}])[-1]
            md.append(t("rep.history", lang, kind=kind.upper(), epochs=len(h.get("epochs", [])),
                        iterations=len(h.get("iter_loss", [])), seconds=num(round(h.get("seconds", 0), 1)),
                        stopped=i18n.md(tm(h.get("stopped_by", "?"), lang)), mse=num(last.get("mse", float("nan")), 5),
                        psnr=num(round(last.get("val_psnr", float("nan")), 2))) + "\n")
    files["loss_curves.png"] = loss_curves(pair.history, lang)
    md.append("\n![" + t("rep.alt_loss", lang) + "](loss_curves.png)\n")

    # 3. Reconstructions of validation images (Q3, Q5)
    rec = recon_section(session, pair, split, lang, files, md)
    summary = recon_summary(rec)
    md.append(_table(summary, lang))
    if rec.ae.lpips_note:
        md.append("\n" + t("recon.lpips_note", lang, why=i18n.md(tm(rec.ae.lpips_note, lang))) + "\n")
    md.append("\n" + t("rep.per_image", lang) + "\n\n" + _table(rec.rows(), lang))

    # 4. Metrics (Q4)
    md.append(t("rep.metrics", lang) + "\n\n" + "\n".join(
        "- " + t(f"metric.{k}", lang, cap=f"{metrics.PSNR_CAP:.0f}") for k in metrics.METRIC_HELP) + "\n")

    # 5. Noisy variants (report A, Problems 2 and 4), with the names of their labels
    chosen, vs = variants_part(session, pair, split)
    gen_data, gen_label = vs.export_arrays()
    files["gen_data.npy"], files["gen_label.npy"] = _save_npy(gen_data), _save_npy(gen_label)
    files["gen_label_names.txt"] = "".join(f"{n}\n" for n in chosen.label_names).encode()
    rows = [np.concatenate([chosen.images[i:i + 1], vs.vae[i], chosen.images[i:i + 1], vs.ae[i]])
            for i in range(len(chosen))]
    files["variants.png"] = figures.png_bytes(figures.image_grid(rows, [str(i) for i in chosen.ids], scale=1))
    k = vs.vae.shape[1]
    md.append(t("rep.variants", lang, n=len(chosen), ids=", ".join(map(str, chosen.ids)), k=k,
                data=tuple(gen_data.shape), labels=tuple(gen_label.shape)) + "\n\n![" + t("rep.alt_variants", lang) + "](variants.png)\n")

    # 6. Latent sizes (report A, Problem 5-1), on validation images
    md.append(t("rep.latent", lang) + "\n\n")
    ladder = analyses.ladder_models(session)
    lat = []
    if ladder:
        size = ladder[0]["ae"].config.image_size
        imgs = datasets.choose(session.split(size), None, N_LATENT, 0)
        lat = analyses.latent_rows(session, analyses.latent_sizes(session, imgs), size)
    if lat:
        md.append(t("rep.latent_of", lang, n=len(imgs), ids=", ".join(map(str, imgs.ids))) + "\n\n"
                  + _table(lat, lang) + latent_notes(session, lat, lang) + "\n\n![" + t("rep.alt_latent", lang) + "](latent_sizes.png)\n")
        files["latent_sizes.png"] = latent_chart(lat, lang)
    else:
        md.append(t("rep.no_ladder", lang) + "\n")

    # 7. Hyperparameter runs (report A, Problem 3), and the latest epochs sweep
    runs = [r.record.row(r.number) for r in session.runs]
    md.append(t("rep.runs", lang) + "\n\n" + _table(runs, lang))
    series = latest_series(session, SWEEP)
    sweep = sweep_rows(series)
    if sweep:
        files["psnr_epochs.png"] = epochs_chart(sweep, lang)
        md.append("\n" + t("rep.sweep", lang, runs=", ".join(str(r.number) for r in series),
                           data=i18n.md(tm(series[0].record.data, lang))) + "\n\n" + _table(sweep, lang)
                  + "\n![" + t("rep.alt_sweep", lang) + "](psnr_epochs.png)\n")
    else:
        md.append("\n" + t("rep.no_sweep", lang) + "\n")

    # 8. The beta trade-off (report B), from this session's latest beta sweep, else the shipped one
    md.append(t("rep.beta", lang) + "\n\n")
    betas, beta_text, whose = beta_part(session, lang)
    if betas:
        files["beta_tradeoff.png"] = beta_chart(betas, lang)
        cl = _chart_lang(lang)
        grid, labels = [], []
        for r in betas:
            grid += [r["recon"], r["samples"]]
            labels += [t("pic.beta_recon", cl, beta=f"{r['beta']:g}"), t("pic.beta_samples", cl, beta=f"{r['beta']:g}")]
        files["beta_sweep.png"] = figures.png_bytes(figures.image_grid(
            grid, labels, scale=figures.auto_scale(betas[0]["samples"].shape[1], 64)))
        md.append(beta_text + "\n\n" + _table([{k: v for k, v in r.items() if k not in ("samples", "recon")}
                                               for r in betas], lang) + "\n" + t("rep.beta_figs", lang) + "\n")
    else:
        md.append(t("rep.beta_none", lang) + "\n")

    # 9. The latent space: prior samples through both decoders, an interpolation
    vae_s, ae_s = analyses.prior_pair_for(session, pair, N_PRIOR, 0)
    files["prior_samples.png"] = figures.png_bytes(figures.image_grid(
        [vae_s, ae_s], ["VAE", "AE"], scale=figures.auto_scale(pair.image_size, 80)))
    two = _pick_two(split.val)
    interp = analyses.interpolations_for(session, pair, two, 7)
    cl = _chart_lang(lang)
    files["interpolation.png"] = figures.png_bytes(figures.image_grid(
        list(interp.values()), [t(f"pic.{k}", cl) for k in interp], scale=figures.auto_scale(pair.image_size, 72)))
    md.append(t("rep.space", lang) + "\n\n" + t("rep.prior", lang, n=N_PRIOR) + "\n\n" + t(
        "rep.interp", lang, a=int(two.ids[0]), name_a=i18n.md(two.names[0]), b=int(two.ids[1]), name_b=i18n.md(two.names[1]),
        steps=7) + "\n")

    # 10. Discussion, every number computed above
    near_vae = metrics.nearest_psnr(vae_s, split.val.images)
    near_ae = metrics.nearest_psnr(ae_s, split.val.images)
    recon_vae = float(np.mean(rec.vae.psnr))
    found = {"samples_vae_nearest_psnr": float(near_vae.mean()), "samples_ae_nearest_psnr": float(near_ae.mean()),
             "recon_vae_psnr": recon_vae, "recon_ae_psnr": float(np.mean(rec.ae.psnr))}
    gap = recon_vae - found["samples_vae_nearest_psnr"]
    lines = metric_lines(rec, lang)
    lines.append(t("rep.d_samples" if gap > 0 else "rep.d_samples_close", lang, n=len(split.val),
                   sample=num(found["samples_vae_nearest_psnr"], 2), recon=num(recon_vae, 2), gap=num(abs(gap), 2),
                   ae=num(found["samples_ae_nearest_psnr"], 2), draws=N_PRIOR))
    lines.append(epochs_line(series, sweep, lang))
    lines.append(beta_line(betas, whose, lang))
    d_psnr = found["recon_ae_psnr"] - recon_vae
    gen = found["samples_vae_nearest_psnr"] - found["samples_ae_nearest_psnr"]
    conclusion = t("rep.c_recon", lang, better="AE" if d_psnr >= 0 else "VAE", diff=num(abs(d_psnr), 2)) + " " + t(
        "rep.c_gen_vae" if gen > 0 else "rep.c_gen_ae", lang, diff=num(abs(gen), 2))
    md.append(t("rep.discussion", lang) + "\n\n" + "\n".join(lines) + "\n\n" + t("rep.conclusion", lang,
                                                                                text=conclusion) + "\n")

    # Checkpoints of the pair
    tmp = Path(out).parent / "report-ckpt"  # beside the zip: a call's own folder
    for kind, model in (("ae", pair.ae), ("vae", pair.vae)):
        p = checkpoints.save(model, tmp / kind, train=pair.train, history=pair.history.get(kind),
                             dataset=pair.dataset, name=f"{pair.source} {kind}")
        files[f"checkpoints/{kind}.json"] = p.read_bytes()
        files[f"checkpoints/{kind}.safetensors"] = p.with_suffix(".safetensors").read_bytes()
    md.append("\n" + t("rep.files", lang) + "\n\n" + "\n".join(f"- `{n}`" for n in sorted(files)) + "\n")
    text = "\n".join(md)
    files["report.md"] = text.encode()
    # HTML in the Markdown is shown as text, never run: the report holds names someone chose
    # (labels from folder names, file names), escaped where inserted (i18n.md) as well.
    html = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    files["report.html"] = (f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><title>{t('rep.title', lang)}</title>"
                            f"<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}"
                            f"table{{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%}}"  # wide tables scroll
                            f"td,th{{border:1px solid #ccc;padding:2px 6px;word-break:keep-all}}pre,code{{white-space:pre-wrap;overflow-wrap:anywhere}}"
                            f"img{{image-rendering:pixelated;max-width:100%}}</style>{html}").encode()
    files["report.json"] = json.dumps({"source": pair.source, "data": split.all.source, "reconstruction": summary,
                                       "reconstructed_ids": [int(i) for i in rec.images.ids],
                                       "runs": [dict(r.record.to_dict(), run=r.number) for r in session.runs],
                                       "epochs_sweep": sweep,
                                       "beta": [{k: v for k, v in r.items() if k not in ("samples", "recon")}
                                                for r in betas], "discussion": found}, default=str).encode()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(f"aevae-report/{name}", blob)
    return out
