"""Result files, tables and plots shared by every technique."""

from frugalml.report.files import read_json, run_dir, write_json, write_text

__all__ = ["read_json", "run_dir", "write_json", "write_text"]
