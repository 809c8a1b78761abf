"""Hugging Face models by architecture, with random weights and nothing downloaded: `hf:NAME`.

    hf:bert                  bert-base-uncased's shape (12 layers, hidden 768, 12 heads, FFN 3072,
                             vocabulary 30,522, 512 positions): BertModel, pooler included
    hf:gpt2                  GPT-2 small (12 layers, 768 wide, 12 heads, vocabulary 50,257,
                             1,024 positions): GPT2Model, no LM head
    hf:path/to/config.json   any architecture from a local config file (`model_type` inside),
                             built with AutoModel.from_config; a directory holding config.json works too

Keyword arguments override config fields (`models.get("hf:bert", num_hidden_layers=2)`,
`attn_implementation="eager"`). The default attention is "sdpa"; both that kernel (on CPU
`aten._scaled_dot_product_flash_attention_for_cpu`) and eager's `bmm`s are counted.
transformers is imported only here, on first use (`pip install 'frugalml[hf]'`).
"""

from __future__ import annotations

from pathlib import Path

from frugalml.errors import FrugalError

PREFIX = "hf:"
TEXT_TOKENS = 128  # default sequence length of a text model's example input

# built-in architectures: transformers config class, its values, and what they reproduce
BUILTIN = {
    "bert": (
        "BertConfig",
        {
            "vocab_size": 30522,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
        },
        "bert-base-uncased shape, random weights",
    ),
    "gpt2": (
        "GPT2Config",
        {"vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024},
        "GPT-2 small shape (no LM head), random weights",
    ),
}


def _transformers(spec: str):
    try:
        import transformers
    except ImportError:
        raise FrugalError(f"model '{spec}' needs transformers: pip install 'frugalml[hf]'") from None
    return transformers


def _config_file(path_text: str, spec: str) -> dict:
    from frugalml.files import read_json

    path = Path(path_text).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FrugalError(f"no config file '{path}' for model '{spec}' (hf:bert, hf:gpt2 or hf:path/to/config.json)")
    try:
        values = read_json(path)
    except ValueError as e:
        raise FrugalError(f"config file '{path}' is not JSON: {e}") from None
    if not isinstance(values, dict) or "model_type" not in values:
        raise FrugalError(f"config file '{path}' states no model_type (e.g. \"bert\")")
    return values


def config(spec: str, **overrides):
    """The transformers config `spec` ('hf:bert', 'hf:gpt2', 'hf:path/config.json') names, with `overrides`."""
    name = spec.removeprefix(PREFIX)
    tf = _transformers(spec)
    overrides = {"attn_implementation": "sdpa"} | overrides
    if name in BUILTIN:
        cls, values, _ = BUILTIN[name]
        return getattr(tf, cls)(**(values | overrides))
    if not (name.endswith(".json") or "/" in name or Path(name).expanduser().is_dir()):
        raise FrugalError(
            f"unknown model '{spec}' (known: {', '.join(PREFIX + n for n in BUILTIN)}, hf:PATH/config.json)"
        )
    values = _config_file(name, spec)
    model_type = values.pop("model_type")
    try:
        return tf.AutoConfig.for_model(model_type, **(values | overrides))
    except (ValueError, KeyError) as e:
        raise FrugalError(f"transformers cannot build a '{model_type}' config from '{name}': {e}") from None


def build(spec: str, **overrides):
    """A randomly initialised model (AutoModel.from_config) of `spec`'s architecture, in eval mode.

    The weights are drawn from seed 0 (the global generator is left as it was), so a nonzero
    count is the same on every run."""
    import torch

    cfg = config(spec, **overrides)
    tf = _transformers(spec)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = tf.AutoModel.from_config(cfg)
    except ValueError as e:
        raise FrugalError(f"transformers has no model for config '{spec}': {str(e).splitlines()[0]}") from None
    return model.eval()


def default_inputs(spec: str) -> list[str]:
    """Example inputs in `--input` grammar: a text model 1x128 token ids + attention mask, a vision model one image."""
    cfg = config(spec)
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    if getattr(text, "vocab_size", None):
        n = min(TEXT_TOKENS, getattr(text, "max_position_embeddings", None) or TEXT_TOKENS)
        return [f"input_ids=1x{n}:int64", f"attention_mask=1x{n}:int64"]
    size, channels = getattr(cfg, "image_size", None), getattr(cfg, "num_channels", None)
    if isinstance(size, int) and isinstance(channels, int):
        return [f"pixel_values=1x{channels}x{size}x{size}"]
    raise FrugalError(f"no default input for model '{spec}': pass --input")


def summaries() -> dict[str, str]:
    return {PREFIX + name: summary for name, (_, _, summary) in BUILTIN.items()}
