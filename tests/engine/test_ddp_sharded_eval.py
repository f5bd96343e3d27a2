"""Validation sharded over two gloo processes (issue 13, defect 5): every rank evaluates its
shard, the detections are gathered to rank 0 in dataset order, and the result equals one
process's."""
import pytest
import torch

from tests.engine.gloo_group import run_in_gloo_group
from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.build import build_dataset, build_model, build_postprocessor, build_val_loader, with_num_classes
from yolact.config import load_config
from yolact.engine.evaluation.evaluator import evaluate

pytestmark = pytest.mark.slow  # spawned processes: about 20 s on two cores


def _evaluate(rank, world_size, data_root, out_dir):
    config = load_config("shapes", tiny_overrides(data_root, out_dir, **{"train.val_max_images": 5}))
    dataset = build_dataset(config, "val")
    config = with_num_classes(config, len(dataset.class_names))
    torch.manual_seed(0)
    model = build_model(config, pretrained=None)
    loader = build_val_loader(config, dataset, rank=rank, world_size=world_size)
    result = evaluate(model, build_postprocessor(config), loader, dataset, device=torch.device("cpu"),
                      progress=False, gather=True)
    return result.results, result.image_ids, result.metrics, result.summary_text


def test_two_processes_score_like_one(tmp_path):
    data_root = make_tiny_shapes(tmp_path / "shapes", num_train=2, num_val=5)  # shards of 3 and 2 images
    torch.set_num_threads(1)
    expected = _evaluate(0, 1, data_root, tmp_path)
    assert expected[0] and len(expected[1]) == 5 and expected[2]["segm/AP"] >= 0  # detections and metrics
    per_rank = run_in_gloo_group(_evaluate, 2, tmp_path / "out", data_root, tmp_path)
    assert per_rank[0] == expected
    assert per_rank[1][2:] == expected[2:]  # rank 1 gets rank 0's metrics and summary
