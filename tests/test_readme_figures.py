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
    """`fig` with its last digit moved by one (up, or down from 9), unit kept: 0.0048 -> 0.0049."""
    i = max(i for i, c in enumerate(fig.text) if c.isdigit())
    d = int(fig.text[i])
    return fig.text[:i] + str(d + 1 if d < 9 else d - 1) + fig.text[i + 1 :]


@pytest.mark.parametrize("index", range(len(rf.blocks(README))))
def test_a_figure_edited_by_one_in_its_last_digit_is_reported(index):
    """In each block the first, the most precise and the last figure, each edited by one unit in a
    copy of the README, are caught - also where the edited number sits elsewhere in the results
    file (each figure is bound to its own stored value)."""
    block = rf.blocks(README)[index]
    figs = rf.figures(block.body)
    precise = max(figs, key=lambda f: (f.decimals, len(re.sub(r"[^1-9]", "", f.text))))
    for fig in {f.text: f for f in (figs[0], precise, figs[-1])}.values():
        at = re.search(rf"(?<![\w.,]){re.escape(fig.text)}", block.body).start()
        body = block.body[:at] + _edited(fig) + block.body[at + len(fig.text) :]
        edited = README[: block.start] + body + README[block.start + len(block.body) :]
        problems = rf.check(edited)
        assert any(repr(_edited(fig)) in p for p in problems), (fig, problems)


def test_a_figure_is_held_to_the_value_it_is_bound_to(tmp_path):
    """Found somewhere in the file is not enough once bound: after a rerun moves the bound value,
    the figure is reported even though another key still holds the old number."""
    readme = "<!-- figures: r.json -->\nticket 0.71, dense 0.75\n<!-- /figures -->\n"
    (tmp_path / "r.json").write_text(json.dumps({"ticket": 0.712, "dense": 0.748, "other": 0.01}))
    lock = rf.bind(readme, root=tmp_path)
    assert [(f["text"], f["key"]) for f in lock[0]["figures"]] == [("0.71", "r.json.ticket"), ("0.75", "r.json.dense")]
    assert rf.check(readme, root=tmp_path, lock=lock) == []
    (tmp_path / "r.json").write_text(json.dumps({"ticket": 0.69, "dense": 0.748, "other": 0.71}))
    assert rf.check(readme, root=tmp_path, lock=lock, bound=False) == []  # 0.71 is still somewhere
    assert rf.check(readme, root=tmp_path, lock=lock) == ["README line 1: '0.71' is not r.json.ticket (0.69, scale 1)"]
    # a reworded block must be bound again; rebinding keeps the bindings that still hold
    reworded = readme.replace("dense 0.75", "dense 0.75 (other 0.71)")
    assert "bind it" in rf.check(reworded, root=tmp_path, lock=lock)[0]
    again = rf.bind(reworded, root=tmp_path, lock=lock)
    assert [f["key"] for f in again[0]["figures"]] == ["r.json.other", "r.json.dense", "r.json.other"]
    assert rf.check(reworded, root=tmp_path, lock=[]) == [
        "README line 1: block not in readme_figures.lock.json; bind it: python benchmarks/readme_figures.py --bind"
    ]


def test_the_committed_lock_binds_every_figure_of_the_readme():
    entries = rf.read_lock()
    assert sum(len(e["figures"]) for e in entries) == sum(len(rf.figures(b.body)) for b in rf.blocks(README))


def _check(tmp_path, text: str, payload: dict) -> list[str]:
    (tmp_path / "r.json").write_text(json.dumps(payload))
    return rf.check(f"<!-- figures: r.json -->\n{text}\n<!-- /figures -->\n", root=tmp_path, bound=False)


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
