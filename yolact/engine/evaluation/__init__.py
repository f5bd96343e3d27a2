"""Evaluation and inference: COCO AP, pictures, videos, FPS. Never imports the training wing."""
