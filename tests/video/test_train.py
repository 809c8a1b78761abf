"""Three-stage training on a tiny configuration: resume after a kill, config guard."""

from dataclasses import replace

import pytest
import torch

import frugalml.train as core_train
from frugalml.errors import FrugalError
from frugalml.video.training import VideoConfig, train

_DEFAULT = VideoConfig()
TINY = dict(
    n_train=24,
    n_test=8,
    frames=6,
    size=32,
    resolutions=[32, 24, 16],
    policy_res=8,
    backbone=replace(_DEFAULT.backbone, epochs=1, batch_size=8),
    policy=replace(_DEFAULT.policy, epochs=2, batch_size=8),
    finetune=replace(_DEFAULT.finetune, epochs=1, batch_size=8),
)
NO_POLICY = dict(policy=replace(TINY["policy"], epochs=0), finetune=replace(TINY["finetune"], epochs=0))


def final_state(run):
    from safetensors.torch import load_file

    return load_file(str(run / "final.safetensors"))


def test_killed_training_resumes_in_the_stage_and_epoch_it_reached(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cfg = VideoConfig(**TINY)
    whole = train(cfg, tmp_path / "whole")
    uniform = {"uniform_res32", "uniform_res24", "uniform_res16"}
    assert set(whole["stages"]) == {"stage1_res32", "stage1_res24", "stage1_res16", "stage2", "stage3"} | uniform

    real_save = core_train.atomic_save

    def save_then_die(path, fn):
        out = real_save(path, fn)
        if "stage2" in str(path) and str(path).endswith("checkpoint.pt"):
            raise KeyboardInterrupt  # killed right after stage 2's first epoch was checkpointed
        return out

    monkeypatch.setattr(core_train, "atomic_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(VideoConfig(**TINY), tmp_path / "killed")
    monkeypatch.setattr(core_train, "atomic_save", real_save)
    assert not (tmp_path / "killed" / "stage3").exists()
    resumed = train(VideoConfig(**TINY), tmp_path / "killed")
    assert resumed["stages"]["stage1_res32"]["resumed_from_epoch"] == 1  # finished: reloaded, not retrained
    assert resumed["stages"]["stage2"]["resumed_from_epoch"] == 1  # picks up at stage 2, epoch 2
    assert resumed["stages"]["stage3"]["resumed_from_epoch"] == 0
    assert resumed["stages"]["uniform_res32"]["resumed_from_epoch"] == 0
    a, b = final_state(tmp_path / "whole"), final_state(tmp_path / "killed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k  # same result as never killed
    assert int(b["train_steps"]) == 2 * 3  # the temperature clock survived the kill


def test_a_different_config_in_the_same_run_dir_is_refused(tmp_path):
    train(VideoConfig(**(TINY | NO_POLICY)), tmp_path / "r")
    with pytest.raises(FrugalError, match="efficiency_weight"):
        train(VideoConfig(**(TINY | NO_POLICY | dict(efficiency_weight=0.2))), tmp_path / "r")


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(efficiency_weight=1.5), "efficiency-weight"),
        (dict(resolutions=[16, 32, 24]), "decreasing"),
        (dict(resolutions=[64, 32, 16]), "must lie in"),
    ],
)
def test_bad_configs_are_clear_errors(tmp_path, bad, message):
    with pytest.raises(FrugalError, match=message):
        train(VideoConfig(**(TINY | bad)), tmp_path / "r")


def test_uniform_baselines_get_the_adaptive_models_training_budget(tmp_path):
    """Every uniform baseline is stage 1 trained on for stage 3's epochs, batch size and learning rate,
    so the adaptive model's backbones and the baselines' have seen the same number of epochs."""
    from frugalml.files import read_json
    from frugalml.train import load_weights
    from frugalml.video.training import build_model, load_data, load_run

    torch.set_num_threads(1)
    cfg = VideoConfig(**(TINY | dict(finetune=replace(TINY["finetune"], epochs=2, lr=2e-3))))
    train(cfg, tmp_path / "r")
    stage3 = read_json(tmp_path / "r" / "stage3" / "config.json")
    for r in cfg.resolutions:
        uni = read_json(tmp_path / "r" / "uniform" / f"res{r}" / "config.json")
        for key in ("epochs", "batch_size", "lr", "optimizer"):
            assert uni[key] == stage3[key] == getattr(cfg.finetune, key), (r, key)
    ds = load_data(cfg)
    stage1 = load_weights(build_model(cfg, ds), tmp_path / "r" / "stage1.safetensors")
    _, final, uniform, _ = load_run(tmp_path / "r")
    for b in range(3):  # every uniform backbone trained on from stage 1 (stage 3 moves only the chosen ones)
        s1, un, fi = (m.backbones[b].fc.weight for m in (stage1, uniform, final))
        assert not torch.equal(s1, un) and not torch.equal(un, fi)
