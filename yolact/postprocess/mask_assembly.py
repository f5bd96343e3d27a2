"""Full-size instance masks from prototypes and coefficients (SPEC §7, ``postprocess``).

For each detection: sigmoid(prototypes @ coeffs), zeroed outside its predicted box (padding 1,
at prototype resolution), resized bilinearly (align_corners=False) to the original image and
thresholded (> 0.5); with ``crop_at_image_size`` (not the reference's) the mask is then cut at
its box again at the image's resolution. With ``interpolate="logit"`` (not the reference's) the
logits prototypes @ coeffs are resized instead of the probabilities, with ``CROPPED_LOGIT``
outside the crop, and compared with the threshold's logit: a pixel is on where the sigmoid of
the resized logit is above the threshold. Detections are processed ``chunk_size`` at a time, so
the float temporaries never hold more than one chunk, and the RLE encoder never holds more than
one chunk of full-size masks.

Two ways to resize, with the same result:
- dense: ``F.interpolate`` of the whole chunk to (h, w), the reference's operation;
- windowed: an output pixel reads a 2x2 neighbourhood of prototype pixels, so it is exactly 0
  unless that neighbourhood meets the mask's crop box; only the window of output pixels that
  can be nonzero is interpolated, with the indices, weights and arithmetic of F.interpolate's
  CPU kernel (bit-identical to it when upsampling on a CPU with FMA; elsewhere the two may
  differ by one float rounding). Much faster on CPU, where most boxes are small next to the
  image: the default on CPU, dense elsewhere.
"""
import math
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils

from yolact.box_ops import crop_masks, crop_window

__all__ = ["LinearTaps", "linear_taps", "mask_probabilities", "mask_logits", "assemble_masks",
           "encode_masks_rle", "CROPPED_LOGIT", "INTERPOLATIONS"]

# The logit of the pixels cropped away when logits are resized: finite, so that the bilinear
# weights never meet an infinity (0 * -inf is NaN), and far below any threshold's logit
# (sigmoid(-30) < 1e-13).
CROPPED_LOGIT = -30.0
# what is resized to the image: "probability" (the reference) or "logit"
INTERPOLATIONS = ("probability", "logit")


class LinearTaps(NamedTuple):
    """Bilinear taps along one axis: output i = weight0[i] * in[index0[i]] + weight1[i] * in[index1[i]]."""
    index0: torch.Tensor  # (out,) int64
    index1: torch.Tensor  # (out,) int64
    weight0: torch.Tensor  # (out,) float
    weight1: torch.Tensor  # (out,) float


def linear_taps(out_size: int, in_size: int, *, device=None, dtype=torch.float32) -> LinearTaps:
    """The taps ``F.interpolate(mode="bilinear", align_corners=False)`` uses along one axis.

    Source coordinate (i + 0.5) * in/out - 0.5, clamped at 0; its floor and the next index
    (clamped to the last pixel) are the taps, the fractional part weighs the second one.
    """
    # Computed on CPU (float64 is not available on every device), then moved.
    scale = torch.tensor(in_size, dtype=dtype) / out_size
    # PyTorch's kernel evaluates scale * (i + 0.5) - 0.5 as one fused multiply-add; in float64
    # the product and the sum are exact, so rounding once to ``dtype`` gives the same value.
    centers = torch.arange(out_size, dtype=torch.float64) + 0.5
    source = (centers * scale.double() - 0.5).to(dtype).clamp_(min=0)
    index0 = source.floor().long().clamp_(max=in_size - 1)
    weight1 = (source - index0).clamp_(0, 1)
    index1 = (index0 + 1).clamp_(max=in_size - 1)
    return LinearTaps(*(tap.to(device) for tap in (index0, index1, 1 - weight1, weight1)))


def _linear_combination(prototypes: torch.Tensor, mask_coeffs: torch.Tensor) -> torch.Tensor:
    """(Hp, Wp, k) prototypes, (n, k) coefficients -> (n, Hp, Wp) logits, prototypes @ coeffs."""
    height, width, num_protos = prototypes.shape
    return (mask_coeffs @ prototypes.reshape(-1, num_protos).T).view(-1, height, width)


def mask_probabilities(prototypes: torch.Tensor, mask_coeffs: torch.Tensor,
                       boxes: torch.Tensor) -> torch.Tensor:
    """Cropped mask probabilities at prototype resolution.

    Args:
        prototypes: (Hp, Wp, k) float.
        mask_coeffs: (n, k) float.
        boxes: (n, 4) xyxy relative, the predicted boxes.
    Returns:
        (n, Hp, Wp) sigmoid(prototypes @ coeffs), 0 outside each box padded by 1 pixel.
    """
    return crop_masks(torch.sigmoid(_linear_combination(prototypes, mask_coeffs)), boxes, padding=1)


def mask_logits(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Cropped mask logits at prototype resolution.

    Args:
        prototypes: (Hp, Wp, k) float.
        mask_coeffs: (n, k) float.
        boxes: (n, 4) xyxy relative, the predicted boxes.
    Returns:
        (n, Hp, Wp) prototypes @ coeffs, ``CROPPED_LOGIT`` outside each box padded by 1 pixel
        (where :func:`mask_probabilities` is 0).
    """
    logits = _linear_combination(prototypes, mask_coeffs)  # (n, Hp, Wp)
    kept = crop_window(boxes, tuple(logits.shape[1:]), padding=1)  # (n, Hp, Wp)
    return torch.where(kept, logits, logits.new_tensor(CROPPED_LOGIT))


def _threshold_logit(threshold: float) -> float:
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"a mask threshold for resized logits must lie strictly between 0 and 1, "
                         f"got {threshold}")
    return math.log(threshold / (1.0 - threshold))


def _soft_masks(interpolate: str):
    """The per-chunk soft masks and the threshold's value in their units."""
    if interpolate == "probability":
        return mask_probabilities, lambda threshold: threshold
    if interpolate == "logit":
        return mask_logits, _threshold_logit
    raise ValueError(f"interpolate must be one of {INTERPOLATIONS}, got {interpolate!r}")


def _paste_dense(dest: torch.Tensor, probabilities: torch.Tensor, threshold: float) -> None:
    """dest (n, h, w) bool <- F.interpolate(probabilities (n, Hp, Wp)) > threshold (or logits
    and the threshold's logit)."""
    resized = F.interpolate(probabilities[None], size=dest.shape[1:], mode="bilinear",
                            align_corners=False)[0]  # (n, h, w)
    torch.gt(resized, threshold, out=dest)


def _support_ranges(low: torch.Tensor, high: torch.Tensor, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """First and last prototype pixel that the crop (padding 1) can leave nonzero, per box.

    ``crop_masks`` keeps pixel c when lo <= c < hi with lo = min(low, high) * size - 1 and
    hi = max(low, high) * size + 1 (clamped); floor(lo) and ceil(hi) bound that from outside.
    """
    low, high = low * size, high * size
    first = (torch.minimum(low, high) - 1).floor().clamp(0, size - 1)
    last = (torch.maximum(low, high) + 1).ceil().clamp(0, size - 1)
    return first.long(), last.long()


def _output_windows(boxes: torch.Tensor, proto_size: Tuple[int, int], taps_y: LinearTaps,
                    taps_x: LinearTaps) -> List[list]:
    """Where each resized mask can be nonzero.

    An output pixel can be nonzero only if one of its taps lies in the prototype pixels its
    box's crop keeps; output i reads index0[i] <= index1[i] <= index0[i] + 1, both
    nondecreasing in i, so those pixels form a window found by binary search.

    Args:
        boxes: (n, 4) xyxy relative, the boxes the masks were cropped with.
    Returns:
        (n, 4) int64 [r0, r1, c0, c1]: output rows r0:r1 and columns c0:c1.
    """
    first_row, last_row = _support_ranges(boxes[:, 1], boxes[:, 3], proto_size[0])
    first_col, last_col = _support_ranges(boxes[:, 0], boxes[:, 2], proto_size[1])
    windows = torch.stack([torch.searchsorted(taps_y.index1, first_row),
                           torch.searchsorted(taps_y.index0, last_row, right=True),
                           torch.searchsorted(taps_x.index1, first_col),
                           torch.searchsorted(taps_x.index0, last_col, right=True)], dim=1)  # (n, 4)
    return windows


def _box_windows(boxes: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
    """(n, 4) int64 [r0, r1, c0, c1]: the image pixels whose centre is in each box,
    x1 <= c + 0.5 < x2 and y1 <= r + 0.5 < y2 (boxes (n, 4) xyxy relative; swapped corners are
    ordered, as ``crop_masks``)."""
    height, width = image_size
    low, high = torch.minimum(boxes[:, :2], boxes[:, 2:]), torch.maximum(boxes[:, :2], boxes[:, 2:])  # (n, 2)
    scale = boxes.new_tensor([width, height])
    # c + 0.5 >= x1 <=> c >= ceil(x1 - 0.5); c + 0.5 < x2 <=> c < ceil(x2 - 0.5) (exact below 2**22 px)
    first, end = (low * scale - 0.5).ceil(), (high * scale - 0.5).ceil()  # (n, 2) as (x, y)
    limit = scale.long()
    first, end = first.long().clamp(min=0).minimum(limit), end.long().clamp(min=0).minimum(limit)
    return torch.stack([first[:, 1], end[:, 1], first[:, 0], end[:, 0]], dim=1)


def _inside_windows(windows: torch.Tensor, image_size: Tuple[int, int]) -> torch.Tensor:
    """(n, h, w) bool: pixel (r, c) lies in window i (n x [r0, r1, c0, c1])."""
    rows = torch.arange(image_size[0], device=windows.device)
    cols = torch.arange(image_size[1], device=windows.device)
    inside_y = (rows >= windows[:, :1]) & (rows < windows[:, 1:2])  # (n, h)
    inside_x = (cols >= windows[:, 2:3]) & (cols < windows[:, 3:4])  # (n, w)
    return inside_y[:, :, None] & inside_x[:, None, :]


def _paste_windowed(dest: torch.Tensor, probabilities: torch.Tensor, boxes: torch.Tensor,
                    taps_y: LinearTaps, taps_x: LinearTaps, threshold: float,
                    crop_at_image_size: bool) -> None:
    """dest (n, h, w) bool, all False on entry <- the same as :func:`_paste_dense`, window by window
    (with ``crop_at_image_size``, each window narrowed to its box's pixels). Outside its window an
    output pixel reads only cropped pixels (probability 0, or ``CROPPED_LOGIT``), below any
    threshold."""
    windows = _output_windows(boxes, probabilities.shape[1:], taps_y, taps_x)
    if crop_at_image_size:
        in_box = _box_windows(boxes, dest.shape[1:])
        starts = torch.maximum(windows[:, 0::2], in_box[:, 0::2])  # (n, 2): r0, c0
        ends = torch.minimum(windows[:, 1::2], in_box[:, 1::2])  # (n, 2): r1, c1
        windows = torch.stack([starts[:, 0], ends[:, 0], starts[:, 1], ends[:, 1]], dim=1)
    threshold = probabilities.new_tensor(threshold)  # a tensor spares a scalar conversion per mask
    for mask, mask_dest, window in zip(probabilities, dest, windows.tolist()):
        row_start, row_end, col_start, col_end = window
        if row_end <= row_start or col_end <= col_start:
            continue
        rows, cols = slice(row_start, row_end), slice(col_start, col_end)
        # Along x, then along y, each as w0 * a fused onto w1 * b: the arithmetic of
        # F.interpolate's CPU kernel (bit-identical to it when upsampling on an FMA CPU).
        along_x = torch.addcmul(mask.index_select(1, taps_x.index1[cols]) * taps_x.weight1[cols],
                                mask.index_select(1, taps_x.index0[cols]), taps_x.weight0[cols])  # (Hp, c)
        resized = torch.addcmul(along_x.index_select(0, taps_y.index1[rows]) * taps_y.weight1[rows],
                                along_x.index_select(0, taps_y.index0[rows]), taps_y.weight0[rows])
        torch.gt(resized, threshold, out=mask_dest[rows, cols])


def _chunks(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, boxes: torch.Tensor,
            chunk_size: int, soft_masks=mask_probabilities) -> Iterator[Tuple[slice, torch.Tensor]]:
    for start in range(0, mask_coeffs.shape[0], chunk_size):
        part = slice(start, min(start + chunk_size, mask_coeffs.shape[0]))
        yield part, soft_masks(prototypes, mask_coeffs[part], boxes[part])


def _paster(image_size: Tuple[int, int], prototypes: torch.Tensor, threshold: float,
            windowed: Optional[bool], crop_at_image_size: bool = False):
    """A function (dest (n, h, w) bool zeros, probabilities (n, Hp, Wp), boxes (n, 4)) -> None."""
    if windowed is None:
        windowed = prototypes.device.type == "cpu"
    if not windowed:
        def paste_dense(dest: torch.Tensor, probabilities: torch.Tensor, boxes: torch.Tensor) -> None:
            _paste_dense(dest, probabilities, threshold)
            if crop_at_image_size:
                dest &= _inside_windows(_box_windows(boxes, dest.shape[1:]), dest.shape[1:])
        return paste_dense
    height, width = image_size
    proto_height, proto_width, _ = prototypes.shape
    options = {"device": prototypes.device, "dtype": prototypes.dtype}
    taps_y = linear_taps(height, proto_height, **options)
    taps_y = taps_y._replace(weight0=taps_y.weight0[:, None], weight1=taps_y.weight1[:, None])  # weigh rows
    taps_x = linear_taps(width, proto_width, **options)
    return lambda dest, probabilities, boxes: _paste_windowed(dest, probabilities, boxes, taps_y, taps_x,
                                                              threshold, crop_at_image_size)


def assemble_masks(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, boxes: torch.Tensor,
                   image_size: Tuple[int, int], threshold: float = 0.5, chunk_size: int = 16,
                   windowed: Optional[bool] = None, crop_at_image_size: bool = False,
                   interpolate: str = "probability") -> torch.Tensor:
    """Binary full-size masks of K detections.

    Args:
        prototypes: (Hp, Wp, k) float, one image's prototypes.
        mask_coeffs: (K, k) float.
        boxes: (K, 4) xyxy relative to the network input, the predicted boxes.
        image_size: (h, w) of the original image.
        threshold: a pixel is on when its resized probability is > threshold.
        chunk_size: detections per step (bounds the float temporaries).
        windowed: interpolate only around each mask (see the module docstring); None: on CPU.
        crop_at_image_size: also zero every pixel whose centre is outside the box, at the
            image's resolution (as Mask R-CNN pastes its masks in their boxes), so that no mask
            spills past its box by the prototype crop's padding and the bilinear resize.
        interpolate: "probability" (the reference): resize the probabilities; "logit": resize
            the logits, so that a pixel is on where sigmoid(resized logit) > threshold.
    Returns:
        (K, h, w) bool.
    """
    soft_masks, in_units = _soft_masks(interpolate)
    masks = torch.zeros((mask_coeffs.shape[0], *image_size), dtype=torch.bool, device=prototypes.device)
    paste = _paster(image_size, prototypes, in_units(threshold), windowed, crop_at_image_size)
    for part, probabilities in _chunks(prototypes, mask_coeffs, boxes, chunk_size, soft_masks):
        paste(masks[part], probabilities, boxes[part])
    return masks


def encode_masks_rle(prototypes: torch.Tensor, mask_coeffs: torch.Tensor, boxes: torch.Tensor,
                     image_size: Tuple[int, int], threshold: float = 0.5, chunk_size: int = 16,
                     windowed: Optional[bool] = None, crop_at_image_size: bool = False,
                     interpolate: str = "probability") -> List[Dict[str, object]]:
    """The masks of :func:`assemble_masks` as COCO RLEs, encoded one chunk at a time.

    At most ``chunk_size`` full-size masks exist at once, whatever K is.

    Returns:
        K dicts ``{"size": [h, w], "counts": str}`` (pycocotools' compressed RLE, json-ready).
    """
    height, width = image_size
    soft_masks, in_units = _soft_masks(interpolate)
    paste = _paster(image_size, prototypes, in_units(threshold), windowed, crop_at_image_size)
    # Stored (n, w, h) so that the (h, w, n) view pycocotools reads is Fortran-ordered.
    buffer = torch.zeros((min(chunk_size, mask_coeffs.shape[0]), width, height), dtype=torch.bool,
                         device=prototypes.device)
    rles: List[Dict[str, object]] = []
    for part, probabilities in _chunks(prototypes, mask_coeffs, boxes, chunk_size, soft_masks):
        chunk = buffer[:part.stop - part.start]
        chunk.zero_()
        paste(chunk.transpose(1, 2), probabilities, boxes[part])
        fortran = np.asfortranarray(chunk.cpu().permute(2, 1, 0).numpy().view(np.uint8))  # (h, w, n)
        for rle in mask_utils.encode(fortran):
            rles.append({"size": [int(rle["size"][0]), int(rle["size"][1])],
                         "counts": rle["counts"].decode("ascii")})
    return rles
