"""A test that lives a lesson (issue 24): one student's session driven through the app's handlers
in random orders by a hypothesis state machine, on tiny settings, checking after every step what
must always hold.

Actions: train a tiny pair (kept in use or not), train and stop it half-way, train a latent rung,
an epochs sweep, a beta sweep, upload the student's own photos (a good zip, a bad one, one with a
stray file), use another pair, reconstruct, variants, the latent-space views, the runs table and
the report. After every step: no unexpected error (a refusal is allowed only with its stated
reason), the runs table and its CSV list every run the student made (or name it as dropped to
stay within the limit), the report can be made, the pair in use is the one the student chose, and
the upload the student kept is still there.

CI runs a few examples of a few dozen steps in all (under a minute and a half on 2 cores). For a
long run: AEVAE_LESSON_EXAMPLES=2000 AEVAE_LESSON_STEPS=40 python -m pytest
tests/test_lesson_machine.py -q (hypothesis then tries that many lessons of up to that many steps);
AEVAE_LESSON_VERBOSE=1 (with -s) prints every lesson's steps.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import threading
import time
import zipfile
from types import SimpleNamespace

import gradio as gr
import pytest
from conftest import make_images
from hypothesis import HealthCheck, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from PIL import Image

from ui.sessions import session

EXAMPLES = int(os.environ.get("AEVAE_LESSON_EXAMPLES", "3"))
STEPS = int(os.environ.get("AEVAE_LESSON_STEPS", "12"))
SIZE = 32  # every training here is at 32 px, on small data: the lesson's order is tested, not the models
_names = itertools.count()


def photos_zip(folder, name: str, n: int = 60, stray: bool = False) -> str:
    """A student's photos: my_photos/cat and my_photos/rocket (and a README.txt when `stray`)."""
    z = folder / name
    with zipfile.ZipFile(z, "w") as zf:
        for i, img in enumerate(make_images(n, 36, seed=len(name))):
            p = folder / f"{name}-{i}.png"
            Image.fromarray(img).save(p)
            zf.write(p, f"my_photos/{'cat' if i % 2 else 'rocket'}/{i}.png")
        if stray:
            zf.writestr("my_photos/README.txt", "photos for the lesson")
    return str(z)


def refused(why: str):
    """A refusal the app may answer with: a gr.Error whose message says `why` (a regex)."""
    return pytest.raises(gr.Error, match=why)


class Lesson(RuleBasedStateMachine):
    """One session; the model of what the student did is kept beside it and compared after each step."""

    def __init__(self):
        super().__init__()
        self.name = f"lesson-machine-{next(_names)}"
        self.req = SimpleNamespace(session_hash=self.name, headers={"accept-language": "en"})
        self.made: list[int] = []  # run numbers the student made, oldest first
        self.in_use = "shipped:default"  # the pair the student chose (or trained to use)
        self.upload_key = None  # the upload the student kept (its files), None: none
        self.on_upload = False  # the tabs use the upload
        self.folder = FOLDER
        self.steps: list[str] = []

    @property
    def s(self):
        return session(self.req)

    def did(self, what: str) -> None:
        self.steps.append(what)

    def teardown(self):
        if os.environ.get("AEVAE_LESSON_VERBOSE"):
            print("lesson:", " -> ".join(self.steps), flush=True)

    @initialize()
    def start(self):
        [self.key] = APP.reattach([], self.req)  # the page loads: its browser keeps this key
        s = self.s  # made before any thread asks for it
        assert s.in_use == self.in_use and not len(s.runs)

    @rule()
    def reload(self):
        """F5: the page unloads, a new page (a new session hash) loads with the browser's key and
        must get the same session back (the invariants check that nothing is gone)."""
        self.did("reload()")
        s = self.s
        APP.end_session(self.req)
        self.name += "-r"
        self.req = SimpleNamespace(session_hash=self.name, headers={"accept-language": "en"})
        assert APP.reattach([self.key], self.req)[0] == self.key and self.s is s and not s.closed

    # --- trainings ----------------------------------------------------------------------------
    def _train(self, epochs: int = 1, use: bool = True, seed: int = 0):
        data = "upload" if self.on_upload else "openmoji"
        return list(APP.train_models("default", SIZE, "16x4x4", epochs, 120, 64, 2e-3, 1e-5, 0.1, seed, data,
                                     None, use, request=self.req))

    def _new_runs(self, before: int) -> list:
        new = [r for r in self.s.runs if r.number >= before]
        self.made += [r.number for r in new]
        return new

    @precondition(lambda self: self.on_upload)  # OpenMoji's 4,045 images take too long per step in CI
    @rule(use=st.booleans(), seed=st.sampled_from([0, 1]))
    def train(self, use, seed):
        self.did(f"train({use!r}, {seed!r})")
        before = self.s.runs.next_number()
        status = self._train(use=use, seed=seed)[-1][0]
        (run,) = self._new_runs(before)
        assert run.record.finished and "same settings, seed and data give the same models" in status
        if use:
            self.in_use = run.value

    @precondition(lambda self: self.on_upload)
    @rule()
    def train_and_stop(self):
        """Stop half-way: the run is kept but does not become the pair in use."""
        self.did("train_and_stop()")
        before, out = self.s.runs.next_number(), {}
        t = threading.Thread(target=lambda: out.setdefault("steps", self._train(epochs=400)))
        t.start()
        deadline = time.monotonic() + 60
        while not any(h.iter_loss for sh in list(self.s.shared._runs.values()) if not sh.done.is_set()
                      for h in sh.live.histories.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        APP.stop_training(self.req)
        t.join(120)
        assert not t.is_alive() and "steps" in out, "the stopped training did not answer"
        (run,) = self._new_runs(before)
        assert run.record.stopped_by == "stop request" and "not reproducible as such" in out["steps"][-1][0]

    @precondition(lambda self: self.on_upload)
    @rule(latent=st.sampled_from(["8", "4x4x4"]))
    def train_rung(self, latent):
        self.did(f"train_rung({latent!r})")
        before = self.s.runs.next_number()
        list(APP.train_missing_rung(latent, 1, self.req))
        (run,) = self._new_runs(before)
        assert run.kind == "rung"

    @rule(epochs=st.sampled_from(["1", "1, 2"]))
    def epochs_sweep(self, epochs):
        self.did(f"epochs_sweep({epochs!r})")
        before = self.s.runs.next_number()
        list(APP.sweep(epochs, 32, "16x4x4", 0, 120, self.req))
        assert [r.record.epochs for r in self._new_runs(before)] == [int(e) for e in epochs.split(",")]

    @precondition(lambda self: self.on_upload)
    @rule()
    def beta_sweep(self):
        self.did("beta_sweep()")
        before = self.s.runs.next_number()
        table, *_ = list(APP.beta_sweep("0, 2", 1, self.req))[-1]
        assert len(table) == 2 and len(self._new_runs(before)) == 2

    # --- data -----------------------------------------------------------------------------------
    @rule(stray=st.booleans())
    def upload_good(self, stray):
        self.did(f"upload_good({stray!r})")
        path = photos_zip(self.folder, f"photos-{'stray' if stray else 'clean'}.zip", stray=stray)
        dataset, text, _ = APP.upload_data([path], SIZE, self.req)
        assert dataset == "upload", text
        self.upload_key, self.on_upload = self.s.upload.key, True

    @rule(kind=st.sampled_from(["not a zip", "no images", "hostile"]))
    def upload_bad(self, kind):
        self.did(f"upload_bad({kind!r})")
        z = self.folder / f"bad-{kind.replace(' ', '-')}.zip"
        if kind == "not a zip":
            z.write_bytes(b"this is not a zip")
        else:
            with zipfile.ZipFile(z, "w") as zf:
                if kind == "no images":
                    zf.writestr("notes/readme.txt", "no photos here")
                else:
                    zf.writestr("../../escape.png", b"\x89PNG not really")
        dataset, text, _ = APP.upload_data([str(z)], SIZE, self.req)
        assert "This upload is not used" in text and z.name in text  # refused, and why
        assert dataset == ("upload" if self.on_upload else "openmoji")

    @rule(to=st.sampled_from(["openmoji", "upload"]))
    def choose_data(self, to):
        self.did(f"choose_data({to!r})")
        dataset, text, _ = APP.choose_data(to, None, SIZE, self.req)
        if to == "upload" and self.upload_key is None:
            assert dataset == "openmoji" and "Upload your data first" in text
        else:
            assert dataset == to
            self.on_upload = to == "upload"

    # --- looking ------------------------------------------------------------------------------
    @rule(pick=st.integers(0, 100))
    def use_another_pair(self, pick):
        self.did(f"use_another_pair({pick!r})")
        values = [v for _, v in self.s.choices()]
        value = values[pick % len(values)]
        assert "Every tab now uses" in APP.use_models(value, self.req)
        self.in_use = value

    @rule(seed=st.integers(0, 3))
    def reconstruct(self, seed):
        self.did(f"reconstruct({seed!r})")
        try:
            _, summary, table, _ = APP.reconstruct("", 4, seed, False, self.req)
        except gr.Error as e:  # a pair at another size than the data in use's is refused, and says so
            assert re.search("px but the models take", e.message), e.message
            return
        assert len(table) >= 1 and "PSNR" in summary

    @rule(seed=st.integers(0, 3))
    def variants(self, seed):
        self.did(f"variants({seed!r})")
        label = "cat" if self.on_upload else "flags"
        _, msg, files, _ = APP.make_variants("", label, 2, 2, 1.0, seed, self.req)
        assert any(f.endswith("gen_label_names.txt") for f in files) and "VAE variants" in msg

    @rule(kind=st.sampled_from(["VAE", "AE"]))
    def latent_views(self, kind):
        self.did(f"latent_views({kind!r})")
        APP.prior_samples("in use", 4, 0, self.req)
        ids = [int(i) for i in self.s.split(self.s.pair().image_size).val.ids[:2]]
        APP.interpolate("in use", ids[0], ids[-1], 4, self.req)
        APP.code_map("in use", kind, self.req)

    @rule()
    def report(self):
        self.did("report()")
        self._report()

    def _report(self):
        path, msg = APP.download_report(self.req)
        assert "Report ready" in msg
        with zipfile.ZipFile(path) as zf:
            md = zf.read("aevae-report/report.md").decode()
        assert "## 10. Discussion" in md
        return md

    # --- what must always hold ------------------------------------------------------------------
    @invariant()
    def pair_in_use_is_the_one_chosen(self):
        assert self.s.in_use == self.in_use
        self.s.pair()  # and it can be had

    @invariant()
    def runs_list_everything_made(self):
        s = self.s
        kept = [r.number for r in s.runs]
        assert sorted(kept + s.runs.dropped) == self.made  # each run is listed, or named as dropped
        assert self.in_use not in [f"run:{n}" for n in s.runs.dropped]
        table, _, path, note = APP.show_runs(self.req)
        if not kept:
            return
        assert table["run"].tolist() == kept
        with open(path) as f:
            assert [int(r["run"]) for r in csv.DictReader(f)] == kept
        for n in s.runs.dropped[-10:]:
            assert f"run {n}" in note

    @invariant()
    def the_upload_is_kept(self):
        s = self.s
        assert (s.upload.key if s.upload else None) == self.upload_key
        assert s.uses_upload == self.on_upload

    @invariant()
    def the_report_can_be_made(self):
        if self.made and self.made[-1] != getattr(self, "_reported", None):  # a new run since the last
            self._report()
            self._reported = self.made[-1]


APP = None
FOLDER = None


def test_a_lesson_in_any_order(app_module, tmp_path):
    global APP, FOLDER
    APP, FOLDER = app_module, tmp_path
    # Each run draws new lessons (a failure prints its steps, to replay); CI tries a few, a long run many.
    Lesson.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                        suppress_health_check=list(HealthCheck), database=None,
                                        verbosity=Verbosity.verbose if os.environ.get("AEVAE_LESSON_VERBOSE")
                                        else Verbosity.normal)
    Lesson.TestCase().runTest()
