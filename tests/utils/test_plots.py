"""Plots: the F1 curve from pycocotools' arrays by hand, and every plot a decodable picture."""
import cv2
import numpy as np

from yolact.utils.plots import (f1_curve, plot_confusion_matrix, plot_f1_curves, plot_labels, plot_pr_curves,
                                plot_results)


def test_f1_curve_by_hand():
    # 3 recall points (0, .5, 1); class 0 reaches recall .5 at precision 1 (score .8) and recall 1
    # at precision .5 (score .4); class 1 has no ground truth (-1)
    precision = np.array([[1.0, -1], [1.0, -1], [0.5, -1]])
    scores = np.array([[0.9, -1], [0.8, -1], [0.4, -1]])
    f1 = f1_curve(precision, scores, np.array([0.3, 0.6, 0.95]))
    assert np.allclose(f1[:, 0], [2 * 0.5 * 1.0 / 1.5, 2 * 1.0 * 0.5 / 1.5, 0.0])
    assert np.all(f1[:, 1] == -1)


def test_each_plot_is_a_decodable_picture(tmp_path):
    names = ["circle", "square"]
    precision = np.tile(np.linspace(1, 0, 101)[:, None], (1, 2))
    paths = [plot_results({"loss_total": [(1, 2.0), (2, 1.5)], "val/segm/AP": [(2, 0.1)], "empty": []},
                          tmp_path / "results.png"),
             plot_pr_curves(precision, names, tmp_path / "pr.png"),
             plot_f1_curves(precision, precision, names, tmp_path / "f1.png"),
             plot_confusion_matrix(np.array([[3, 1, 0], [0, 2, 1], [1, 0, 0]]), names, tmp_path / "cm.png"),
             plot_labels(np.array([0, 1, 1]), np.array([[0.5, 0.5, 0.2, 0.2]] * 3), names, tmp_path / "labels.jpg"),
             plot_labels(np.zeros(0), np.zeros((0, 4)), names, tmp_path / "no_labels.jpg")]
    for path in paths:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[0] > 100 and image.std() > 0, path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporaries
