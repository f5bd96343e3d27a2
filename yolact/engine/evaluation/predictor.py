"""Inference on pictures: one image, a folder of images, a video file or a webcam.

Each ``run_on_*`` function returns one record per processed picture (or frame):
``{"file_name": str, "height": int, "width": int, "frame": int (videos only),
"detections": [COCO result dicts]}``, where each detection has ``bbox`` [x, y, w, h] float
pixels, ``score``, ``segmentation`` (compressed RLE, counts str), ``category_id`` = label + 1
(contiguous, 1-based; :func:`write_detections_json` maps it to json ids) and
``category_name``. Records hold every detection of the post-processor; ``score_threshold``
and ``top_k`` only choose what is drawn.
"""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from yolact.engine.evaluation.coco_results import detections_to_coco_results, to_numpy, write_json_atomic
from yolact.engine.evaluation.inference import predict_batch
from yolact.errors import YolactError
from yolact.utils.image_io import read_image
from yolact.utils.output_folders import write_error
from yolact.utils.progress import progress_bar
from yolact.utils.video import LiveWindow, VideoSink, frame_rate, open_video, read_frames
from yolact.utils.visualize import draw_detections, select_for_display

__all__ = ["IMAGE_EXTENSIONS", "predict_image", "run_on_image", "run_on_folder", "run_on_video",
           "write_detections_json"]

logger = logging.getLogger("yolact")

# File extensions read as pictures in a folder (what cv2.imread decodes).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pbm", ".pgm", ".ppm")


def predict_image(model: torch.nn.Module, postprocessor, image_bgr: np.ndarray, *, input_size: int,
                  device: torch.device, mask_format: str = "bool",
                  amp: str = "off") -> Dict[str, Any]:
    """Detections of one picture at its own size.

    Args:
        image_bgr: uint8 (H, W, 3) BGR, as ``cv2.imread`` gives it.
        input_size: the square network input S (the eval transform resizes to S x S).
        mask_format: "bool" (masks bool (K, H, W)) or "rle" (a list of K RLE dicts).
    Returns:
        numpy ``boxes`` float32 (K, 4) xyxy pixels, ``labels`` int64 (K,) 0-based, ``scores``
        float32 (K,), ``masks`` as asked, ``mask_scores`` float32 (K,) when the post-processor
        re-scores masks (YOLACT++, maskness). The model runs in eval mode (its mode is restored).
    """
    from yolact.data.transforms import eval_transform

    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) BGR image, got {image_bgr.dtype} {image_bgr.shape}")
    image = eval_transform(image_bgr, input_size)[None]  # (1, 3, S, S)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            detections = predict_batch(model, postprocessor, image, [tuple(image_bgr.shape[:2])],
                                       device=device, mask_format=mask_format, amp=amp)[0]
    finally:
        model.train(was_training)
    result = {"boxes": to_numpy(detections["boxes"]).astype(np.float32).reshape(-1, 4),
              "labels": to_numpy(detections["labels"]).astype(np.int64).reshape(-1),
              "scores": to_numpy(detections["scores"]).astype(np.float32).reshape(-1)}
    if detections.get("mask_scores") is not None:  # re-scored masks (YOLACT++, maskness)
        result["mask_scores"] = to_numpy(detections["mask_scores"]).astype(np.float32).reshape(-1)
    if detections.get("masks") is not None:
        masks = detections["masks"]
        result["masks"] = list(masks) if mask_format == "rle" else to_numpy(masks).astype(bool)
    return result


def _drawn(image_bgr: np.ndarray, detections: Dict[str, Any], class_names: Sequence[str],
           score_threshold: float, top_k: Optional[int],
           draw_options: Optional[Dict[str, Any]] = None) -> np.ndarray:
    """Draw the chosen detections, decoding only their RLE masks (memory stays small).

    With YOLACT++ re-scoring the mask scores choose, order and label what is drawn, as the
    reference's. ``draw_options``: keyword arguments of :func:`draw_detections` (``draw_boxes``,
    ``draw_text``, ``draw_scores``, ``alpha``)."""
    scores = detections.get("mask_scores", detections["scores"])
    chosen = select_for_display(scores, score_threshold=score_threshold, top_k=top_k)
    shown = {key: detections[key][chosen] for key in ("boxes", "labels")}
    shown["scores"] = scores[chosen]
    if "masks" in detections and len(chosen):
        rles = [detections["masks"][i] for i in chosen]
        shown["masks"] = mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)  # (H, W, K') -> (K', H, W)
    return draw_detections(image_bgr, shown, class_names, score_threshold=-np.inf, **(draw_options or {}))


def _record(file_name: str, image_bgr: np.ndarray, detections: Dict[str, Any], class_names: Sequence[str],
            frame: Optional[int] = None) -> Dict[str, Any]:
    entries = detections_to_coco_results(detections, image_id=0, category_ids=None)
    for entry in entries:
        del entry["image_id"]
        label = entry["category_id"] - 1
        entry["category_name"] = class_names[label] if label < len(class_names) else f"class {label}"
    record = {"file_name": file_name, "height": int(image_bgr.shape[0]), "width": int(image_bgr.shape[1])}
    if frame is not None:
        record["frame"] = frame
    record["detections"] = entries
    return record


@dataclass(frozen=True)
class _Job:
    """What every picture of a run shares: the model, its post-processor and the drawing options."""

    model: torch.nn.Module
    postprocessor: Any
    input_size: int
    device: torch.device
    class_names: Sequence[str]
    score_threshold: float
    top_k: Optional[int]
    amp: str
    draw_options: Optional[Dict[str, Any]] = None

    def process(self, image_bgr: np.ndarray, name: str, *, draw: bool, frame: Optional[int] = None):
        """-> (record, drawn picture or None) of one picture."""
        detections = predict_image(self.model, self.postprocessor, image_bgr, input_size=self.input_size,
                                   device=self.device, mask_format="rle", amp=self.amp)
        drawn = None
        if draw:
            drawn = _drawn(image_bgr, detections, self.class_names, self.score_threshold, self.top_k,
                           self.draw_options)
        return _record(name, image_bgr, detections, self.class_names, frame), drawn


def _read_image(path: Path) -> Optional[np.ndarray]:
    return read_image(path, cv2.IMREAD_COLOR)


def _write_image(path: Path, image_bgr: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(path.parent, error) from None
    try:
        written = cv2.imwrite(str(path), image_bgr)
    except cv2.error:
        written = False
    if not written:
        raise YolactError(f"{path}: cannot write the picture (unknown extension or unwritable folder)")


def run_on_image(in_path: Path, out_path: Optional[Path], *, model, postprocessor, input_size: int,
                 device: torch.device, class_names: Sequence[str], score_threshold: float = 0.0,
                 top_k: Optional[int] = None,
                 amp: str = "off", draw_options: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Detect on the picture ``in_path``, draw the result to ``out_path`` (if given).

    Returns a one-record list (see the module docstring). An unreadable picture raises
    YolactError naming it.
    """
    in_path = Path(in_path)
    image_bgr = _read_image(in_path)
    if image_bgr is None:
        raise YolactError(f"{in_path}: cannot read this image (missing file or unknown format)")
    job = _Job(model, postprocessor, input_size, device, class_names, score_threshold, top_k, amp, draw_options)
    record, drawn = job.process(image_bgr, in_path.name, draw=out_path is not None)
    if out_path is not None:
        _write_image(Path(out_path), drawn)
    return [record]


def _folder_images(in_dir: Path) -> List[Path]:
    if not in_dir.is_dir():
        raise YolactError(f"{in_dir}: image folder not found")
    paths = sorted(p for p in in_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise YolactError(f"{in_dir}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
    return paths


def _output_names(paths: List[Path]) -> Dict[Path, str]:
    """``a.jpg`` -> ``a.png``; where two inputs share a stem (a.jpg, a.bmp): ``a_jpg.png``, ``a_bmp.png``."""
    stems: Dict[str, int] = {}
    for path in paths:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    return {path: (f"{path.stem}.png" if stems[path.stem] == 1 else f"{path.stem}_{path.suffix[1:]}.png")
            for path in paths}


def run_on_folder(in_dir: Path, out_dir: Optional[Path], *, model, postprocessor, input_size: int,
                  device: torch.device, class_names: Sequence[str], score_threshold: float = 0.0,
                  top_k: Optional[int] = None, amp: str = "off",
                  progress: bool = True, draw_options: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Detect on every picture of ``in_dir`` (sorted by name, not recursive).

    Each readable picture gives a record and, when ``out_dir`` is given, a PNG drawing named
    after it there. A file that cannot be decoded is skipped with a warning naming it.
    Raises YolactError for a missing folder, a folder without pictures, when no picture can
    be read, or when ``out_dir`` is ``in_dir`` (the drawings would overwrite the inputs).
    """
    in_dir = Path(in_dir)
    paths = _folder_images(in_dir)
    if out_dir is not None and Path(out_dir).resolve() == in_dir.resolve():
        raise YolactError(f"{out_dir}: the output folder must differ from the input folder")
    names = _output_names(paths)
    job = _Job(model, postprocessor, input_size, device, class_names, score_threshold, top_k, amp, draw_options)
    records: List[Dict[str, Any]] = []
    for path in progress_bar(iterable=paths, desc="images", unit="img", disable=not progress):
        image_bgr = _read_image(path)
        if image_bgr is None:
            logger.warning(f"{path}: cannot read this image, skipped")
            continue
        record, drawn = job.process(image_bgr, path.name, draw=out_dir is not None)
        if out_dir is not None:
            _write_image(Path(out_dir) / names[path], drawn)
        records.append(record)
    if not records:
        raise YolactError(f"{in_dir}: none of the {len(paths)} image files could be read")
    return records


def run_on_video(source: Union[str, Path, int], out_path: Optional[Path], *, model, postprocessor,
                 input_size: int, device: torch.device, class_names: Sequence[str],
                 score_threshold: float = 0.0, top_k: Optional[int] = None,
                 amp: str = "off", max_frames: Optional[int] = None,
                 progress: bool = True, draw_options: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Detect frame by frame on a video file or a webcam index (int).

    With ``out_path`` the drawn frames go to an mp4 (mp4v) at the source's frame rate;
    without it they are shown in a window (q or Esc stops). Stops at the end of the stream or
    after ``max_frames``. Returns one record per frame (``frame`` counts from 0).
    """
    capture = open_video(source)
    name = f"webcam{source}" if isinstance(source, int) else Path(source).name
    sink = VideoSink(Path(out_path), frame_rate(capture)) if out_path is not None else None
    window = LiveWindow(f"YOLACT {name}") if out_path is None else None
    job = _Job(model, postprocessor, input_size, device, class_names, score_threshold, top_k, amp, draw_options)
    frames = progress_bar(iterable=read_frames(capture), desc="frames", unit="frame", disable=not progress)
    records: List[Dict[str, Any]] = []
    try:
        for index, frame in enumerate(frames):
            if max_frames is not None and index >= max_frames:
                break
            record, drawn = job.process(frame, name, draw=True, frame=index)
            records.append(record)
            if sink is not None:
                sink.write(drawn)
            elif not window.show(drawn):
                break
    finally:
        capture.release()
        if sink is not None:
            sink.close()
        if window is not None:
            window.close()
    if not records:
        raise YolactError(f"{source}: the video has no readable frame")
    return records


def write_detections_json(path: Path, records: List[Dict[str, Any]], *,
                          category_ids: Optional[Sequence[int]] = None,
                          class_names: Optional[Sequence[str]] = None) -> Path:
    """Write records as a COCO-style json: ``images``, ``categories``, ``annotations``.

    ``images`` get ids 1..N in record order (with ``file_name``, ``height``, ``width`` and
    ``frame`` for videos); ``annotations`` are the detections with ``image_id``, ``score``,
    ``area`` (mask pixels) and ``iscrowd`` 0, so ``COCO(path)`` loads the file and
    ``annotations`` can go to ``COCO.loadRes``. ``category_ids`` maps label i to the json id
    (None keeps label + 1); category names come from ``class_names`` or from the records.
    """
    names: Dict[int, str] = dict(enumerate(class_names)) if class_names is not None else {}
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        images.append({"id": image_id, **{k: v for k, v in record.items() if k != "detections"}})
        for entry in record["detections"]:
            label = entry["category_id"] - 1
            names.setdefault(label, entry.get("category_name", f"class {label}"))
            annotation = dict(entry, id=len(annotations) + 1, image_id=image_id, iscrowd=0,
                              category_id=int(category_ids[label]) if category_ids is not None else label + 1)
            annotation.pop("category_name", None)
            has_mask = "segmentation" in entry
            annotation["area"] = (float(mask_utils.area(entry["segmentation"])) if has_mask
                                  else entry["bbox"][2] * entry["bbox"][3])
            annotations.append(annotation)
    labels = range(len(category_ids)) if category_ids is not None else sorted(names)
    categories = [{"id": int(category_ids[i]) if category_ids is not None else i + 1,
                   "name": names.get(i, f"class {i}")} for i in labels]
    content = {"images": images, "categories": categories, "annotations": annotations}
    return write_json_atomic(Path(path), content)
