"""The `frugal demo` step of pointcloud."""

from frugalml.pointcloud.demo import demo


def test_quick_demo_compares_voxel_only_with_point_voxel(tmp_path):
    (row,) = demo(tmp_path, quick=True, console=None)
    assert row["technique"] == "pointcloud" and row["metric"] == "MACs per scene"
    # the small point-voxel net (width 0.25, 0.5 m voxels) counts fewer MACs than MinkUNet width 0.5 at 0.4 m
    assert 0 < row["after"] < row["before"] and row["ratio"] == row["after"] / row["before"]
    assert (tmp_path / "voxel-only" / "model.json").exists()
    assert (tmp_path / "point-voxel" / "weights.safetensors").exists()
