"""Result files, tables and plots shared by every technique."""

from frugalml.report.files import check_run_config, read_json, run_dir, write_json, write_text

__all__ = ["check_run_config", "read_json", "run_dir", "write_json", "write_text"]
