"""Config loading: inheritance, overrides, validation errors and name lookup (exact values)."""
import pytest

from yolact.config import (CONFIG_DIR, ConfigError, config_from_dict, config_to_dict, dump_config,
                           load_config, resolve_config_path)


def write(path, text):
    path.write_text(text)
    return path


def test_coco_config_is_yolact_base():
    config = load_config("coco.yaml")
    assert config.model.backbone.layers == (3, 4, 23, 3)
    assert config.model.input_size == 550
    assert config.model.anchor_scales == (24, 48, 96, 192, 384)
    assert config.train.lr_steps == (280000, 600000, 700000, 750000)
    assert (config.train.lr, config.train.max_iter, config.train.warmup_iters) == (1e-3, 800000, 500)
    assert (config.loss.box_weight, config.loss.mask_weight) == (1.5, 6.125)
    assert (config.postprocess.top_k, config.postprocess.nms_threshold) == (200, 0.5)
    assert config.data.val_annotations == "data/coco/annotations/instances_val2017.json"


def test_variants_inherit_and_override():
    im700 = load_config("yolact_im700")
    assert (im700.model.input_size, im700.loss.masks_to_train) == (700, 300)
    assert im700.model.anchor_scales == (30, 61, 122, 244, 488)
    assert im700.train.lr == 1e-3  # inherited through coco.yaml -> base.yaml
    assert load_config("yolact_im400").model.anchor_scales == (17, 34, 69, 139, 279)
    assert load_config("yolact_resnet50").model.backbone.layers == (3, 4, 6, 3)


def test_name_lookup(tmp_path, monkeypatch):
    assert resolve_config_path("coco") == CONFIG_DIR / "coco.yaml"
    assert resolve_config_path("coco.yaml") == CONFIG_DIR / "coco.yaml"
    own = write(tmp_path / "mine.yaml", "_base_: coco.yaml\ntrain:\n  lr: 0.01\n")
    assert load_config(str(own)).train.lr == 0.01
    monkeypatch.chdir(tmp_path)
    assert load_config("mine").train.lr == 0.01  # ./mine.yaml, by bare name
    with pytest.raises(ConfigError, match=r"^nope: config file not found"):
        load_config("nope")


def test_base_relative_to_file_and_list_of_bases(tmp_path):
    write(tmp_path / "a.yaml", "train:\n  lr: 0.5\n  batch_size: 2\n")
    write(tmp_path / "b.yaml", "train:\n  batch_size: 4\n")
    child = write(tmp_path / "c.yaml", "_base_: [a.yaml, b.yaml]\ntrain:\n  max_iter: 7\n")
    config = load_config(str(child))
    assert (config.train.lr, config.train.batch_size, config.train.max_iter) == (0.5, 4, 7)


def test_overrides_parse_yaml_values():
    config = load_config("coco", ["train.lr=0.002", "model.backbone.layers=[3,4,6,3]",
                                  "model.backbone.pretrained=null", "train.amp=bf16", "train.lr_steps=[10, 20]"])
    assert config.train.lr == 0.002
    assert config.model.backbone.layers == (3, 4, 6, 3)
    assert config.model.backbone.pretrained is None
    assert config.train.amp == "bf16"
    assert config.train.lr_steps == (10, 20)


def test_int_accepted_for_float_not_for_bool():
    assert load_config("coco", ["train.lr=1"]).train.lr == 1.0
    with pytest.raises(ConfigError, match=r"^command line: key 'train.batch_size' must be int, got True$"):
        load_config("coco", ["train.batch_size=true"])


@pytest.mark.parametrize("text, message", [
    ("train:\n  learning_rat: 0.1\n  lrr: 1\n", "unknown key 'train.learning_rat'"),
    ("train:\n  lrr: 1\n", "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    ("model:\n  input_size: big\n", "key 'model.input_size' must be int, got 'big'"),
])
def test_bad_key_in_file_names_file_key_and_suggestion(tmp_path, text, message):
    bad = write(tmp_path / "bad.yaml", "_base_: coco.yaml\n" + text)
    with pytest.raises(ConfigError) as error:
        load_config(str(bad))
    assert str(error.value) == f"{bad.resolve()}: {message}"


@pytest.mark.parametrize("override, pattern", [
    ("modle.input_size=3", r"unknown key 'modle' \(did you mean 'model'\?\)"),
    ("postprocess.nms=slow", r"key 'postprocess.nms' must be one of \['fast', 'cross_class', 'standard'\], got 'slow'"),
    ("train=3", r"key 'train' must be a mapping, got 3"),
    ("data.num_workers=many", r"key 'data.num_workers' must be int or 'auto', got 'many'"),
    ("data.num_workers=1.5", r"key 'data.num_workers' must be int or 'auto', got 1.5"),
])
def test_bad_override_names_key(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config("coco", [override])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = write(tmp_path / "broken.yaml", "train:\n  lr: [0.1\n  batch_size: 2\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+ YAML syntax error"):
        load_config(str(bad))


def test_round_trip_through_dict_and_yaml():
    config = load_config("yolact_im700", ["train.grad_clip=10"])
    assert config_from_dict(config_to_dict(config)) == config
    assert "anchor_scales: [30, 61, 122, 244, 488]" in dump_config(config)


@pytest.mark.parametrize("override, value", [("data.num_workers=auto", "auto"), ("data.num_workers=3", 3)])
def test_int_or_literal_key_takes_either(override, value):
    assert load_config("coco", [override]).data.num_workers == value
