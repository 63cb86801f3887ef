"""The folder tree is the pipeline: imports only go down the layers, and never in a circle.

Every module of ``digest/`` and ``subscribers/`` is read as source (its AST, imports inside
functions included), mapped to its package and that package to a layer (README, "How it
fits together"). An import may stay inside its package or go to a lower layer; never up,
never sideways to another package of the same layer, and no chain of imports comes back
to where it started. An import inside a function is only for start-up cost and says so.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom; a package imports only those below it (or itself). The kernel's modules
# each take a layer of their own, in the order they build on each other.
LAYERS: list[tuple[str, ...]] = [
    ("cli",),
    # verify reconciles the ledger (delivery) with the relay's log and records bounces
    # store_tools (`digest db`: info, migrate, copy) is a use case over every table; it asks the
    # ledger (delivery) for the totals a copy must keep, so it sits above delivery.
    ("web", "schedule", "doctor", "demo", "verify", "store_tools"),
    # stats reads the ledgers of delivery and bounces (and the list, the issues) through their
    # owners, and the web app counts clicks with it and shows its charts: between the two.
    ("stats",),
    # The desk's editors: called by the CLI and the web desk, builds on signup's client_key
    # (its per-client limit) and the outbox, so it sits above them.
    ("editors",),
    # bounces reads what delivery recorded (a report names a ledger row; it notes a later bounce
    # there through digest.delivery.ledger, the table's owner), so it sits just above it.
    # dmarc reads its mailbox through bounces' sources and limits; doctor and run show and
    # read it, so it sits between them and bounces.
    ("dmarc",),
    ("bounces",),
    ("delivery", "signup", "init"),
    ("mail",),
    ("render",),
    ("compose",),
    ("summary",),
    ("ingest",),
    ("subscribers",),
    ("i18n",),  # the reader's language (catalogues, dates): compose, render, mail and web use it
    ("localtime",),
    ("when",),
    ("store",),
    ("workspace_trust",),
    ("config_reference",),  # lists the config's keys for `digest config reference`: reads config only
    ("config",),
    ("brand",),  # the [render] brand's checks (contrast, logo, greeting) that config runs at load
    ("dkim_keys",),  # a DKIM key's size: config refuses a weak key at load, so below it
    ("cron",),
    ("lockfile",),
    ("atomic",),
    ("errors",),
    ("digest",),  # digest/__init__.py: the version, nothing else
]
LAYER = {package: depth for depth, packages in enumerate(LAYERS) for package in packages}

# Where a module sits when its path does not say it. Each entry with its reason.
PACKAGE_OF = {
    # `python -m digest`: the command line's other door.
    "digest.__main__": "cli",
}

LAZY = "# lazy: start-up"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (digest.* or subscribers.*), or a third-party name
    line: int
    text: str
    in_function: bool
    type_only: bool = False  # under ``if TYPE_CHECKING:``: never run, so no cycle at import time


def modules() -> dict[str, Path]:
    """Every module of digest/ and subscribers/, by dotted name."""
    found = {}
    for top in ("digest", "subscribers"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def package_of(module: str) -> str:
    """``digest.render.variants`` → ``render``; ``subscribers.store`` → ``subscribers``."""
    if module in PACKAGE_OF:
        return PACKAGE_OF[module]
    parts = module.split(".")
    if parts[0] == "subscribers":
        return "subscribers"
    return parts[1] if len(parts) > 1 else "digest"


def _resolve(name: str, known: dict[str, Path]) -> str:
    """The module an imported dotted name lives in (``digest.store.database.iso`` → the module)."""
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    """Every import statement of one module, resolved to modules; function-level ones marked."""
    source = path.read_text("utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(
                id(n) for b in node.body for n in ast.walk(b) if isinstance(n, ast.Import | ast.ImportFrom)
            )
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] if base in known else [base]
        else:
            continue
        text = lines[node.lineno - 1]
        for name in names:
            internal = name.split(".")[0] in ("digest", "subscribers")
            target = _resolve(name, known) if internal else name
            if target != module:
                found.append(
                    Import(module, target, node.lineno, text, id(node) in in_function, id(node) in type_only)
                )
    return found


def all_imports() -> list[Import]:
    known = modules()
    return [imp for module, path in known.items() for imp in imports_of(module, path, known)]


def internal(imports: list[Import]) -> list[Import]:
    return [i for i in imports if i.target.split(".")[0] in ("digest", "subscribers")]


def layer_violations(imports: list[Import]) -> list[str]:
    """Edges that go up a layer, or sideways to another package of the same layer."""
    bad = []
    for imp in internal(imports):
        here, there = package_of(imp.source), package_of(imp.target)
        if here == there:
            continue
        if there not in LAYER or here not in LAYER:
            bad.append(f"{imp.source}:{imp.line} imports {imp.target}: package {there!r} has no layer")
        elif LAYER[there] <= LAYER[here]:
            way = "sideways" if LAYER[there] == LAYER[here] else "up"
            bad.append(f"{imp.source}:{imp.line} imports {imp.target} ({way}: {here} → {there})")
    return bad


def cycles(imports: list[Import]) -> list[list[str]]:
    """Import cycles between modules (each strongly connected group of two or more)."""
    graph: dict[str, set[str]] = {}
    for imp in internal(imports):
        if not imp.type_only:
            graph.setdefault(imp.source, set()).add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def unmarked_lazy_imports(imports: list[Import]) -> list[str]:
    """Imports inside a function without the ``# lazy: start-up`` comment on their line."""
    return sorted(
        {f"{i.source}:{i.line}: {i.text.strip()}" for i in imports if i.in_function and LAZY not in i.text}
    )


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_every_module_sits_in_a_package_with_a_layer(imports: list[Import]) -> None:
    homeless = sorted({m for m in modules() if package_of(m) not in LAYER})
    assert homeless == [], f"modules outside the layered tree (give them a package): {homeless}"


def test_imports_go_down_the_layers_or_stay_in_their_package(imports: list[Import]) -> None:
    assert layer_violations(imports) == []


def test_no_import_cycle_between_modules(imports: list[Import]) -> None:
    assert cycles(imports) == []


def test_an_import_inside_a_function_says_it_is_for_start_up(imports: list[Import]) -> None:
    assert unmarked_lazy_imports(imports) == []


def test_only_the_cli_imports_click(imports: list[Import]) -> None:
    outside = [
        f"{i.source}:{i.line}"
        for i in imports
        if i.target.split(".")[0] == "click" and package_of(i.source) != "cli"
    ]
    assert outside == []


def test_only_the_web_package_imports_flask(imports: list[Import]) -> None:
    outside = [
        f"{i.source}:{i.line}"
        for i in imports
        if i.target.split(".")[0] in ("flask", "werkzeug", "gunicorn") and package_of(i.source) != "web"
    ]
    assert outside == []


def test_the_subscriber_list_imports_only_the_kernel(imports: list[Import]) -> None:
    kernel = {"errors", "cron", "config", "store", "localtime", "lockfile", "digest"}
    above = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in internal(imports)
        if package_of(i.source) == "subscribers" and package_of(i.target) not in kernel | {"subscribers"}
    ]
    assert above == []


def test_the_checker_sees_an_upward_edge_a_cycle_and_an_unmarked_lazy_import() -> None:
    """The rules above catch what they claim to (a check that can never fail proves nothing)."""
    up = Import("digest.compose.build", "digest.cli", 1, "import digest.cli", False)
    sideways = Import("digest.web.app", "digest.schedule.run", 2, "from digest.schedule.run import x", False)
    lazy = Import("digest.render.variants", "digest.compose.issues", 3, "    from x import y", True)
    back = Import("digest.compose.issues", "digest.render.variants", 4, "from digest.render import x", False)
    assert len(layer_violations([up, sideways])) == 2
    assert cycles([lazy, back]) == [["digest.compose.issues", "digest.render.variants"]]
    assert unmarked_lazy_imports([lazy]) == ["digest.render.variants:3: from x import y"]
