"""Reading a YAML file that must hold a mapping, with errors that name the file and line."""
from pathlib import Path

import yaml

from backbones.errors import UserError


def read_yaml_mapping(path, what: str, expected: str) -> dict:
    """``what`` names the file in errors ("config file"); ``expected`` says what the mapping holds."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where_in_file = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise UserError(f"{path} is not valid YAML{where_in_file}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} must hold a mapping {expected}")
    return raw
