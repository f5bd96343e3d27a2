"""Reading pictures without OpenCV's console noise.

``cv2.imread`` prints ``[ WARN:0@...] findDecoder imread_(...)`` for a missing file and lets
libjpeg print "Premature end of JPEG file" for a truncated one, before our own one-line
message. Reading the bytes ourselves and decoding them with ``cv2.imdecode`` keeps both quiet;
the caller reports the unreadable file once, by name.
"""
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

__all__ = ["read_image"]


def read_image(path, flags: int = cv2.IMREAD_COLOR) -> Optional[np.ndarray]:
    """The decoded picture (as ``cv2.imread(path, flags)`` gives it), or None when the file is
    missing, unreadable or cannot be decoded."""
    try:
        data = np.fromfile(str(Path(path)), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, flags)
