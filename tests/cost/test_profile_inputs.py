"""profile(args=, kwargs=, formulas=), the per-op breakdown, and `frugal profile --input/--kw/--by`."""

import json

import pytest
import torch
from torch import nn

from frugalml.cli import main
from frugalml.cost.counting import profile
from frugalml.errors import FrugalError
from frugalml.models.inputs import InputSpec, make_inputs, parse_input, parse_inputs, parse_kws

aten = torch.ops.aten


@pytest.mark.parametrize(
    "text,spec",
    [
        ("1,3,224,224", InputSpec(None, (1, 3, 224, 224), "float32")),
        ("1x3x224x224", InputSpec(None, (1, 3, 224, 224), "float32")),
        ("1x128:int64", InputSpec(None, (1, 128), "int64")),
        ("2,7:long", InputSpec(None, (2, 7), "int64")),
        ("input_ids=1x128:int64", InputSpec("input_ids", (1, 128), "int64")),
        (" pixel_values = 1x3x8x8:bf16 ", InputSpec("pixel_values", (1, 3, 8, 8), "bfloat16")),
        ("m=4:bool", InputSpec("m", (4,), "bool")),
    ],
)
def test_input_grammar(text, spec):
    assert parse_input(text) == spec


@pytest.mark.parametrize(
    "text,message",
    [
        ("1,x", "malformed --input '1,x': expected positive integers"),
        ("1x0", "malformed --input '1x0'"),
        ("1x128:int65", "unknown dtype 'int65'"),
        ("2ids=1x4", "'2ids' is not an input name"),
        ("ids=", "malformed --input 'ids='"),
    ],
)
def test_bad_input_grammar_names_the_token(text, message):
    with pytest.raises(FrugalError, match=message):
        parse_input(text)


def test_a_name_given_twice_is_an_error():
    with pytest.raises(FrugalError, match="--input 'a' given twice"):
        parse_inputs(["a=1x2", "b=1x2", "a=1x3"])


def test_kw_values_are_typed():
    got = parse_kws(["use_cache=false", "n=3", "p=0.5", "x=None", "mode=fast", "flag=True", "e=1e-3"])
    assert got == {"use_cache": False, "n": 3, "p": 0.5, "x": None, "mode": "fast", "flag": True, "e": 0.001}
    assert type(got["n"]) is int and type(got["p"]) is float
    with pytest.raises(FrugalError, match="malformed --kw 'use_cache'"):
        parse_kws(["use_cache"])


class _Config:
    vocab_size = 7


class _WithVocab(nn.Module):
    config = _Config()


def test_integer_inputs_are_drawn_in_the_vocabulary_and_masks_are_ones():
    specs = parse_inputs(["1x500:int64", "attention_mask=1x500:int64", "x=2x3", "token_type_ids=1x500:int64"])
    args, kwargs = make_inputs(specs, _WithVocab())
    assert set(args[0].flatten().tolist()) == set(range(7))  # 500 draws cover all 7 ids
    assert kwargs["attention_mask"].dtype == torch.int64 and bool((kwargs["attention_mask"] == 1).all())
    assert bool((kwargs["token_type_ids"] == 0).all())
    assert kwargs["x"].dtype == torch.float32 and kwargs["x"].shape == (2, 3)
    # no vocabulary known: ids in [0, 2); the same seed gives the same tensors
    args2, _ = make_inputs(specs[:1], nn.Linear(1, 1))
    assert set(args2[0].flatten().tolist()) == {0, 1}
    assert torch.equal(make_inputs(specs, _WithVocab())[0][0], args[0])


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 6)

    def forward(self, q, *, k, scale=1.0):
        return (self.proj(q) @ k.transpose(-1, -2)) * scale


def test_profile_takes_positional_and_named_inputs():
    q, k = torch.randn(2, 5, 8), torch.randn(2, 9, 6)
    p = profile(_TwoInputs(), args=(q,), kwargs={"k": k, "scale": 0.5})
    proj, scores = 2 * 5 * 8 * 6, 2 * 5 * 9 * 6
    assert p.macs == proj + scores
    assert p.by_op == {"aten.addmm": proj, "aten.bmm": scores}  # a 3-d Linear runs as one addmm on 10 rows
    assert p.inputs == [
        {"name": None, "shape": [2, 5, 8], "dtype": "float32"},
        {"name": "k", "shape": [2, 9, 6], "dtype": "float32"},
    ]
    with pytest.raises(FrugalError, match="not both"):
        profile(_TwoInputs(), q, args=(q,))
    # a lone tensor as args= is one input, as positional example_input is
    assert profile(nn.Linear(8, 6), args=torch.randn(3, 8)).macs == profile(nn.Linear(8, 6), torch.randn(3, 8)).macs
    assert profile(nn.Linear(8, 6), args=torch.randn(3, 8)).macs == 3 * 8 * 6


def test_by_op_sums_the_run_per_aten_op():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.Linear(5, 2))
    p = profile(net, torch.randn(2, 3, 8, 8), training=True)
    conv = 2 * 4 * 6 * 6 * 3 * 3 * 3
    linear = 2 * (144 * 5 + 5 * 2)
    assert p.by_op == {"aten.convolution": conv, "aten.addmm": linear}
    assert sum(p.by_op.values()) == p.macs
    # backward: weight grads of both linears, input grad of the two linears (mm); conv weight grad only
    assert p.train_by_op == {
        "aten.addmm": linear,
        "aten.mm": 2 * (144 * 5 + 5 * 2) + 2 * (144 * 5 + 5 * 2),
        "aten.convolution": conv,
        "aten.convolution_backward": conv,
    }
    assert 2 * sum(p.train_by_op.values()) == p.train_flops
    assert p.to_dict()["by_op"]["aten.convolution"] == {"macs": conv, "flops": 2 * conv}


def _addmm_with_bias(bias_shape, a_shape, b_shape, *args, out_shape=None, **kwargs):
    m, k = a_shape
    n = b_shape[1]
    return 2 * m * k * n + 2 * m * n  # the bias adds counted as MACs too


@pytest.mark.parametrize("key", [aten.addmm, aten.addmm.default, "aten.addmm", "addmm"])
def test_a_custom_formula_replaces_an_ops_count_for_that_call_only(key):
    x = torch.randn(3, 7)
    p = profile(nn.Linear(7, 5), x, formulas={key: _addmm_with_bias})
    assert p.macs == 3 * 7 * 5 + 3 * 5
    assert p.by_op == {"aten.addmm": 3 * 7 * 5 + 3 * 5}
    assert profile(nn.Linear(7, 5), x).macs == 3 * 7 * 5  # the shared registry is untouched


class _TBC(nn.Module):
    def forward(self, x):
        return torch.conv_tbc(x, torch.ones(3, 3, 4), torch.ones(4))


def _conv_tbc(x_shape, w_shape, b_shape, *args, out_shape=None, **kwargs):
    time_out, batch = out_shape[0], out_shape[1]
    return 2 * time_out * batch * w_shape[0] * w_shape[1] * w_shape[2]


def test_a_custom_formula_counts_an_op_pytorch_has_none_for():
    with pytest.warns(RuntimeWarning, match="aten.conv_tbc"):
        assert profile(_TBC(), torch.randn(5, 2, 3)).macs == 0
    p = profile(_TBC(), torch.randn(5, 2, 3), formulas={"aten.conv_tbc": _conv_tbc})
    assert p.macs == 3 * 2 * 3 * 3 * 4  # T_out x B x kernel x C_in x C_out
    assert p.uncounted_ops == []


def test_a_bad_formula_key_is_a_clear_error():
    with pytest.raises(FrugalError, match="unknown aten op 'aten.nosuchop'"):
        profile(nn.Linear(2, 2), torch.randn(1, 2), formulas={"aten.nosuchop": _conv_tbc})
    with pytest.raises(FrugalError, match="not callable"):
        profile(nn.Linear(2, 2), torch.randn(1, 2), formulas={aten.mm: 3})


MODEL_FILE = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 4)
        self.fc = nn.Linear(4, 3)

    def forward(self, ids, scale=None, mask=None):
        h = self.fc(self.emb(ids))
        return h * scale * mask.unsqueeze(-1)


def factory():
    return Net()
"""


def _frugal(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(list(args))
    out, err = capsys.readouterr()
    return stop.value.code, out, err


def test_cli_named_inputs_kw_and_by_op(tmp_path, capsys):
    (tmp_path / "net.py").write_text(MODEL_FILE)
    spec = f"{tmp_path / 'net.py'}:factory"
    args = ["profile", "--model", spec, "--input", "2x6:int64", "--input", "mask=2x6:int64", "--kw", "scale=0.5"]
    code, out, err = _frugal(capsys, *args, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["macs"] == 2 * 6 * 4 * 3
    assert d["by_op"] == {"aten.addmm": {"macs": 2 * 6 * 4 * 3, "flops": 2 * 2 * 6 * 4 * 3}}
    assert d["kwargs"] == {"scale": 0.5}
    assert [i["name"] for i in d["inputs"]] == [None, "mask"]
    assert [layer["name"] for layer in d["layers"]] == ["emb", "fc"]
    code, out, _ = _frugal(capsys, *args, "--by", "op")
    assert code == 0
    row = next(line for line in out.splitlines() if "aten.addmm" in line)
    assert "144" in row and "288" in row and "100.0%" in row
    assert "Linear" not in out and "Embedding" not in out  # the op table, not the layer table


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--input", "ids=1xq:int64"], "malformed --input 'ids=1xq:int64'"),
        (["--input", "1x2", "--kw", "=3"], "malformed --kw '=3'"),
        (["--input", "1x2", "--by", "layer"], "unknown --by 'layer'"),
    ],
)
def test_cli_bad_grammar_is_one_line_exit_2(capsys, extra, message):
    code, _, err = _frugal(capsys, "profile", "--model", "mlp", *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
