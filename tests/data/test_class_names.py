"""Class names of checkpoints without their own: the config's dataset json, else COCO's for 80 classes."""
import json

import torch

from yolact.build import build_model, with_num_classes
from yolact.config import load_config
from yolact.data.class_names import COCO_CATEGORY_IDS, COCO_CLASS_NAMES, resolve_class_names
from yolact.engine.evaluation.model_loading import load_model_for_inference

TINY = ["model.backbone.block=basic", "model.backbone.layers=[1,1,1,1]", "model.backbone.pretrained=null",
        "model.input_size=64", "model.fpn_channels=16", "model.proto_channels=16", "model.head_channels=16",
        "model.num_prototypes=8"]


def write_json(path, names):
    categories = [{"id": 10 * (i + 1), "name": name} for i, name in enumerate(names)]
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": categories[::-1]}))
    return str(path)


def test_resolution_order(tmp_path):
    shapes = write_json(tmp_path / "shapes.json", ["circle", "square", "triangle"])
    assert resolve_class_names(3, stored_names=["a", "b", "c"], stored_ids=[1, 2, 3],
                               annotation_files=[shapes]) == (["a", "b", "c"], [1, 2, 3], "checkpoint")
    assert resolve_class_names(3, annotation_files=[str(tmp_path / "missing.json"), shapes]) == (
        ["circle", "square", "triangle"], [10, 20, 30], shapes)
    assert resolve_class_names(2, annotation_files=[shapes]) == (["class_0", "class_1"], None, "none")
    names, ids, source = resolve_class_names(80, annotation_files=[shapes])
    assert (names[:3], names[-1], ids[-1], source) == (["person", "bicycle", "car"], "toothbrush", 90, "COCO")
    assert len(COCO_CLASS_NAMES) == len(COCO_CATEGORY_IDS) == len(set(COCO_CATEGORY_IDS)) == 80


def bare_state(tmp_path, num_classes, name):
    config = with_num_classes(load_config("shapes", TINY), num_classes)
    path = tmp_path / name
    torch.save(build_model(config, pretrained=None).state_dict(), path)  # a bare state_dict, no names
    return path


def test_bare_80_class_checkpoint_gets_the_coco_names(tmp_path):
    weights = bare_state(tmp_path, 80, "reference_like.pth")
    overrides = TINY + [f"data.val_annotations={tmp_path / 'none.json'}",
                        f"data.train_annotations={tmp_path / 'none.json'}"]
    loaded = load_model_for_inference(weights, config_name="shapes", overrides=overrides,
                                      device=torch.device("cpu"))
    assert loaded.class_names == list(COCO_CLASS_NAMES) and loaded.category_ids == list(COCO_CATEGORY_IDS)


def test_bare_checkpoint_gets_the_names_of_the_configs_json(tmp_path):
    weights = bare_state(tmp_path, 3, "bare.pth")
    shapes = write_json(tmp_path / "val.json", ["circle", "square", "triangle"])
    loaded = load_model_for_inference(weights, config_name="shapes",
                                      overrides=TINY + [f"data.val_annotations={shapes}"], device=torch.device("cpu"))
    assert loaded.class_names == ["circle", "square", "triangle"] and loaded.category_ids == [10, 20, 30]
