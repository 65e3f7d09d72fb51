import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Training tests use one thread: the tiny networks gain nothing from more, and on a busy shared
    machine OpenMP threads spinning at barriers make multi-threaded tiny ops many times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
