"""The web server's upload folder kept small: the files Gradio received or handed out are deleted
once old (Gradio's own delete_cache loop dies on a set changed while it reads it), and so are the
empty temp files and hash-named folders it leaves behind. Needs Gradio's ways, so it lives in ui/."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import gradio as gr

from aevae import resources

from .sessions import store, upload_folder


def sweep_leftovers(folder: str | Path, age_s: float) -> int:
    """Remove what the web server leaves in its upload folder and never removes itself, once
    older than age_s: empty temp files (Gradio's File component makes one for each file it
    receives, gradio/components/file.py) and empty upload folders (named by a content hash; its
    own sweep removes the files in them). Returns how many were removed."""
    removed, now = 0, time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for e in entries:
        try:
            st = e.stat(follow_symlinks=False)
            if now - st.st_mtime < age_s:
                continue
            if e.is_file(follow_symlinks=False) and e.name.startswith("tmp") and st.st_size == 0:
                os.unlink(e.path)
                removed += 1
            elif e.is_dir(follow_symlinks=False) and len(e.name) == 64 and not os.listdir(e.path):
                os.rmdir(e.path)
                removed += 1
        except OSError:
            continue
    return removed


def sweep_files(demo: gr.Blocks, every: int, age: int) -> None:
    """Every `every` seconds, the files the web server received or handed out more than `age`
    seconds ago are deleted (what delete_cache would do), then the empty folders and temp files
    it leaves. An error is logged and the next round runs: a sweep that stops fills the disk."""
    while True:
        time.sleep(every)
        try:
            keep = set().union(*(getattr(b, "keep_in_cache", ()) for b in list(demo.blocks.values())))
            resources.delete_old_files(demo.temp_file_sets, keep, age, store().folder)
            sweep_leftovers(upload_folder(), age)
        except Exception:  # noqa: BLE001 - logged; the loop must go on
            logging.getLogger("aevae.app").exception("sweeping old files failed")  # not shown
