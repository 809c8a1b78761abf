"""frugalml: measure what deep learning costs and shrink it.

Importing the package is cheap on purpose: sub-packages import torch themselves, so the
`frugal` command can answer `--help` without loading it.

    import frugalml
    net = frugalml.load("runs/tickets/.../export_onnx")   # any export, back as a torch module
    run = frugalml.load("runs/.../model.onnx")            # an ONNX file, run in onnxruntime
"""

__version__ = "0.1.0"


def load(path):
    """Any frugalml export, back as a callable in eval mode: a `frugal tickets export` directory (or a
    file in it), a `frugal nas export` directory, a `frugal video export` directory (its `ARNet`), or
    a `.onnx` file (run in onnxruntime: `frugalml.models.deploy.OnnxModule`). Only safetensors and
    JSON are read, never a pickle."""
    from pathlib import Path

    from frugalml.errors import FrugalError
    from frugalml.files import read_json

    p = Path(path)
    if p.suffix.lower() == ".onnx" and p.is_file():
        from frugalml.models.deploy import OnnxModule

        return OnnxModule(p)
    d = p.parent if p.is_file() else p
    rec = d / "record.json"
    kind = read_json(rec).get("kind") if rec.is_file() else None
    if kind == "tickets.export" or (kind is None and (d / "export.json").is_file() and not (d / "arch.json").is_file()):
        from frugalml.tickets.exporting import load_export

        return load_export(d)
    if kind == "nas.export" or (kind is None and (d / "arch.json").is_file()):
        from frugalml.nas.pipeline import load_exported

        return load_exported(d)
    if kind == "video.export":
        from frugalml.video.export import load_export as load_video

        return load_video(d)
    what = f"a {kind} run" if kind else "no export.json or record.json"
    raise FrugalError(f"{path} is not a frugalml export ({what}): give the directory an export command wrote")
