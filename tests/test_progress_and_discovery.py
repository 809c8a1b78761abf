"""Progress in logs (not only on terminals), `frugal --version` and `frugal data`."""

import io
import json
import subprocess
import sys

from frugalml.report.progress import plain_lines


def test_plain_lines_say_percent_elapsed_and_eta_once_per_interval():
    now = [0.0]
    out = io.StringIO()
    advance = plain_lines(100, "train", every_s=30, stream=out, clock=lambda: now[0])
    for _ in range(10):  # 10 steps of 2 s: 20 s, under the interval, nothing written
        now[0] += 2
        advance(1, loss=0.5)
    assert out.getvalue() == ""
    now[0] = 40.0
    advance(10, loss=0.25)  # 20 of 100 done after 40 s: 160 s to go
    assert out.getvalue() == "train: 20% (20/100), elapsed 0:40, ETA 2:40, loss=0.25\n"
    now[0] = 50.0
    advance(1)  # 10 s after the last line: silent
    assert out.getvalue().count("\n") == 1


def test_a_training_under_nohup_writes_progress_lines_to_its_log(tmp_path):
    script = (
        "import torch; from frugalml import data, models; from frugalml.train import TrainConfig, fit; "
        "ds = data.get('digits'); torch.manual_seed(0); net = models.for_data('mlp', ds); "
        "fit(net, ds, TrainConfig(epochs=3, batch_size=8))"
    )
    log = tmp_path / "log"
    env = {"FRUGAL_PROGRESS_EVERY": "0.05", "PATH": "/usr/bin:/bin"} | {
        k: v for k, v in __import__("os").environ.items() if k.startswith(("PYTHON", "FRUGAL", "HOME"))
    }
    with log.open("w") as f:  # stdout and stderr to a file, as `nohup ... > log 2>&1` does
        subprocess.run([sys.executable, "-c", script], stdout=f, stderr=subprocess.STDOUT, env=env, timeout=300)
    lines = [line for line in log.read_text().splitlines() if line.startswith("train: ")]
    assert len(lines) >= 2, log.read_text()[-2000:]
    assert all("% (" in line and "elapsed" in line and "ETA" in line for line in lines)
    assert lines[-1].split(" (")[1].split(")")[0].endswith("/507")  # 3 epochs x ceil(1347 / 8) steps


def test_version_and_data(frugal_bin):
    from frugalml import __version__

    p = subprocess.run([frugal_bin, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == f"frugal {__version__}"
    listing = json.loads(subprocess.run([frugal_bin, "data", "--json"], capture_output=True, text=True).stdout)
    assert {"digits", "mnist1d", "synthetic-video", "lidar"} <= set(listing)
    assert listing["video-folder"]["required"] == ["path"] and listing["digits"]["required"] == []
    assert "scikit-learn" in listing["digits"]["source"]
    one = json.loads(subprocess.run([frugal_bin, "data", "digits", "--json"], capture_output=True, text=True).stdout)
    assert one["x_train"] == [1347, 1, 8, 8] and one["x_test"] == [450, 1, 8, 8] and one["num_classes"] == 10
    bad = subprocess.run([frugal_bin, "data", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "unknown dataset" in bad.stderr
