"""The shared elastic layers against plain PyTorch on the same slices."""

import torch
import torch.nn.functional as F
from torch import nn

from frugalml.models.elastic import ElasticBatchNorm, ElasticLinear


def test_elastic_linear_equals_functional_linear_on_the_leading_slices():
    torch.manual_seed(0)
    lin = ElasticLinear(8, 6)
    w, b = lin.weight.detach(), lin.bias.detach()
    for x in (torch.randn(5, 3), torch.randn(2, 4, 8)):  # rows, and (batch, tokens, features)
        c = x.shape[-1]
        torch.testing.assert_close(lin(x, 4), F.linear(x, w[:4, :c], b[:4]), rtol=0, atol=0)
        torch.testing.assert_close(lin(x), F.linear(x, w[:, :c], b), rtol=0, atol=0)
    x = torch.randn(5, 3)
    torch.testing.assert_close(lin.export(3, 4)(x), F.linear(x, w[:4, :3], b[:4]))


def test_elastic_linear_draws_its_initial_weights_as_nn_linear_does():
    torch.manual_seed(1)
    ref = nn.Linear(7, 5)
    torch.manual_seed(1)
    lin = ElasticLinear(7, 5)
    assert torch.equal(lin.weight, ref.weight) and torch.equal(lin.bias, ref.bias)
    torch.manual_seed(1)
    zero = ElasticLinear(7, 5, zero_bias=True)
    assert torch.equal(zero.weight, ref.weight) and torch.all(zero.bias == 0)
    no_bias = ElasticLinear(7, 5, bias=False)
    assert no_bias.bias is None and "bias" not in no_bias.state_dict()
    x = torch.randn(3, 6)
    torch.testing.assert_close(no_bias(x, 2), F.linear(x, no_bias.weight.detach()[:2, :6]), rtol=0, atol=0)


def test_elastic_batchnorm_normalises_the_leading_channels_with_their_own_statistics():
    bn = ElasticBatchNorm(6)
    x = torch.randn(10, 4) * 3 + 1
    bn.train()
    y = bn(x)
    torch.testing.assert_close(y, F.batch_norm(x, None, None, training=True), rtol=0, atol=1e-6)
    assert torch.allclose(bn.running_mean[:4], 0.1 * x.mean(0)) and torch.all(bn.running_mean[4:] == 0)
    # one row: nothing to average, so the running statistics are used (and left alone)
    before = bn.running_mean.clone()
    one = torch.randn(1, 4)
    torch.testing.assert_close(bn(one), F.batch_norm(one, before[:4], bn.running_var[:4].clone(), training=False))
    assert torch.equal(bn.running_mean, before)
    bn.eval()
    x3 = torch.randn(2, 3, 5)  # (N, C, L)
    torch.testing.assert_close(bn.export(3).eval()(x3), bn(x3))
