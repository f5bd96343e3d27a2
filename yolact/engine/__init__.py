"""The engine: ``train/`` (image -> loss: the loop and its hooks) and ``evaluation/`` (image ->
detections -> COCO json, pictures, FPS), sharing ``runtime.py`` (device, seeds, autocast) and
``checkpoint.py`` (the checkpoint file). The evaluation wing never imports the training wing."""
