"""One-click report: a zip with Markdown + HTML answering the homework questions from a session.

Every figure and number in it is computed from the session's models and data when the report
is made (or taken from results the session computed), never typed in. Its words are in the
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

from . import __version__, checkpoints, data, figures, i18n, metrics, workbench  # noqa: E402
from .i18n import t, tm  # noqa: E402
from .models import summary_rows  # noqa: E402

# Columns whose cells are the package's words (translated like its messages).
MESSAGE_CELLS = ("ended", "trained", "data", "source", "made by", "trained on", "preset")


def latent_notes(session: workbench.Session, rows: list[dict], lang: str) -> str:
    """What the latent-size table needs said under it (workbench.latent_rows' rows): rungs
    trained on other data than the data in use, and rungs trained for other numbers of epochs."""
    note, elsewhere = "", {}
    for r in rows[::2]:  # one row per rung (its AE's)
        if r["trained on"] != "the data in use":
            elsewhere.setdefault(r["trained on"], []).append(r["latent"])
    for other, latents in elsewhere.items():
        note += "\n\n" + t("lat.elsewhere_many" if len(latents) > 1 else "lat.elsewhere_one", lang,
                            latents=", ".join(latents), other=tm(other, lang), data=tm(session.data_source(), lang))
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


def setting_value(value, lang: str):
    """A training setting's value as shown: yes/no in `lang`, the rest as it is."""
    return t("rep.yes" if value else "rep.no", lang) if isinstance(value, bool) else value


def _table(rows: list[dict], lang: str = i18n.DEFAULT, digits: int = 4) -> str:
    if not rows:
        return t("rep.none", lang) + "\n"
    cols = list(rows[0])

    def cell(c, v):
        if isinstance(v, float):  # 300 s, 24.13 dB, 0.0123 (not 300.0000, 24.1346)
            if v.is_integer():
                return f"{v:.0f}"
            if abs(v) >= 10:
                return f"{v:.2f}"
            return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits else f"{v:.2e}"
        if v is None:
            return t("rep.na", lang)
        if c == "label" and isinstance(v, str):
            return data.label_shown(v, lang).replace("|", "/")
        return (tm(v, lang) if c in MESSAGE_CELLS and isinstance(v, str) else str(v)).replace("|", "/")

    lines = ["| " + " | ".join(i18n.col(c, lang) for c in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(c, r[c]) for c in cols) + " |" for r in rows]
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
        ax.set(xscale="log", xlabel=t("col.latent values", lang), ylabel="PSNR (dB)", title=t("rep.latent_title", lang))
        ax.legend()
        return _fig_png(fig)


def build(session: workbench.Session, out: str | Path, lang: str = i18n.DEFAULT) -> Path:
    """Write the report zip for `session`, its words in `lang`; returns its path."""
    pair = session.pair()
    split = session.split(pair.image_size)
    files: dict[str, bytes] = {}
    md: list[str] = [t("rep.head", lang, when=f"{_dt.datetime.now():%Y-%m-%d %H:%M}", version=__version__,
                       models=tm(pair.source, lang), data=tm(split.all.source, lang)) + "\n"]

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
                        iterations=len(h.get("iter_loss", [])), seconds=f"{h.get('seconds', 0):.1f}",
                        stopped=tm(h.get("stopped_by", "?"), lang), mse=f"{last.get('mse', float('nan')):.5f}",
                        psnr=f"{last.get('val_psnr', float('nan')):.2f}") + "\n")
    files["loss_curves.png"] = loss_curves(pair.history, lang)
    md.append("\n![" + t("rep.alt_loss", lang) + "](loss_curves.png)\n")

    # 3. Reconstructions (Q3, Q5)
    rec = session.last.get("reconstruction")
    if rec is None or rec.source != pair.source or rec.images.image_size != pair.image_size:
        rec = workbench.reconstruct(pair, workbench.choose(split, None, 10, 0))
    elif rec.ae.lpips is None or rec.vae.lpips is None:  # the tab ran with LPIPS off: add it
        rec = workbench.Reconstruction(rec.images, *(metrics.score(rec.images.images, r.recon, rec.images.ids)
                                                     for r in (rec.ae, rec.vae)), rec.source)
    truth = t("pic.ground_truth", _chart_lang(lang))
    files["reconstructions.png"] = figures.png_bytes(figures.image_grid(
        [rec.images.images, rec.ae.recon, rec.vae.recon], [truth, "AE", "VAE"],
        [str(i) for i in rec.images.ids], scale=figures.auto_scale(pair.image_size, 96)))
    md.append(t("rep.recon", lang) + "\n\n![" + t("rep.alt_recon", lang) + "](reconstructions.png)\n")
    summary = []
    for kind, r in (("AE", rec.ae), ("VAE", rec.vae)):
        s = r.summary()
        summary.append({"model": kind, "PSNR mean": s["psnr"].mean, "PSNR std": s["psnr"].std,
                        "SSIM mean": s["ssim"].mean, "SSIM std": s["ssim"].std,
                        "LPIPS mean": s["lpips"].mean if s["lpips"] else None})
    md.append(_table(summary, lang))
    if rec.ae.lpips_note:
        md.append("\n" + t("recon.lpips_note", lang, why=tm(rec.ae.lpips_note, lang)) + "\n")
    md.append("\n" + t("rep.per_image", lang) + "\n\n" + _table(rec.rows(), lang))

    # 4. Metrics (Q4)
    md.append(t("rep.metrics", lang) + "\n\n" + "\n".join(
        "- " + t(f"metric.{k}", lang, cap=f"{metrics.PSNR_CAP:.0f}") for k in metrics.METRIC_HELP) + "\n")

    # 5. Noisy variants (report A, Problems 2 and 4)
    var = session.last.get("variants")
    if var is None or var[2:] != (pair.source,) or var[0].image_size != pair.image_size:
        ids = [i for i in data.REPORT_A_IDS if i <= len(split.all)]
        chosen = split.all.select_ids(ids)
        var = (chosen, workbench.variants(pair, chosen, 5, 1.0, 0))
    chosen, vs = var[:2]
    gen_data, gen_label = vs.export_arrays()
    for name, arr in (("gen_data.npy", gen_data), ("gen_label.npy", gen_label)):
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        files[name] = buf.getvalue()
    rows = [np.concatenate([chosen.images[i:i + 1], vs.vae[i], chosen.images[i:i + 1], vs.ae[i]])
            for i in range(len(chosen))]
    files["variants.png"] = figures.png_bytes(figures.image_grid(rows, [str(i) for i in chosen.ids], scale=1))
    k = vs.vae.shape[1]
    md.append(t("rep.variants", lang, n=len(chosen), ids=", ".join(map(str, chosen.ids)), k=k,
                data=tuple(gen_data.shape), labels=tuple(gen_label.shape)) + "\n\n![" + t("rep.alt_variants", lang) + "](variants.png)\n")

    # 6. Latent sizes (report A, Problem 5-1)
    lat = session.last.get("latent_sizes")
    if lat is None:
        ladder = workbench.ladder_models(session)
        if ladder:
            size = ladder[0]["ae"].config.image_size
            imgs = workbench.choose(session.split(size), None, 6, 0)
            lat = workbench.latent_rows(session, workbench.latent_sizes(session, imgs), size)
    md.append(t("rep.latent", lang) + "\n\n")
    if lat:
        md.append(_table(lat, lang) + latent_notes(session, lat, lang) + "\n\n![" + t("rep.alt_latent", lang) + "](latent_sizes.png)\n")
        files["latent_sizes.png"] = latent_chart(lat, lang)
    else:
        md.append(t("rep.no_ladder", lang) + "\n")

    # 7. Hyperparameter runs (report A, Problem 3)
    runs = session.run_rows()
    md.append(t("rep.runs", lang) + "\n\n" + _table(runs, lang, digits=4))

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
    html = MarkdownIt("commonmark").enable("table").render(text)
    # a wide table scrolls rather than squeeze its columns to one (Chinese) character a line
    files["report.html"] = (f"<!doctype html><html lang='{lang}'><meta charset='utf-8'><title>{t('rep.title', lang)}</title>"
                            f"<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}"
                            f"table{{border-collapse:collapse;display:block;overflow-x:auto}}"
                            f"td,th{{border:1px solid #ccc;padding:2px 6px;word-break:keep-all}}"
                            f"img{{image-rendering:pixelated;max-width:100%}}</style>{html}").encode()
    files["report.json"] = json.dumps({"source": pair.source, "data": split.all.source,
                                       "reconstruction": summary, "runs": runs}, default=str).encode()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in files.items():
            zf.writestr(f"aevae-report/{name}", blob)
    return out

