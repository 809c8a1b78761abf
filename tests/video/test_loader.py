"""The PyAV folder loader, on small clips the test writes itself."""

import numpy as np
import pytest

from frugalml import data
from frugalml.errors import FrugalError

av = pytest.importorskip("av")


def write_clip(path, frames: int, colour, size: int = 32):
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.zeros((size, size, 3), dtype=np.uint8)
            img[:] = colour
            img[: (i % size) + 1, :4] = 255  # a moving bar so frames differ
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def folder(tmp_path):
    for cls, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (tmp_path / cls).mkdir()
        for k in range(3):
            write_clip(tmp_path / cls / f"clip{k}.mp4", 12, colour)
    return tmp_path


def test_loads_clips_with_labels_and_sampled_frames(folder):
    ds = data.get("video-folder", path=folder, frames=6, size=16, seed=0, warn=lambda m: None)
    assert ds.num_classes == 2 and ds.info["classes"] == ["blue", "red"]
    assert ds.x_train.shape[1:] == (6, 3, 16, 16) and len(ds.y_train) + len(ds.y_test) == 6
    assert len(ds.y_test) == 2  # one test clip per class (25% of 3, rounded)
    x = np.concatenate([ds.x_train.numpy(), ds.x_test.numpy()])
    y = np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()])
    red = x[y == 1][:, :, :, :, 8:].mean(axis=(0, 1, 3, 4))  # right half: no moving bar
    blue = x[y == 0][:, :, :, :, 8:].mean(axis=(0, 1, 3, 4))
    assert red[0] > 0.7 and red[2] < 0.2 and blue[2] > 0.7 and blue[0] < 0.2


def test_unreadable_and_empty_files_are_reported_by_name_and_skipped(folder):
    (folder / "red" / "empty.mp4").write_bytes(b"")
    (folder / "blue" / "garbage.mp4").write_bytes(b"not a video at all" * 50)
    messages = []
    ds = data.get("video-folder", path=folder, frames=6, size=16, warn=messages.append)
    assert len(ds.y_train) + len(ds.y_test) == 6
    assert sorted(p.rsplit("/", 1)[1] for p in ds.info["skipped"]) == ["empty.mp4", "garbage.mp4"]
    assert any("empty.mp4" in m for m in messages) and any("garbage.mp4" in m for m in messages)
    assert messages[-1].startswith("skipped 2 unreadable")


def test_folder_without_classes_or_with_short_clips_is_a_clear_error(tmp_path, folder):
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(FrugalError, match="no class folders"):
        data.get("video-folder", path=empty)
    with pytest.raises(FrugalError, match="fewer than the 20 asked"):
        data.get("video-folder", path=folder, frames=20, size=16, warn=lambda m: None)
    with pytest.raises(FrugalError, match="not found"):
        data.get("video-folder", path=tmp_path / "missing")


def test_an_mp4_folder_trains_and_evaluates_end_to_end(tmp_path, capsys):
    """`frugal video train --data FOLDER` then `frugal video eval` on mp4 clips written here:
    red and blue clips, 6 per class; colour is the class, so the uniform baseline must learn it."""
    from clirun import frugal, saved

    from frugalml.report import record

    clips = tmp_path / "clips"
    for cls, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (clips / cls).mkdir(parents=True)
        for k in range(6):
            write_clip(clips / cls / f"clip{k}.mp4", 10, colour, size=32)
    args = ["--frames", "6", "--backbone-widths", "8,16,16", "--threads", "1", "--epochs-backbone", "10"]
    args += ["--epochs-policy", "2", "--epochs-finetune", "2"]
    out, _ = frugal(capsys, "video", "train", "--data", clips, *args, "--out", tmp_path / "run")
    run = saved(out)
    out, _ = frugal(capsys, "video", "eval", "--run", run, "--latency-videos", "3", "--json")
    res = __import__("json").loads(out[: out.rindex("-> ")] if "-> " in out else out)
    assert res["data"] == str(clips) and res["num_classes"] == 2
    assert res["test_clips"] == 4  # 25% of 6 clips per class, rounded: 2 per class
    assert res["evidence"] is None and "oracle" not in res["baselines"]  # real clips: no per-frame truth
    # uniform 64 px on 6 RGB frames, by hand: convs 3->8 (32x32 out), 8->16 (16x16), 16->16 (8x8), 3x3, + fc 16->2
    macs = 32 * 32 * 8 * 3 * 9 + 16 * 16 * 16 * 8 * 9 + 8 * 8 * 16 * 16 * 9 + 16 * 2
    assert res["baselines"]["uniform_64"]["gflops_per_video"] == pytest.approx(6 * 2 * macs / 1e9)
    assert res["baselines"]["uniform_64"]["accuracy"] == 1.0  # red against blue
    rec = record.read(run)
    assert rec["kind"] == "video.eval" and rec["data"] == str(clips)
    assert rec["before"]["macs"] == 6 * macs
