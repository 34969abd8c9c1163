"""Where code may depend on what, and where a kind may be spelled: checked on the source itself, with `ast`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from common.config import ACTORS
from common.streams import KINDS, ROW_OF
from common.transport.topics import tag

ROOT = Path(__file__).resolve().parents[2]
TRANSPORT = ROOT / "common" / "transport"

#: What transport takes from common/ outside itself: the process frame at common/'s top, none of it a wing
#: (analytics, feed, observe, store, simulator) nor the registry. Named one by one, so a new one is a decision.
TRANSPORT_FRAME = {
    "common.config": "Config: the settings its sockets, journal and tickerplant read",
    "common.identity": "the deployment's name and each publisher's epoch, kept on disk before its first frame",
    "common.durable": "the fsynced writes of the journal's directory and of the shared offsets",
    "common.symbols": "the instrument kind of a STREAM_TICKERS symbol, which config checks",
}

#: Every kind the registry knows, and the stored structs' tags, less the actors' names: "indicator" is the
#: indicator actor, a publisher, as well as its values' kind, and a publisher may be named anywhere.
KIND_NAMES = ({kind.name for kind in KINDS} | {tag(struct) for struct in ROW_OF.values()}) - set(ACTORS)
#: Where kinds are spelled: the registry, and the tags that declare them.
SPELLED_HERE = {"common/streams.py", "common/transport/messages.py"}
#: A word a kind shares that is no kind there, and why it stays.
NOT_A_KIND = {
    ("common/simulator/protocol.py", "option"): "Schwab's market-hours API names its option market so",
}


def imported(path: Path) -> Iterator[str]:
    """Every module `path` imports, `from common import x` read as `common.x`, a relative import resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            if module == "common":
                yield from (f"common.{alias.name}" for alias in node.names)
            else:
                yield module


def spelled(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant in `path` that is not a docstring."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_transport_imports_nothing_of_common_above_it():
    """The registry, which needs the analytics to make an option row, builds on transport: never the other way."""
    above = [f"{path.relative_to(ROOT)} imports {module}" for path in sorted(TRANSPORT.rglob("*.py"))
             for module in imported(path)
             if module.split(".")[0] == "common" and module.split(".")[:2] != ["common", "transport"]
             and module not in TRANSPORT_FRAME]
    assert above == []


def test_what_transport_takes_from_above_takes_nothing_from_a_wing():
    """The frame transport builds on stands on its own: through it, transport never reaches the feed, the store, the
    analytics or the registry either."""
    reached = [f"{module} imports {imported_module}" for module in TRANSPORT_FRAME
               for imported_module in imported(ROOT.joinpath(*module.split(".")).with_suffix(".py"))
               if imported_module.split(".")[0] == "common" and imported_module.split(".")[:2] != ["common", "transport"]
               and imported_module not in TRANSPORT_FRAME]
    assert reached == []


def test_no_kind_is_spelled_outside_the_registry():
    """A publisher is handed records and a subscriber names a record type: a kind spelled anywhere else is one the
    registry and the tags do not vouch for."""
    found = {(str(path.relative_to(ROOT)), line, text)
             for path in sorted((*ROOT.joinpath("actors").rglob("*.py"), *ROOT.joinpath("common").rglob("*.py")))
             for line, text in spelled(path) if text in KIND_NAMES}
    assert {text for where, _, text in found if where == "common/transport/messages.py"} == KIND_NAMES, \
        "the check sees the tags where they are declared"
    assert sorted((where, line, text) for where, line, text in found
                  if where not in SPELLED_HERE and (where, text) not in NOT_A_KIND) == []
    assert {(where, text) for where, _, text in found} >= set(NOT_A_KIND), "an exception no longer needed is dropped"
