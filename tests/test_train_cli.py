"""train.py's command line: config printing and the exit-code-2 rule for bad configs."""
import train


def test_print_config(capsys):
    assert train.main(["--config", "coco.yaml", "--print-config", "train.lr=0.002"]) == 0
    out = capsys.readouterr().out
    assert "  lr: 0.002\n" in out and "  layers: [3, 4, 23, 3]\n" in out


def test_bad_configs_exit_2_with_one_line(tmp_path, capsys):
    cases = {
        "missing.yaml": None,
        "syntax.yaml": "train:\n  lr: [0.1\n",
        "unknown.yaml": "train:\n  lrr: 0.1\n",
        "type.yaml": "train:\n  batch_size: eight\n",
    }
    expected = {
        "missing.yaml": "config file not found",
        "syntax.yaml": "YAML syntax error",
        "unknown.yaml": "unknown key 'train.lrr' (did you mean 'train.lr'?)",
        "type.yaml": "key 'train.batch_size' must be int, got 'eight'",
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        assert train.main(["--config", str(path)]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0]
        assert expected[name] in lines[0]
        assert "Traceback" not in captured.err
