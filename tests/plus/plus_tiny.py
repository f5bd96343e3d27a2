"""yolact_plus_tiny (the YOLACT++ reference fixture's model) and the fixture's tolerance rule."""
from yolact.modeling.yolact import make_yolact


def make_plus_tiny_yolact():
    """yolact_plus_tiny of the fixture README: Bottleneck [1,1,1,1] with DCN in stages 2-4, 64
    channels, 9 anchors per cell (scales i/550*192 * 2**(j/3), not square), a 4-layer mask-IoU head."""
    return make_yolact(num_classes=80, layers=(1, 1, 1, 1), fpn_channels=64, proto_channels=64,
                       head_channels=64, anchor_scales=[i * 192 / 550 for i in (24, 48, 96, 192, 384)],
                       anchor_octave_scales=3, use_square_anchors=False, dcn_layers=(0, 1, 1, 1),
                       dcn_interval=1, use_maskiou=True, maskiou_channels=(8, 16, 32, 64))


def assert_close_to_max(name, ours, ref, tolerance=1e-4):
    """The fixture's rule for float tensors: max|ours - ref| <= tolerance * max|ref|."""
    assert ours.shape == ref.shape, (name, tuple(ours.shape), tuple(ref.shape))
    error = (ours.detach() - ref).abs().max().item()
    limit = tolerance * ref.abs().max().item()
    assert error <= limit, f"{name}: max abs error {error}, allowed {limit}"
