"""Device profiles: a data file with a source for every row, plus the detected host.

`hardware.csv` beside this module is the table; edit it (with a source) rather than the
code. The host row is built at run time from /proc/cpuinfo and CodeCarbon's CPU power
table, and its sustained throughput is measured with a matrix multiply when asked.
"""

from __future__ import annotations

import csv
import os
import platform
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from frugalml.errors import FrugalError

TABLE = Path(__file__).with_name("hardware.csv")


@dataclass
class Hardware:
    name: str
    kind: str
    description: str
    peak_fp32_tflops: float | None
    peak_fp16_tflops: float | None
    tdp_w: float | None
    mem_bw_gbs: float | None
    sustained_tflops: float | None
    price_per_hour_usd: float | None
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


def _num(s: str) -> float | None:
    s = s.strip()
    return float(s) if s else None


@lru_cache(maxsize=1)
def _table() -> dict[str, Hardware]:
    rows = {}
    with TABLE.open(newline="") as f:
        for r in csv.DictReader(f):
            rows[r["name"]] = Hardware(
                name=r["name"],
                kind=r["kind"],
                description=r["description"],
                peak_fp32_tflops=_num(r["peak_fp32_tflops"]),
                peak_fp16_tflops=_num(r["peak_fp16_tflops"]),
                tdp_w=_num(r["tdp_w"]),
                mem_bw_gbs=_num(r["mem_bw_gbs"]),
                sustained_tflops=_num(r["sustained_tflops"]),
                price_per_hour_usd=_num(r["price_per_hour_usd"]),
                source=r["source"],
            )
    return rows


def cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_tdp_w(model_name: str) -> tuple[float | None, str]:
    """TDP of this CPU from CodeCarbon's maintained table (name match), with its source."""
    try:
        import codecarbon

        table = Path(codecarbon.__file__).parent / "data" / "hardware" / "cpu_power.csv"
        with table.open(newline="") as f:
            rows = list(csv.reader(f))
    except (ImportError, OSError):
        return None, "no CPU power table available"
    cleaned = model_name.replace("(R)", "").replace("(TM)", "").replace(" CPU", "").lower()
    for name, tdp, *_ in rows[1:]:
        if name.lower() in cleaned or cleaned in name.lower():
            return float(tdp), f"CodeCarbon cpu_power.csv row '{name}'"
    return None, f"'{model_name}' not in CodeCarbon's cpu_power.csv"


FALLBACK_TDP_W = 85.0  # CodeCarbon's own default CPU TDP when a CPU is not in its table


def core_watts() -> tuple[float, str]:
    """One core's share of this host's CPU TDP (W), and where the TDP comes from."""
    tdp, src = cpu_tdp_w(cpu_model_name())
    if tdp is None:
        tdp, src = FALLBACK_TDP_W, f"{src}; CodeCarbon's default {FALLBACK_TDP_W:g} W"
    return tdp / (os.cpu_count() or 1), f"TDP {tdp:g} W / {os.cpu_count() or 1} cores; {src}"


def measured_host_tflops(threads: int | None = None, n: int = 512) -> float:
    """Sustained FP32 matmul throughput of this host (TFLOPS), measured in ~0.3 s."""
    import torch
    from torch.utils import benchmark

    a, b = torch.randn(n, n), torch.randn(n, n)
    t = benchmark.Timer("a @ b", globals={"a": a, "b": b}, num_threads=threads or os.cpu_count())
    m = t.blocked_autorange(min_run_time=0.3)
    return 2 * n**3 / m.median / 1e12


def host(measure: bool = False) -> Hardware:
    name = cpu_model_name()
    cores = os.cpu_count() or 1
    tdp, tdp_src = cpu_tdp_w(name)
    sustained = measured_host_tflops() if measure else None
    src = f"detected: /proc/cpuinfo ({cores} logical cores); TDP: {tdp_src}"
    if measure:
        src += "; sustained = measured 512x512 FP32 matmul (torch.utils.benchmark)"
    return Hardware("host", "cpu", f"{name} x{cores}", None, None, tdp, None, sustained, None, src)


def names() -> list[str]:
    return [*_table(), "host"]


def get(name: str, measure_host: bool = True) -> Hardware:
    key = name.lower()
    if key == "host":
        return host(measure=measure_host)
    table = _table()
    if key not in table:
        raise FrugalError(f"unknown hardware '{name}' (known: {', '.join(names())})")
    return table[key]


def all_profiles(measure_host: bool = False) -> list[Hardware]:
    return [*_table().values(), host(measure=measure_host)]
