"""README figures are the figures of the results files they name (benchmarks/readme_figures.py)."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import readme_figures as rf  # noqa: E402

README = (ROOT / "README.md").read_text()


def test_every_readme_figure_is_in_its_results_file():
    assert rf.blocks(README), "README.md has no <!-- figures: ... --> block"
    assert rf.check(README) == []


def _edited(fig: rf.Figure) -> str:
    """`fig` with every digit d after the first one turned into d+5 (mod 10), unit kept: 0.0048 -> 0.5593."""
    head = fig.text[0]
    return head + "".join(str((int(c) + 5) % 10) if c.isdigit() else c for c in fig.text[1:])


@pytest.mark.parametrize("index", range(len(rf.blocks(README))))
def test_an_edited_figure_is_reported(index):
    """In each block, the most precise figure edited in a copy of the README is caught."""
    block = rf.blocks(README)[index]
    fig = max(rf.figures(block.body), key=lambda f: (f.decimals, len(re.sub(r"[^1-9]", "", f.text))))
    body = block.body.replace(fig.text, _edited(fig), 1)
    assert body != block.body
    edited = README[: block.start] + body + README[block.start + len(block.body) :]
    problems = rf.check(edited)
    assert any(repr(_edited(fig)) in p for p in problems), (fig, problems)


def _check(tmp_path, text: str, payload: dict) -> list[str]:
    (tmp_path / "r.json").write_text(json.dumps(payload))
    return rf.check(f"<!-- figures: r.json -->\n{text}\n<!-- /figures -->\n", root=tmp_path)


@pytest.mark.parametrize(
    ("text", "payload", "ok"),
    [
        ("dense 65.6 +- 1.8%", {"a": 0.656, "b": {"std": 0.0184}}, True),  # fraction -> percent
        ("dense 65.7", {"a": 0.656}, False),
        ("dense 65.6", {"a": 65.64}, True),  # stored in percent already
        ("0.95 points below", {"gap": -0.0095}, True),  # sign dropped, fraction -> points
        ("3,000 states", {"states": 3000}, True),
        ("3,000 states", {"states": 30}, False),  # only a fraction is scaled by 100
        ("1.45x slower", {"speedup": 0.69}, True),  # a ratio may be quoted as its reciprocal
        ("1.45 slower", {"speedup": 0.69}, False),  # ... only when quoted as a ratio
        ("240.5 us", {"dense_s": 0.0002405}, True),
        ("240.5 us", {"dense_s": 0.0002415}, False),
        ("27.6 ms", {"s": 0.0276}, True),
        ("3.1 GiB", {"peak_rss_mib": 3165.4}, True),
        ("511 MiB", {"peak_rss_mib": 511.4}, True),
        ("511 MiB", {"peak_rss_mib": 0.00511}, False),
        ("8 min 19 s", {"wall": 499.2}, True),
        ("8 min 20 s", {"wall": 499.2}, False),
        ("26.3 MMACs", {"macs": 26_312_000}, True),
        ("latency, batch 256 (us)   308.8", {"256": {"dense_s": 0.0003088}}, True),  # row unit; a key is a value
        ("latency, batch 256 (us)   308.8", {"255": {"dense_s": 0.0003088}}, False),
        ("latency, batch 256 (us)   308.9", {"256": {"dense_s": 0.0003088}}, False),
        ("LeNet-300-100 on MNIST-1D, rpi4, host-1t: 2.5", {"x": 2.46}, True),  # names are not figures
        ("`--levels 14`: 2.5", {"x": 2.46}, True),  # nor is code
        ("```\n$ frugal x\nlatency 2.5 ms\n```", {"x": 2.46}, True),  # ... but example output is
        ("```\n$ frugal x\nlatency 2.6 ms\n```", {"x": 2.46}, False),
    ],
)
def test_quoting_rules(tmp_path, text, payload, ok):
    assert (_check(tmp_path, text, payload) == []) == ok


def test_a_block_names_a_readable_source_and_quotes_something(tmp_path):
    assert any("cannot read" in p for p in rf.check("<!-- figures: no.json -->1<!-- /figures -->", root=tmp_path))
    (tmp_path / "r.json").write_text('{"a": 1}')
    assert any("cannot read" in p for p in rf.check("<!-- figures: r.json#b -->1<!-- /figures -->", root=tmp_path))
    assert any("quotes no figure" in p for p in _check(tmp_path, "no numbers here", {"a": 1}))
    assert any("unbalanced" in p for p in rf.check("<!-- figures: r.json -->\n0.5\n", root=tmp_path))
