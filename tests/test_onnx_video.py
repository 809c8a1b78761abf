"""`frugal video export --format onnx`: backbones and policy as ONNX graphs that agree with PyTorch."""

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
TINY = ["--clips", "24", "--test-clips", "8", "--frames", "6", "--epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained video run whose policy is then made to send frames to backbones (a quick
    run's policy may skip every frame, which would leave the adaptive path's check empty)."""
    from frugalml.cli import main
    from frugalml.train import load_weights, save_weights
    from frugalml.video.training import load_run

    out = tmp_path_factory.mktemp("video") / "run"
    with pytest.raises(SystemExit) as e:
        main(["video", "train", "--data", "synthetic", *TINY, "--out", str(out)])
    assert e.value.code == 0
    _, model, _, _ = load_run(out)
    with torch.no_grad():
        model.policy_step.head.bias[model.num_backbones :] -= 100.0  # never skip
    save_weights(model, out / "final.safetensors")
    assert torch.equal(
        load_weights(type(model)(model.cfg), out / "final.safetensors").policy_step.head.bias,
        model.policy_step.head.bias,
    )
    return out


def test_every_graph_and_the_adaptive_path_agree_with_pytorch(run, tmp_path):
    import onnxruntime as ort

    import frugalml
    from frugalml.video.export import export
    from frugalml.video.model import resize
    from frugalml.video.training import load_run

    _, model, _, ds = load_run(run)
    res = export(run, tmp_path / "exp", fmt="onnx", measure=False)
    backbones = {f"backbone_res{r}" for r in model.cfg.resolutions}
    assert len(backbones) == model.num_backbones >= 2
    assert set(res["graphs"]) == backbones | {"policy_cnn", "policy_step"}
    assert res["frames_to_a_backbone"] > 0 and res["actions_agree"] == 1.0
    assert res["adaptive_max_abs_diff"] <= 1e-4 and res["onnx_max_abs_diff"] <= 1e-4
    assert res["accuracy_onnx"] == res["accuracy"]
    loaded = frugalml.load(tmp_path / "exp")
    frames = resize(ds.x_test.reshape(-1, *ds.x_test.shape[2:]), 64)
    sess = ort.InferenceSession(str(tmp_path / "exp" / "backbone_res64.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"frames": frames.numpy()})[0]
    with torch.no_grad():
        want = model.backbones[0](frames).numpy()
        again = loaded.backbones[0](frames).numpy()
    assert np.abs(got - want).max() <= 1e-4 and np.array_equal(again, want)
    sess = ort.InferenceSession(str(tmp_path / "exp" / "policy_step.onnx"), providers=["CPUExecutionProvider"])
    f, h, c = torch.randn(5, model.cfg.feature), torch.randn(5, model.cfg.hidden), torch.randn(5, model.cfg.hidden)
    outs = sess.run(None, {"features": f.numpy(), "h": h.numpy(), "c": c.numpy()})
    with torch.no_grad():
        for a, b in zip(outs, model.policy_step(f, h, c)):
            assert np.abs(a - b.numpy()).max() <= 1e-5


def test_video_export_refuses_an_unknown_format_and_writes_nothing(run, tmp_path, assert_bad_input):
    assert_bad_input(
        ["video", "export", "--run", run, "--format", "tflite", "--out", tmp_path / "x"],
        tmp_path / "x",
        "unknown export format 'tflite'",
    )
