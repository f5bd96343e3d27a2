"""The line ``eval.py`` prints after ``--image``, ``--images`` or ``--video``: where, how many, how fast."""
from pathlib import Path
from typing import Any, Dict, List, Optional

__all__ = ["picture_report"]


def picture_report(mode: str, records: List[Dict[str, Any]], target: Optional[Path], seconds: float,
                   score_threshold: float) -> str:
    """One line for ``mode`` "image", "images" or "video".

    ``records`` are the predictor's (one per picture or frame, each with its ``detections``),
    ``target`` the drawing, folder or video written (None: none written), ``seconds`` the wall time.
    """
    count = len(records)
    shown = sum(1 for record in records for d in record["detections"] if d["score"] >= score_threshold)
    detections = f"{shown} detections scoring >= {score_threshold:g}"
    if mode == "image":
        where = f"; drawing written to {target}" if target is not None else ""
        return f"{records[0]['file_name']}: {detections} in {seconds * 1000:.0f} ms{where}"
    unit = "pictures" if mode == "images" else "frames"
    rate = f"{count / seconds:.1f} {'img/s' if mode == 'images' else 'FPS'}" if seconds > 0 else "-"
    if target is not None:
        where = f"; drawings in {target}/" if mode == "images" else f"; video written to {target}"
    else:
        where = "; no drawings (give IN:OUT to write them)" if mode == "images" else "; shown in a window"
    return f"{count} {unit}, {detections} in {seconds:.1f} s ({rate}){where}"
