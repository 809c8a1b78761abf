import pytest

from frugalml.tickets.config import ticket_training
from frugalml.tickets.imp import TicketConfig, find


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A small finished IMP run on digits: 2 levels, 2 seeds, both controls, 2 epochs each."""
    cfg = TicketConfig(
        model="mlp", data="digits", levels=2, rate=0.5, seeds=2, train=ticket_training(epochs=2, batch_size=64)
    )
    out = tmp_path_factory.mktemp("tickets") / "run"
    return out, find(cfg, out, progress=False)
