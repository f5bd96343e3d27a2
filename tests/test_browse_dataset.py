"""scripts/browse_dataset.py draws the ground truth: plain, with a crowd region, and augmented."""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

from tests.engine.tiny_run import make_tiny_shapes, tiny_overrides
from yolact.data.browse import denormalize
from yolact.data.transforms import normalize_to_tensor

REPO = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("browse_dataset", REPO / "scripts" / "browse_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_denormalize_inverts_the_normalisation():
    image = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    assert np.array_equal(denormalize(normalize_to_tensor(image.astype(np.float32))), image)


def test_browse_plain_and_augmented(tmp_path, capsys):
    root = make_tiny_shapes(tmp_path / "shapes")
    val_json = root / "annotations" / "instances_val.json"
    content = json.loads(val_json.read_text())
    first = content["images"][0]
    content["annotations"].append({"id": 9999, "image_id": first["id"], "category_id": 1, "iscrowd": 1,
                                   "bbox": [0, 0, 10, 10], "area": 100,
                                   "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]})
    val_json.write_text(json.dumps(content))
    overrides = [o for o in tiny_overrides(root, tmp_path) if o.startswith(("data.", "model.input_size"))]
    script = load_script()
    assert script.main(["--config", "shapes", "--out", str(tmp_path / "plain"), "--count", "2"] + overrides) == 0
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [f"{i['id']}.jpg" for i in content["images"][:2]]
    drawn = cv2.imread(str(tmp_path / "plain" / f"{first['id']}.jpg"))
    original = cv2.imread(str(root / "val" / first["file_name"]))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).max() > 50
    assert "2 pictures of the val set written to" in capsys.readouterr().out
    assert script.main(["--config", "shapes", "--split", "train", "--augmented", "--count", "3", "--out",
                        str(tmp_path / "aug")] + overrides) == 0
    pictures = [cv2.imread(str(p)) for p in (tmp_path / "aug").iterdir()]
    assert len(pictures) == 3 and all(p.shape == (64, 64, 3) for p in pictures)
