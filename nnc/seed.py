"""One global default seed, for scripts that want every run to be the same.

``nnc.set_seed(s)`` makes ``Sequential(..., seed=None)`` behave like
``Sequential(..., seed=s)``: the initial weights, the dropout masks and
(through the Trainer, which draws its shuffling seed from the model's
generator) the order of the mini-batches are then fixed. Two models built
after one ``set_seed(s)`` start with the same weights; PyTorch's
``torch.manual_seed`` instead advances one global generator, so there the
second model differs from the first.

``nnc.set_seed(None)`` goes back to fresh entropy for every model. An
explicit ``seed=`` argument always wins over the global default.

Same seed, same thread count (``nnc.set_num_threads``) and same backend give
bit-identical weights and history; a different thread count changes only the
rounding of the reductions (batch-norm statistics, gradient norms), about
1e-7 relative in float32.
"""
from nnc._validation import check_seed

_default_seed = None


def set_seed(seed):
    """Set the default seed used by every ``Sequential`` built with
    ``seed=None`` (a non-negative int), or ``None`` for fresh entropy."""
    global _default_seed
    _default_seed = None if seed is None else check_seed(seed)


def get_seed():
    """The default seed set by ``set_seed`` (``None`` if unset)."""
    return _default_seed
