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
