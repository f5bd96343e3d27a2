"""Video input and output with OpenCV: a file or webcam source, an mp4 writer, a live window."""
import logging
from pathlib import Path
from typing import Iterator, Optional, Union

import cv2
import numpy as np

from yolact.errors import YolactError

__all__ = ["DEFAULT_FPS", "open_video", "read_frames", "frame_rate", "VideoSink", "LiveWindow"]

logger = logging.getLogger("yolact")

# Used when the container does not say its frame rate (webcams often report 0).
DEFAULT_FPS = 30.0


def open_video(source: Union[str, Path, int]) -> cv2.VideoCapture:
    """A ``cv2.VideoCapture`` of a video file or a webcam index; YolactError when it cannot open."""
    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        what = f"webcam {source}"
    else:
        if not Path(source).is_file():
            raise YolactError(f"{source}: video file not found")
        capture = cv2.VideoCapture(str(source))
        what = str(source)
    if not capture.isOpened():
        capture.release()
        raise YolactError(f"{what}: cannot open as a video")
    return capture


def read_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """Frames as uint8 (H, W, 3) BGR until the stream ends."""
    while True:
        ok, frame = capture.read()
        if not ok or frame is None:
            return
        yield frame


def frame_rate(capture: cv2.VideoCapture) -> float:
    """The stream's frames per second, or DEFAULT_FPS when it does not say."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and fps > 0 else DEFAULT_FPS


class VideoSink:
    """Writes BGR frames to an mp4 (mp4v codec); the file opens on the first frame's size."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.writer: Optional[cv2.VideoWriter] = None
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            height, width = frame_bgr.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
            if not self.writer.isOpened():
                raise YolactError(f"{self.path}: cannot write a video here (mp4v codec)")
        self.writer.write(frame_bgr)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class LiveWindow:
    """Shows frames in a window; ``show`` returns False once the user pressed q or Esc.

    Without a GUI (headless OpenCV, no display) it warns once and shows nothing.
    """

    def __init__(self, title: str):
        self.title, self.available = title, True

    def show(self, frame_bgr: np.ndarray) -> bool:
        if not self.available:
            return True
        try:
            cv2.imshow(self.title, frame_bgr)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error:
            self.available = False
            logger.warning("no display available: frames are not shown (give IN:OUT.mp4 to save them)")
            return True
        return key not in (ord("q"), 27)

    def close(self) -> None:
        if self.available:
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass
