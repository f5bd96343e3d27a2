"""Error bounds from the arithmetic, for comparisons of float32 computations that differ only in
summation order (NHWC vs NCHW kernels, Winograd vs direct, folded or fused vs separate).

Both float32 computations are compared with the same computation in float64, never with each
other. A float32 sum of n products, in any order (sequential, pairwise, blocked across threads
or vector lanes, with or without FMA), is within

    gamma_n * sum_i |x_i * y_i|,   gamma_n = n u / (1 - n u),   u = 2^-24 (float32's unit roundoff)

of the exact sum (the standard bound for inner products: Higham, "Accuracy and Stability of
Numerical Algorithms", 2nd ed., §3.1, eq. 3.5). The float64 computation of the same float32
inputs is within gamma_n(2^-53), 2^29 times less, so it stands in for the exact sum; and
sum_i |x_i y_i| is the same linear map applied to |x| and |y| in float64. The bound holds for
every CPU and kernel, so a test built on it fails only for a wrong result, never for an
unlucky order.
"""
import torch

__all__ = ["UNIT_ROUNDOFF", "gamma", "assert_within_rounding"]

UNIT_ROUNDOFF = 2.0 ** -24


def gamma(length: int) -> float:
    """gamma_n of a float32 reduction of ``length`` terms."""
    return length * UNIT_ROUNDOFF / (1 - length * UNIT_ROUNDOFF)


def assert_within_rounding(name: str, computed: torch.Tensor, exact: torch.Tensor, abs_terms: torch.Tensor,
                           length: int, *, extra_roundings: float = 0.0) -> None:
    """Assert |computed - exact| <= (gamma_length + extra_roundings * u) * abs_terms elementwise.

    Args:
        computed: the float32 result, any shape.
        exact: the float64 result of the same inputs, same shape.
        abs_terms: sum_i |x_i y_i| per element (the linear map applied to absolute values), float64.
        length: the number of terms n of each element's reduction (products, plus 1 for a bias).
        extra_roundings: roundings beyond the reduction, in units of u (e.g. a transform's).
    """
    assert computed.shape == exact.shape == abs_terms.shape, (name, computed.shape, exact.shape)
    bound = (gamma(length) + extra_roundings * UNIT_ROUNDOFF) * abs_terms
    error = (computed.double() - exact).abs()
    worst = (error / bound.clamp_min(torch.finfo(torch.float64).tiny)).max().item()
    assert bool((error <= bound).all()), f"{name}: error up to {worst:.3g} times the rounding bound"
