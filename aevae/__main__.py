"""Command line: python -m aevae train | evaluate | sample | summary (each with --help)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def _train(args) -> int:
    from . import data, distributed
    from .config import PRESETS, ModelConfig, resolve_device
    from .models import plan

    base = PRESETS[args.preset]
    changes = {k: v for k, v in {"image_size": args.image_size, "latent": args.latent,
                                 "widths": args.widths}.items() if v is not None}
    kinds = ["ae", "vae"] if args.model == "both" else [args.model]
    cfgs: list[ModelConfig] = [base.model.with_(kind=kind, **changes) for kind in kinds]
    for cfg in cfgs:
        plan(cfg)  # a latent the stages cannot reach is an error before any data is loaded
    tcfg = base.train.with_(**{k: v for k, v in {
        "epochs": args.epochs, "seconds": args.seconds, "batch_size": args.batch_size, "lr": args.lr,
        "weight_decay": args.weight_decay, "beta": args.beta, "kl_warmup_epochs": args.kl_warmup,
        "seed": args.seed, "threads": args.threads, "device": resolve_device(args.device)}.items()
        if v is not None})
    if args.no_plateau:
        tcfg = tcfg.with_(plateau_patience=None)
    size = cfgs[0].image_size
    world = distributed.setup(tcfg.device)  # a no-op unless started by torchrun
    try:
        split = data.load_split(args.dataset, size, args.val_fraction, args.split_seed, labels_path=args.labels)
        if world.main:
            print(f"data: {split.train.source}: {len(split.train)} train / {len(split.val)} validation images"
                  + (f" ({len(split.skipped)} files skipped)" if split.skipped else "")
                  + (f"; {world.size} processes" if world.size > 1 else ""), file=sys.stderr)
        for cfg in cfgs:
            _train_one(cfg, tcfg, split, world, args)
    finally:
        distributed.teardown()
    return 0


def _train_one(cfg, tcfg, split, world, args) -> None:
    from tqdm import tqdm

    from . import checkpoints, metrics
    from .models import build_model, summary
    from .train import train

    kind = cfg.kind
    torch.manual_seed(tcfg.seed)
    model = build_model(cfg)
    if args.verbose and world.main:
        print(summary(model), file=sys.stderr)
    with tqdm(desc=kind.upper(), unit="step", file=sys.stderr, disable=not world.main) as bar:
        def progress(p):
            bar.total = p.steps_total
            bar.update(p.step - bar.n)
            bar.set_postfix(epoch=p.epoch, mse=f"{p.mse:.4f}", kl=f"{p.kl:.1f}")
        hist = train(model, split.train, split.val, tcfg, on_progress=progress)
    if world.main:  # every process holds the same weights; only the first writes them
        model.cpu()
        result = metrics.evaluate(model, split.val, lpips=not args.no_lpips)
        path = checkpoints.save(model, Path(args.out) / kind, train=tcfg, history=hist, dataset=split.describe(),
                                metrics=result.to_dict()["summary"], half=args.half, name=f"{args.preset}-{kind}")
        s = result.summary()
        lp = f"{s['lpips'].mean:.4f}" if s["lpips"] else "n/a"
        print(f"{kind.upper()}: {hist.seconds:.1f} s, {len(hist.epochs)} epochs ({hist.stopped_by}), "
              f"val PSNR {s['psnr'].mean:.2f} dB, SSIM {s['ssim'].mean:.4f}, LPIPS {lp} -> {path}")
        if result.lpips_note:
            print(f"LPIPS not measured: {result.lpips_note}", file=sys.stderr)


def _checkpoint_files(paths: list[str]) -> list[Path]:
    """Checkpoint files as given, and every checkpoint (NAME.json beside NAME.safetensors) in a
    folder given instead, such as the one `train --out DIR` writes."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists() and not p.with_suffix(".json").is_file():
            raise ValueError(f"{p}: no such run folder or checkpoint (looked for the folder {p}/ and the file "
                             f"{p.with_suffix('.json')})")
        if p.is_dir():
            found = sorted(j for j in p.glob("*.json") if j.with_suffix(".safetensors").is_file())
            if not found:
                raise ValueError(f"{p}: a folder with no checkpoint in it (looked for NAME.json files with a "
                                 "NAME.safetensors beside them, as `train --out DIR` writes)")
            out += found
        else:
            out.append(p)
    return out


def _evaluate(args) -> int:
    from . import checkpoints, data, metrics

    report = {}
    splits = {}
    notes = set()
    for p in _checkpoint_files(args.checkpoints):
        ck = checkpoints.load(p)
        d = ck.meta.get("dataset") or {}
        # the recorded data, and only its groups where the model was trained on some (shipped: generate)
        spec, groups = (args.dataset, ()) if args.dataset else data.recorded_data(d)
        key = (spec, ck.model.config.image_size, d.get("val_fraction", 0.1), d.get("split_seed", 0))
        if key not in splits:
            splits[key] = data.load_split(*key, labels_path=args.labels)
        split = splits[key].of_groups(groups)
        images = {"val": split.val, "train": split.train, "all": split.all}[args.split]
        result = metrics.evaluate(ck.model, images, lpips=not args.no_lpips)
        report[str(p)] = {"name": ck.name, "kind": ck.model.kind, "split": args.split, "n": len(images),
                          **result.to_dict()}
        if not args.json:
            s = result.summary()
            lp = f"{s['lpips'].mean:.4f} ± {s['lpips'].std:.4f}" if s["lpips"] else "n/a"
            notes.add(result.lpips_note)
            print(f"{ck.name:<24} {ck.model.kind.upper():<4} n={len(images):<5} "
                  f"PSNR {s['psnr'].mean:6.2f} ± {s['psnr'].std:5.2f}  "
                  f"SSIM {s['ssim'].mean:.4f} ± {s['ssim'].std:.4f}  LPIPS {lp}")
    if args.json:
        print(json.dumps(report, indent=1))
    if notes - {""}:
        print(f"LPIPS not measured: {sorted(notes - {''})[0]}", file=sys.stderr)
    return 0


def _sample(args) -> int:
    from . import checkpoints, data, sampling

    found = _checkpoint_files([args.checkpoint])  # a missing path says what was looked for
    if Path(args.checkpoint).is_dir():  # a run folder: its VAE, and its AE for the same noise
        loaded = [checkpoints.load(p) for p in found]
        vaes = [c for c in loaded if c.model.kind == "vae"]
        if not vaes:
            raise ValueError(f"{args.checkpoint}: no VAE checkpoint in this folder (found "
                             f"{', '.join(c.name or '?' for c in loaded)})")
        ck = vaes[0]
        aes = [c for c in loaded if c.model.kind == "ae"]
        ae = checkpoints.load(args.ae).model if args.ae else (aes[0].model if aes else None)
    else:
        ck = checkpoints.load(args.checkpoint)
        if ck.model.kind != "vae":
            raise ValueError(f"{args.checkpoint}: noisy variants need a VAE checkpoint")
        ae = checkpoints.load(args.ae).model if args.ae else None
    d = ck.meta.get("dataset") or {}
    # the whole recorded data (ids as in it), also for a model trained on some of its groups
    full = data.load_dataset(args.dataset or data.recorded_data(d)[0], ck.model.config.image_size,
                             labels_path=args.labels)
    chosen = full.select_ids(data.parse_ids(args.ids))
    vs = sampling.variant_set(ck.model, ae, chosen.images, chosen.ids, chosen.labels, k=args.variants,
                              scale=args.noise, seed=args.seed)
    gen_data, gen_label = vs.export_arrays()
    out = Path(args.out)
    if out.suffix == ".npz":
        paths = [sampling.save_npz(out, gen_data, gen_label)]
    else:
        paths = sampling.save_arrays(out, gen_data, gen_label)
    paths.append(sampling.save_label_names(out if out.suffix != ".npz" else out.parent, chosen.label_names))
    if vs.ae is not None:
        ae_data = vs.ae.reshape(gen_data.shape)
        paths += sampling.save_arrays(out if out.suffix != ".npz" else out.parent, ae_data, gen_label,
                                      names=("gen_data_ae.npy", "gen_label_ae.npy"))
    print(f"{len(gen_data)} variants of {len(chosen)} images -> {', '.join(map(str, paths))}")
    return 0


def _summary(args) -> int:
    from . import checkpoints
    from .config import preset
    from .models import build_model, summary

    if args.checkpoint:
        model = checkpoints.load(args.checkpoint).model
    else:
        model = build_model(preset(args.preset, args.model))
    print(summary(model))
    return 0


def parser() -> argparse.ArgumentParser:
    from .config import PRESETS

    ap = argparse.ArgumentParser(prog="python -m aevae", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an AE and/or a VAE and save checkpoints")
    t.add_argument("--model", choices=["ae", "vae", "both"], default="both")
    t.add_argument("--preset", choices=sorted(PRESETS), default="default")
    t.add_argument("--dataset", default="openmoji", help="'openmoji' or a folder / .zip / .npy / .npz")
    t.add_argument("--labels", help="labels .npy for a .npy dataset")
    t.add_argument("--image-size", type=int)
    t.add_argument("--latent", help="vector size (256) or spatial CxHxW (256x8x8)")
    t.add_argument("--widths", type=lambda s: tuple(int(w) for w in s.split(",")),
                   help="channels per encoder stage, e.g. 32,64,128")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seconds", type=float, help="wall-clock budget; stops at epochs or seconds, first reached")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--beta", type=float, help="KL weight (VAE)")
    t.add_argument("--kl-warmup", type=float, help="epochs over which beta ramps up from 0")
    t.add_argument("--no-plateau", action="store_true", help="no ReduceLROnPlateau")
    t.add_argument("--seed", type=int)
    t.add_argument("--split-seed", type=int, default=0)
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--threads", type=int)
    t.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="default auto: cuda when a GPU is present, else mps, else cpu; under torchrun, cuda uses nccl")
    t.add_argument("--half", action="store_true", help="store weights as float16")
    t.add_argument("--no-lpips", action="store_true")
    t.add_argument("--verbose", "-v", action="store_true", help="print the architecture")
    t.add_argument("--out", default="runs/latest")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="PSNR / SSIM / LPIPS of checkpoints on their validation split")
    e.add_argument("checkpoints", nargs="+", metavar="CKPT",
                   help="checkpoint .json (or .safetensors), or a folder of them (train --out DIR)")
    e.add_argument("--dataset", help="default: the dataset recorded in the checkpoint (the groups it was trained on)")
    e.add_argument("--labels")
    e.add_argument("--split", choices=["val", "train", "all"], default="val")
    e.add_argument("--no-lpips", action="store_true")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=_evaluate)

    s = sub.add_parser("sample", help="noisy VAE variants of chosen images, saved as .npy (or .npz)")
    s.add_argument("checkpoint", metavar="CKPT",
                   help="a VAE checkpoint, or a run folder (its VAE; its AE gets the same noise)")
    s.add_argument("--ae", metavar="CKPT", help="also push the same noise through this AE")
    s.add_argument("--dataset")
    s.add_argument("--labels")
    s.add_argument("--ids", default="1-5,226-230,841-845,1471-1475", help="1-based ids, e.g. 1-5,226")
    s.add_argument("--variants", type=int, default=5)
    s.add_argument("--noise", type=float, default=1.0, help="noise scale (1 = the VAE's own sigma)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples", help="a folder (gen_data.npy + gen_label.npy) or a .npz file")
    s.set_defaults(func=_sample)

    m = sub.add_parser("summary", help="print a model's architecture")
    m.add_argument("checkpoint", nargs="?", metavar="CKPT")
    m.add_argument("--preset", choices=sorted(PRESETS), default="default")
    m.add_argument("--model", choices=["ae", "vae"], default="vae")
    m.set_defaults(func=_summary)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
