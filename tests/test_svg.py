"""The pictures (present/svg.py, curves.py) and the CLI's --plot / `vramscope plot`.

The SVG is parsed as XML and read back: each bar segment's width is its component's share of the scale, each
curve point is the public API's estimate at that value, and the marked largest value is `fit`'s and is the edge:
it fits and the next value does not (both estimated through vramscope.estimate)."""

import json
import re
import xml.etree.ElementTree as ET

import pytest

import vramscope
from hostile_util import run_cli
from vramscope.curves import curve
from vramscope.gpus import find_gpu
from vramscope.present import svg
from vramscope.result import COMPONENTS
from vramscope.sources import resolve
from vramscope.workload import make_workload

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.split("?>", 1)[-1])


def test_phase_bars_are_the_numbers():
    e = vramscope.estimate("llama-3-8b", task="finetune", method="lora", gpus=["rtx-4090"])
    root = parse(svg.phase_bars(e).element())
    segments = [r for r in root.iter(NS + "rect") if r.find(NS + "title") is not None]
    want = [(p, c, b) for p, comps in e.phases.items() for c in
            [c for c in COMPONENTS if any(v.get(c) for v in e.phases.values())] if (b := comps.get(c, 0))]
    assert len(segments) == len(want)
    scale = None
    for r, (phase, comp, b) in zip(segments, want):
        title = r.find(NS + "title").text
        assert title.startswith(f"{svg._phase(phase, 'en')} · {svg.label(comp, 'en')}: ")
        w = float(r.get("width"))
        if b > 2**32:  # a segment wide enough to read its scale from (thin ones have a minimum width)
            ratio = w / b
            scale = scale or ratio
            assert ratio == pytest.approx(scale, rel=1e-3)
    texts = [t.text for t in root.iter(NS + "text")]
    assert any("23.99 GiB usable" in (t or "") for t in texts)  # the GPU's line is labelled
    assert len({svg.COLOURS[c] for c in COMPONENTS}) == len(COMPONENTS)  # one colour per component


def test_gauge_says_it_in_words_not_only_colour():
    e = vramscope.estimate("llama-3-8b", gpus=["rtx-4090", "rtx-4060-ti-16gb"])
    texts = [t.text for t in parse(svg.gauges(e.gpus).element()).iter(NS + "text")]
    for g in e.gpus:
        pct = f"{100 * (g.usable_bytes - g.headroom_bytes) / g.usable_bytes:.0f}%"
        assert pct in texts
    assert "✓ fits" in texts and "✗ does not fit" in texts


@pytest.mark.parametrize("axis, options", [("batch", {}), ("seq", {"task": "finetune", "method": "qlora"}),
                                           ("batch", {"task": "finetune", "method": "qlora",
                                                      "grad_checkpointing": True})])
def test_curve_points_are_estimates_and_the_mark_is_the_edge(axis, options):
    model = resolve("llama-3-8b", hub=False)
    w = make_workload(**options)
    gpu = find_gpu("rtx-4090")
    c = curve(model, w, axis, [gpu])
    xs = [x for x, _ in c.points]
    assert xs == sorted(xs) and len(xs) >= 4 and c.current in xs
    for x, b in c.points[::3]:
        assert b == vramscope.estimate("llama-3-8b", **options, **{axis: x}).total_bytes
    largest = c.gpus[0].largest
    assert largest == getattr(vramscope.fit("llama-3-8b", gpu="rtx-4090", **options),
                              "max_seq" if axis == "seq" else "max_batch")
    assert largest > 1
    usable = c.gpus[0].usable_bytes
    assert vramscope.estimate("llama-3-8b", **options, **{axis: largest}).total_bytes <= usable
    if largest < c.limit:
        assert vramscope.estimate("llama-3-8b", **options, **{axis: largest + 1}).total_bytes > usable
    root = parse(svg.curve_chart(c).element())
    assert len(list(root.iter(NS + "circle"))) == len(c.points) + 1  # every point, and the ring round "now"
    assert any(f"up to {largest:,} fits" in (t.text or "") for t in root.iter(NS + "text"))


def test_document_is_standalone_and_follows_the_colour_scheme():
    e = vramscope.estimate("qwen2.5-7b", gpus=["rtx-4090"])
    doc = svg.document(svg.estimate_pictures(e, "zh"))
    root = parse(doc)
    assert root.tag == NS + "svg" and "prefers-color-scheme:dark" in doc and "http" not in doc.replace(
        "http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
    assert "各阶段每 GPU 显存" in doc and "放得下" in doc


def test_wrap_keeps_every_character():
    s = "a very long command " * 10 + "一二三四五六七八九十" * 8
    lines = svg.wrap(s, 200)
    assert "".join(lines).replace(" ", "") == s.replace(" ", "") and all(svg.text_width(ln) <= 200 for ln in lines)


def test_cli_plot_estimate_and_fit(tmp_path):
    out = tmp_path / "curves.svg"
    rc, stdout, err = run_cli(["plot", "llama-3-8b", "--gpu", "rtx-4090", "--plot", str(out), "--json"])
    assert rc == 0, err
    data = json.loads(stdout)
    assert [c["axis"] for c in data] == ["seq", "batch"] and data[1]["gpus"][0]["largest"] == vramscope.fit(
        "llama-3-8b", gpu="rtx-4090").max_batch
    assert parse(out.read_text()).tag == NS + "svg"
    for cmd in (["estimate", "llama-3-8b", "--gpu", "rtx-4090"], ["fit", "llama-3-70b", "--gpu", "rtx-4090"]):
        target = tmp_path / f"{cmd[0]}.svg"
        rc, stdout, err = run_cli([*cmd, "--plot", str(target)])
        assert rc == 0 and err == "", err
        doc = target.read_text()
        assert parse(doc) is not None and ("What to change" in doc) == (cmd[0] == "fit")


@pytest.mark.parametrize("target, words", [("out.txt", "must end in .svg or .png"),
                                           ("no/such/dir/out.svg", "cannot write")])
def test_cli_plot_errors_are_one_line(tmp_path, target, words):
    rc, out, err = run_cli(["estimate", "llama-3-8b", "--plot", str(tmp_path / target)])
    assert rc == 2 and words in err and len(err.strip().splitlines()) == 1 and "--plot" in err


def test_png_needs_a_converter(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(__import__("sys").modules, "cairosvg", None)
    rc, out, err = run_cli(["plot", "llama-3-8b", "--plot", str(tmp_path / "x.png")])
    assert rc == 2 and re.search(r"PNG needs rsvg-convert .* or the cairosvg package", err)
    rc, out, err = run_cli(["plot", "llama-3-8b"])
    assert rc == 2 and "--plot" in err
