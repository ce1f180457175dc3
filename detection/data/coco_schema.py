"""What a COCO JSON must hold, checked once, entry by entry, before pycocotools indexes it.

pycocotools indexes whatever it is given: a bbox that is a string or has three
numbers fails much later with an ``AssertionError`` or ``TypeError`` far from
the file, a NaN coordinate passes as a "clipped" box until albumentations
rejects it mid-training, and two entries with the same id are silently merged
(an image takes another's boxes; a duplicated annotation id makes perfect
predictions score COCO AP 56.4). Here every image, annotation and category is
checked for its required keys, their types and finite numbers, and every
problem is named by file, list, entry index (and id) and field.

Duplicate ids are noted, not raised (:func:`note_duplicate_ids`): a strict
load refuses them, ``check_dataset`` lists them all.
"""
import json
import math

from backbones.errors import UserError

from .records import note_duplicates

SECTIONS = ("images", "annotations", "categories")
ONE = {"images": "image", "annotations": "annotation", "categories": "category"}
# Why an id must be unique in its list, said when one is not.
UNIQUE_BECAUSE = {"images": "or one image takes the other's boxes",
                  "annotations": "or COCO evaluation merges them and scores even perfect predictions low",
                  "categories": "or their annotations are merged into one class"}
# What each section's entries need, said when a required key is missing.
NEEDS = {"images": "each image needs id, file_name, width and height (in pixels)",
         "annotations": "each annotation needs id, image_id, category_id and bbox [x, y, width, height]",
         "categories": "each category needs id and name"}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(value):
    if not _is_integer(value):
        return f"must be an integer, got {_shown(value)}"


def _text(what):
    def check(value):
        if not isinstance(value, str) or not value:
            return f"must be {what}, got {_shown(value)}"
    return check


def _size(value):
    if not (_number(value) and math.isfinite(value) and value == int(value) and value > 0):
        return f"must be a positive integer (pixels), got {_shown(value)}"


def _box(value):
    if not (isinstance(value, list) and len(value) == 4 and all(_number(v) for v in value)):
        return f"must be a list of 4 numbers [x, y, width, height], got {_shown(value)}"
    if not all(math.isfinite(v) for v in value):
        return f"has a number that is not finite ({_shown(value)})"


def _flag(value):
    if value not in (0, 1):  # True and False compare equal to 1 and 0, and COCO tools write either
        return f"must be 0 or 1, got {_shown(value)}"


def _finite(value):
    if not (_number(value) and math.isfinite(value)):
        return f"must be a finite number, got {_shown(value)}"


def _mask(value):
    """Polygons ``[[x1, y1, x2, y2, x3, y3, ...], ...]`` (each at least 3 points) or RLE
    ``{"size": [h, w], "counts": ...}``; empty means no mask. pycocotools would take a 4-number polygon
    for a box and crash on others, deep inside evaluation."""
    if value is None or (isinstance(value, (list, dict)) and not value):
        return None
    if isinstance(value, dict):
        size = value.get("size")
        if not (isinstance(size, list) and len(size) == 2 and all(_is_integer(v) and v >= 0 for v in size)):
            return f"as RLE needs \"size\": [height, width], got {_shown(size)}"
        if not isinstance(value.get("counts"), (str, list)):
            return f"as RLE needs \"counts\" (a string or a list), got {_shown(value.get('counts'))}"
        return None
    if not isinstance(value, list):
        return f"must be polygons (a list) or RLE (an object), got {_shown(value)}"
    for k, polygon in enumerate(value):
        if not (isinstance(polygon, list) and all(_number(v) and math.isfinite(v) for v in polygon)):
            return f"polygon {k} must be a list of finite numbers, got {_shown(polygon)}"
        if len(polygon) < 6 or len(polygon) % 2:
            return f"polygon {k} needs x, y pairs for at least 3 points, got {len(polygon)} numbers"
    return None


# section -> ((key, required, check), ...): a check returns what is wrong, or None. Other keys are not ours.
FIELDS = {
    "images": (("id", True, _integer), ("file_name", True, _text("a file name")),
               ("width", True, _size), ("height", True, _size)),
    "annotations": (("id", True, _integer), ("image_id", True, _integer), ("category_id", True, _integer),
                    ("bbox", True, _box), ("iscrowd", False, _flag), ("area", False, _finite),
                    ("segmentation", False, _mask)),
    "categories": (("id", True, _integer), ("name", True, _text("a name"))),
}


def _shown(value, limit=60) -> str:
    """``value`` as the JSON file spells it (null, "10,20", NaN), shortened."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _kind(value) -> str:
    return {list: "a list", dict: "an object", str: "a string"}.get(type(value), _shown(value))


def validate_coco(dataset, path):
    """Raise a :class:`UserError` naming the first problem of ``dataset`` (the parsed JSON of ``path``)
    and how many more there are; return when every entry is well formed."""
    if not isinstance(dataset, dict):
        hint = " (a list is what a COCO results file holds)" if isinstance(dataset, list) else ""
        raise UserError(f"{path}: the top level must be a JSON object with images, annotations and categories "
                        f"lists, not {_kind(dataset)}{hint}")
    problems = list(_problems(dataset))
    if problems:
        more = f"; and {len(problems) - 1} more problems" if len(problems) > 1 else ""
        raise UserError(f"{path}: {problems[0]}{more}")


def _problems(dataset):
    """Every problem of a top-level object, as ``"<list>[<index>] (id <id>): <field> <what is wrong>"``."""
    for section in SECTIONS:
        if section not in dataset:
            if section != "annotations":  # a test set may come without annotations
                yield f"{section} is missing; a COCO JSON needs images, annotations and categories lists"
        elif not isinstance(dataset[section], list):
            yield f"{section} must be a list of {ONE[section]} entries, not {_kind(dataset[section])}"
        else:
            for index, entry in enumerate(dataset[section]):
                yield from _entry_problems(section, index, entry)
    yield from _reference_problems(dataset)


def _entry_problems(section, index, entry):
    if not isinstance(entry, dict):
        yield f"{section}[{index}]: must be an object (one {ONE[section]}), got {_shown(entry)}"
        return
    where = _where(section, index, entry)
    for key, required, check in FIELDS[section]:
        if key not in entry:
            if required:
                yield f"{where}: {key} is missing; {NEEDS[section]}"
            continue
        wrong = check(entry[key])
        if wrong:
            yield f"{where}: {key} {wrong}"


def _where(section, index, entry) -> str:
    key = entry.get("id")
    return f"{section}[{index}]" + (f" (id {key})" if _number(key) else "")


def _reference_problems(dataset):
    """Annotations must name an image and a category of the file (pycocotools would index them anyway)."""
    lists = {s: dataset.get(s) if isinstance(dataset.get(s), list) else [] for s in SECTIONS}
    image_ids = {e.get("id") for e in lists["images"] if isinstance(e, dict)}
    category_ids = {e.get("id") for e in lists["categories"] if isinstance(e, dict)}
    for index, ann in enumerate(lists["annotations"]):
        if not isinstance(ann, dict):
            continue
        where = _where("annotations", index, ann)
        if _is_integer(ann.get("image_id")) and ann["image_id"] not in image_ids:
            yield f"{where}: image_id {ann['image_id']} is not the id of any entry of images"
        if _is_integer(ann.get("category_id")) and ann["category_id"] not in category_ids:
            yield (f"{where}: category_id {ann['category_id']} is not in the categories list; add the category "
                   f"or correct the id")


def note_duplicate_ids(dataset, path, problems):
    """Note each id that more than one entry of a list uses (``dataset`` has passed :func:`validate_coco`)."""
    for section in SECTIONS:
        note_duplicates([e["id"] for e in dataset.get(section, [])], problems, lambda key, where, s=section: (
            f"{path}: {ONE[s]} id {key} is used by {len(where)} entries ({', '.join(f'{s}[{i}]' for i in where)}); "
            f"give each {ONE[s]} its own id ({UNIQUE_BECAUSE[s]})"))
