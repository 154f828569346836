"""The language switch's events, read from the page's configuration (no served app), and the
combining of its handlers (ui.lang._one_event) with real Gradio components.

Why it matters: Gradio's page copies the props of every component that has ever shown progress,
with their children, at every status change of any event. A switch made of 19 events, with
progress on the tabs, took the page 8 s; one event and one step after, with progress on the
switch only, 1.6 s (bench/switch_language.py)."""

from __future__ import annotations

import gradio as gr
import pytest

import app as app_module
from ui import lang

LAYOUT = {"tabitem", "tabs", "column", "row", "group", "accordion", "form"}


@pytest.fixture(scope="module")
def config():
    return app_module.build_demo().get_config_file()


def switch_events(config):
    comps = {c["id"]: c for c in config["components"]}
    switch = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "aevae-lang")
    deps = config["dependencies"]
    first = [i for i, d in enumerate(deps) if [switch, "change"] in [list(t) for t in d["targets"]]]
    chain, todo = list(first), list(first)
    while todo:  # the events that follow the switch's (.then)
        at = todo.pop()
        nxt = [i for i, d in enumerate(deps) if d.get("trigger_after") == at]
        chain += nxt
        todo += nxt
    return comps, switch, [deps[i] for i in chain]


def test_a_switch_is_one_event_and_one_step_after_with_progress_on_the_switch(config):
    comps, switch, events = switch_events(config)
    assert len(events) == 2, [d.get("api_name") for d in events]
    first, after = events
    outputs = {comps[o]["type"] for o in first["outputs"]}
    assert "tabitem" in outputs  # the tab names are sent again
    assert {"gallery", "image", "dataframe", "nativeplot"} <= outputs  # and the kept results
    for d in events:
        assert d["show_progress_on"] == [switch], d.get("api_name")
        assert d["show_progress"] == "hidden"
    assert {comps[o]["type"] for o in after["outputs"]} == {"nativeplot"}  # the legends' redraws


def test_no_event_shows_progress_on_a_layout_block(config):
    comps = {c["id"]: c for c in config["components"]}
    for d in config["dependencies"]:
        targets = d.get("show_progress_on") or d["outputs"]
        assert not [comps[o]["type"] for o in targets if comps[o]["type"] in LAYOUT], d.get("api_name")


def test_one_event_runs_every_handler_and_a_failing_one_leaves_its_outputs():
    with gr.Blocks():
        a, b, c, d = gr.Textbox(), gr.Textbox(), gr.Number(), gr.Markdown()

    def double(x):
        return x * 2

    def fails(request: gr.Request):
        raise ValueError("broken view")

    def both(x, y, request):
        return x + y + request

    run, inputs, outputs = lang._one_event([(double, [a], [d]), (fails, [], [c]), (both, [a, b], [b])])
    assert [i._id for i in inputs] == [a._id, b._id]  # each component once
    assert [o._id for o in outputs] == [d._id, c._id, b._id]
    assert run("!", ["ab", "cd"]) == ["abab", gr.update(), "abcd!"]  # the failing one's output left as it is


def test_two_handlers_writing_one_component_are_refused_with_the_reason():
    with gr.Blocks():
        a, b = gr.Textbox(), gr.Textbox()
    with pytest.raises(ValueError, match="write the same component"):
        lang._one_event([(str, [a], [b]), (str, [a], [b])])
