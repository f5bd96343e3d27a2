"""train.py's command line: config printing and the exit-code-2 rule for bad configs."""
import pytest

import train


def test_print_config(capsys):
    assert train.main(["--config", "coco.yaml", "--print-config", "train.lr=0.002"]) == 0
    out = capsys.readouterr().out
    assert "  lr: 0.002\n" in out and "  layers: [3, 4, 23, 3]\n" in out


@pytest.mark.parametrize("name, text, message", [
    ("missing.yaml", None, "config file not found"),
    ("syntax.yaml", "train:\n  lr: [0.1\n", "YAML syntax error"),
    ("bad_yaml.yaml", "train: [unclosed\n", "YAML syntax error"),
    ("unknown.yaml", "train:\n  lrr: 0.1\n", "unknown key 'train.lrr' (did you mean 'train.lr'?)"),
    ("unknown_key.yaml", "train:\n  max_iters: 3\n", "unknown key 'train.max_iters' (did you mean 'train.max_iter'?)"),
    ("type.yaml", "train:\n  batch_size: eight\n", "key 'train.batch_size' must be int, got 'eight'"),
    ("wrong_type.yaml", "model:\n  input_size: [1, 2]\n", "key 'model.input_size' must be int, got [1, 2]"),
])
def test_bad_configs_exit_2_with_one_line(tmp_path, capsys, name, text, message):
    """The one entry-point test of bad config files (tests/test_config.py checks the messages of
    the loader itself)."""
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    assert train.main(["--config", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0]
    assert message in lines[0]
    assert "Traceback" not in captured.err
