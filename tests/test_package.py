"""The package's shape: no import cycle in src/, and the dependency direction of STYLE.md."""

from __future__ import annotations

import ast
from pathlib import Path

import mnist_cnn

SOURCE = Path(mnist_cnn.__file__).parent


def imports_of_each_module() -> dict[str, set[str]]:
    """module -> the mnist_cnn modules it imports, at the top or inside functions."""
    modules = {path.stem for path in SOURCE.glob("*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((SOURCE / f"{name}.py").read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("mnist_cnn."):
                    found.add(node.module.split(".")[1])
                elif node.module == "mnist_cnn":
                    found.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("mnist_cnn."):
                        found.add(alias.name.split(".")[1])
        graph[name] = found & modules - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_no_import_cycle_in_src():
    assert find_cycle(imports_of_each_module()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


HEAVY = {"keras", "tensorflow", "matplotlib", "tf2onnx"}


def heavy_imports(name: str, *, top_level_only: bool) -> set[str]:
    tree = ast.parse((SOURCE / f"{name}.py").read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found & HEAVY


def test_dependencies_flow_one_way():
    graph = imports_of_each_module()
    assert [name for name, imported in graph.items() if "cli" in imported] == []
    # predict and serve load these: none may import TensorFlow, Keras or matplotlib at all
    for name in (
        "config",
        "run",
        "predict",
        "decode",
        "image_filters",
        "preprocess",
        "serve",
        "request_guard",
        "batching",
        "data",
        "cli_predict",
    ):
        assert heavy_imports(name, top_level_only=False) == set(), name
    # inference loads Keras only in its fallback for runs without model.onnx
    assert heavy_imports("inference", top_level_only=True) == set()


def test_modules_stay_under_300_lines():
    long = {p.name: n for p in SOURCE.glob("*.py") if (n := len(p.read_text().splitlines())) > 300}
    assert long == {}
