"""The typed configuration schema: every key YOLACT reads, with its default and meaning.

Defaults are those of the reference's ``yolact_base_config`` (SPEC §0, §8): ResNet-101-FPN at
550 on COCO 2017. YAML files in ``configs/`` override them (see ``yolact/config.py``).
"""
from dataclasses import dataclass, field
from typing import Literal, Optional, Tuple, Union

__all__ = [
    "BackboneConfig", "ModelConfig", "LossConfig", "PostprocessConfig", "AugmentConfig",
    "DataConfig", "TrainConfig", "Config",
]


@dataclass(frozen=True)
class BackboneConfig:
    # residual block type: "bottleneck" (ResNet-50/101) or "basic" (ResNet-18/34)
    block: Literal["bottleneck", "basic"] = "bottleneck"
    # blocks per stage, as torchvision's ResNet(block, layers); [3, 4, 23, 3] is ResNet-101
    layers: Tuple[int, ...] = (3, 4, 23, 3)
    # "imagenet" (torchvision weights, or the file in weights/), a local .pth path, or null
    pretrained: Optional[str] = "imagenet"
    # YOLACT++: per stage, how many of its last blocks may have a deformable (DCNv2) 3x3 conv;
    # the first block of a stage is deformable when the count reaches the stage's block count
    # (the reference's rule). yolact_plus_base: [0, 4, 23, 3]; all zeros: plain YOLACT
    dcn_layers: Tuple[int, ...] = (0, 0, 0, 0)
    # YOLACT++: among those blocks, every dcn_interval-th one is deformable (yolact_plus_base: 3)
    dcn_interval: int = 1


@dataclass(frozen=True)
class ModelConfig:
    # the ResNet that produces C3, C4, C5
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    # foreground classes; null takes the number of categories of the training json
    num_classes: Optional[int] = None
    # images are resized to input_size x input_size (no aspect-ratio preservation, SPEC §8)
    input_size: int = 550
    # channels of the FPN levels P3-P7
    fpn_channels: int = 256
    # channels of the protonet's 3x3 convs
    proto_channels: int = 256
    # channels of the prediction head's shared 3x3 "upfeature" conv
    head_channels: int = 256
    # number of prototype masks k
    num_prototypes: int = 32
    # anchor side in input pixels for P3..P7 (one scale per level)
    anchor_scales: Tuple[int, ...] = (24, 48, 96, 192, 384)
    # anchor aspect ratios per cell, in this order (SPEC §4)
    anchor_aspect_ratios: Tuple[float, ...] = (1.0, 0.5, 2.0)
    # reference quirk kept by default: anchors are square whatever the aspect ratio (SPEC §4)
    use_square_anchors: bool = True
    # anchor scales per level: n scales scale * 2**(j/n), j = 0..n-1 (YOLACT++: 3, 9 anchors per cell)
    anchor_octave_scales: int = 1
    # YOLACT++: add the mask-IoU head (loss.maskiou_weight, postprocess.rescore_mask)
    use_maskiou: bool = False
    # channels of the mask-IoU head's 3x3 stride-2 convs (a 1x1 conv to the classes follows)
    maskiou_channels: Tuple[int, ...] = (8, 16, 32, 64, 128)
    # checkpoint (ours or the reference's) that initialises training; layers of another class
    # count are re-initialised (fine-tuning). null: backbone.pretrained only
    init_weights: Optional[str] = None


@dataclass(frozen=True)
class LossConfig:
    # anchors with IoU >= this with a GT box are positives
    pos_iou_threshold: float = 0.5
    # anchors with best IoU < this are background; in between they are neutral
    neg_iou_threshold: float = 0.4
    # non-positive anchors covered by a crowd box above this intersection-over-anchor are neutral
    crowd_iou_threshold: float = 0.7
    # OHEM: hardest negatives kept per positive
    negpos_ratio: int = 3
    # hardest negatives for an image without objects (the 3:1 rule would give it none)
    negatives_per_empty_image: int = 32
    # at most this many positives per image train the mask branch (random subset)
    masks_to_train: int = 100
    # weight of the classification term
    cls_weight: float = 1.0
    # weight of the box regression term
    box_weight: float = 1.5
    # weight of the mask term
    mask_weight: float = 6.125
    # weight of the semantic segmentation term
    semseg_weight: float = 1.0
    # weight of YOLACT++'s mask-IoU term (only with model.use_maskiou; the reference's maskiou_alpha)
    maskiou_weight: float = 25.0
    # the mask-IoU term leaves out positives whose GT mask has at most this many prototype pixels
    maskiou_min_gt_area: float = 25.0


@dataclass(frozen=True)
class PostprocessConfig:
    # candidates need a class score above this (strict) to enter NMS
    conf_threshold: float = 0.05
    # IoU above which a lower-scored box of the same class is suppressed
    nms_threshold: float = 0.5
    # candidates per class kept before NMS
    top_k: int = 200
    # detections kept per image after NMS
    max_detections: int = 100
    # "fast" (per-class Fast NMS), "cross_class" (Fast NMS over all classes) or "standard"
    nms: Literal["fast", "cross_class", "standard"] = "fast"
    # mask probability above which a pixel belongs to the instance
    mask_threshold: float = 0.5
    # what is resized bilinearly to the image: "probability" (the reference's) or "logit" (the
    # logits prototypes @ coeffs; a pixel is on where the sigmoid of its resized logit is above
    # mask_threshold: sharper edges between prototype pixels)
    mask_interpolation: Literal["probability", "logit"] = "probability"
    # also cut each full-size mask at its box at the image's resolution (the reference crops only
    # at prototype resolution, before the resize, so small masks spill past their boxes)
    crop_at_image_size: bool = False
    # mask_scores = score * the mean soft-mask probability over its pixels above mask_threshold
    # (SOLOv2's "maskness"): COCO's "segm" results rank the masks by it
    maskness_rescore: bool = False
    # YOLACT++ (needs model.use_maskiou): mask_scores = score * predicted mask IoU per detection
    rescore_mask: bool = False


@dataclass(frozen=True)
class AugmentConfig:
    # random brightness, contrast, saturation and hue (SPEC §8 step 3)
    photometric: bool = True
    # random zoom-out onto a mean-filled canvas up to 4x
    expand: bool = True
    # random sample crop (reference behaviour: no IoU constraint)
    random_crop: bool = True
    # random horizontal flip
    mirror: bool = True
    # ground-truth boxes narrower or shorter than this many input pixels are dropped
    min_box_size: float = 4.0
    # scale jitter [low, high]: the canvas is resized to r*S (r ~ U(low, high)) and an S x S window
    # is cut (r > 1) or padded with the mean (r < 1), in place of the plain resize; null: off
    scale_jitter: Optional[Tuple[float, ...]] = None
    # probability of a mosaic of the image and three random others, each resized to S, around a
    # random centre (yolact/data/mosaic.py); 0: off
    mosaic_prob: float = 0.0
    # probability of pasting objects of a random other image on top (yolact/data/copy_paste.py); 0: off
    copy_paste_prob: float = 0.0
    # the last fraction of the (planned) iterations trains without the mosaic and the copy-paste,
    # on images as the evaluation sees them (Ultralytics' close_mosaic, as a fraction); 0: mixed to the end
    close_mosaic_fraction: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    # folder with the training images
    train_images: str = "data/coco/train2017"
    # COCO-format instances json of the training set
    train_annotations: str = "data/coco/annotations/instances_train2017.json"
    # folder with the validation images
    val_images: str = "data/coco/val2017"
    # COCO-format instances json of the validation set
    val_annotations: str = "data/coco/annotations/instances_val2017.json"
    # make the synthetic shapes dataset at data/shapes when it is missing
    make_shapes: bool = False
    # keep images without objects as background-only training images
    keep_empty: bool = False
    # training-time augmentation switches
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # DataLoader worker processes, or "auto": none when training on a CPU (the loading then runs in
    # the training process, between steps, instead of competing with torch's threads for the
    # cores; yolact/data/workers.py), on a GPU min(4, its CPUs - 1) per training process
    num_workers: Union[int, Literal["auto"]] = 4
    # pin host memory for faster copies to the GPU
    pin_memory: bool = True
    # images leave the loaders as uint8 and are normalised on the device: 4x less data through
    # workers and to the GPU; pixels are rounded to integers (and photometric values clipped to
    # [0, 255]), see yolact/data/uint8_images.py; false keeps the reference's float path
    uint8_images: bool = False
    # keep workers alive between epochs
    persistent_workers: bool = True
    # keep the training images and masks decoded in memory after their first use (as Ultralytics'
    # cache=ram; each worker holds its own copy); skipped with a warning when they would take
    # over half the available memory
    cache: bool = False


@dataclass(frozen=True)
class TrainConfig:
    # images per iteration over all devices
    batch_size: int = 8
    # base learning rate at batch_size 8
    lr: float = 1e-3
    # SGD momentum (AdamW's beta1)
    momentum: float = 0.9
    # weight decay (applied to every parameter, as the reference, unless no_decay_norm_bias)
    weight_decay: float = 5e-4
    # learning rate at iteration 0 of the linear warmup
    warmup_init_lr: float = 1e-4
    # iterations of linear warmup
    warmup_iters: int = 500
    # warmup as a fraction of the training length (of the planned length with train.time);
    # null: train.warmup_iters
    warmup_fraction: Optional[float] = None
    # iterations at which the learning rate is multiplied by gamma
    lr_steps: Tuple[int, ...] = (280000, 600000, 700000, 750000)
    # learning-rate decay factor at each step
    gamma: float = 0.1
    # total training iterations
    max_iter: int = 800000
    # after warmup: "step" (x gamma at each lr_step, the reference), "cosine" or "linear" decay
    # from lr to lr * final_lr_ratio at the last iteration
    lr_schedule: Literal["step", "cosine", "linear"] = "step"
    # the last iteration's lr of the cosine and linear schedules, as a fraction of lr
    final_lr_ratio: float = 0.01
    # time budget in minutes (null: off). After a few measured iterations the run plans its
    # length so that training plus the final evaluation end inside it; max_iter, warmup_iters,
    # lr_steps, val_interval and save_interval are then read as fractions of max_iter and
    # scaled to the planned length (yolact/engine/train/time_budget.py)
    time: Optional[float] = None
    # with train.time: candidate input sizes in px (empty: model.input_size as set). One of them
    # replaces model.input_size: the smallest where the training set's median object spans
    # time_object_px pixels, among those at which the budget still trains time_min_epochs epochs
    # of the training set (timed on a few synthetic steps of each), else the largest of those;
    # the smallest when none does (yolact/engine/train/input_size_choice.py)
    time_input_sizes: Tuple[int, ...] = ()
    # the epochs of the training set that a size of time_input_sizes must leave time for
    time_min_epochs: float = 40.0
    # the median object's side in px at which a larger size of time_input_sizes stops paying
    # (null: the largest size the budget affords)
    time_object_px: Optional[float] = 32.0
    # "sgd" (momentum, the reference) or "adamw" (betas (momentum, 0.999), decoupled weight decay)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    # no weight decay on normalisation weights and on biases (the reference decays every parameter)
    no_decay_norm_bias: bool = False
    # decay of an exponential moving average of the weights, used by validation, best.pth, eval.py
    # and export (the raw weights stay in the checkpoint for resuming); null: off
    ema_decay: Optional[float] = None
    # the EMA's decay ramps up as ema_decay * (1 - exp(-updates / ema_tau)); 0: no ramp
    ema_tau: float = 2000.0
    # scale lr, lr_steps and max_iter by batch_size / 8 like the reference
    autoscale: bool = True
    # BatchNorm is frozen when the per-device batch is below this (the reference uses 6)
    freeze_bn_below: int = 6
    # mixed precision: "auto" (bf16 on GPUs that support it, else fp16; on a CPU bf16 where it has
    # AMX for bf16, about 2x faster there, else off), "off" (fp32, the reference's), "bf16" or
    # "fp16" (with a GradScaler)
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    # clip the gradient norm to this value; null disables clipping
    grad_clip: Optional[float] = None
    # iterations between checkpoints
    save_interval: int = 10000
    # keep only the newest N periodic iter_*.pth checkpoints (0 keeps all; best.pth and last.pth
    # are always kept)
    keep_checkpoints: int = 5
    # iterations between validations (0 disables; about 2 COCO epochs at batch 8)
    val_interval: int = 29316
    # validate on at most this many val images (null: all)
    val_max_images: Optional[int] = 5000
    # validation images drawn with their predictions into TensorBoard
    val_visualize: int = 4
    # stop after this many non-finite losses in a row
    max_nonfinite: int = 10
    # seed of every random number generator
    seed: int = 0
    # iterations between log lines, metrics.csv rows and TensorBoard scalars
    log_interval: int = 20
    # write plots (results.png, PR/F1 curves, confusion matrix, labels.jpg, validation pictures)
    # to the run's plots/ folder at each validation and at the end
    plots: bool = True
    # "auto" (cuda when available), "cpu", "cuda" or "cuda:N"
    device: str = "auto"
    # run the network in channels_last memory format (true: on CPU the fp32 backward of k>1 convs
    # runs in NCHW, as measured for ResNet-50 at 550 on an AVX2 EPYC; see
    # yolact/optimize/nchw_backward_conv.py); "auto": plain channels_last on a CPU (a small.yaml
    # step 1.16x faster in fp32 with AVX-512 kernels, 1.07x with AVX2 ones, 1.34x in bf16 with
    # AMX), off on a GPU
    channels_last: Union[bool, Literal["auto"]] = False
    # CPU threads for intra-op parallelism (null: torch's default)
    num_threads: Optional[int] = None
    # on a CPU with glibc, keep freed memory in the process for the next step instead of mapping
    # fresh pages for every large tensor (yolact/utils/cpu_allocator.py; 1.06x faster steps at 192 px)
    reuse_cpu_memory: bool = True
    # parent folder of the run folders
    output_dir: str = "runs"


@dataclass(frozen=True)
class Config:
    # the network
    model: ModelConfig = field(default_factory=ModelConfig)
    # the training criterion
    loss: LossConfig = field(default_factory=LossConfig)
    # inference: NMS and mask assembly
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    # datasets and loading
    data: DataConfig = field(default_factory=DataConfig)
    # the training schedule and loop
    train: TrainConfig = field(default_factory=TrainConfig)
