#!/usr/bin/env python3
"""The layer check: reads the `crate::` references between the top-level modules of src/
(folders and files) and fails on a cycle or on an import that points up the layer order
of docs/architecture.md. Unit tests (`#[cfg(test)] mod tests`) count like the code.

    python3 scripts/check-layers.py [SRC]     # exit 0: layers hold; 1: what breaks them
"""
import os
import re
import sys

# Top to bottom. A module may import any module in a lower layer, or in its own layer
# when the graph stays acyclic; LEAVES may be imported by everyone and import only leaves.
LAYERS = [
    ["cli"],                       # the command line
    ["startup"],                   # the composition root: builds and runs the application
    ["settings"],                  # layers the sources, composes every module's section
    ["lb"],                        # load reports to balancers, from the adapters' state
    ["http", "grpc"],              # protocol adapters: REST (/api/v1, /v2), gRPC
    ["oip"],                       # the Open Inference Protocol without its transports
    ["predict", "auth"],           # services
    ["cache"],                     # the two-tier cache (and every Redis key)
    ["models", "features"],        # model versions and inference; feature stores
    ["db"],                        # PostgreSQL pools, migrations, games as rows
    ["games"],                     # domain types and the Retrosheet reader
]
LEAVES = {"loadtest", "monitoring", "telemetry", "validation"}

REFERENCE = re.compile(r"\bcrate::(\w+)")
GROUP = re.compile(r"\buse\s+crate::\{([^}]*)\}", re.S)
COMMENT = re.compile(r"//[^\n]*")


def modules(src):
    found = set()
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            found.add(entry[:-3])
        elif os.path.isdir(path):
            found.add(entry)
    return found


def edges(src, known):
    graph = {module: {} for module in known}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            top = os.path.relpath(path, src).split(os.sep)[0]
            top = top[:-3] if top.endswith(".rs") else top
            if top not in known:
                continue
            text = COMMENT.sub("", open(path, encoding="utf-8").read())
            names = set(REFERENCE.findall(text))
            for group in GROUP.findall(text):
                names |= {item.strip().split("::")[0] for item in group.split(",") if item.strip()}
            for target in names:
                if target in known and target != top:
                    graph[top].setdefault(target, os.path.relpath(path, os.path.dirname(src)))
    return graph


def cycles(graph):
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    src = os.path.normpath(src)
    known = modules(src)
    rank = {module: depth for depth, layer in enumerate(LAYERS) for module in layer}
    unplaced = sorted(known - set(rank) - LEAVES)
    problems = [f"module `{m}` is in no layer: add it to LAYERS or LEAVES" for m in unplaced]
    graph = edges(src, known)
    for source in sorted(graph):
        for target, where in sorted(graph[source].items()):
            if target in LEAVES:
                continue
            if source in LEAVES:
                problems.append(f"{where}: leaf `{source}` imports `{target}`")
            elif source in rank and target in rank and rank[target] < rank[source]:
                problems.append(f"{where}: `{source}` imports `{target}`, a layer above it")
    for component in cycles(graph):
        problems.append("cycle between " + " <-> ".join(component))
    for source in sorted(graph):
        print(f"{source} -> {', '.join(sorted(graph[source])) or '(nothing)'}")
    if problems:
        print("\nthe layers do not hold:", *problems, sep="\n  ")
        return 1
    print("\nlayers hold: every import points down, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
