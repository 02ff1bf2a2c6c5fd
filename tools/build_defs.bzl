"""Shared compiler options for the project's C++ targets."""

load("@libtorch//:defs.bzl", "LIBTORCH_CXX_STANDARD")

# Warnings for the project's own code (torch headers are noisy, hence the two
# suppressions in .bazelrc), and the C++ standard the LibTorch needs: C++17 as
# .bazelrc sets, C++20 for LibTorch 2.14 and later.
COPTS = [
    "-std=" + LIBTORCH_CXX_STANDARD,
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]
