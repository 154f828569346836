"""Fetches the page's ONNX runtime (onnxruntime-web, MIT) from the npm registry into ui/static/ort/.

    python scripts/fetch_onnxruntime_web.py             # the pinned version below
    python scripts/fetch_onnxruntime_web.py --check     # only checks the committed files

The tarball is checked against the integrity the registry publishes for the version (and the one
written here), then only the files the page needs are extracted, with the package's licence, and
SHA256SUMS is written beside them: the app checks them at start (ui/web_files.py) and serves
them from its own origin. To move to a new version: change VERSION and INTEGRITY (from
`npm view onnxruntime-web@VERSION dist.integrity`), run this, try the Latent space tab, commit.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "onnxruntime-web"
VERSION = "1.31.1"
INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
# The wasm-only build (global `ort`), its WebAssembly module and the Emscripten glue it imports.
FILES = {"package/dist/ort.wasm.min.js": "ort.wasm.min.js",
         "package/dist/ort-wasm-simd-threaded.wasm": "ort-wasm-simd-threaded.wasm",
         "package/dist/ort-wasm-simd-threaded.mjs": "ort-wasm-simd-threaded.mjs"}
OUT = Path(__file__).resolve().parent.parent / "ui" / "static" / "ort"


def integrity_of(blob: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode("ascii")


def check_integrity(blob: bytes, expected: str) -> None:
    got = integrity_of(blob)
    if got != expected:
        raise SystemExit(f"{PACKAGE}@{VERSION}: the tarball's integrity is {got}, expected {expected}: refused")


def extract(blob: bytes, out: Path) -> dict[str, str]:
    """The needed members written into `out`; {name: sha256}."""
    sums = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        missing = sorted(set(FILES) - set(members))
        if missing:
            raise SystemExit(f"{PACKAGE}@{VERSION}: the tarball lacks {missing}")
        out.mkdir(parents=True, exist_ok=True)
        for member, name in FILES.items():
            data = tar.extractfile(members[member]).read()
            if name.endswith(".wasm"):  # 14.8 MB: committed gzipped, under a Space's 10 MiB per file
                (out / (name + ".gz")).write_bytes(gzip.compress(data, 9, mtime=0))
            else:
                (out / name).write_bytes(data)
            sums[name] = hashlib.sha256(data).hexdigest()  # of the file as served
    licence = licence_text(json.loads(tar_member(blob, "package/package.json")), tar_member(blob, "package/dist/ort.wasm.min.js"))
    (out / "LICENSE").write_text(licence)
    sums["LICENSE"] = hashlib.sha256(licence.encode()).hexdigest()
    (out / "SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    (out / "VERSION").write_text(f"{PACKAGE} {VERSION}\n{INTEGRITY}\n")
    return sums


def tar_member(blob: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return tar.extractfile(name).read()


def licence_text(package: dict, script: bytes) -> str:
    """The package ships no LICENSE file: its package.json names MIT and each script's banner says
    whose; the MIT text is the one ONNX Runtime's own Python package ships (the same project)."""
    if package.get("license") != "MIT":
        raise SystemExit(f"{PACKAGE}@{VERSION} is licensed {package.get('license')!r}, not MIT: look again")
    banner = script.split(b"*/", 1)[0].decode("utf-8", "replace") + "*/"
    import onnxruntime

    mit = (Path(onnxruntime.__file__).parent / "LICENSE").read_text()
    if not mit.startswith("MIT License"):
        raise SystemExit("onnxruntime's LICENSE is not the MIT licence: look again")
    return (f"{PACKAGE} {VERSION} (npm), package.json: \"license\": \"MIT\"\n"
            f"repository: {package.get('repository', {}).get('url', '')}\n\nBanner of ort.wasm.min.js:\n{banner}\n\n{mit}")


def fetch() -> bytes:
    """The tarball, with npm (the registry's own client), after checking what it publishes."""
    with tempfile.TemporaryDirectory() as tmp:
        published = json.loads(subprocess.run(["npm", "view", f"{PACKAGE}@{VERSION}", "dist.integrity", "--json"],
                                              check=True, capture_output=True, text=True).stdout)
        if published != INTEGRITY:
            raise SystemExit(f"the registry publishes {published} for {PACKAGE}@{VERSION}, this script {INTEGRITY}")
        name = subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=tmp, check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]
        return (Path(tmp) / name).read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check the committed files against SHA256SUMS")
    args = ap.parse_args()
    if not args.check:
        blob = fetch()
        check_integrity(blob, INTEGRITY)
        sums = extract(blob, OUT)
        print(f"{PACKAGE}@{VERSION}: {len(sums)} files in {OUT}")
    sys.path.insert(0, str(OUT.parent.parent.parent))
    from ui.web_files import check_runtime

    ok, why = check_runtime(OUT)
    print(why)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
