"""Results records for the scripts that set C++ against Python PyTorch
(train_step_report.py, infer_report.py, ddp_report.py, roberta_infer_report.py):
one JSON Lines record per compared measurement, with the common fields that the
binaries' records carry (common/results.cc NewRecord), so that tools/report.py
can draw them beside the binaries' own records.

  import records
  records.check_writable(args.results)          # before measuring: exits 2 if it cannot be appended to
  rec = records.comparison("resnet18 train step", "fp32", batch_size=32, threads=2, cpp_seconds=0.11,
                           python_seconds=0.12, rounds=3, libtorch_version="2.13.0",
                           python_torch_version="2.13.0+cpu")
  records.append(args.results, rec)             # one write(2) of one line, O_APPEND
"""
import json
import os
import shlex
import socket
import subprocess
import sys
import time

SCHEMA_VERSION = 1
BINARY = "cpp_vs_python"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The host-memory policy the C++ binaries set with mallopt before main
# (common/host_malloc.h: no mmap'd blocks, a 2 GB trim threshold), given to the
# Python peers through glibc's variables so that both sides allocate alike.
PEER_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}


def peer_env(base=None):
    """The environment for a Python peer: `base` (default: this process's) with PEER_MALLOC_ENV."""
    env = dict(os.environ if base is None else base)
    env.update(PEER_MALLOC_ENV)
    return env


def cpu_model():
    """The CPU's model name as the binaries write it (common/device.cc CpuModel)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _git(*args):
    """What git prints for `args` in this checkout, or None when it fails."""
    try:
        done = subprocess.run(["git", "--no-optional-locks", "-C", ROOT, *args], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision():
    """The checkout's short HEAD, with "-dirty" when a tracked file differs
    from it, or "unknown" (as the binaries write it)."""
    revision = _git("rev-parse", "--short", "HEAD")
    if not revision:
        return "unknown"
    return revision + "-dirty" if _git("status", "--porcelain", "--untracked-files=no") else revision


def command_line(argv=None):
    """The script's command line as a shell would take it again (the
    binaries' "command"): its name without the directory, then its arguments."""
    argv = sys.argv if argv is None else argv
    return " ".join([shlex.quote(os.path.basename(argv[0]))] + [shlex.quote(a) for a in argv[1:]])


def utc_timestamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def comparison(work, variant, *, batch_size, threads, cpp_seconds, python_seconds, rounds, libtorch_version,
               python_torch_version, device="cpu", device_name=None, **extra):
    """One cpp_vs_python record: the median seconds per step or batch on each
    side and their ratio python_over_cpp (> 1: C++ faster), plus `extra`
    fields (model, per-round seconds, ...)."""
    record = {
        "schema_version": SCHEMA_VERSION, "binary": BINARY, "work": work, "variant": variant,
        "batch_size": batch_size, "threads": threads, "cpp_seconds": cpp_seconds, "python_seconds": python_seconds,
        "python_over_cpp": python_seconds / cpp_seconds if cpp_seconds > 0 else None, "rounds": rounds,
        "libtorch_version": libtorch_version, "python_torch_version": python_torch_version, "device": device,
        "device_name": device_name or cpu_model(), "hostname": socket.gethostname(), "timestamp": utc_timestamp(),
        "git_revision": git_revision(), "command": command_line(),
    }
    record.update(extra)
    return record


def output_of(prog, done):
    """The stdout of a finished subprocess.run (with capture_output=True,
    text=True); when the command failed, its last lines and one line naming
    it on stderr, then exit 1."""
    if done.returncode != 0:
        print("\n".join((done.stdout + done.stderr).strip().splitlines()[-15:]), file=sys.stderr)
        sys.exit(f"{prog}: exit code {done.returncode} from: {' '.join(map(str, done.args))}")
    return done.stdout


def json_of(prog, text, command):
    """`text`, the output of `command` (a list), read as JSON; when it is not
    JSON, one line naming the command, then exit 1."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        sys.exit(f"{prog}: not JSON ({e.msg}, line {e.lineno}) from: {' '.join(map(str, command))}")


def check_writable(path, prog):
    """Exits with one line and status 2 when `path` cannot be appended to
    (creates it empty when it does not exist)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as e:
        print(f"{prog}: --results {path}: cannot append: {e.strerror or e}", file=sys.stderr)
        sys.exit(2)


def append(path, record):
    """Appends `record` as one line with a single write to a file opened with
    O_APPEND, so that concurrent writers never interleave within a line; a
    missing newline at the end of the file (a cut-short record) is completed
    first so that the new record stays on its own line. Raises OSError."""
    line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        data = line.encode("utf-8")
        written = os.write(fd, data)
        while written < len(data):  # a short write: only on a full disk or a signal
            written += os.write(fd, data[written:])
    finally:
        os.close(fd)


def append_all(path, recs, prog):
    """Appends each record; on failure prints one line and exits 1."""
    try:
        for rec in recs:
            append(path, rec)
    except (OSError, ValueError) as e:  # ValueError: a NaN or infinite figure
        sys.exit(f"{prog}: cannot append to {path}: {getattr(e, 'strerror', None) or e}")
    print(f"{prog}: appended {len(recs)} record{'' if len(recs) == 1 else 's'} to {path}", file=sys.stderr)
