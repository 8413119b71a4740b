"""The house's shape, checked: stages import only downward (docs/design.md, "Packages"), no import cycles, and
no function grows past ~60 lines without a reason written beside it."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# lowest first: a module may import from its own layer or a lower one, never a higher one
LAYERS = ["schemas", "pipeline.core", "pipeline.read", "pipeline.check", "pipeline.write", "pipeline.deliver",
          "pipeline.run", "pipeline.reviews", "pipeline.register", "pipeline.watch", "pipeline.cli"]
TOP = {"pipeline", "pipeline.__main__"}  # the package's front door: `python -m pipeline`, `pipeline.run_file`
LONG_FUNCTION = 60
REASON = re.compile(r"# long: \S+ \S+ \S+")  # a reason of a few words on the def line, e.g.
# `# long: one table of every column, read top to bottom`


def modules() -> dict[str, Path]:
    found = {}
    for path in [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("schemas/**/*.py")]:
        if "_docs" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Every project module `path` imports, at the top or inside a function (a lazy import is still an edge)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, name, set(found)) for name, path in found.items()}


def layer(name: str) -> int | None:
    ranks = [i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + ".")]
    return max(ranks) if ranks else None


def test_every_module_belongs_to_a_layer():
    assert [name for name in graph() if name not in TOP and layer(name) is None] == []


def test_stages_import_only_downward():
    upward = [f"{name} imports {target}" for name, targets in graph().items() if name not in TOP
              for target in sorted(targets)
              if target not in TOP and None not in (layer(name), layer(target)) and layer(target) > layer(name)]
    assert upward == []
    assert not any(t in TOP for name, targets in graph().items() if name not in TOP for t in targets if t != "pipeline")


def test_no_import_cycles():
    edges = {name: {t for t in targets if t not in TOP} for name, targets in graph().items() if name not in TOP}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, trail):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_the_checker_sees_edges_and_back_edges(tmp_path):
    """The checks above are only worth something if they find what they look for: a back edge written at the
    top, inside a function, relatively or as `import a.b` is seen."""
    g = graph()
    assert "pipeline.core.ledger" in g["pipeline.run"] and "pipeline.core.files" in g["pipeline.core.ledger"]
    assert layer("pipeline.cli.main") > layer("pipeline.core.files") and layer("schemas.referral") == 0
    known = set(modules())
    for source in ("from pipeline.cli.main import main\n",
                   "def later():\n    from pipeline.cli import main\n",
                   "from ..cli import main\n",
                   "import pipeline.cli.main\n"):
        fake = tmp_path / "fake.py"
        fake.write_text(source, encoding="utf-8")
        found = imports(fake, "pipeline.core.fake", known)
        assert any(layer(target) > layer("pipeline.core.fake") for target in found), source


def test_no_function_over_60_lines_without_a_reason_beside_it():
    long = []
    for name, path in modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONG_FUNCTION and not REASON.search(lines[node.lineno - 1]):
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []


def test_the_tools_and_the_benchmark_import_what_exists():
    """tools/ and benchmarks/ are not run by the suite: a moved module must not leave them pointing nowhere."""
    import importlib.util

    missing = []
    for path in [*ROOT.glob("tools/*.py"), *ROOT.glob("benchmarks/*.py"), ROOT / "pipeline" / "__main__.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                missing += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                            if a.name.startswith(("pipeline.", "schemas.")) and importlib.util.find_spec(a.name) is None]
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("pipeline", "schemas")):
                if importlib.util.find_spec(node.module) is None:
                    missing.append(f"{path.relative_to(ROOT)}: {node.module}")
                    continue
                module = importlib.import_module(node.module)
                missing += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                            if not hasattr(module, a.name) and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert missing == []
