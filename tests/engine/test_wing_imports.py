"""The evaluation wing never imports the training wing: neither in its own files nor through them."""
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EVALUATION = REPO / "yolact" / "engine" / "evaluation"


def imported_modules(path: Path):
    """Every module named by an import statement of ``path``, also inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_evaluation_files_do_not_import_the_training_wing():
    files = sorted(EVALUATION.glob("*.py"))
    assert {f.name for f in files} >= {"eval_app.py", "evaluator.py", "predictor.py", "model_loading.py"}
    offending = [(f.name, module) for f in files for module in imported_modules(f)
                 if module == "yolact.engine.train" or module.startswith("yolact.engine.train.")]
    assert offending == []


def test_importing_the_evaluation_wing_loads_nothing_of_the_training_wing():
    modules = [f"yolact.engine.evaluation.{f.stem}" for f in sorted(EVALUATION.glob("*.py"))]
    code = ("import importlib, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('yolact.engine.train')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
