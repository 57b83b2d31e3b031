"""The shape of a DAG: edges, cycles (printed as ``a → b → c → a``), order, layers, drawings.

Kept free of task semantics so the validator, the executor, ``crane dag show``
and the exporters (next: Airflow, Prefect) all read the same structure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Graph:
    """Tasks and their dependency edges; ``upstream[t]`` must finish before ``t`` starts."""

    upstream: dict[str, list[str]]
    downstream: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.downstream = {name: [] for name in self.upstream}
        for name, ups in self.upstream.items():
            for up in ups:
                self.downstream.setdefault(up, []).append(name)

    @classmethod
    def of(cls, edges: Mapping[str, Iterable[str]]) -> Graph:
        return cls({name: list(dict.fromkeys(ups)) for name, ups in edges.items()})

    def find_cycle(self) -> list[str] | None:
        """One cycle as a closed path ``[a, b, c, a]`` (in dependency order), or None."""
        color: dict[str, int] = dict.fromkeys(self.upstream, 0)  # 0 new, 1 on stack, 2 done
        for start in self.upstream:
            if color[start]:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            path: list[str] = [start]
            color[start] = 1
            while stack:
                node, index = stack[-1]
                nexts = self.downstream.get(node, [])
                if index == len(nexts):
                    stack.pop()
                    path.pop()
                    color[node] = 2
                    continue
                stack[-1] = (node, index + 1)
                child = nexts[index]
                if color.get(child) == 1:
                    return path[path.index(child) :] + [child]
                if color.get(child) == 0:
                    color[child] = 1
                    stack.append((child, 0))
                    path.append(child)
        return None

    def order(self) -> list[str]:
        """A topological order (Kahn); stable: ties keep declaration order."""
        return [name for layer in self.layers() for name in layer]

    def layers(self) -> list[list[str]]:
        """Tasks by depth: layer 0 has no upstream, layer n depends on layer n-1 at the latest."""
        depth: dict[str, int] = {}
        remaining = {name: len(ups) for name, ups in self.upstream.items()}
        current = [name for name, count in remaining.items() if count == 0]
        layers: list[list[str]] = []
        while current:
            layers.append(current)
            following: list[str] = []
            for name in current:
                for child in self.downstream[name]:
                    remaining[child] -= 1
                    if remaining[child] == 0:
                        following.append(child)
                        depth[child] = len(layers)
            current = following
        return layers

    def descendants(self, roots: Iterable[str]) -> set[str]:
        """``roots`` and everything downstream of them."""
        seen: set[str] = set()
        todo = list(roots)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(self.downstream.get(name, []))
        return seen


def cycle_text(cycle: Sequence[str]) -> str:
    """``['a', 'b', 'a']`` → ``a → b → a``."""
    return " → ".join(cycle)


def mermaid(
    graph: Graph, labels: Mapping[str, str], groups: Mapping[str, str | None], title: str = ""
) -> str:
    """A Mermaid flowchart; groups become subgraphs; node ids are generated (names hold dots)."""
    ids = {name: f"t{i}" for i, name in enumerate(graph.upstream)}
    lines = ["---", f"title: {title}", "---"] if title else []
    lines.append("flowchart TD")
    by_group: dict[str | None, list[str]] = {}
    for name in graph.upstream:
        by_group.setdefault(groups.get(name), []).append(name)
    for group, names in by_group.items():
        indent = "    "
        if group is not None:
            lines.append(f'    subgraph {_mermaid_id(group)}["{_mermaid_text(group)}"]')
            indent = "        "
        for name in names:
            lines.append(f'{indent}{ids[name]}["{_mermaid_text(labels.get(name, name))}"]')
        if group is not None:
            lines.append("    end")
    for name, ups in graph.upstream.items():
        for up in ups:
            lines.append(f"    {ids[up]} --> {ids[name]}")
    return "\n".join(lines) + "\n"


def _mermaid_id(text: str) -> str:
    return "g_" + "".join(c if c.isalnum() else "_" for c in text)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")
