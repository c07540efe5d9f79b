import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """MMSB tests run many small ops: one thread is faster than two on a shared, loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
