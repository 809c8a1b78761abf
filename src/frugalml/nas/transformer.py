"""The `transformer` search space (HAT style) on a generated seq2seq task: sorting strings of
3-12 symbols from an alphabet of 16 (`task="reverse"` reverses them instead). Sorting is the
default because it leaves the search a trade-off: after 30 supernet epochs (sandwich, no
distillation, seed 0) the smallest sub-network decodes ~96% of validation strings exactly and
the largest ~99.6%, while on reversal every one-decoder-layer net decoded 99.5-100% and the
fronts collapsed to a point or two (reversal of 16-20 symbols did not train at all in 30
epochs). The search validates on 1000 strings.

Genes: embedding dim (shared by encoder and decoder), encoder and decoder depth, per layer
FFN hidden dim and number of heads (head size fixed at 16), and how many of the last
encoder layers each decoder layer attends to (HAT's arbitrary encoder-decoder attention:
their outputs are concatenated along the sequence as keys/values).

One module class serves both roles: the supernet is it at maximum sizes, and an extracted
sub-network is the same class built at the sub-network's sizes holding the leading slices of
the supernet's tensors, so it is a standalone `nn.Module`. Pre-norm layers, LayerNorm (no
statistics to recalibrate). `forward(src)` with no target decodes greedily for the full
length (fixed work, batch 1 for latency) incrementally, as HAT measures latency: each step
feeds only the newest token and every decoder layer keeps a key/value cache of its
self-attention and of the encoder memory, so a step costs O(prefix) instead of re-running
the decoder on the whole prefix.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from frugalml.errors import FrugalError
from frugalml.models.elastic import ElasticLinear
from frugalml.models.space import SearchSpace, register

HEAD_DIM = 16


class ElasticLayerNorm(nn.LayerNorm):
    def forward(self, x):
        e = x.shape[-1]
        return F.layer_norm(x, (e,), self.weight[:e], self.bias[:e], self.eps)


class Attention(nn.Module):
    def __init__(self, emb: int, heads: int):
        super().__init__()
        inner = heads * HEAD_DIM
        self.q, self.k, self.v = ElasticLinear(emb, inner), ElasticLinear(emb, inner), ElasticLinear(emb, inner)
        self.o = ElasticLinear(inner, emb)

    def _heads(self, lin, x, inner, heads):
        n, t, _ = x.shape
        return lin(x, inner).view(n, t, heads, HEAD_DIM).transpose(1, 2)

    def forward(self, x, mem, heads: int, causal: bool = False, cache: dict | None = None, static: bool = False):
        """`cache` (incremental decoding): self-attention appends this step's keys/values to it;
        with `static` (cross-attention) the memory's keys/values are computed once and reused."""
        n, tq, e = x.shape
        inner = heads * HEAD_DIM
        q = self._heads(self.q, x, inner, heads)
        if cache is not None and static and "k" in cache:
            k, v = cache["k"], cache["v"]
        else:
            k, v = self._heads(self.k, mem, inner, heads), self._heads(self.v, mem, inner, heads)
            if cache is not None and not static and "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            if cache is not None:
                cache["k"], cache["v"] = k, v
        tk = k.shape[2]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HEAD_DIM)
        if causal:
            att = att.masked_fill(torch.ones(tq, tk, dtype=torch.bool).triu(1), float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(n, tq, inner)
        return self.o(y, e)


class FFN(nn.Module):
    def __init__(self, emb: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = ElasticLinear(emb, hidden), ElasticLinear(hidden, emb)

    def forward(self, x, hidden: int):
        return self.fc2(F.relu(self.fc1(x, hidden)), x.shape[-1])


class EncoderLayer(nn.Module):
    def __init__(self, emb, ffn, heads):
        super().__init__()
        self.ln1, self.attn = ElasticLayerNorm(emb), Attention(emb, heads)
        self.ln2, self.ffn = ElasticLayerNorm(emb), FFN(emb, ffn)

    def forward(self, x, ffn, heads):
        h = self.ln1(x)
        x = x + self.attn(h, h, heads)
        return x + self.ffn(self.ln2(x), ffn)


class DecoderLayer(nn.Module):
    def __init__(self, emb, ffn, heads):
        super().__init__()
        self.ln1, self.self_attn = ElasticLayerNorm(emb), Attention(emb, heads)
        self.ln2, self.cross = ElasticLayerNorm(emb), Attention(emb, heads)
        self.ln3, self.ffn = ElasticLayerNorm(emb), FFN(emb, ffn)

    def forward(self, x, mem, ffn, heads, cache: dict | None = None):
        h = self.ln1(x)
        if cache is None:
            x = x + self.self_attn(h, h, heads, causal=True)
            x = x + self.cross(self.ln2(x), mem, heads)
        else:  # one new position: it may attend to every cached one, so no mask
            x = x + self.self_attn(h, h, heads, cache=cache.setdefault("self", {}))
            x = x + self.cross(self.ln2(x), mem, heads, cache=cache.setdefault("cross", {}), static=True)
        return x + self.ffn(self.ln3(x), ffn)


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder; `layers` sizes are maxima, `arch` (set_active) picks the active sizes."""

    def __init__(
        self,
        vocab: int,
        max_len: int,
        emb: int,
        enc: list[tuple[int, int]],
        dec: list[tuple[int, int]],
        arch: dict,
        bos: int = 1,
    ):
        super().__init__()
        self.vocab, self.max_len, self.bos = vocab, max_len, bos
        self.tok = nn.Embedding(vocab, emb)
        # token and position embeddings of the same scale: the tasks hinge on positions
        self.pos = nn.Parameter(torch.randn(2 * max_len + 1, emb))
        self.enc = nn.ModuleList(EncoderLayer(emb, f, h) for f, h in enc)
        self.dec = nn.ModuleList(DecoderLayer(emb, f, h) for f, h in dec)
        self.enc_ln, self.dec_ln = ElasticLayerNorm(emb), ElasticLayerNorm(emb)
        self.out = ElasticLinear(emb, vocab)
        self.arch = arch

    def _embed(self, tokens, e, start: int = 0):
        return self.tok.weight[tokens, :e] + self.pos[start : start + tokens.shape[1], :e]

    def encode(self, src):
        a, e = self.arch, self.arch["emb"]
        x = self._embed(src, e)
        outs = []
        for i in range(a["enc.d"]):
            x = self.enc[i](x, a[f"enc.l{i + 1}.ffn"], a[f"enc.l{i + 1}.heads"])
            outs.append(x)
        k = min(a["dec.attn_k"], a["enc.d"])
        return torch.cat([self.enc_ln(o) for o in outs[-k:]], dim=1)

    def decode(self, mem, tgt_in):
        a, e = self.arch, self.arch["emb"]
        x = self._embed(tgt_in, e)
        for i in range(a["dec.d"]):
            x = self.dec[i](x, mem, a[f"dec.l{i + 1}.ffn"], a[f"dec.l{i + 1}.heads"])
        return self.out(self.dec_ln(x), self.vocab)

    def decode_step(self, mem, token, position: int, caches: list[dict]):
        """Logits for the next token given only the newest `token` (N, 1); `caches` hold the past."""
        a, e = self.arch, self.arch["emb"]
        x = self._embed(token, e, start=position)
        for i in range(a["dec.d"]):
            x = self.dec[i](x, mem, a[f"dec.l{i + 1}.ffn"], a[f"dec.l{i + 1}.heads"], cache=caches[i])
        return self.out(self.dec_ln(x), self.vocab)[:, -1]

    def forward(self, src, tgt_in=None):
        mem = self.encode(src)
        if tgt_in is not None:
            return self.decode(mem, tgt_in)
        token = torch.full((src.shape[0], 1), self.bos, dtype=torch.long)
        caches = [{} for _ in range(self.arch["dec.d"])]
        out = []
        for t in range(self.max_len):
            token = self.decode_step(mem, token, t, caches).argmax(-1, keepdim=True)
            out.append(token)
        return torch.cat(out, dim=1)


@functools.lru_cache(maxsize=2)
def _task_data(task: str, num_samples: int, seq_len: int, symbols: int):
    from frugalml import data

    return data.get(f"seq2seq-{task}", num_samples=num_samples, max_len=seq_len, symbols=symbols)


@register("transformer")
class TransformerSpace(SearchSpace):
    def __init__(
        self,
        embs=(32, 48, 64),
        ffns=(64, 128, 256),
        heads=(2, 4),
        enc_depths=(1, 2, 3),
        dec_depths=(1, 2),
        attn_k=(1, 2),
        num_samples: int = 5000,
        val_size: int = 1000,
        seq_len: int = 12,
        symbols: int = 16,
        task: str = "sort",
    ):
        if task not in ("reverse", "sort"):
            raise FrugalError(f"unknown transformer task {task!r}: choose 'reverse' or 'sort'")
        self.embs, self.ffns, self.heads = tuple(embs), tuple(ffns), tuple(heads)
        self.enc_depths, self.dec_depths, self.attn_k = tuple(enc_depths), tuple(dec_depths), tuple(attn_k)
        self.num_samples, self.val_size = num_samples, val_size
        self.config = {
            "embs": list(embs),
            "ffns": list(ffns),
            "heads": list(heads),
            "enc_depths": list(enc_depths),
            "dec_depths": list(dec_depths),
            "attn_k": list(attn_k),
            "num_samples": num_samples,
            "val_size": val_size,
            "task": f"seq2seq-{task}",
            "seq_len": seq_len,
            "symbols": symbols,
        }
        g = {"emb": self.embs, "enc.d": self.enc_depths, "dec.d": self.dec_depths, "dec.attn_k": self.attn_k}
        for side, depths in (("enc", self.enc_depths), ("dec", self.dec_depths)):
            for i in range(1, max(depths) + 1):
                g[f"{side}.l{i}.ffn"], g[f"{side}.l{i}.heads"] = self.ffns, self.heads
        self.genes = g
        self.seq_len, self.symbols, self.task = seq_len, symbols, task
        self.vocab, self.max_len = symbols + 3, seq_len + 1  # symbols + PAD/BOS/EOS; the string + EOS

    def canonical(self, arch):
        a = dict(arch)
        for side in ("enc", "dec"):
            for i in range(a[f"{side}.d"] + 1, max(getattr(self, f"{side}_depths")) + 1):
                a[f"{side}.l{i}.ffn"], a[f"{side}.l{i}.heads"] = self.ffns[0], self.heads[0]
        a["dec.attn_k"] = min(a["dec.attn_k"], a["enc.d"])
        return a

    def shrink_stages(self) -> list[tuple[str, tuple[str, ...]]]:
        """The largest network, then elastic depth (and encoder-decoder attention), then width."""
        width = ("emb", *(g for g in self.genes if g.endswith((".ffn", ".heads"))))
        return [("largest", ()), ("depth", ("enc.d", "dec.d", "dec.attn_k")), ("width", width)]

    def features(self, arch):
        a = self.canonical(arch)
        f = [
            a["emb"] / max(self.embs),
            a["enc.d"] / max(self.enc_depths),
            a["dec.d"] / max(self.dec_depths),
            a["dec.attn_k"] / max(self.attn_k),
        ]
        for side in ("enc", "dec"):
            for i in range(1, max(getattr(self, f"{side}_depths")) + 1):
                on = i <= a[f"{side}.d"]
                f += [on * a[f"{side}.l{i}.ffn"] / max(self.ffns), on * a[f"{side}.l{i}.heads"] / max(self.heads)]
        return f

    def _net(self, arch, full: bool):
        a = self.canonical(arch)
        if full:
            enc = [(max(self.ffns), max(self.heads))] * max(self.enc_depths)
            dec = [(max(self.ffns), max(self.heads))] * max(self.dec_depths)
            return Seq2SeqTransformer(self.vocab, self.max_len, max(self.embs), enc, dec, a)
        enc = [(a[f"enc.l{i}.ffn"], a[f"enc.l{i}.heads"]) for i in range(1, a["enc.d"] + 1)]
        dec = [(a[f"dec.l{i}.ffn"], a[f"dec.l{i}.heads"]) for i in range(1, a["dec.d"] + 1)]
        return Seq2SeqTransformer(self.vocab, self.max_len, a["emb"], enc, dec, a)

    def build_supernet(self, seed: int = 0):
        torch.manual_seed(seed)
        return self._net(self.largest(), full=True)

    def set_active(self, supernet, arch):
        supernet.arch = self.canonical(arch)

    def build_subnet(self, arch, seed: int = 0):
        self.validate(arch)
        torch.manual_seed(seed)
        return self._net(arch, full=False)

    @torch.no_grad()
    def extract(self, supernet, arch):
        sub = self.build_subnet(arch)
        big = supernet.state_dict()
        for name, t in sub.state_dict().items():
            t.copy_(big[name][tuple(slice(0, n) for n in t.shape)])  # the leading slice in every dimension
        return sub.eval()

    def macs(self, arch) -> int:
        """MACs of batch-1 greedy decoding with the key/value cache (source and output `max_len` tokens),
        counted by hand like the flop counter counts them (matrix products only); tests compare the two."""
        a = self.canonical(arch)
        e, n = a["emb"], self.max_len
        total = 0
        for i in range(1, a["enc.d"] + 1):
            inner, f = a[f"enc.l{i}.heads"] * HEAD_DIM, a[f"enc.l{i}.ffn"]
            total += 4 * n * e * inner + 2 * n * n * inner + 2 * n * e * f
        mem = n * min(a["dec.attn_k"], a["enc.d"])
        for i in range(1, a["dec.d"] + 1):
            inner, f = a[f"dec.l{i}.heads"] * HEAD_DIM, a[f"dec.l{i}.ffn"]
            total += 2 * mem * e * inner  # keys/values of the encoder memory, once
            for t in range(1, n + 1):  # step t attends to t cached positions and to the memory
                total += 6 * e * inner + 2 * t * inner + 2 * mem * inner + 2 * e * f
        return total + n * e * self.vocab

    def example_input(self, arch):
        return torch.randint(3, self.vocab, (1, self.max_len))

    def dataset(self, quick: bool = False):
        from frugalml.data.base import Dataset

        n = min(self.num_samples, 1200) if quick else self.num_samples
        ds = _task_data(self.task, n, self.seq_len, self.symbols)
        nval = min(self.val_size, len(ds.y_train) // 4)
        xtr, ytr = ds.x_train[nval:], ds.y_train[nval:]
        xv, yv = ds.x_train[:nval], ds.y_train[:nval]
        name = f"{self.task}-nas"
        train = Dataset(name, xtr, ytr, xv, yv, ds.num_classes, ds.info)
        val = Dataset(f"{name}-val", xtr, ytr, xv, yv, ds.num_classes, ds.info)
        test = Dataset(f"{name}-test", xtr, ytr, ds.x_test, ds.y_test, ds.num_classes, ds.info)
        return train, val, test

    def loss(self, model, x, y, teacher_logits=None):
        tgt_in = torch.cat([torch.full_like(y[:, :1], 1), y[:, :-1]], dim=1)
        logits = model(x, tgt_in)
        mask = y != 0
        if teacher_logits is None:
            loss = F.cross_entropy(logits[mask], y[mask])
        else:
            loss = F.kl_div(F.log_softmax(logits[mask], -1), F.softmax(teacher_logits[mask], -1), reduction="batchmean")
        exact = ((logits.argmax(-1) == y) | ~mask).all(dim=1).sum()
        return loss, exact, logits

    @torch.no_grad()
    def scores(self, subnet, ds, split: str = "test") -> dict:
        """Greedy decoding: exact-match and token accuracy (over target positions incl. EOS)."""
        subnet.eval()
        x, y = (ds.x_test, ds.y_test) if split == "test" else (ds.x_train, ds.y_train)
        pred = torch.cat([subnet(x[i : i + 500]) for i in range(0, len(y), 500)])
        mask = y != 0
        return {
            "exact_match": float(((pred == y) | ~mask).all(dim=1).float().mean()),
            "token_accuracy": float(((pred == y) & mask).sum() / mask.sum()),
        }

    def evaluate(self, subnet, ds, split: str = "test") -> float:
        return self.scores(subnet, ds, split)["exact_match"]

    def scaling_family(self) -> list[tuple[str, dict]]:
        """Hand-designed baseline: width level w (emb, FFN, heads grow together) x depth level d
        (encoder and decoder grow together), every layer alike, decoder attending to the last encoder layer."""
        out = []
        n_w = max(len(self.embs), len(self.ffns))
        n_d = max(len(self.enc_depths), len(self.dec_depths))
        for d in range(n_d):
            for w in range(n_w):

                def level(values, i):
                    return values[min(i, len(values) - 1)]

                ffn, heads = level(self.ffns, w), level(self.heads, w)
                a = {
                    "emb": level(self.embs, w),
                    "enc.d": level(self.enc_depths, d),
                    "dec.d": level(self.dec_depths, d),
                    "dec.attn_k": self.attn_k[0],
                }
                for side, depths in (("enc", self.enc_depths), ("dec", self.dec_depths)):
                    for i in range(1, max(depths) + 1):
                        a[f"{side}.l{i}.ffn"], a[f"{side}.l{i}.heads"] = ffn, heads
                out.append((f"w{w + 1}-d{d + 1}", self.canonical(a)))
        return out
