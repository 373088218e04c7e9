"""The compiled kernel bodies, without argument checks.

For a caller that has validated its arrays once (the training engine checks X and its own
preallocated buffers once per fit, then calls these in the loop): wrong shapes, dtypes or index
ranges here read or write out of bounds.  Everyone else uses the checked functions of
``mlp_kernels`` itself, which take the same arguments.
"""

from ._augment import augment_rows
from ._layers import (
    activation_backward,
    bias_activation_forward,
    bias_gradient,
    dropout_backward,
    dropout_forward,
    gather_labels,
    gather_rows,
)
from ._losses import (
    exp_poisson_sum,
    sigmoid_binary_cross_entropy_sum,
    sigmoid_mse_sum,
    softmax_cross_entropy_sum,
    squared_error_sum,
)
from ._norm import (
    batch_norm_backward,
    batch_norm_backward_sums,
    batch_norm_centred_squares,
    batch_norm_forward,
    batch_norm_running_forward,
    batch_norm_sums,
)
from ._optim import (
    adam_step_fused,
    momentum_step_fused,
    processed_grad_sq_norm,
    rmsprop_step_fused,
    sgd_step_fused,
)
from ._predict import all_finite
from ._weighted import (
    exp_poisson_sum_weighted,
    sigmoid_binary_cross_entropy_sum_weighted,
    sigmoid_mse_sum_weighted,
    softmax_cross_entropy_sum_weighted,
    squared_error_sum_weighted,
)

__all__ = [
    "activation_backward",
    "adam_step_fused",
    "all_finite",
    "augment_rows",
    "batch_norm_backward",
    "batch_norm_backward_sums",
    "batch_norm_centred_squares",
    "batch_norm_forward",
    "batch_norm_running_forward",
    "batch_norm_sums",
    "bias_activation_forward",
    "bias_gradient",
    "dropout_backward",
    "dropout_forward",
    "exp_poisson_sum",
    "exp_poisson_sum_weighted",
    "gather_labels",
    "gather_rows",
    "momentum_step_fused",
    "processed_grad_sq_norm",
    "rmsprop_step_fused",
    "sgd_step_fused",
    "sigmoid_binary_cross_entropy_sum",
    "sigmoid_binary_cross_entropy_sum_weighted",
    "sigmoid_mse_sum",
    "sigmoid_mse_sum_weighted",
    "softmax_cross_entropy_sum",
    "softmax_cross_entropy_sum_weighted",
    "squared_error_sum",
    "squared_error_sum_weighted",
]
