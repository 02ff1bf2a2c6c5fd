"""dl_fuzz_test: a fuzz target and the test that runs it on its inputs."""

load("//tools:build_defs.bzl", "COPTS")

def dl_fuzz_test(name, srcs, deps, size = "medium", dict = None):
    """Defines `name` (the fuzz target) and `name`_test.

    The target links libFuzzer under --config=fuzz (clang) and replay_main.cc
    otherwise. The test runs it on corpus/`name`/ and regressions/`name`/ (the
    inputs that once crashed it): each input once, or fuzzing for FUZZ_SECONDS,
    with libFuzzer's dictionary `dict` (a file in this package) if given.
    """
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        copts = COPTS,
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + [":fuzz_input_file"] + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": [":replay_main"],
        }),
    )
    inputs = native.glob(["corpus/%s/**" % name, "regressions/%s/**" % name])
    dirs = ["fuzz/corpus/" + name]
    if native.glob(["regressions/%s/**" % name]):
        dirs.append("fuzz/regressions/" + name)
    native.sh_test(
        name = name + "_test",
        size = size,
        srcs = ["run_fuzzer.sh"],
        args = ["$(location :%s)" % name] + dirs + (["-dict=$(location %s)" % dict] if dict else []),
        data = [":" + name, "lsan_suppressions.txt"] + inputs + ([dict] if dict else []),
        tags = ["fuzz"],
    )
