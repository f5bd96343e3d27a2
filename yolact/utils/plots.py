"""Training and evaluation plots with matplotlib (no pyplot state; each file written atomically).

- ``results.png``: loss terms, learning rate and validation AP over iterations;
- ``PR_curve_<type>.png``, ``F1_curve_<type>.png``: per-class precision-recall and F1-confidence
  curves at IoU 0.5 from pycocotools' accumulated arrays;
- ``confusion_matrix.png``: predicted class (rows) against true class (columns), with background;
- ``labels.jpg``: the training set's class counts, box centres and box sizes.
"""
import io
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from yolact.utils.atomic import atomic_write

__all__ = ["plot_results", "plot_pr_curves", "plot_f1_curves", "plot_confusion_matrix", "plot_labels",
           "f1_curve"]

Series = List[Tuple[int, float]]


def _figure(rows: int = 1, cols: int = 1, size=(6.4, 4.8)):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="tight")
    return figure, figure.subplots(rows, cols, squeeze=False)


def _save(figure, path: Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="jpg" if Path(path).suffix in (".jpg", ".jpeg") else "png")
    return atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


def plot_results(series: Dict[str, Series], path: Path) -> Path:
    """One small panel per series (``{"loss_cls": [(iteration, value), ...], ...}``), in order.

    Empty series are left out; at least one panel is drawn (an empty one when all are empty).
    """
    shown = [(name, points) for name, points in series.items() if points] or [("no data yet", [])]
    cols = min(4, len(shown))
    rows = (len(shown) + cols - 1) // cols
    figure, axes = _figure(rows, cols, size=(3.2 * cols, 2.6 * rows))
    for ax, (name, points) in zip(axes.flat, shown):
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="." if len(xs) < 20 else None, linewidth=1.2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    return _save(figure, path)


def _class_lines(ax, xs: np.ndarray, values: np.ndarray, class_names: Sequence[str]) -> None:
    """``values`` (R, K): one thin line per class with data, and the mean over them in bold."""
    valid = [k for k in range(values.shape[1]) if np.all(values[:, k] > -1)]
    for k in valid if len(valid) <= 20 else ():
        ax.plot(xs, values[:, k], linewidth=1, label=str(class_names[k]) if k < len(class_names) else str(k))
    if valid:
        ax.plot(xs, values[:, valid].mean(axis=1), linewidth=2.5, color="#1f3b73", label="all classes")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def plot_pr_curves(precision: np.ndarray, class_names: Sequence[str], path: Path, title: str = "") -> Path:
    """Precision (R=101 recall points, K classes) at IoU 0.5, area all, 100 detections.

    ``precision`` is ``COCOeval.eval["precision"][0, :, :, 0, -1]``; -1 marks classes without
    ground truth (not drawn).
    """
    figure, axes = _figure()
    _class_lines(axes[0, 0], np.linspace(0, 1, precision.shape[0]), precision, class_names)
    axes[0, 0].set(xlabel="recall", ylabel="precision", title=title or "precision-recall @ IoU 0.5")
    return _save(figure, path)


def f1_curve(precision: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """F1 at each confidence threshold, per class: (len(thresholds), K).

    From pycocotools' (R, K) ``precision`` and ``scores`` at recall points r = 0, .01, ..., 1:
    at threshold c the reachable recall is the largest r whose score is >= c, with the
    precision there. A class without ground truth (-1) gets -1.
    """
    recalls = np.linspace(0, 1, precision.shape[0])
    result = np.zeros((len(thresholds), precision.shape[1]))
    for k in range(precision.shape[1]):
        if np.any(precision[:, k] <= -1):
            result[:, k] = -1
            continue
        for t, threshold in enumerate(thresholds):
            reached = np.nonzero(scores[:, k] >= threshold)[0]
            if len(reached):
                p, r = precision[reached[-1], k], recalls[reached[-1]]
                result[t, k] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return result


def plot_f1_curves(precision: np.ndarray, scores: np.ndarray, class_names: Sequence[str], path: Path,
                   title: str = "") -> Path:
    """F1 against the confidence threshold per class (see :func:`f1_curve`)."""
    thresholds = np.linspace(0, 1, 101)
    figure, axes = _figure()
    _class_lines(axes[0, 0], thresholds, f1_curve(precision, scores, thresholds), class_names)
    axes[0, 0].set(xlabel="confidence", ylabel="F1", title=title or "F1 @ IoU 0.5")
    return _save(figure, path)


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """``matrix`` (C+1, C+1) counts: rows predicted class, columns true class; index C is background.

    Columns are normalised to sum to 1 (each true class's share of outcomes); counts are printed.
    """
    names = list(class_names) + ["background"]
    sums = matrix.sum(axis=0, keepdims=True)
    normalised = np.divide(matrix, sums, out=np.zeros(matrix.shape, dtype=float), where=sums > 0)
    size = max(4.0, 0.5 * len(names) + 2.5)
    figure, axes = _figure(size=(size + 1.0, size * 0.85))
    ax = axes[0, 0]
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, fraction=0.046)
    if len(names) <= 30:
        ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        for (row, col), count in np.ndenumerate(matrix):
            if count:
                ax.text(col, row, str(int(count)), ha="center", va="center", fontsize=7,
                        color="white" if normalised[row, col] > 0.5 else "black")
    ax.set(xlabel="true", ylabel="predicted", title="confusion matrix (IoU 0.5, score 0.25)")
    return _save(figure, path)


def plot_labels(labels: np.ndarray, boxes_cxcywh: np.ndarray, class_names: Sequence[str], path: Path) -> Path:
    """Instances per class, box centres and box sizes (``boxes_cxcywh`` (N, 4) relative to the image)."""
    figure, axes = _figure(1, 3, size=(13, 4))
    counts = np.bincount(labels.astype(int), minlength=len(class_names)) if len(labels) else np.zeros(len(class_names))
    axes[0, 0].bar(range(len(counts)), counts, color="#4c72b0")
    if len(class_names) <= 30:
        axes[0, 0].set_xticks(range(len(class_names)), class_names, rotation=90 if len(class_names) > 8 else 0,
                              fontsize=7 if len(class_names) > 8 else 9)
    axes[0, 0].set(title="instances per class", ylabel="instances")
    for ax, (x, y), title in ((axes[0, 1], (0, 1), "box centres"), (axes[0, 2], (2, 3), "box sizes")):
        if len(boxes_cxcywh):
            ax.hist2d(boxes_cxcywh[:, x], boxes_cxcywh[:, y], bins=50, range=[[0, 1], [0, 1]], cmap="Blues")
        ax.set(title=title, xlabel="x" if x == 0 else "width", ylabel="y" if x == 0 else "height", xlim=(0, 1),
               ylim=(0, 1))
    axes[0, 1].invert_yaxis()
    return _save(figure, path)
