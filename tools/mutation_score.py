"""Per-file mutation score from mutmut's results, and a floor each mutated file must reach.

A mutant counts as killed when a test failed or timed out on it (a hang is noticed too). A
mutant that only changes the text of an error or log message (a string inside a `raise`, a
logging call or `warnings.warn`) is counted apart: the floor applies to the score without them,
because a test that pins every message's wording pins wording, not behaviour.

Run after `mutmut run`, from the directory that holds `mutants/`.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KILLED = {1, 3, 24, -24, 36, 37, 152, 255}  # test failure, pytest error, timeout, type check
LOG_CALLS = {"debug", "info", "warning", "error", "exception", "critical", "warn"}
MUTANT = re.compile(r"__mutmut_\d+$")


def _message_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes whose strings are message text: raised exceptions and logging calls."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            yield node.exc
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_CALLS
        ):
            yield node


class _BlankMessages(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant("") if node.value is None or isinstance(node.value, str) else node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return ast.Constant("")


def _without_messages(function: ast.AST) -> str:
    for node in list(_message_nodes(function)):
        _BlankMessages().visit(node)
    return ast.dump(function, annotate_fields=False)


def _functions(path: Path) -> dict[str, ast.AST]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
    }


def message_only(original: ast.AST, mutant: ast.AST) -> bool:
    """True when the two functions differ only in message text."""
    original.name = mutant.name = ""  # type: ignore[attr-defined]
    return _without_messages(original) == _without_messages(mutant)


@dataclass
class Score:
    path: str
    total: int = 0
    killed: int = 0
    messages: int = 0  # message-text mutants
    messages_killed: int = 0
    survivors: tuple[str, ...] = ()

    def percent(self, *, with_messages: bool) -> float:
        total = self.total if with_messages else self.total - self.messages
        killed = self.killed if with_messages else self.killed - self.messages_killed
        return 100.0 * killed / total if total else 100.0


def score(meta: Path) -> Score:
    source = meta.with_suffix("")  # mutants/x/y.py.meta -> mutants/x/y.py
    module = ".".join(source.relative_to("mutants").with_suffix("").parts)
    functions = _functions(source)
    exit_codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))[
        "exit_code_by_key"
    ]
    result = Score(str(source.relative_to("mutants")))
    survivors = []
    for key, code in sorted(exit_codes.items()):
        name = key.removeprefix(module + ".")
        killed = code in KILLED
        result.total += 1
        result.killed += killed
        if message_only(functions[MUTANT.sub("__mutmut_orig", name)], functions[name]):
            result.messages += 1
            result.messages_killed += killed
        elif not killed:
            survivors.append(key)
    result.survivors = tuple(survivors)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", type=float, default=90.0, help="percent, messages excluded")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args(argv)
    scores = [score(meta) for meta in sorted(Path("mutants").rglob("*.py.meta"))]
    if not scores:
        print("no mutmut results under mutants/: run `mutmut run` first", file=sys.stderr)
        return 2
    print(f"{'file':40} {'mutants':>7} {'killed':>7} {'messages':>8} {'all':>6} {'w/o msg':>7}")
    failing = []
    for s in scores:
        without = s.percent(with_messages=False)
        print(
            f"{s.path:40} {s.total:7} {s.killed:7} {s.messages:8} "
            f"{s.percent(with_messages=True):5.1f}% {without:6.1f}%"
        )
        if without < args.floor:
            failing.append(s.path)
        if args.survivors:
            for key in s.survivors:
                print(f"    survived: {key}")
    total = Score(
        "all",
        *(
            sum(getattr(s, f) for s in scores)
            for f in ("total", "killed", "messages", "messages_killed")
        ),
    )
    print(
        f"{'all':40} {total.total:7} {total.killed:7} {total.messages:8} "
        f"{total.percent(with_messages=True):5.1f}% {total.percent(with_messages=False):6.1f}%"
    )
    if failing:
        print(f"below {args.floor:g}% killed (messages excluded): {', '.join(failing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
