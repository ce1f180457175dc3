"""Reading an annotation tool's XML file (VOC, CVAT) with errors that name the file, line and column."""
import xml.etree.ElementTree as ET

from backbones.errors import UserError


def parse_xml(path, what: str, missing: str) -> ET.Element:
    """The root element of the XML file ``path`` (a ``what``, e.g. "CVAT annotation file"); a missing file is
    ``missing``'s message, malformed XML names the line and column."""
    try:
        return ET.parse(path).getroot()
    except FileNotFoundError:
        raise UserError(missing) from None
    except ET.ParseError as err:
        line, column = err.position
        raise UserError(f"{path} is not valid XML (line {line}, column {column}): {err}") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err}") from None
