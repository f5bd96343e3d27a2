"""channels_last training on CPU: forward in channels_last, 3x3 (and larger) backward in NCHW.

On AVX2 CPUs oneDNN's channels_last kernels run YOLACT's 1x1 convolutions about 2x faster
than NCHW, forward and backward, and its 3x3 forward 10-20% faster, but its channels_last 3x3
backward is 23-58% slower (measured on a 2-core EPYC, 256 channels at 69x69 and 138x138). A
channels_last model therefore trained 6-18% slower per step than a contiguous one. Computing
only the backward of the k>1 convolutions in NCHW (converting the saved input and the incoming
gradient, and the gradients back) keeps the forward gains and loses none of the backward:
R50 550 batch 2 measured 5.55 s per step against 5.78 s contiguous and 6.39 s channels_last.

Numerically this is the same convolution: forward outputs are bit-identical, gradients differ
from channels_last's by rounding (the kernels sum in another order).

Whether channels_last training pays depends on the CPU and the model, so ``train.channels_last``
is off in the reference's configs and this table says where to turn it on (R50 550 batch 2,
step time against contiguous):
| CPU (2 cores) | channels_last with this backward |
|---|---|
| AMD EPYC, AVX2 | 1.00x (1.02x, 1.04x in other runs); plain channels_last 0.90x |
| Intel Xeon, AVX-512 without AVX-512-BF16 (issue 17) | 0.95x: leave it off |
| Intel Xeon with AMX, fp32: AVX-512 kernels / AVX2 kernels (ONEDNN_MAX_CPU_ISA=AVX2) | 0.99x / 0.97x; plain channels_last 1.20x / 0.93x |

``train.channels_last: true`` uses this backward on CPU in fp32. ``"auto"`` (small.yaml) uses
plain channels_last instead: for small.yaml's ResNet-10-sized model at 192 px plain channels_last
is faster on every kernel set measured (fp32 1.16x with AVX-512 kernels, 1.07x with AVX2 ones,
where this backward gives 0.96x to 0.99x), its 64-channel layers gaining most (the stem's max
pooling alone takes 12 ms of a 300 ms step in NCHW, under 3.2 ms in channels_last).

Under autocast the ordinary convolution runs, forward and backward in channels_last: with bf16 on
a Xeon with AMX, a small.yaml step at 192 px takes 124 ms in channels_last against 167 ms
contiguous (1.34x), which is why ``train.channels_last: auto`` turns it on for bf16 on a CPU.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NCHWBackwardConv2d", "use_nchw_backward_convs", "to_channels_last_for_training"]


class _ConvWithNCHWBackward(torch.autograd.Function):
    """conv2d whose input and weight gradients are computed on NCHW-contiguous copies."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        nchw = torch.contiguous_format
        grad_input, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad_output.contiguous(memory_format=nchw), x.contiguous(memory_format=nchw),
            weight.contiguous(memory_format=nchw), [weight.shape[0]] if ctx.has_bias else None,
            list(stride), list(padding), list(dilation), False, [0, 0], 1, wanted)
        if grad_input is not None:
            grad_input = grad_input.contiguous(memory_format=_format_of(x))
        if grad_weight is not None:
            grad_weight = grad_weight.contiguous(memory_format=_format_of(weight))
        return grad_input, grad_weight, grad_bias, None, None, None


def _format_of(tensor: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if tensor.is_contiguous(memory_format=torch.channels_last) \
        and not tensor.is_contiguous() else torch.contiguous_format


class NCHWBackwardConv2d(nn.Module):
    """Drop-in for an ungrouped ``nn.Conv2d`` with a kernel larger than 1x1 (same ``weight`` and
    ``bias`` names, so state_dicts are unchanged).

    forward(x [N, C_in, H, W]) -> [N, C_out, H', W']: exactly ``conv(x)``. When x is a
    channels_last float32 CPU tensor that needs a gradient and autocast is off, the backward
    runs in NCHW; otherwise it is the ordinary convolution in every respect.

    Args:
        conv: the convolution to replace; its parameters are shared, not copied.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not _is_candidate(conv):
            raise ValueError(f"not an ungrouped zero-padded convolution larger than 1x1: {conv}")
        self.weight = conv.weight
        self.bias = conv.bias
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size: Tuple[int, int] = conv.kernel_size
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, backward in NCHW")

    def _takes_nchw_backward(self, x: torch.Tensor) -> bool:
        return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.is_grad_enabled()
                and not torch.is_autocast_enabled("cpu") and x.dim() == 4 and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._takes_nchw_backward(x):
            return _ConvWithNCHWBackward.apply(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


def _is_candidate(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.groups == 1 and conv.kernel_size != (1, 1)
            and isinstance(conv.padding, tuple) and conv.padding_mode == "zeros")


def use_nchw_backward_convs(model: nn.Module) -> int:
    """Replace each ungrouped k>1 ``nn.Conv2d`` of ``model`` by an ``NCHWBackwardConv2d``, in
    place; returns the number replaced."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _is_candidate(child):
                setattr(parent, name, NCHWBackwardConv2d(child))
                replaced += 1
    return replaced


def to_channels_last_for_training(model: nn.Module, device: torch.device, *, nchw_backward: bool = True) -> int:
    """Put ``model`` (already on ``device``) in channels_last for training, in place; on CPU with
    ``nchw_backward`` also move the k>1 convolution backward to NCHW (see the module docstring).
    Returns the number of convolutions replaced (0 on CUDA, where cuDNN's channels_last kernels
    need no help, and without ``nchw_backward``)."""
    model.to(memory_format=torch.channels_last)
    return use_nchw_backward_convs(model) if nchw_backward and torch.device(device).type == "cpu" else 0
