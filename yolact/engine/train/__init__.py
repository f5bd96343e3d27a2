"""Training: the loop, its hooks and what they write (checkpoints, logs, run folders)."""
