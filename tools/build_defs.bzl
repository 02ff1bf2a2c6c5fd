"""Shared compiler options for the project's C++ targets."""

# Warnings we want on for the project's own code (torch headers are system-like
# and noisy, hence the two suppressions in .bazelrc).
COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]
