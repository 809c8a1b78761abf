"""Grid carbon intensity, PUE and prices.

Intensities come from the data CodeCarbon maintains and ships (per-country energy mix,
`global_energy_mix.json`, and per-cloud-region figures, `cloud/impact.csv`), read from the
installed package: never from the network. A region is an ISO 3166 alpha-3 code (`USA`,
`FRA`), a cloud region as `provider:region` (`gcp:us-central1`), or `world`.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from frugalml.errors import FrugalError

LBS_PER_KG = 1 / 0.45359237
WORLD_G_PER_KWH = 475.0  # IEA 2019 world average, CodeCarbon's own fallback
# The one PUE default of `frugal estimate`, `frugal track` and `frugal payback`: the industry
# average data centre (Uptime Institute's global survey: 1.58 in 2018, as Strubell et al. 2019
# used, and 1.58 again in 2023). A machine on a desk has no data-centre overhead: --pue 1.0.
DEFAULT_PUE = 1.58
DEFAULT_PUE_SOURCE = "Uptime Institute global data-centre survey average (2018, as in Strubell et al. 2019)"
PUE_HELP = (
    f"Data-centre PUE, facility over IT energy (default {DEFAULT_PUE}: {DEFAULT_PUE_SOURCE}; 1.0 for a desk machine)."
)
DEFAULT_DATACENTRE_PUE = DEFAULT_PUE  # the older name
REGION_ENV = "FRUGAL_REGION"


@dataclass
class Intensity:
    g_per_kwh: float
    region: str
    source: str


def _codecarbon_data() -> Path:
    try:
        import codecarbon
    except ImportError as e:  # pragma: no cover - codecarbon is a dependency
        raise FrugalError("codecarbon is not installed; pass --intensity G instead") from e
    return Path(codecarbon.__file__).parent / "data"


@lru_cache(maxsize=1)
def _countries() -> dict[str, dict]:
    return json.loads((_codecarbon_data() / "private_infra" / "global_energy_mix.json").read_text())


@lru_cache(maxsize=1)
def _cloud() -> dict[str, dict]:
    with (_codecarbon_data() / "cloud" / "impact.csv").open(newline="", encoding="utf-8-sig") as f:
        return {f"{r['provider']}:{r['region']}".lower(): r for r in csv.DictReader(f)}


def intensity(region: str) -> Intensity:
    """Carbon intensity of electricity in `region` (g CO2e per kWh)."""
    key = region.strip()
    if key.lower() == "world":
        return Intensity(WORLD_G_PER_KWH, "world", "IEA 2019 world average (CodeCarbon default)")
    if ":" in key:
        row = _cloud().get(key.lower())
        if row is None:
            raise FrugalError(f"unknown cloud region '{region}' (e.g. gcp:us-central1, aws:us-east-1)")
        return Intensity(float(row["impact"]), key.lower(), f"CodeCarbon cloud/impact.csv ({row['source']})")
    row = _countries().get(key.upper())
    if row is None:
        raise FrugalError(
            f"unknown region '{region}': use an ISO 3166 alpha-3 country code (USA, FRA, DEU, ...), "
            "a cloud region like gcp:us-central1, or 'world'"
        )
    year = row.get("year", "?")
    return Intensity(
        float(row["carbon_intensity"]),
        key.upper(),
        f"CodeCarbon global_energy_mix.json, {row['country_name']} {year}",
    )


def configured_region() -> str | None:
    """The region the user configured (environment variable FRUGAL_REGION), if any."""
    return os.environ.get(REGION_ENV) or None
