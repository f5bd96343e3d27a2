"""Up-front checks of a COCO instances json: unusable entries are dropped and reported.

Nothing here decodes an image: the checks read the json and list the image folder once, so
they take a few seconds even for COCO train2017. A file that exists but cannot be decoded is
found later, when the dataset reads it (see ``CocoInstanceDataset.__getitem__``).

What is checked (each problem is one line naming the json, the image id, the file name and
the annotation id):
- images: an integer id (not repeated), a file name, positive width and height, and a file
  present in the image folder; a failing image is dropped with its annotations;
- annotations: a known image and a known category, a box [x, y, w, h] of positive width and
  height that overlaps the image (a box sticking out by more than one pixel is clipped and
  reported), and a usable segmentation: polygons with at least 3 points (shorter polygons are
  removed, the annotation is dropped when none is left) or an RLE whose size is the image's.

Unusable files raise :class:`YolactError` with one line naming the file: a missing or
unreadable json, invalid or truncated JSON, no images, no categories, a missing image folder.
"""
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from yolact.data.annotation_checks import check_box, check_segmentation
from yolact.errors import YolactError

__all__ = ["ObjectRecord", "ImageRecord", "ValidationReport", "load_annotation_json", "validate_coco"]

@dataclass
class ObjectRecord:
    """One usable annotation: its box (xyxy, absolute pixels, clipped to the image)."""

    annotation_id: int
    label: int  # contiguous 0-based class index
    box_xyxy: Tuple[float, float, float, float]
    segmentation: Any  # list of polygons, or an RLE dict {"size": [h, w], "counts": ...}
    is_crowd: bool


@dataclass
class ImageRecord:
    """One usable image and its usable annotations, crowd ones included."""

    image_id: int
    file_name: str
    path: str
    height: int
    width: int
    objects: List[ObjectRecord] = field(default_factory=list)

    @property
    def num_instances(self) -> int:
        """Number of non-crowd objects."""
        return sum(not obj.is_crowd for obj in self.objects)


@dataclass
class ValidationReport:
    """What :func:`validate_coco` kept and what it reported."""

    category_ids: List[int]  # contiguous label i -> json category id, sorted
    class_names: List[str]  # contiguous label i -> category name
    images: List[ImageRecord]  # every image with a readable entry and an existing file
    ground_truth: Dict[str, Any]  # the json with the dropped annotations removed
    problems: List[str]
    num_dropped_annotations: int = 0


def load_annotation_json(annotation_file: Path) -> Dict[str, Any]:
    """Read and sanity-check a COCO json; raise YolactError naming the file when unusable."""
    annotation_file = Path(annotation_file)
    if not annotation_file.is_file():
        raise YolactError(f"annotation file not found: {annotation_file}")
    try:
        with open(annotation_file, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise YolactError(f"{annotation_file}: invalid JSON ({error.msg} at line {error.lineno} "
                          f"column {error.colno}); is the file truncated?") from None
    except (OSError, UnicodeDecodeError) as error:
        raise YolactError(f"{annotation_file}: cannot be read ({error})") from None
    if not isinstance(data, dict):
        raise YolactError(f"{annotation_file}: expected a COCO json object with 'images', "
                          f"'annotations' and 'categories'")
    if not isinstance(data.get("images"), list) or not data["images"]:
        raise YolactError(f"{annotation_file}: no images (the 'images' list is missing or empty)")
    if not isinstance(data.get("categories"), list) or not data["categories"]:
        raise YolactError(f"{annotation_file}: no categories (the 'categories' list is missing or empty)")
    if not isinstance(data.get("annotations", []), list):
        raise YolactError(f"{annotation_file}: 'annotations' is not a list")
    return data


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_categories(data, json_name, problems) -> Tuple[List[int], List[str]]:
    names_by_id: Dict[int, str] = {}
    for position, category in enumerate(data["categories"]):
        category_id = category.get("id") if isinstance(category, dict) else None
        if not _is_int(category_id):
            problems.append(f"{json_name}: category #{position} has no integer id, ignored")
        elif category_id in names_by_id:
            problems.append(f"{json_name}: category id {category_id} appears twice, the first is used")
        else:
            names_by_id[category_id] = str(category.get("name", category_id))
    if not names_by_id:
        raise YolactError(f"{json_name}: no usable category (every entry lacks an integer id)")
    category_ids = sorted(names_by_id)
    return category_ids, [names_by_id[category_id] for category_id in category_ids]


def _list_folder(image_dir: Path) -> set:
    with os.scandir(image_dir) as entries:
        return {entry.name for entry in entries}


def _read_images(data, image_dir: Path, json_name, problems):
    """-> (records by id of images with a file, ids of every well-formed image entry)."""
    present = _list_folder(image_dir)
    records: Dict[int, ImageRecord] = {}
    declared: Dict[int, dict] = {}
    for position, image in enumerate(data["images"]):
        image_id = image.get("id") if isinstance(image, dict) else None
        if not _is_int(image_id):
            problems.append(f"{json_name}: image #{position} has no integer id, image dropped")
            continue
        file_name = image.get("file_name")
        height, width = image.get("height"), image.get("width")
        where = f"{json_name}: image {image_id} ({file_name})"
        if image_id in declared:
            problems.append(f"{where}: image id appears twice, the first entry is used")
            continue
        if not isinstance(file_name, str) or not file_name:
            problems.append(f"{where}: no file_name, image dropped")
            continue
        if not (_is_int(height) and _is_int(width) and height > 0 and width > 0):
            problems.append(f"{where}: width/height missing or not positive integers, image dropped")
            continue
        declared[image_id] = image
        # One folder listing instead of a stat per image; names with a sub-folder are stat'ed.
        found = file_name in present if os.sep not in file_name and "/" not in file_name \
            else (image_dir / file_name).is_file()
        if not found:
            problems.append(f"{where}: image file not found in {image_dir}, image dropped")
            continue
        records[image_id] = ImageRecord(image_id, file_name, str(image_dir / file_name), height, width)
    return records, declared


def _check_annotation(ann, records, declared, label_of, json_name):
    """-> (ObjectRecord or None, cleaned annotation dict or None, list of problems)."""
    # This runs once per annotation (860k for COCO train): the usual path only does lookups
    # and arithmetic, and messages are formatted only for a problem.
    image_id, category_id = ann.get("image_id"), ann.get("category_id")
    image = declared.get(image_id) if type(image_id) is int else None

    def where(problem: str) -> str:
        file_name = image["file_name"] if image else "?"
        return f"{json_name}: image {image_id} ({file_name}) annotation {ann.get('id')}: {problem}"

    if image is None:
        return None, None, [where("unknown image id, annotation dropped")]
    record = records.get(image_id)
    if record is None:  # its image was dropped (and reported) already
        return None, None, []
    if type(category_id) is not int or category_id not in label_of:
        return None, None, [where(f"category {category_id} is not in 'categories', annotation dropped")]
    box, box_problem = check_box(ann.get("bbox"), record.height, record.width)
    if box is None:
        return None, None, [where(box_problem)]
    segmentation, seg_problem, changed = check_segmentation(ann.get("segmentation"), record.height,
                                                             record.width)
    problems = [where(problem) for problem in (box_problem, seg_problem) if problem]
    if segmentation is None:
        return None, None, problems
    cleaned = ann
    if changed or "area" not in ann or "iscrowd" not in ann:
        # COCOeval reads 'area' and 'iscrowd'; the box area stands in for a missing area.
        cleaned = dict(ann, segmentation=segmentation, iscrowd=int(bool(ann.get("iscrowd", 0))),
                       area=ann.get("area", (box[2] - box[0]) * (box[3] - box[1])))
    obj = ObjectRecord(ann["id"], label_of[category_id], box, segmentation, bool(ann.get("iscrowd", 0)))
    return obj, cleaned, problems


def validate_coco(data: Dict[str, Any], *, image_dir, annotation_file,
                  keep_empty: bool = False) -> ValidationReport:
    """Check a loaded COCO json against its image folder (see the module docstring).

    Args:
        data: the json as returned by :func:`load_annotation_json`.
        image_dir: folder holding the images named by ``file_name``.
        annotation_file: path of the json, used in messages.
        keep_empty: keep images without a non-crowd object (background-only training images);
            by default they are left out, as the reference does.
    Returns:
        A :class:`ValidationReport`; ``images`` holds the images to use, in json order.
    Raises:
        YolactError: missing image folder, no usable category or no usable image.
    """
    image_dir, json_name = Path(image_dir), Path(annotation_file).name
    if not image_dir.is_dir():
        raise YolactError(f"image folder not found: {image_dir} (images of {annotation_file})")
    problems: List[str] = []
    category_ids, class_names = _read_categories(data, json_name, problems)
    label_of = {category_id: label for label, category_id in enumerate(category_ids)}
    records, declared = _read_images(data, image_dir, json_name, problems)

    kept_annotations, next_id = [], 1 + max((a.get("id") for a in data.get("annotations", [])
                                            if isinstance(a, dict) and _is_int(a.get("id"))), default=0)
    num_dropped = 0
    for position, ann in enumerate(data.get("annotations", [])):
        if not isinstance(ann, dict):
            problems.append(f"{json_name}: annotation #{position} is not an object, dropped")
            num_dropped += 1
            continue
        if not _is_int(ann.get("id")):
            problems.append(f"{json_name}: annotation #{position} of image {ann.get('image_id')} has no "
                            f"integer id, given id {next_id}")
            ann, next_id = dict(ann, id=next_id), next_id + 1
        obj, cleaned, ann_problems = _check_annotation(ann, records, declared, label_of, json_name)
        problems.extend(ann_problems)
        if obj is None:
            num_dropped += 1
            continue
        records[ann["image_id"]].objects.append(obj)
        kept_annotations.append(cleaned)

    images = [record for record in records.values() if keep_empty or record.num_instances > 0]
    if not images:
        num_empty = sum(record.num_instances == 0 for record in records.values())
        raise YolactError(f"{annotation_file}: no usable image ({len(data['images'])} listed, "
                          f"{len(data['images']) - len(records)} dropped, {num_empty} without objects)")
    ground_truth = dict(data, images=list(declared.values()), annotations=kept_annotations)
    return ValidationReport(category_ids, class_names, images, ground_truth, problems, num_dropped)
