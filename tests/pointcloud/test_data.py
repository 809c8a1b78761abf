"""The ray-cast scene generator and the SemanticKITTI loader."""

import numpy as np
import pytest

from frugalml import data
from frugalml.data import pointcloud as pc
from frugalml.errors import FrugalError


def test_scene_is_seeded_and_has_thousands_of_labelled_points():
    a, b, c = pc.make_scene(1), pc.make_scene(1), pc.make_scene(2)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.labels, b.labels)
    assert len(a.labels) != len(c.labels) or not np.array_equal(a.points, c.points)
    assert 3000 < len(a.labels) < 32 * 360
    assert a.points.shape == (len(a.labels), 4) and a.points.dtype == np.float32
    assert set(np.unique(a.labels)) <= set(range(len(pc.CLASSES)))
    assert {pc.ROAD, pc.BUILDING, pc.CAR} <= set(np.unique(a.labels))
    assert ((a.points[:, 3] >= 0) & (a.points[:, 3] <= 1)).all()


def test_ground_points_lie_on_the_ground_and_ranges_stay_within_the_sensor_range():
    s = pc.make_scene(3, range_noise=0.0, dropout=0.0)
    road = s.points[s.labels == pc.ROAD]
    assert np.abs(road[:, 2]).max() < 1e-6
    sidewalk = s.points[s.labels == pc.SIDEWALK]
    assert np.allclose(sidewalk[:, 2].max(), 0.15, atol=1e-6)  # the kerb top
    r = np.linalg.norm(s.points[:, :3] - [0, 0, pc.SENSOR_HEIGHT], axis=1)
    assert r.max() < 40.0


def test_point_density_falls_with_range():
    s = pc.make_scene(4, range_noise=0.0, dropout=0.0)
    road = s.points[s.labels == pc.ROAD]
    r = np.linalg.norm(road[:, :2], axis=1)
    # points per square metre of road in rings 5-10 m and 20-25 m
    near = ((r > 5) & (r < 10)).sum() / (np.pi * (10**2 - 5**2))
    far = ((r > 20) & (r < 25)).sum() / (np.pi * (25**2 - 20**2))
    assert near > 5 * far


def test_objects_occlude_what_is_behind_them():
    # a ray cast only against the ground, then against a wall in front of the sensor
    d = np.array([[1.0, 0.0, -0.05]]) / np.linalg.norm([1.0, 0.0, -0.05])
    o = np.array([0.0, 0.0, pc.SENSOR_HEIGHT])
    wall = pc._boxes_hit(d, o, np.array([[5.0, -1, 0]]), np.array([[6.0, 1, 3]]))
    ground = -o[2] / d[0, 2]
    assert ground > 30 and wall[0, 0] == pytest.approx(5.0 / d[0, 0])
    # in a generated scene no point lies inside any box: the first surface stops the ray
    s = pc.make_scene(5, range_noise=0.0)
    boxes = pc._layout(np.random.default_rng(5), 80.0, 1.0)[0]  # the same layout make_scene drew first
    xyz = s.points[:, :3].astype(np.float64)
    inside = ((xyz[:, None] > boxes[None, :, :3] + 1e-3) & (xyz[:, None] < boxes[None, :, 3:] - 1e-3)).all(-1)
    assert len(boxes) > 10 and not inside.any()


def test_cylinder_and_sphere_intersections_match_hand_computed_distances():
    o = np.array([0.0, 0.0, 1.0])
    d = np.array([[1.0, 0.0, 0.0]])
    t = pc._cylinders_hit(d, o, np.array([[10.0, 0.0, 0.5, 0.0, 5.0], [10.0, 0.0, 0.5, 2.0, 5.0]]))
    assert t[0, 0] == pytest.approx(9.5) and np.isinf(t[0, 1])  # second pole starts above the ray
    t = pc._spheres_hit(d, o, np.array([[4.0, 0.0, 1.0, 1.0], [4.0, 3.0, 1.0, 1.0]]))
    assert t[0, 0] == pytest.approx(3.0) and np.isinf(t[0, 1])


def test_registered_dataset_has_fixed_size_scenes_and_split():
    ds = data.get("lidar", scenes_train=3, scenes_test=2, points=500, seed=1)
    assert ds.x_train.shape == (3, 500, 4) and ds.y_train.shape == (3, 500)
    assert ds.x_test.shape == (2, 500, 4) and ds.num_classes == len(pc.CLASSES)
    again = data.get("lidar", scenes_train=3, scenes_test=2, points=500, seed=1)
    assert (ds.x_train == again.x_train).all()
    with pytest.raises(FrugalError):
        data.get("lidar", points=0)


def test_lidar_scenes_are_the_whole_scans_the_data_set_samples_from():
    ds = data.get("lidar", scenes_train=2, scenes_test=2, points=64, seed=1)
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        scans = pc.lidar_scenes(split, 2, seed=1)
        for scan, xs, ys in zip(scans, x.numpy(), y.numpy()):
            assert len(scan.labels) > 64  # the whole scan, not a sample of it
            # every sampled point is a row of its scan, with that row's label
            rows = {tuple(p): lab for p, lab in zip(scan.points.tolist(), scan.labels.tolist())}
            assert all(rows.get(tuple(p)) == lab for p, lab in zip(xs.tolist(), ys.tolist()))
    # train and test scans differ; a seed's scans are not another's
    assert not np.array_equal(pc.lidar_scenes("train", 1, 1)[0].points, pc.lidar_scenes("test", 1, 1)[0].points)
    assert len(pc.lidar_scenes("test", 1, 2)[0].labels) != len(pc.lidar_scenes("test", 1, 1)[0].labels)
    with pytest.raises(FrugalError, match="split"):
        pc.lidar_scenes("val", 1)


def test_empty_scene_samples_to_ignored_points():
    empty = pc.Scene(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    pts, lab = pc.sample_points(empty, 8, np.random.default_rng(0))
    assert pts.shape == (8, 4) and (lab == pc.IGNORE).all()
    # a sensor looking only upwards sees nothing
    s = pc.make_scene(0, fov_deg=(60.0, 80.0), max_range=5.0)
    assert len(s.labels) == 0


def test_semantickitti_round_trip_maps_ids(tmp_path):
    s = pc.make_scene(6)
    pc.write_scan(s, tmp_path / "seq" / "velodyne" / "000000.bin", tmp_path / "seq" / "labels" / "000000.label")
    raw = np.fromfile(tmp_path / "seq" / "labels" / "000000.label", dtype="<u4")
    # instance ids live in the upper 16 bits and must not change the class
    (raw | (7 << 16)).astype("<u4").tofile(tmp_path / "seq" / "labels" / "000000.label")
    ((name, back),) = pc.load_sequence(tmp_path / "seq")
    assert name == "000000"
    assert np.array_equal(back.points, s.points) and np.array_equal(back.labels, s.labels)
    assert pc.read_label(tmp_path / "seq" / "labels" / "000000.label", raw=True)[0] in pc.KITTI_MAP


def test_malformed_pairs_name_the_file(tmp_path):
    pts = np.zeros((10, 4), "<f4")
    pts.tofile(tmp_path / "a.bin")
    np.zeros(9, "<u4").tofile(tmp_path / "a.label")
    with pytest.raises(FrugalError, match=r"a\.label: 9 labels but the matching \.bin has 10 points"):
        pc.load_scan(tmp_path / "a.bin", tmp_path / "a.label")
    (tmp_path / "b.bin").write_bytes(b"\0" * 20)
    with pytest.raises(FrugalError, match=r"b\.bin: 20 bytes"):
        pc.read_bin(tmp_path / "b.bin")
    with pytest.raises(FrugalError, match="not found"):
        pc.read_bin(tmp_path / "missing.bin")


def test_empty_scan_files_load_as_an_empty_scene(tmp_path):
    (tmp_path / "e.bin").write_bytes(b"")
    (tmp_path / "e.label").write_bytes(b"")
    s = pc.load_scan(tmp_path / "e.bin", tmp_path / "e.label")
    assert s.points.shape == (0, 4) and s.labels.shape == (0,)
