"""The plots of a run folder (``runs/<name>/plots/``), rewritten at each validation and at the end.

- ``results.png``: the training loss terms, the learning rate and validation AP over iterations
  (from :class:`~yolact.engine.train.metrics_file.MetricsFile`);
- ``PR_curve_mask.png``/``PR_curve_box.png``, ``F1_curve_mask.png``/``F1_curve_box.png`` and
  ``confusion_matrix.png`` of the last validation;
- ``val_<i>.jpg``: validation pictures, ground truth (left) beside predictions (right);
- ``labels.jpg``: the training set's class counts, box centres and sizes (once, at the start).
"""
import logging
from pathlib import Path

import cv2
import numpy as np

from yolact.utils.atomic import atomic_write

__all__ = ["RESULTS_COLUMNS", "write_results_plot", "write_validation_plots", "write_labels_plot"]

logger = logging.getLogger("yolact")

# the panels of results.png, in order (columns of metrics.csv)
RESULTS_COLUMNS = ("loss_total", "loss_cls", "loss_box", "loss_mask", "loss_semseg", "loss_maskiou", "lr",
                   "val/bbox/AP", "val/bbox/AP50", "val/segm/AP", "val/segm/AP50")


def write_results_plot(plots_dir: Path, metrics_file) -> Path:
    """``results.png`` from the rows of ``metrics_file`` (COCOeval's -1 values left out)."""
    from yolact.utils.plots import plot_results

    series = {name: [(i, v) for i, v in metrics_file.series(name) if v != -1.0] for name in RESULTS_COLUMNS}
    return plot_results(series, Path(plots_dir) / "results.png")


def write_validation_plots(plots_dir: Path, result) -> None:
    """PR and F1 curves, the confusion matrix and the pictures of one ``ValidationResult``."""
    from yolact.utils.plots import plot_confusion_matrix, plot_f1_curves, plot_pr_curves

    plots_dir = Path(plots_dir)
    names = result.details.get("class_names", [])
    for iou_type, (precision, scores) in result.details.get("pr_curves", {}).items():
        kind = "mask" if iou_type == "segm" else "box"
        title = f"{kind} precision-recall @ IoU 0.5, iteration {result.iteration}"
        plot_pr_curves(np.asarray(precision), names, plots_dir / f"PR_curve_{kind}.png", title)
        plot_f1_curves(np.asarray(precision), np.asarray(scores), names, plots_dir / f"F1_curve_{kind}.png",
                       f"{kind} F1 @ IoU 0.5, iteration {result.iteration}")
    if result.details.get("confusion") is not None:
        plot_confusion_matrix(np.asarray(result.details["confusion"]), names, plots_dir / "confusion_matrix.png")
    for index, image_chw in enumerate(result.images):
        ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(np.asarray(image_chw).transpose(1, 2, 0)[:, :, ::-1]))
        if ok:
            atomic_write(plots_dir / f"val_{index}.jpg", lambda handle, data=encoded: handle.write(data.tobytes()))


def write_labels_plot(plots_dir: Path, dataset) -> Path:
    """``labels.jpg`` of a COCO dataset (``coco``, ``category_ids``, ``class_names``, ``image_ids``)."""
    from yolact.utils.plots import plot_labels

    label_of = {int(c): i for i, c in enumerate(dataset.category_ids)}
    labels, boxes = [], []
    for image_id in dataset.image_ids:
        info = dataset.coco.imgs[image_id]
        for ann in dataset.coco.imgToAnns.get(image_id, []):
            if ann.get("iscrowd", 0) or int(ann["category_id"]) not in label_of:
                continue
            x, y, w, h = ann["bbox"]
            labels.append(label_of[int(ann["category_id"])])
            boxes.append([(x + w / 2) / info["width"], (y + h / 2) / info["height"], w / info["width"],
                          h / info["height"]])
    return plot_labels(np.asarray(labels, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                       dataset.class_names, Path(plots_dir) / "labels.jpg")
