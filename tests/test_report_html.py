"""`frugal report`: one self-contained HTML page from what a run directory holds."""

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from frugalml.errors import FrugalError
from frugalml.files import write_json
from frugalml.report.console import demo_row
from frugalml.report.html import MAX_IMAGES, render, write_summary
from frugalml.report.plots import pyplot, save_figure

FRUGAL = str(Path(sys.executable).parent / "frugal")


def _plot(path: Path) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    save_figure(fig, path)
    return path.read_bytes()


def test_page_has_the_before_after_rows_and_embeds_every_plot(tmp_path):
    rows = [demo_row("tickets", "LeNet ticket <17%>", "MACs", 266_200, 46_500, "counted")]
    write_json(tmp_path / "result.json", {"rows": rows, "accuracy": 0.9812, "data": "digits"})
    png = _plot(tmp_path / "sub" / "curve.png")
    page = write_summary(tmp_path).read_text()
    assert (tmp_path / "summary.html").exists()
    # the row's numbers, formatted, and its text escaped
    assert "266,200" in page and "46,500" in page and "0.1747" in page  # 46,500 / 266,200
    assert "LeNet ticket &lt;17%&gt;" in page and "<17%>" not in page
    assert "0.9812" in page and "digits" in page
    # the plot is inside the page byte for byte, named by its path below the run
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(e) for e in embedded] == [png]
    assert "sub/curve.png" in page


def test_plots_only_directory_and_image_cap(tmp_path):
    for i in range(MAX_IMAGES + 2):
        _plot(tmp_path / f"p{i:03d}.png")
    page = render(tmp_path)
    assert page.count("<img ") == MAX_IMAGES and "2 more plots not shown" in page


def test_bad_input(tmp_path):
    with pytest.raises(FrugalError, match="not a directory"):
        render(tmp_path / "missing")
    with pytest.raises(FrugalError, match="nothing to summarise"):
        render(tmp_path)
    r = subprocess.run([FRUGAL, "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nothing to summarise" in r.stderr and "Traceback" not in r.stderr
