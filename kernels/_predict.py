"""The prediction path's finiteness check of X: it reads X once, without a temporary array. (A hidden
layer's bias and activation there is ``_layers.bias_activation_forward``, which rounds as NumPy does for
identity, relu and leaky_relu.)
"""

import numpy as np

from ._config import jit


@jit
def all_finite(X):
    """True when no element of X (B, D) is NaN or infinite; rows read in order, stopping at the first
    row that holds one."""
    n, d = X.shape
    limit = np.inf
    for i in range(n):
        finite = True
        for j in range(d):
            finite &= abs(X[i, j]) < limit
        if not finite:
            return False
    return True
