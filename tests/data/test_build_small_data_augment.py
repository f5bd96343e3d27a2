"""The data.augment keys of small-data augmentation: off by default, built into the train dataset."""
import numpy as np
import pytest

from yolact.build import build_dataset
from yolact.config import load_config
from yolact.data.hard_shapes import make_hard_shapes
from yolact.errors import YolactError


@pytest.fixture(scope="module")
def hard_set(tmp_path_factory):
    return make_hard_shapes(tmp_path_factory.mktemp("hard"), style="a", num_train=12, num_val=2, seed=1)


def overrides_for(train_dir, val_dir, *extra):
    return [f"data.train_images={train_dir / 'images'}",
            f"data.train_annotations={train_dir / 'annotations.json'}", f"data.val_images={val_dir / 'images'}",
            f"data.val_annotations={val_dir / 'annotations.json'}",
            "data.make_shapes=false", *extra]


def test_the_reference_recipe_leaves_them_off_and_small_mixes_half_the_images():
    augment = load_config("coco").data.augment
    assert (augment.scale_jitter, augment.mosaic_prob, augment.copy_paste_prob) == (None, 0.0, 0.0)
    for name in ("small", "shapes"):
        augment = load_config(name).data.augment
        assert (augment.scale_jitter, augment.mosaic_prob, augment.copy_paste_prob) == (None, 0.5, 0.5)


def test_without_the_keys_the_train_dataset_has_no_mixer_and_no_jitter(hard_set):
    overrides = overrides_for(*hard_set, "data.augment.mosaic_prob=0", "data.augment.copy_paste_prob=0")
    dataset = build_dataset(load_config("shapes", overrides), "train")
    assert dataset.mixer is None and dataset.transform.scale_range is None


def test_keys_reach_the_dataset_and_samples_are_well_formed(hard_set):
    keys = ["data.augment.scale_jitter=[0.5,1.5]", "data.augment.mosaic_prob=0.5",
            "data.augment.copy_paste_prob=0.5"]
    config = load_config("shapes", overrides_for(*hard_set, *keys))
    dataset = build_dataset(config, "train")
    assert dataset.transform.scale_range == (0.5, 1.5)
    mixer = dataset.mixer
    assert (mixer.mosaic_prob, mixer.copy_paste_prob, mixer.mosaic_size) == (0.5, 0.5, 160)
    assert build_dataset(config, "val").mixer is None
    for index in range(len(dataset)):
        image, target = dataset[index]
        assert image.shape == (3, 160, 160) and target["masks"].shape[1:] == (160, 160)
        assert len(target["boxes"]) == len(target["labels"]) == len(target["masks"])
        assert bool((target["boxes"] >= 0).all() and (target["boxes"] <= 1).all())
    first, again = dataset[3], dataset[3]
    assert first[0].equal(again[0]) and np.array_equal(first[1]["boxes"], again[1]["boxes"])


@pytest.mark.parametrize("override, message", [
    ("data.augment.scale_jitter=[1.5,0.5]", "scale_jitter must be [low, high]"),
    ("data.augment.scale_jitter=[1.0]", "scale_jitter must be [low, high]"),
    ("data.augment.mosaic_prob=2", "mosaic_prob must be in [0, 1]"),
    ("data.augment.copy_paste_prob=-0.1", "copy_paste_prob must be in [0, 1]"),
])
def test_bad_values_name_the_key(hard_set, override, message):
    with pytest.raises(YolactError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_dataset(load_config("shapes", overrides_for(*hard_set, override)), "train")
