#!/usr/bin/env python3
"""The layering rule of docs/ARCHITECTURE.md, checked against the code.

The doc's layer table (the rows between the markers `<!-- layers -->` and `<!-- /layers -->`)
lists the folders of src/ from the bottom layer up, one row a layer:

    | 1 | `io/` | ... |

A file may include its own folder and the folders of lower layers. The exceptions the doc names
under `<!-- layer-exceptions -->` (lines "- `src/FILE` -> `FOLDER/`") are allowed, nothing else.
Every folder under src/ must have a row. Exit status 1 names each include that goes up a layer.

    python3 scripts/check_layers.py [REPO]        # check REPO (default: this checkout)
    python3 scripts/check_layers.py --self-test   # the checker on small made-up trees
"""
import os
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/[^"]+"', re.M)
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh", ".inc")


def read_layers(doc_text, doc_path):
    """{folder: rank} and the set of allowed (file, folder) exceptions."""
    m = re.search(r"<!-- layers -->(.*?)<!-- /layers -->", doc_text, re.S)
    if not m:
        raise SystemExit(f"{doc_path}: no layer table between <!-- layers --> and <!-- /layers -->")
    ranks = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].isdigit():
            continue
        for folder in re.findall(r"`([A-Za-z0-9_]+)/`", cells[1]):
            if folder in ranks:
                raise SystemExit(f"{doc_path}: folder {folder}/ is listed in two layers")
            ranks[folder] = int(cells[0])
    if not ranks:
        raise SystemExit(f"{doc_path}: the layer table lists no folder")
    exceptions = set()
    e = re.search(r"<!-- layer-exceptions -->(.*?)<!-- /layer-exceptions -->", doc_text, re.S)
    if e:
        for file, folder in re.findall(r"`src/([^`]+)`\s*->\s*`([A-Za-z0-9_]+)/`", e.group(1)):
            exceptions.add((file, folder))
    return ranks, exceptions


def check(repo):
    """The list of violations (strings) of the tree at `repo`."""
    doc_path = os.path.join(repo, "docs", "ARCHITECTURE.md")
    with open(doc_path, encoding="utf-8") as f:
        ranks, exceptions = read_layers(f.read(), doc_path)
    src = os.path.join(repo, "src")
    problems = []
    for folder in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, folder)) and folder not in ranks:
            problems.append(f"src/{folder}/: not in the layer table of docs/ARCHITECTURE.md")
    for folder in ranks:
        if not os.path.isdir(os.path.join(src, folder)):
            problems.append(f"docs/ARCHITECTURE.md: the layer table lists {folder}/, which src/ does not have")
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(SOURCE_EXT):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            own = rel.split(os.sep)[0]
            if own not in ranks:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for target in sorted(set(INCLUDE.findall(text))):
                if target not in ranks or ranks[target] <= ranks[own]:
                    continue
                if (rel.replace(os.sep, "/"), target) in exceptions:
                    continue
                problems.append(f"src/{rel}: includes {target}/ (layer {ranks[target]}) from {own}/ (layer {ranks[own]})")
    return problems


def self_test():
    doc = """# x
<!-- layers -->
| layer | folders |
|---|---|
| 1 | `io/` |
| 2 | `model/`, `ops/` |
| 3 | `cli/` |
<!-- /layers -->
<!-- layer-exceptions -->
- `src/ops/backend.cpp` -> `cli/`
<!-- /layer-exceptions -->
"""
    def tree(files):
        d = tempfile.mkdtemp()
        os.makedirs(os.path.join(d, "docs"))
        with open(os.path.join(d, "docs", "ARCHITECTURE.md"), "w") as f:
            f.write(doc)
        for folder in ("io", "model", "ops", "cli"):
            os.makedirs(os.path.join(d, "src", folder))
        for path, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, "src", path)), exist_ok=True)
            with open(os.path.join(d, "src", path), "w") as f:
                f.write(text)
        return d
    ok = tree({"model/a.h": '#include "io/x.h"\n#include "ops/y.h"\n', "cli/m.cpp": '#include "model/a.h"\n',
               "ops/backend.cpp": '#include "cli/z.h"\n'})
    assert check(ok) == [], check(ok)
    up = check(tree({"io/x.cpp": '#include <vector>\n  #include "model/a.h"\n'}))
    assert len(up) == 1 and "src/io/x.cpp: includes model/" in up[0], up
    other = check(tree({"ops/other.cpp": '#include "cli/z.h"\n'}))
    assert len(other) == 1 and "src/ops/other.cpp" in other[0], other
    d = tree({})
    os.makedirs(os.path.join(d, "src", "newfolder"))
    assert any("src/newfolder/: not in the layer table" in p for p in check(d))
    print("check_layers self-test: 4 cases passed")


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return 0
    repo = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems = check(repo)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering violation(s); the layer table is in docs/ARCHITECTURE.md")
        return 1
    print("layering: every include goes to its own layer or below")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
