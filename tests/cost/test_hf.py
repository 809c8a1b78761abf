"""Hugging Face architectures (`hf:bert`, `hf:gpt2`, `hf:config.json`), random weights, offline, against hand counts.

A transformer encoder layer on L tokens of width H with FFN width I does, per sequence:
4·L·H² MACs in the Q, K, V and output projections, 2·L²·H in the attention kernel (QK^T
and AV, all heads together) and 2·L·H·I in the FFN. Embedding lookups, layer norms,
softmax, GELU and residual adds are not multiply-accumulates.
"""

import json
import os
import sys

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may touch the network
pytest.importorskip("transformers")

import torch  # noqa: E402

from frugalml import models  # noqa: E402
from frugalml.cli import main  # noqa: E402
from frugalml.cost.counting import profile  # noqa: E402
from frugalml.errors import FrugalError  # noqa: E402
from frugalml.models.inputs import make_inputs, parse_inputs  # noqa: E402

SDPA_CPU = "aten._scaled_dot_product_flash_attention_for_cpu"


def layer_macs(tokens: int, hidden: int, ffn: int) -> dict[str, int]:
    return {
        "projections": 4 * tokens * hidden**2,
        "attention": 2 * tokens**2 * hidden,
        "ffn": 2 * tokens * hidden * ffn,
    }


def _profile(name: str, **overrides):
    net = models.get(name, **overrides)
    args, kwargs = make_inputs(parse_inputs(models.default_inputs(name)), net)
    return profile(net, args=args, kwargs=kwargs)


def test_bert_base_at_128_tokens_matches_the_hand_count(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["profile", "--model", "hf:bert", "--json"])
    out, err = capsys.readouterr()
    assert stop.value.code == 0, err
    d = json.loads(out)
    layers, tokens, hidden, ffn = 12, 128, 768, 3072
    per_layer = layer_macs(tokens, hidden, ffn)
    pooler = hidden**2  # BertPooler: one dense layer on the first ([CLS]) token only
    assert d["macs"] == layers * sum(per_layer.values()) + pooler == 11_174_215_680
    assert d["by_op"][SDPA_CPU]["macs"] == layers * per_layer["attention"] == 301_989_888
    assert d["by_op"]["aten.addmm"]["macs"] == layers * (per_layer["projections"] + per_layer["ffn"]) + pooler
    assert d["params"] == 109_482_240  # bert-base-uncased's BertModel
    assert [(i["name"], i["shape"], i["dtype"]) for i in d["inputs"]] == [
        ("input_ids", [1, 128], "int64"),
        ("attention_mask", [1, 128], "int64"),
    ]
    assert d["uncounted_ops"] == []


def test_gpt2_small_at_128_tokens_matches_the_hand_count():
    p = _profile("hf:gpt2")
    layers, tokens, hidden = 12, 128, 768
    per_layer = layer_macs(tokens, hidden, 4 * hidden)
    # AutoModel builds GPT2Model: no LM head (it would add tokens·hidden·50257 = 4,940,464,128 MACs).
    # The causal mask is applied inside the kernel; the count is the full L² score matrix.
    assert p.macs == layers * sum(per_layer.values()) == 11_173_625_856
    assert p.by_op == {"aten.addmm": layers * (per_layer["projections"] + per_layer["ffn"]), SDPA_CPU: 301_989_888}
    assert p.params == 124_439_808  # GPT-2 small without the (tied) LM head


SMALL = {
    "hf:bert": ({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 96}, 64**2),
    "hf:gpt2": ({"n_layer": 2, "n_embd": 64, "n_head": 4, "n_inner": 96}, 0),  # no pooler
}


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("impl,kernel_op", [("sdpa", SDPA_CPU), ("eager", "aten.bmm")])
def test_eager_and_sdpa_attention_count_the_same(name, impl, kernel_op):
    overrides, pooler = SMALL[name]
    p = _profile(name, attn_implementation=impl, **overrides)
    per_layer = layer_macs(128, 64, 96)
    assert p.by_op[kernel_op] == 2 * per_layer["attention"]
    assert p.macs == 2 * sum(per_layer.values()) + pooler


def test_an_architecture_from_a_local_config_json(tmp_path):
    config = {
        "model_type": "vit",
        "hidden_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 3,
        "intermediate_size": 80,
        "image_size": 32,
        "patch_size": 8,
        "num_channels": 3,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    name = f"hf:{tmp_path / 'config.json'}"
    assert models.default_inputs(name) == ["pixel_values=1x3x32x32"]
    p = _profile(name)
    patches = (32 // 8) ** 2
    patch_embedding = patches * 48 * 3 * 8 * 8  # a stride-8 8x8 convolution
    tokens = patches + 1  # + the class token
    assert p.macs == patch_embedding + 2 * sum(layer_macs(tokens, 48, 80).values()) + 48**2  # + pooler
    assert models.default_inputs(f"hf:{tmp_path}") == ["pixel_values=1x3x32x32"]  # the directory works too


def test_hf_errors_are_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(FrugalError, match="unknown model 'hf:bart'"):
        models.get("hf:bart")
    (tmp_path / "c.json").write_text('{"hidden_size": 8}')
    with pytest.raises(FrugalError, match="states no model_type"):
        models.get(f"hf:{tmp_path / 'c.json'}")
    with pytest.raises(FrugalError, match="takes named inputs"):
        models.default_input("hf:bert")
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if it were not installed
    with pytest.raises(FrugalError, match=r"needs transformers: pip install 'frugalml\[hf\]'"):
        models.get("hf:gpt2")


def test_token_ids_are_drawn_in_the_models_vocabulary():
    net = models.get("hf:gpt2", n_layer=1)
    args, kwargs = make_inputs(parse_inputs(["input_ids=1x4096:int64"]), net)
    ids = kwargs["input_ids"]
    assert int(ids.min()) >= 0 and int(ids.max()) < 50257 and int(ids.max()) > 2
    assert torch.equal(make_inputs(parse_inputs(["input_ids=1x4096:int64"]), net)[1]["input_ids"], ids)


def test_random_weights_are_the_same_on_every_build_and_leave_the_global_generator_alone():
    small = {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 40}
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = models.get("hf:bert", **small).state_dict()
    assert torch.equal(torch.rand(3), expected_next)
    b = models.get("hf:bert", **small).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
