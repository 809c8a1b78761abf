import os

import pytest
import torch

# Tests must be quick and reproducible on 2 cores, whatever else is running.
torch.set_num_threads(1)
os.environ.setdefault("FRUGAL_REGION", "world")


@pytest.fixture
def frugal_bin():
    """Path of the installed `frugal` console script in this environment."""
    import shutil
    import sys
    from pathlib import Path

    candidate = Path(sys.executable).with_name("frugal")
    return str(candidate) if candidate.exists() else shutil.which("frugal")
