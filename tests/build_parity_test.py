#!/usr/bin/env python3
"""Fails when a binary or test exists in the Bazel build and not in the CMake
build (CMakeLists.txt), or the other way round.

Bazel: every cc_binary, cc_test, sh_test and py_test in the workspace's BUILD
files. CMake: every dl_binary, dl_test and dl_sh_test (foreach loops expanded)
and add_test(NAME <package>/<name>).

  python3 tests/build_parity_test.py [WORKSPACE_ROOT]
"""
import os
import re
import sys

BAZEL_RULE = re.compile(r'\b(cc_binary|cc_test|sh_test|py_test)\(\s*name\s*=\s*"([^"]+)"')
CMAKE_RULE = re.compile(r'\b(dl_binary|dl_test|dl_sh_test)\(\s*([^\s)]+)')
CMAKE_ADD_TEST = re.compile(r'\badd_test\(\s*NAME\s+([^\s)]+)')
FOREACH = re.compile(r'foreach\((\w+)\s+([^)]*)\)(.*?)endforeach\(\)', re.S)
SKIP_DIRS = {".git", ".venv", "third_party", "build", ".gpu_deps"}


def workspace_root():
    if len(sys.argv) > 1:
        return sys.argv[1]
    # Under bazel test the runfiles link CMakeLists.txt to the source tree.
    return os.path.dirname(os.path.realpath("CMakeLists.txt"))


def bazel_targets(root):
    targets = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("bazel-")]
        if "BUILD" in filenames:
            package = os.path.relpath(dirpath, root)
            text = open(os.path.join(dirpath, "BUILD")).read()
            for kind, name in BAZEL_RULE.findall(text):
                targets[name] = f"//{package}:{name} ({kind})"
    return targets


def cmake_targets(root):
    text = open(os.path.join(root, "CMakeLists.txt")).read()
    text = re.sub(r"#.*", "", text)

    def expand(match):
        var, items, body = match.group(1), match.group(2).split(), match.group(3)
        return "\n".join(body.replace("${%s}" % var, item) for item in items)

    text = FOREACH.sub(expand, text)
    targets = {}
    for kind, name in CMAKE_RULE.findall(text):
        targets[name] = f"{name} ({kind})"
    for name in CMAKE_ADD_TEST.findall(text):
        if "/" in name and "${" not in name:  # tests added directly: NAME package/name
            targets[name.split("/")[-1]] = f"{name} (add_test)"
    return targets


def main():
    root = workspace_root()
    bazel, cmake = bazel_targets(root), cmake_targets(root)
    if not bazel or not cmake:
        print(f"build_parity_test: found no targets under {root} (Bazel {len(bazel)}, CMake {len(cmake)})")
        return 1
    only_bazel = sorted(set(bazel) - set(cmake))
    only_cmake = sorted(set(cmake) - set(bazel))
    for name in only_bazel:
        print(f"only in Bazel: {bazel[name]} — add it to CMakeLists.txt")
    for name in only_cmake:
        print(f"only in CMake: {cmake[name]} — add it to a BUILD file or remove it")
    if only_bazel or only_cmake:
        return 1
    print(f"build_parity_test: {len(bazel)} binaries and tests, the same in both builds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
