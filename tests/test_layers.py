"""The package's import graph: no cycles, and dependencies point down the layers of DESIGN.md.

Both module-level imports and imports inside functions count (a late import is still a dependency; the import cycle
of issue 19 ran entirely through late imports). Imports under ``if TYPE_CHECKING:`` do not run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "bookmix"

# Lowest first. A module belongs to the layer of the longest prefix naming it (``campaign.runner`` before
# ``campaign``); a package's own ``__init__`` is ``<package>.__init__`` here, so its re-exports may sit above the rest.
LAYERS: list[tuple[str, ...]] = [
    ("__init__", "errors", "utils"),  # bookmix.__version__, BookmixError, atomic writes, YAML, console
    ("library",),  # books in, tokens out; knows nothing of training
    ("recipes",),  # candidate datasets over the library
    ("models",),  # the micro LM and its shapes
    ("forecast",),  # FLOPs and memory from a model shape
    ("training",),  # gets windows, not books
    ("evals",),  # scores a checkpoint (loads it through training.checkpoint)
    ("trial",),  # one trial composed: library + recipe + held-out set + training (+ its evaluation)
    ("storyworld",),  # synthetic books with planted signal; its nano pipeline composes the rooms below
    ("analysis",),  # pure functions of trial records: it never opens a campaign
    ("config",),  # the pipeline YAML: embeds the schemas of training, recipes, models and analysis
    ("campaign",),  # the results store (the read side), specs, executors, workers, status, export
    ("report",),  # reads the store, shows the analysis
    ("campaign.runner", "campaign.demo", "campaign.__init__"),  # the driver: runs every stage, builds the report
    ("cli", "__main__"),  # only calls
]

# Justified upward imports (importer, imported), each a late import in one function. Keep this list short: a new
# entry needs a reason a reader accepts.
KNOWN_UP = {
    # Exporting a trained checkpoint to Hugging Face reads it with the trainer's checkpoint loader.
    ("bookmix.models.export", "bookmix.training.checkpoint"),
    # A recipe's probe shelf (ProbeShelf.build) is storyworld text: storyworld is the data source of the shelf.
    ("bookmix.recipes.shelf", "bookmix.storyworld.shelf"),
    # The dialogue layer scores its fine-tuned models on the campaign's suite after SFT.
    ("bookmix.training.sft", "bookmix.evals.run"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def import_graph() -> dict[str, dict[str, set[str]]]:
    """module → {imported module → {"module" | "function"}} for every bookmix module importing another."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, dict[str, set[str]]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        in_function = {
            id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(f)
        }
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, set[str]] = {}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in paths:  # `from pkg.mod import name` → pkg.mod
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.setdefault(target, set()).add("function" if id(node) in in_function else "module")
        graph[name] = edges
    return graph


def layer_of(module: str, is_package: bool) -> int:
    rel = module.removeprefix("bookmix").removeprefix(".")
    key = f"{rel}.__init__" if is_package else rel
    key = key.removeprefix(".") or "__init__"
    best, rank = -1, None
    for i, names in enumerate(LAYERS):
        for prefix in names:
            if (key == prefix or key.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    if rank is None:
        raise AssertionError(f"{module}: in no layer of tests/test_layers.py LAYERS; add its package there")
    return rank


def _packages() -> set[str]:
    return {_module_name(p) for p in PACKAGE.rglob("__init__.py")}


def _cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_graph_sees_late_imports() -> None:
    graph = import_graph()
    assert "function" in graph["bookmix.campaign.runner"]["bookmix.analysis"]  # analyze() is imported where it runs
    assert "module" in graph["bookmix.campaign.runner"]["bookmix.campaign.store"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles = _cycles(graph)
    detail = [
        " ".join(f"{a}->{b}({','.join(sorted(graph[a][b]))})" for a in c for b in graph[a] if b in c) for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b": {"module"}}, "b": {"c": {"function"}}, "c": {"a": {"function"}}, "d": {"a": {"module"}}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_dependencies_point_down_the_layers() -> None:
    graph = import_graph()
    packages = _packages()
    upward = []
    for importer, targets in graph.items():
        low = layer_of(importer, importer in packages)
        for target, kinds in targets.items():
            if layer_of(target, target in packages) > low and (importer, target) not in KNOWN_UP:
                upward.append(f"{importer} -> {target} ({', '.join(sorted(kinds))})")
    assert not upward, "imports against the layer order (tests/test_layers.py LAYERS):\n" + "\n".join(sorted(upward))


def test_known_upward_imports_still_exist() -> None:
    """An allowance nobody needs any more is removed, so the list stays the true set of exceptions."""
    graph = import_graph()
    stale = [pair for pair in KNOWN_UP if pair[1] not in graph.get(pair[0], {})]
    assert not stale, f"KNOWN_UP entries no longer imported: {stale}"


@pytest.mark.parametrize(
    ("module", "layer"),
    [("bookmix.campaign.store", "campaign"), ("bookmix.campaign.runner", "campaign.runner"), ("bookmix", "__init__")],
)
def test_layer_lookup(module: str, layer: str) -> None:
    rank = next(i for i, names in enumerate(LAYERS) if layer in names)
    assert layer_of(module, module in _packages()) == rank
