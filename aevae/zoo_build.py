"""The script that trains the shipped models (aevae/zoo.py's recipes), measures them as saved and
writes the manifest the app reads.

    python -m aevae.zoo_build build [--quick] [--out checkpoints] [--only NAME ...] [--resume]
    python -m aevae.zoo_build table [--out checkpoints]     # the README's results table
    python -m aevae.zoo_build grid  [--out checkpoints]     # ground truth | AE | VAE image for the README
    python -m aevae.zoo_build priors [--out checkpoints]    # the generative pair's prior samples, VAE and AE
    python -m aevae.zoo_build readme                         # writes the table into README.md
    python -m aevae.zoo_build lpips [--out checkpoints]     # (re)measures LPIPS of every shipped model

Every model is trained from scratch with a fixed seed on OpenMoji's fixed train/validation
split; its validation metrics are measured on the checkpoint as saved (fp16 weights only
where that changes validation PSNR by less than 0.01 dB).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import checkpoints, data, metrics
from .models import build_model
from .train import train
from .zoo import DEFAULT_DIR, GENERATE, HALF_TOLERANCE_DB, SPLIT, Recipe, Zoo, order_of, recipes


def _split(image_size: int) -> data.Split:
    return data.load_split(SPLIT["spec"], image_size, SPLIT["val_fraction"], SPLIT["seed"])


def _quick(split: data.Split) -> data.Split:
    """A small slice keeps the test suite fast; ids stay those of the full set."""
    return data.Split(split.all, split.train.subset(np.arange(min(192, len(split.train)))),
                      split.val.subset(np.arange(min(48, len(split.val)))), split.spec, split.val_fraction, split.seed,
                      split.groups)


def _entry(r: Recipe, ck: checkpoints.Checkpoint, result: metrics.EvalResult, path: Path, hist) -> dict:
    s = result.summary()
    return {
        "name": r.name, "group": r.group, "kind": r.model.kind, "rung": r.rung,
        "file": path.name, "model": r.model.to_dict(), "train": r.train.to_dict(),
        "params": ck.model.n_params, "latent_numel": ck.model.latent_numel,
        "image_values": 3 * r.model.image_size ** 2,
        "seconds": round(hist.seconds, 1), "epochs": len(hist.epochs), "images_seen": hist.images_seen,
        "dtype": ck.meta["dtype"],
        "metrics": {k: None if v is None else {"mean": v.mean, "std": v.std, "n": v.n} for k, v in s.items()},
        "lpips_note": result.lpips_note,
    } | ({"groups": list(r.groups)} if r.groups else {})


def _groups(split: data.Split, groups: tuple[str, ...]) -> data.Split:
    """The split's images of these OpenMoji groups only (the whole split when none are named)."""
    return split.of_groups(groups)


def build(out: Path = DEFAULT_DIR, quick: bool = False, only: list[str] | None = None,
          resume: bool = False, log=print) -> list[dict]:
    out = Path(out)
    known = {r.name for r in recipes(quick)}
    entries = {e["name"]: e for e in checkpoints.read_manifest(out)} if (resume or only) else {}
    for name in [n for n in entries if n not in known]:  # a model no recipe makes any more
        for suffix in (".json", ".safetensors"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
        del entries[name]
    splits: dict[int, data.Split] = {}
    todo = [r for r in recipes(quick) if not only or r.name in only]
    for i, r in enumerate(todo, 1):
        path = out / f"{r.name}.json"
        if resume and r.name in entries and path.is_file():
            log(f"[{i}/{len(todo)}] {r.name}: kept")
            continue
        size = r.model.image_size
        split = _groups(splits.setdefault(size, _split(size)), r.groups)
        split = _quick(split) if quick else split
        torch.manual_seed(r.train.seed)
        model = build_model(r.model)
        t0 = time.perf_counter()
        hist = train(model, split.train, split.val, r.train)
        entry = ship(r, model, hist, split, out, entries)
        s = entry["metrics"]
        log(f"[{i}/{len(todo)}] {r.name}: {time.perf_counter() - t0:.0f} s, {entry['epochs']} epochs, "
            f"PSNR {s['psnr']['mean']:.2f} SSIM {s['ssim']['mean']:.4f} ({entry['dtype']})")
    return [entries[k] for k in sorted(entries, key=order_of)]


def ship(r: Recipe, model, hist, split: data.Split, out: Path, entries: dict) -> dict:
    """Save a model trained by recipe `r` as a shipped checkpoint, measured, and list it in the manifest."""
    path = out / f"{r.name}.json"
    # fp16 weights only where they cost no measurable quality.
    full = metrics.evaluate(model, split.val, lpips=False).summary()["psnr"].mean
    checkpoints.save(model, path, train=r.train, history=hist, dataset=split.describe(), half=True, name=r.name)
    ck = checkpoints.load(path)
    half = metrics.evaluate(ck.model, split.val, lpips=False).summary()["psnr"].mean
    if abs(half - full) >= HALF_TOLERANCE_DB:
        checkpoints.save(model, path, train=r.train, history=hist, dataset=split.describe(), name=r.name)
        ck = checkpoints.load(path)
    result = metrics.evaluate(ck.model, split.val)
    entry = _entry(r, ck, result, path, hist)
    checkpoints.save(ck.model, path, train=r.train, history=hist, dataset=split.describe(),
                     half=ck.meta["dtype"] == "float16", name=r.name, metrics=entry["metrics"])
    entries[r.name] = entry
    checkpoints.write_manifest(out, [entries[k] for k in sorted(entries, key=order_of)],
                               split=SPLIT, note="made by python -m aevae.zoo_build build")
    return entry


def add_lpips(out: Path = DEFAULT_DIR, log=print) -> list[dict]:
    """Measure LPIPS of every shipped checkpoint as saved on its validation split and record it in
    the manifest and the checkpoint's JSON; PSNR/SSIM, weights and training record stay as they are."""
    out = Path(out)
    entries = checkpoints.read_manifest(out)
    splits: dict[int, data.Split] = {}
    for i, e in enumerate(entries, 1):
        ck = checkpoints.load(out / e["file"])
        size = ck.model.config.image_size
        groups = tuple(e.get("groups") or ())
        split = _groups(splits.setdefault(size, _split(size)), groups)
        t0 = time.perf_counter()
        result = metrics.evaluate(ck.model, split.val)
        s = result.summary()
        if s["lpips"] is None:
            raise RuntimeError(f"{e['name']}: LPIPS not measured: {result.lpips_note}")
        if abs(s["psnr"].mean - e["metrics"]["psnr"]["mean"]) >= 0.05:  # not the recorded model
            raise RuntimeError(f"{e['name']}: PSNR {s['psnr'].mean:.2f} differs from the recorded "
                               f"{e['metrics']['psnr']['mean']:.2f}")
        lp = {"mean": s["lpips"].mean, "std": s["lpips"].std, "n": s["lpips"].n}
        e["metrics"]["lpips"], e["lpips_note"] = lp, ""
        meta = json.loads(ck.path.read_text())
        meta["metrics"] = {**(meta.get("metrics") or {}), "lpips": lp}
        checkpoints.atomic_write(ck.path, json.dumps(meta, indent=1).encode())
        log(f"[{i}/{len(entries)}] {e['name']}: LPIPS {lp['mean']:.4f} +- {lp['std']:.4f} "
            f"(n={lp['n']}, {time.perf_counter() - t0:.1f} s)")
    checkpoints.write_manifest(out, entries, split=SPLIT, note="made by python -m aevae.zoo_build build; "
                               "LPIPS of older entries added by python -m aevae.zoo_build lpips")
    return entries


def results_table(entries: list[dict]) -> str:
    """Markdown table of the manifest (the README's results table)."""
    head = ("| model | kind | latent | latent values (vs image) | params | weights | epochs | train s | PSNR dB "
            "| SSIM | LPIPS |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for e in entries:
        m = e["metrics"]
        lp = f"{m['lpips']['mean']:.4f}" if m.get("lpips") else "not measured"
        ratio = e["latent_numel"] / e["image_values"]
        lines.append(
            f"| {e['name']} | {e['kind'].upper()} | {e['model']['latent']} | {e['latent_numel']:,} ({ratio:.2g}x) "
            f"| {e['params']:,} | {e['dtype'].replace('float', 'fp')} | {e['epochs']} | {e['seconds']:.0f} "
            f"| {m['psnr']['mean']:.2f} "
            f"| {m['ssim']['mean']:.4f} | {lp} |")
    return "\n".join(lines)


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def write_readme_table(readme: Path, entries: list[dict]) -> None:
    """Replace the README's results block with the table made from the manifest."""
    text = readme.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{results_table(entries)}\n{README_END}{tail}")


def grid(zoo: Zoo, n: int = 10, seed: int = 0) -> np.ndarray:
    """Rows ground truth / AE / VAE for n random validation images of the default pair."""
    ae, vae = zoo.pair()
    split = _split(ae.model.config.image_size)
    pick = np.sort(np.random.default_rng(seed).choice(len(split.val), n, replace=False))
    gt = split.val.images[pick]
    rows = [gt, metrics.evaluate(ae.model, gt, lpips=False).recon, metrics.evaluate(vae.model, gt, lpips=False).recon]
    return np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)


def priors(zoo: Zoo, n: int = 12, seed: int = 0) -> np.ndarray:
    """The generative pair's prior samples, the Latent space tab's default: the VAE's row, then the
    AE's decoding of the very same draws z ~ N(0, I)."""
    from . import figures, sampling

    ae, vae = zoo.pair(GENERATE)
    z = torch.randn((n, *vae.model.latent_shape), generator=torch.Generator().manual_seed(seed))
    rows = [sampling.prior_samples(vae.model, z=z), sampling.prior_samples(ae.model, z=z)]
    return figures.image_grid(rows, ["VAE", "AE"], scale=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aevae.zoo_build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build", "table", "grid", "priors", "readme", "lpips"])
    ap.add_argument("--out", default=str(DEFAULT_DIR))
    ap.add_argument("--quick", action="store_true", help="tiny models on a slice of the data (for tests)")
    ap.add_argument("--only", nargs="*", help="build only these models")
    ap.add_argument("--resume", action="store_true", help="keep models already in the manifest")
    args = ap.parse_args(argv)
    if args.command == "build":
        build(Path(args.out), args.quick, args.only, args.resume)
    elif args.command == "table":
        print(results_table(checkpoints.read_manifest(args.out)))
    elif args.command == "lpips":
        add_lpips(Path(args.out))
    elif args.command == "readme":
        write_readme_table(DEFAULT_DIR.parent / "README.md", checkpoints.read_manifest(args.out))
    else:
        from PIL import Image

        path = Path(args.out) / f"{args.command}.png"
        Image.fromarray((grid if args.command == "grid" else priors)(Zoo(args.out))).save(path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
