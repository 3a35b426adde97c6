#!/usr/bin/env python3
"""bench.py - the side-by-side benchmark driver (run it through e2e/bench/run.sh, which
installs fio-with-libnfs, smallfiles, ganesha and matplotlib and passes their paths).

Targets, one after the other, each on a fresh state directory on the same disk:
  local     the host filesystem itself (fio libaio O_DIRECT, smallfiles on a directory):
            the ceiling, no network, no server
  dittofs   `dfs start`: embedded defaults (sled metadata + local blocks), default
            durability, NFSv3 + MOUNT on loopback
  ganesha   Debian's nfs-ganesha 4.3, VFS FSAL exporting a directory on the same disk,
            NFSv3 on loopback
Every target gets the same native userspace clients (fio's libnfs engine, smallfiles on
libnfs; the local target the same fio jobs and smallfiles on a directory) and the same
workloads, sizes and durations; each workload runs --reps times and the median is kept.
After every workload run the target is settled (Target.settle: background work done,
`sync`, server idle) so each run starts from the same kind of state; the settle times are
reported, since they are work the workloads caused.
Then a kernel-client pass (dittofs and ganesha both served, one qemu guest mounting each
with the Linux NFSv3 and NFSv4.1 clients, and DittoFS over NFSv4.2 too, running fio + a
create loop on each) and the storage core's in-process benchmarks (e2e/bench/core.sh).

Output: the table on stdout; in the results directory results.json (every run's number,
the medians, the ratios, the core benchmark lines), results.png (ratios chart),
report.txt (the table + core output), logs/. Last line: "bench: N passed, N failed"
(a measurement fails when its client or server fails; no speed is ever asserted).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CACHE = os.environ.get("DITTOFS_CACHE", os.path.expanduser("~/.cache/dittofs"))

# Sizes per mode. quick: every workload briefly, so CI exercises the harness (numbers
# meaningless). full: the documented run (docs/benchmarks.md), under 20 min here.
MODES = {
    "full": dict(jobs=4, seq_mb=256, rand_secs=10, creates_secs=10, tree_files=10000,
                 tree_dirs=100, clients=[1, 4, 16], reps=3,
                 k_seq_mb=64, k_rand_secs=10, k_creates_secs=10),
    "quick": dict(jobs=4, seq_mb=8, rand_secs=2, creates_secs=2, tree_files=400,
                  tree_dirs=10, clients=[1, 4, 16], reps=1,
                  k_seq_mb=8, k_rand_secs=2, k_creates_secs=2),
}
PORTS = {"dittofs": 24049, "ganesha": 24050, "ganesha_mnt": 24051}
TREE_PHASES = ["create", "stat", "read", "delete"]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def wait_port(port, secs=30.0, proc=None):
    end = time.time() + secs
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


# ---- targets ------------------------------------------------------------------------------
class Target:
    """A server under test (or the local disk): start/stop plus how clients reach it."""
    name = ""
    label = ""

    def __init__(self, work):
        self.work = work

    def start(self):
        pass

    def stop(self):
        pass

    def pid(self):
        return None

    def busy(self):
        """Whether the target still has work of its own to finish (DittoFS: unflushed
        files); the process's CPU use is checked separately."""
        return False

    def settle(self, timeout=300.0):
        """Waits until the target is quiet after a workload, so the next one starts from
        the same kind of state on every target: background work done (DittoFS's flusher,
        the host's dirty page cache written back by `sync`), then the server process idle
        (under 5% of a core for 0.5 s). Returns the seconds it took (reported: it is work
        the workload caused that its own number does not show)."""
        t0 = time.time()
        while self.busy() and time.time() - t0 < timeout:
            time.sleep(0.2)
        os.sync()
        pid = self.pid()
        while pid and time.time() - t0 < timeout:
            a = cpu_seconds(pid)
            time.sleep(0.5)
            b = cpu_seconds(pid)
            if a is None or b is None or b - a < 0.025:
                break
        return time.time() - t0


def drop_caches():
    """Every target starts with the host's page cache written back and emptied, so none
    inherits another's cached data (or the memory it freed, which on a VM with free-page
    reporting is much cheaper to reuse than memory the host has taken back)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        log(f"cannot drop the page cache ({e}); targets may start from different cache states")


def cpu_seconds(pid):
    """User + system CPU seconds of a process (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Local(Target):
    name, label = "local", "local disk"

    def start(self):
        self.dir = os.path.join(self.work, "local")
        os.makedirs(self.dir, exist_ok=True)


class NfsTarget(Target):
    port = mnt_port = 0
    export = "/export"

    def url(self):
        return (f"nfs://127.0.0.1{self.export}?nfsport={self.port}"
                f"&mountport={self.mnt_port}&version=3")


class DittoFS(NfsTarget):
    name, label = "dittofs", "DittoFS"

    def __init__(self, work, dfs):
        super().__init__(work)
        self.dfs = dfs
        self.proc = None
        self.port = self.mnt_port = PORTS["dittofs"]

    def start(self):
        data = os.path.join(self.work, "dfs-data")
        env = dict(os.environ,
                   DITTOFS_NFS_BIND="127.0.0.1", DITTOFS_NFS_PORT=str(self.port),
                   DITTOFS_HTTP_PORT=str(self.port + 100),
                   DITTOFS_CONTROL_PORT=str(self.port + 200),
                   DITTOFS_SHARES="[{name: /export, squash: none}]")
        self.logf = open(os.path.join(self.work, "dfs.log"), "ab")
        self.proc = subprocess.Popen([self.dfs, "start", "--data-dir", data], env=env,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(self.port, 60, self.proc):
            raise RuntimeError(f"dfs did not start (see {self.logf.name})")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pid(self):
        return self.proc.pid if self.proc else None

    def metrics(self):
        """The /metrics text of the running dfs ("" if it does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port + 100}/metrics",
                                        timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""

    def busy(self):
        # files whose writes the background flusher has not chunked yet
        m = re.findall(r"^dittofs_blockstore_dirty_files\{[^}]*\} (\d+)", self.metrics(), re.M)
        return any(int(v) for v in m)


class Ganesha(NfsTarget):
    name, label = "ganesha", "nfs-ganesha"

    def __init__(self, work):
        super().__init__(work)
        self.port, self.mnt_port = PORTS["ganesha"], PORTS["ganesha_mnt"]
        self.env = dict(os.environ, GANESHA_DIR=os.path.join(work, "ganesha"),
                        GANESHA_NFS_PORT=str(self.port), GANESHA_MNT_PORT=str(self.mnt_port),
                        GANESHA_PROTOCOLS="3, 4")

    def _ctl(self, verb):
        r = subprocess.run([os.path.join(ROOT, "e2e/vm/ganesha.sh"), verb], env=self.env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"ganesha.sh {verb} failed:\n{r.stdout}{r.stderr}")

    def start(self):
        self._ctl("start")

    def stop(self):
        self._ctl("stop")

    def pid(self):
        try:
            with open(os.path.join(self.env["GANESHA_DIR"], "ganesha.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None


# ---- workloads ------------------------------------------------------------------------------
class Failed(Exception):
    pass


def run(cmd, logpath, timeout):
    """Runs a client command; returns stdout; raises Failed with its stderr tail."""
    with open(logpath, "a") as lf:
        lf.write("$ " + " ".join(cmd) + "\n")
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            lf.write(f"timed out after {timeout} s\n")
            raise Failed(f"timed out after {timeout} s")
        lf.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise Failed(f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
    return r.stdout


def fio_args(target, p):
    common = ["--output-format=json", "--name=bench", f"--numjobs={p['jobs']}",
              "--group_reporting", "--filename_format=bench.$jobnum",
              f"--size={p['seq_mb']}m"]
    if isinstance(target, Local):
        return common + ["--ioengine=libaio", "--direct=1", f"--directory={target.dir}"]
    return common + ["--ioengine=nfs", f"--nfs_url={target.url()}"]


# (key, label, unit, fio options, what to read from fio's JSON)
FIO_WORKLOADS = [
    ("seq_write", "sequential write 1 MiB + fsync", "MiB/s",
     ["--rw=write", "--bs=1M", "--iodepth=8", "--end_fsync=1"], "bw"),
    ("seq_read", "sequential read 1 MiB", "MiB/s",
     ["--rw=read", "--bs=1M", "--iodepth=8"], "bw"),
    ("rand_write", "random write 4 KiB QD32", "IOPS",
     ["--rw=randwrite", "--bs=4k", "--iodepth=32", "--time_based", "RUNTIME"], "iops"),
    ("rand_read", "random read 4 KiB QD32", "IOPS",
     ["--rw=randread", "--bs=4k", "--iodepth=32", "--time_based", "RUNTIME"], "iops"),
    ("rand_rw", "random 70/30 read/write 4 KiB QD32", "IOPS",
     ["--rw=randrw", "--rwmixread=70", "--bs=4k", "--iodepth=32", "--time_based", "RUNTIME"],
     "iops"),
]


def fio_value(out, what):
    j = json.loads(out[out.index("{"):])
    job = j["jobs"][0]
    if job.get("error"):
        raise Failed(f"fio job error {job['error']}")
    if job["read"]["io_bytes"] + job["write"]["io_bytes"] == 0:
        raise Failed("fio moved no data")
    if what == "bw":  # KiB/s -> MiB/s, reads and writes together
        return (job["read"]["bw"] + job["write"]["bw"]) / 1024.0
    return job["read"]["iops"] + job["write"]["iops"]


def smallfiles_rows(out):
    rows = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            if d["errors"]:
                raise Failed(f"smallfiles: {d['errors']} errors in {d['phase']}")
            rows[d["phase"]] = d["ops_per_sec"]
    return rows


def sf_target(target):
    return target.dir if isinstance(target, Local) else target.url()


# The tree workload as separate smallfiles runs (same prefix and seed), so the target is
# settled between phases: (smallfiles --phases, the phases whose numbers are kept).
TREE_RUNS = [("mkdir,create", ["create"]), ("stat", ["stat"]), ("read", ["read"]),
             ("delete,rmdir", ["delete"])]


def measure_target(target, p, fio, sf, logs, results, settles, seq):
    """Runs every workload --reps times against one started target, settling it (see
    Target.settle) after each run; settle times go to `settles[target]`."""
    logp = os.path.join(logs, f"{target.name}.log")
    secs = p["rand_secs"]

    def record(key, value):
        results.setdefault(key, {}).setdefault(target.name, []).append(value)

    def settle():
        settles.setdefault(target.name, []).append(round(target.settle(), 2))

    for rep in range(p["reps"]):
        for key, _label, _unit, opts, what in FIO_WORKLOADS:
            opts = [f"--runtime={secs}" if o == "RUNTIME" else o for o in opts]
            try:
                v = fio_value(run([fio] + fio_args(target, p) + opts, logp, 600), what)
                log(f"{target.name} rep {rep + 1}: {key} {v:.1f}")
                record(key, v)
            except (Failed, ValueError, KeyError) as e:
                log(f"{target.name} rep {rep + 1}: {key} FAILED: {e}")
                record(key, None)
            settle()
        try:
            out = run([sf, sf_target(target), "--mode", "creates", "--clients", str(p["jobs"]),
                       "--seconds", str(p["creates_secs"]), "--prefix", f"creates-{seq}-{rep}"],
                      logp, 600)
            v = smallfiles_rows(out)["creates"]
            log(f"{target.name} rep {rep + 1}: creates {v:.1f}")
            record("creates", v)
        except (Failed, KeyError) as e:
            log(f"{target.name} rep {rep + 1}: creates FAILED: {e}")
            record("creates", None)
        settle()
        for n in p["clients"]:
            rows, failed = {}, None
            for phases, kept in TREE_RUNS:
                if failed:
                    break
                try:
                    out = run([sf, sf_target(target), "--mode", "tree", "--clients", str(n),
                               "--files", str(p["tree_files"]), "--dirs", str(p["tree_dirs"]),
                               "--prefix", f"tree-{seq}-{rep}-{n}", "--phases", phases],
                              logp, 1800)
                    got = smallfiles_rows(out)
                    for ph in kept:
                        rows[ph] = got[ph]
                except (Failed, KeyError) as e:
                    failed = f"{phases}: {e}"
                settle()
            for ph in TREE_PHASES:
                record(f"tree_{ph}_{n}", rows.get(ph))
            if failed:
                log(f"{target.name} rep {rep + 1}: tree x{n} FAILED: {failed}")
            else:
                log(f"{target.name} rep {rep + 1}: tree x{n} " +
                    " ".join(f"{ph} {rows[ph]:.0f}" for ph in TREE_PHASES))


def workload_rows(p):
    """(key, label, unit) of every row of the table, in order."""
    rows = [(k, label, unit) for k, label, unit, _o, _w in FIO_WORKLOADS]
    rows.append(("creates", f"creates (create + 4 KiB + fsync), {p['jobs']} clients", "files/s"))
    for n in p["clients"]:
        for ph in TREE_PHASES:
            rows.append((f"tree_{ph}_{n}",
                         f"small files {ph} ({p['tree_files']}, 1-32 KiB), {n} client{'s' * (n > 1)}",
                         "files/s"))
    return rows


# ---- kernel-client pass ---------------------------------------------------------------
KERNEL_GUEST = r'''
set -u
cd /share
results=/share/kernel
mkdir -p $results
bench_one() { # name mount-options  (one export may be mounted twice: names keep files apart)
  local name=$1 d=/mnt/$1
  mkdir -p $d
  mount -t nfs -o "$2" $VM_SERVER:/export $d \
    || { echo "kernel: mount $name failed" > $results/$name.error; return; }
  local f="fio --output-format=json --name=k --directory=$d --filename=kbench-$name --size=${K_SEQ_MB}m --ioengine=libaio --direct=1"
  $f --rw=write --bs=1M --iodepth=8 --end_fsync=1 > $results/$name-seq_write.json 2>> $results/$name.err
  $f --rw=read --bs=1M --iodepth=8 > $results/$name-seq_read.json 2>> $results/$name.err
  $f --rw=randwrite --bs=4k --iodepth=32 --time_based --runtime=$K_RAND_SECS > $results/$name-rand_write.json 2>> $results/$name.err
  $f --rw=randread --bs=4k --iodepth=32 --time_based --runtime=$K_RAND_SECS > $results/$name-rand_read.json 2>> $results/$name.err
  python3 - "$d/creates-$name" "$K_CREATES_SECS" > $results/$name-creates.txt 2>> $results/$name.err <<'PY'
import os, sys, time
d, secs = sys.argv[1], float(sys.argv[2])
os.makedirs(d, exist_ok=True)
buf, n, t0 = os.urandom(4096), 0, time.monotonic()
while time.monotonic() - t0 < secs:
    fd = os.open(f"{d}/f{n:07d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, buf); os.fsync(fd); os.close(fd); n += 1
print(n / (time.monotonic() - t0))
PY
  cd /; umount $d || umount -l $d
}
'''


def kernel_mounts(targets):
    """(column name, mount options) of every kernel-client mount: each target over NFSv3
    and NFSv4.1, and DittoFS over NFSv4.2 too (the version Linux mounts by default)."""
    out = []
    for t in targets:
        v3 = f"vers=3,proto=tcp,port={t.port},mountport={t.mnt_port},mountproto=tcp,nolock"
        noacl = ",noacl" if isinstance(t, Ganesha) else ""  # noacl: see e2e/vm/ganesha.sh
        out.append((t.name, v3 + noacl))
        out.append((t.name + "41", f"vers=4.1,proto=tcp,port={t.port}"))
        if not isinstance(t, Ganesha):
            out.append((t.name + "42", f"vers=4.2,proto=tcp,port={t.port}"))
    return out


def kernel_pass(targets, p, logs):
    """One guest boot: mounts each NFS target with the kernel client and runs the short
    pass. Returns {key: {target: value or None}}."""
    share = tempfile.mkdtemp(prefix="kernel-", dir=logs)
    calls = []
    for name, opts in kernel_mounts(targets):
        calls.append(f"bench_one {name} {opts}")
    cmd = (f"export K_SEQ_MB={p['k_seq_mb']} K_RAND_SECS={p['k_rand_secs']} "
           f"K_CREATES_SECS={p['k_creates_secs']}\n" + KERNEL_GUEST + "\n".join(calls) + "\n")
    env = dict(os.environ, VM_SHARE=share, VM_TIMEOUT="1800")
    with open(os.path.join(logs, "kernel-console.log"), "w") as lf:
        r = subprocess.run([os.path.join(ROOT, "e2e/vm/run-in-guest.sh"), cmd], env=env,
                           stdout=lf, stderr=subprocess.STDOUT, timeout=2000)
    out = {}
    for name, _opts in kernel_mounts(targets):
        for key, what in [("seq_write", "bw"), ("seq_read", "bw"), ("rand_write", "iops"),
                          ("rand_read", "iops")]:
            try:
                with open(os.path.join(share, "kernel", f"{name}-{key}.json")) as f:
                    v = fio_value(f.read(), what)
            except (OSError, ValueError, KeyError, Failed) as e:
                log(f"kernel {name} {key} FAILED: {e}")
                v = None
            out.setdefault(key, {})[name] = v
        try:
            with open(os.path.join(share, "kernel", f"{name}-creates.txt")) as f:
                out.setdefault("creates", {})[name] = float(f.read().strip())
        except (OSError, ValueError) as e:
            log(f"kernel {name} creates FAILED: {e}")
            out.setdefault("creates", {})[name] = None
    if r.returncode != 0:
        log(f"guest exited {r.returncode} (console: {logs}/kernel-console.log)")
    return out


# ---- in-process core benchmarks -----------------------------------------------------------
def core_benchmarks(quick, logs):
    cmd = [os.path.join(HERE, "core.sh")] + (["--quick"] if quick else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    with open(os.path.join(logs, "core.log"), "w") as f:
        f.write(r.stdout + r.stderr)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    figures = []
    for ln in lines:
        m = re.match(r"\s*(.+?)\s{2,}([0-9.]+)\s*([A-Za-z/]+[A-Za-z/ ]*)$", ln)
        if m:
            figures.append({"what": m.group(1).strip(), "value": float(m.group(2)),
                            "unit": m.group(3).strip()})
    return {"ok": r.returncode == 0, "lines": lines, "figures": figures}


# ---- report -----------------------------------------------------------------------------
def med(vals):
    good = [v for v in (vals or []) if v is not None]
    if not good or len(good) < len(vals):
        return None
    return statistics.median(good)


def fmt(v):
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def build_table(rows, medians, kernel, names):
    peers = [n for n in names if n != "dittofs"]
    head = ["workload", "unit", "DittoFS"] + [LABELS[n] for n in peers] + \
        [f"DittoFS/{LABELS[n]}" for n in peers]
    k41 = bool(kernel) and any("ganesha41" in v for v in kernel.values())
    if kernel:
        head += ["kernel: DittoFS", "kernel: nfs-ganesha", "kernel: ratio"]
        head += ["kernel v4.1: DittoFS", "kernel v4.1: nfs-ganesha", "kernel v4.1: ratio",
                 "kernel v4.2: DittoFS"] if k41 else []
    table = [head]
    for key, label, unit in rows:
        m = medians.get(key, {})
        line = [label, unit, fmt(m.get("dittofs"))] + [fmt(m.get(n)) for n in peers]
        line += [(f"{r:.2f}x" if (r := ratio(m.get("dittofs"), m.get(n))) else "-") for n in peers]
        if kernel:
            k = kernel.get(key, {})
            kr = ratio(k.get("dittofs"), k.get("ganesha"))
            line += [fmt(k.get("dittofs")), fmt(k.get("ganesha")), f"{kr:.2f}x" if kr else "-"]
            if k41:
                kr41 = ratio(k.get("dittofs41"), k.get("ganesha41"))
                line += [fmt(k.get("dittofs41")), fmt(k.get("ganesha41")),
                         f"{kr41:.2f}x" if kr41 else "-", fmt(k.get("dittofs42"))]
        table.append(line)
    return table


def render_text(table):
    """The table as aligned text (the report and stdout)."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    out = []
    for i, r in enumerate(table):
        out.append("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j])
                             for j, c in enumerate(r)))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(table):
    """The table as Markdown (docs/benchmarks.md, with --publish)."""
    out = ["| " + " | ".join(table[0]) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(table[0]) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in table[1:]]
    return "\n".join(out)


DOC_START, DOC_END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def publish_doc(path, text):
    """Replaces what stands between the result markers of docs/benchmarks.md."""
    with open(path) as f:
        doc = f.read()
    i, j = doc.find(DOC_START), doc.find(DOC_END)
    if i < 0 or j < i:
        log(f"{path} has no {DOC_START} ... {DOC_END} markers: not updated")
        return False
    with open(path, "w") as f:
        f.write(doc[:i + len(DOC_START)] + "\n" + text + "\n" + doc[j:])
    return True


LABELS = {"local": "local disk", "dittofs": "DittoFS", "ganesha": "nfs-ganesha"}


def chart(path, rows, medians, kernel, title):
    """Bar chart of DittoFS / nfs-ganesha per workload (native clients, and the kernel
    client where measured), log scale around 1. The local-disk ceiling stays in the
    table: at ratios down to 0.001 it would flatten the comparison that matters."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        log(f"no chart: {e}")
        return False
    labels, vs_g, vs_k = [], [], []
    for key, label, _unit in rows:
        m = medians.get(key, {})
        labels.append(label)
        vs_g.append(ratio(m.get("dittofs"), m.get("ganesha")) or 0)
        k = (kernel or {}).get(key, {})
        vs_k.append(ratio(k.get("dittofs"), k.get("ganesha")) or 0)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(10, 0.36 * n + 1.8))
    ys = list(range(n))
    h = 0.38 if kernel else 0.6
    off = h / 2 if kernel else 0
    ax.barh([y - off for y in ys], vs_g, h, label="native client (libnfs on the host)",
            color=["#2ca02c" if v >= 1 else "#1f77b4" for v in vs_g])
    if kernel:
        ax.barh([y + off for y in ys], vs_k, h, label="Linux kernel client (qemu guest)",
                color="#ff7f0e")
    for y, v, w in [(y - off, v, 1) for y, v in zip(ys, vs_g)] + \
            ([(y + off, v, 0) for y, v in zip(ys, vs_k)] if kernel else []):
        if v:
            ax.text(v * 1.02, y, f"{v:.2f}x", va="center", fontsize=7,
                    fontweight="bold" if w else "normal")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    vals = [v for v in vs_g + vs_k if v]
    ax.set_xlim(min([0.25] + vals) * 0.9, max([2.0] + vals) * 1.15)
    ticks = [0.25, 0.5, 0.75, 1, 1.5, 2]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.set_xlabel("DittoFS / nfs-ganesha (log scale; right of 1 = DittoFS faster)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def nfs_latency(metrics):
    """(procedure, calls, mean microseconds) of every NFS procedure called, busiest first,
    from dfs's request-duration histogram."""
    sums, counts = {}, {}
    for m in re.finditer(r'^dittofs_nfs_request_duration_seconds_(sum|count)\{([^}]*)\} ([0-9.e+-]+)',
                         metrics, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = labels.get("procedure", "?")
        (sums if m.group(1) == "sum" else counts)[key] = float(m.group(3))
    out = [(k, int(c), sums.get(k, 0.0) / c * 1e6) for k, c in counts.items() if c]
    return sorted(out, key=lambda x: -x[1])


def git_rev():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(
        prog="e2e/bench/run.sh",
        description="Side-by-side benchmark: DittoFS vs nfs-ganesha vs the local disk, "
                    "same native clients and workloads (use e2e/bench/run.sh).")
    ap.add_argument("--quick", action="store_true",
                    help="every workload briefly, one repetition (CI: tests the harness)")
    ap.add_argument("--targets", default="local,dittofs,ganesha",
                    help="comma-separated subset of local,dittofs,ganesha")
    ap.add_argument("--reps", type=int, help="repetitions per workload (median kept)")
    ap.add_argument("--no-kernel", action="store_true", help="skip the kernel-client pass")
    ap.add_argument("--no-core", action="store_true", help="skip the in-process core benchmarks")
    ap.add_argument("--profile", action="store_true",
                    help="perf record dfs (flat, cpu-clock) while it is measured; writes perf-dfs.txt")
    ap.add_argument("--out", help="results directory (default $DITTOFS_CACHE/bench/results/<time>)")
    ap.add_argument("--publish", action="store_true",
                    help="also copy results.json/results.png/report.txt to docs/benchmarks/ "
                         "and rewrite the results table of docs/benchmarks.md (full runs only)")
    ap.add_argument("--fio", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--smallfiles", required=True, help=argparse.SUPPRESS)
    ap.add_argument("--dfs", required=True, help=argparse.SUPPRESS)
    a = ap.parse_args()

    mode = "quick" if a.quick else "full"
    p = dict(MODES[mode])
    if a.reps is not None:
        if a.reps < 1:
            ap.error("--reps must be at least 1")
        p["reps"] = a.reps
    names = [n.strip() for n in a.targets.split(",") if n.strip()]
    bad = [n for n in names if n not in LABELS]
    if bad or "dittofs" not in names:
        ap.error(f"--targets: a subset of local,dittofs,ganesha including dittofs (got {a.targets})")
    # the table's peers in a fixed order
    names = [n for n in ("dittofs", "ganesha", "local") if n in names]
    if a.publish and a.quick:
        ap.error("--publish is for full runs: --quick numbers mean nothing")
    if a.profile and not shutil.which("perf"):
        ap.error("--profile needs perf (run.sh installs linux-perf when given --profile)")
    out = a.out
    if not out:
        base = os.path.join(CACHE, "bench", "results")
        out = os.path.join(base, time.strftime("%Y%m%d-%H%M%S"))
        # keep the 20 newest default result directories
        old = sorted(d for d in (os.listdir(base) if os.path.isdir(base) else [])
                     if re.fullmatch(r"\d{8}-\d{6}", d))
        for d in old[:-19]:
            shutil.rmtree(os.path.join(base, d), ignore_errors=True)
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    for port in PORTS.values():
        if not port_free(port):
            sys.exit(f"bench: port {port} on 127.0.0.1 is in use; stop what holds it")
    # state directories on the disk, not tmpfs: every target writes to the same filesystem
    work = tempfile.mkdtemp(prefix="work-", dir=os.path.join(CACHE, "bench"))
    t_start = time.time()
    log(f"mode {mode}, targets {','.join(names)}, results in {out}, state in {work}")

    results, settles, failures, passes = {}, {}, 0, 0
    targets = {"local": lambda: Local(work), "dittofs": lambda: DittoFS(work, a.dfs),
               "ganesha": lambda: Ganesha(work)}
    perf_txt = None
    dfs_metrics = ""
    kernel = None
    core = None
    try:
        for seq, n in enumerate(names):
            t = targets[n]()
            log(f"--- {t.label}")
            drop_caches()
            try:
                t.start()
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                log(f"{t.label} did not start: {e}")
                for key, _l, _u in workload_rows(p):
                    results.setdefault(key, {})[n] = [None]
                continue
            perf = None
            if a.profile and n == "dittofs":
                perf_data = os.path.join(out, "perf-dfs.data")
                # cpu-clock: hardware counters are often missing in VMs; flat profile (no
                # -g: release builds have no frame pointers, and DWARF unwinding over a
                # whole run would write gigabytes)
                perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "-o", perf_data,
                                         "-p", str(t.pid())], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
            try:
                measure_target(t, p, a.fio, a.smallfiles, logs, results, settles, seq)
                if isinstance(t, DittoFS):
                    # per-procedure latency histograms etc., for the report and profiling
                    dfs_metrics = t.metrics()
                    with open(os.path.join(logs, "dittofs-metrics.txt"), "w") as f:
                        f.write(dfs_metrics)
            finally:
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(120)
                    perf_txt = os.path.join(out, "perf-dfs.txt")
                    with open(perf_txt, "w") as f:
                        subprocess.run(["perf", "report", "-i", perf_data, "--stdio",
                                        "--percent-limit", "0.5", "--sort", "dso,symbol"],
                                       stdout=f, stderr=subprocess.DEVNULL, timeout=600)
                t.stop()
                shutil.rmtree(os.path.join(work, "local"), ignore_errors=True)
                shutil.rmtree(os.path.join(work, "dfs-data"), ignore_errors=True)
                shutil.rmtree(os.path.join(work, "ganesha", "export"), ignore_errors=True)

        nfs_names = [n for n in names if n in ("dittofs", "ganesha")]
        if not a.no_kernel and nfs_names:
            log("--- kernel-client pass (qemu guest)")
            kts = [targets[n]() for n in nfs_names]
            started = []
            try:
                for t in kts:
                    t.start()
                    started.append(t)
                kernel = kernel_pass(kts, p, logs)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                log(f"kernel pass failed: {e}")
                kernel = {k: {name: None for name, _o in kernel_mounts(kts)}
                          for k in ("seq_write", "seq_read", "rand_write", "rand_read", "creates")}
            finally:
                for t in started:
                    t.stop()
        if not a.no_core:
            log("--- core benchmarks (in-process)")
            core = core_benchmarks(a.quick, logs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = workload_rows(p)
    medians = {key: {n: med(results.get(key, {}).get(n)) for n in names} for key, _l, _u in rows}
    for key, _l, _u in rows:
        for n in names:
            if medians[key][n] is None:
                failures += 1
            else:
                passes += 1
    for key, vals in (kernel or {}).items():
        for n, v in vals.items():
            if v is None:
                failures += 1
            else:
                passes += 1
    if core is not None:
        if core["ok"]:
            passes += 1
        else:
            failures += 1

    cells = build_table(rows, medians, kernel, names)
    table = render_text(cells)
    host = f"{platform.node()}: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}"
    title = (f"DittoFS benchmark ({mode}, median of {p['reps']}), {datetime.date.today()}, "
             f"{git_rev()}, {os.cpu_count()} cores")
    report = [title, host,
              f"clients: fio {p['jobs']} jobs (libnfs engine; local: libaio O_DIRECT), "
              f"{p['seq_mb']} MiB per job; smallfiles on libnfs; NFSv3 over loopback", "",
              table, ""]
    if kernel:
        report.append("kernel columns: Linux 6.1 NFS client in a qemu TCG guest (caps everything; "
                      f"fio libaio O_DIRECT, 1 job, {p['k_seq_mb']} MiB, {p['k_rand_secs']} s random); "
                      "NFSv3; both servers over NFSv4.1, and DittoFS over NFSv4.2 (nfs-ganesha's "
                      "Debian build is mounted at 4.1, the version both serve)")
        report.append("")
    if core:
        report.append("storage core, in-process (e2e/bench/core.sh" + (" --quick" if a.quick else "") + "):")
        report += ["  " + ln for ln in core["lines"]]
        report.append("")
    if settles:
        report.append("settling after each workload run (background work done, `sync`, server idle), "
                      "total seconds: " + ", ".join(f"{LABELS[n]} {sum(v):.0f}"
                                                    for n, v in settles.items()))
    lat = nfs_latency(dfs_metrics)
    if lat:
        report.append("DittoFS server-side mean latency per NFS procedure over the whole run "
                      "(calls, microseconds): " +
                      ", ".join(f"{proc} {n} x {us:.0f}" for proc, n, us in lat))
        report.append("")
    if perf_txt:
        report.append(f"profile of dfs: {perf_txt}")
    report_s = "\n".join(report)
    print(report_s)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(report_s + "\n")
    doc = {
        "title": title, "host": host, "mode": mode, "params": p, "git": git_rev(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "seconds": round(time.time() - t_start),
        "targets": {n: LABELS[n] for n in names},
        "rows": [{"key": key, "workload": label, "unit": unit,
                  "runs": results.get(key, {}), "median": medians[key],
                  "ratio": {f"dittofs/{n}": ratio(medians[key].get("dittofs"), medians[key].get(n))
                            for n in names if n != "dittofs"},
                  "kernel": (kernel or {}).get(key)}
                 for key, label, unit in rows],
        "core": core,
        "settle_secs": settles,
        "dittofs_nfs_latency_us": [{"procedure": k, "calls": n, "mean_us": round(us, 1)}
                                   for k, n, us in lat],
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    if not chart(os.path.join(out, "results.png"), rows, medians, kernel, title):
        failures += 1
    if a.publish:
        dst = os.path.join(ROOT, "docs", "benchmarks")
        os.makedirs(dst, exist_ok=True)
        for fn in ("results.json", "results.png", "report.txt"):
            if os.path.exists(os.path.join(out, fn)):
                shutil.copy(os.path.join(out, fn), os.path.join(dst, fn))
        parts = [f"{title}; {host}.", render_markdown(cells)]
        parts += [ln for ln in report if ln.startswith(("kernel columns", "settling"))]
        if not publish_doc(os.path.join(ROOT, "docs", "benchmarks.md"), "\n\n".join(parts)):
            failures += 1
    log(f"done in {round(time.time() - t_start)} s; results in {out}")
    print(f"bench: {passes} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
