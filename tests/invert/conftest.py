import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets gain nothing from intra-op threads, and on a busy machine the threads mostly wait for each
    other (measured: 4-5x slower with 2 threads under load); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
