// smallfiles.c - the benchmark harness's native metadata / small-file load tool.
//
// N concurrent clients (one thread and, for NFS, one libnfs context = one TCP connection
// each) run the same phases against either an NFS server (a libnfs URL) or a local
// directory (the host-filesystem ceiling), so every target gets exactly the same
// operations. Every phase is timed from a barrier to the last client finishing.
//
//   tree     FILES files of MIN..MAX bytes (sizes from a seeded PRNG) in DIRS directories:
//            phases mkdir, create (create + write + fsync + close, like a kernel client's
//            close-to-open flush+COMMIT), stat, read (whole file, every byte verified),
//            delete (unlink + rmdir); --phases runs a subset (the harness runs each
//            phase on its own, settling the server in between)
//   creates  the "metadata" workload: for SECONDS, each client creates files with one
//            4 KiB write each (create + write + fsync + close) in a directory of its own
//
// Output: one JSON object per phase on stdout, e.g.
//   {"phase":"create","clients":4,"ops":10000,"bytes":168034816,"secs":12.5,"ops_per_sec":800.0,"errors":0}
// Exit status: 0 when every operation succeeded and every byte read back matched,
// 1 on any failure (the first few are described on stderr), 2 on bad usage.
// The numbers are for the harness to compare; nothing here asserts a speed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

// ---- options ---------------------------------------------------------------------------
static const char *target;  // nfs://... or a local directory
static int is_nfs;
static const char *mode = "tree";
static int clients = 1;
static long files = 10000, dirs = 100;
static long min_size = 1024, max_size = 32768;
static double seconds = 10;
static uint64_t seed = 1;
static int do_fsync = 1;
static char prefix[256];
static const char *phases_opt;  // --phases: comma-separated subset of the tree phases

static void usage(FILE *f) {
  fprintf(f,
          "usage: smallfiles TARGET [options]\n"
          "  TARGET             nfs://HOST/EXPORT?nfsport=P&mountport=P&version=3, or a local directory\n"
          "  --mode tree|creates  (default tree)\n"
          "  --clients N        concurrent clients, each with its own connection (default 1)\n"
          "  --files N          tree: number of files (default 10000)\n"
          "  --dirs N           tree: number of directories (default 100)\n"
          "  --min-size B       tree: smallest file (default 1024)\n"
          "  --max-size B       tree: largest file (default 32768)\n"
          "  --seconds S        creates: duration (default 10)\n"
          "  --seed N           PRNG seed for sizes and contents (default 1)\n"
          "  --no-fsync         do not fsync (COMMIT) each file before closing it\n"
          "  --prefix NAME      top-level directory to work in (default sf-<pid>)\n"
          "  --phases LIST      tree: run only these of mkdir,create,stat,read,delete,rmdir, in\n"
          "                     that order (e.g. mkdir,create then stat then read then\n"
          "                     delete,rmdir, as separate runs with the same --prefix and --seed)\n"
          "Prints one JSON object per phase; exits 1 if any operation failed or any byte read\n"
          "back differs from what was written.\n");
}

// ---- deterministic content: file i's bytes come from its own splitmix64 stream -----------
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static size_t file_size(long i) {
  uint64_t s = seed * 1000003ULL + (uint64_t)i;
  return (size_t)(min_size + (long)(splitmix(&s) % (uint64_t)(max_size - min_size + 1)));
}
static void fill(unsigned char *buf, size_t n, long i) {
  uint64_t s = (seed << 32) ^ (uint64_t)i ^ 0x5bd1e995ULL;
  for (size_t k = 0; k < n; k += 8) {
    uint64_t v = splitmix(&s);
    size_t m = n - k < 8 ? n - k : 8;
    memcpy(buf + k, &v, m);
  }
}

// ---- one client: a libnfs context or a local directory --------------------------------
struct client {
  int id;
  struct nfs_context *nfs;
  unsigned char *wbuf, *rbuf;
  long ops;
  uint64_t bytes;
  long errors;
  pthread_t thread;
};

static atomic_long total_errors;
static void fail(struct client *c, const char *what, const char *path, const char *why) {
  c->errors++;
  if (atomic_fetch_add(&total_errors, 1) < 10)
    fprintf(stderr, "smallfiles: client %d: %s %s: %s\n", c->id, what, path, why);
}
static const char *nfs_err(struct client *c, int rc) {
  const char *e = nfs_get_error(c->nfs);
  return e && *e ? e : strerror(-rc);
}

// Paths: NFS paths are relative to the export root ("/prefix/d000/f00001"); local paths
// are under the target directory.
static void path_of(char *out, size_t n, const char *rel) {
  if (is_nfs)
    snprintf(out, n, "/%s", rel);
  else
    snprintf(out, n, "%s/%s", target, rel);
}

static int op_mkdir(struct client *c, const char *rel) {
  char p[1024];
  path_of(p, sizeof p, rel);
  int rc = is_nfs ? nfs_mkdir(c->nfs, p) : (mkdir(p, 0755) ? -errno : 0);
  if (rc && rc != -EEXIST) {
    fail(c, "mkdir", p, is_nfs ? nfs_err(c, rc) : strerror(-rc));
    return -1;
  }
  return 0;
}
static int op_rmdir(struct client *c, const char *rel) {
  char p[1024];
  path_of(p, sizeof p, rel);
  int rc = is_nfs ? nfs_rmdir(c->nfs, p) : (rmdir(p) ? -errno : 0);
  if (rc) {
    fail(c, "rmdir", p, is_nfs ? nfs_err(c, rc) : strerror(-rc));
    return -1;
  }
  return 0;
}

// create + write n bytes of file i's content + fsync + close
static int op_create(struct client *c, const char *rel, long i, size_t n) {
  char p[1024];
  path_of(p, sizeof p, rel);
  fill(c->wbuf, n, i);
  if (is_nfs) {
    struct nfsfh *fh;
    int rc = nfs_create(c->nfs, p, O_WRONLY | O_EXCL, 0644, &fh);
    if (rc) return fail(c, "create", p, nfs_err(c, rc)), -1;
    size_t done = 0;
    while (done < n) {
      rc = nfs_pwrite(c->nfs, fh, (uint64_t)done, (uint64_t)(n - done), c->wbuf + done);
      if (rc <= 0) break;
      done += (size_t)rc;
    }
    if (done < n) fail(c, "write", p, rc < 0 ? nfs_err(c, rc) : "short write");
    else if (do_fsync && (rc = nfs_fsync(c->nfs, fh))) fail(c, "fsync", p, nfs_err(c, rc));
    if ((rc = nfs_close(c->nfs, fh))) fail(c, "close", p, nfs_err(c, rc));
  } else {
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return fail(c, "create", p, strerror(errno)), -1;
    ssize_t w = pwrite(fd, c->wbuf, n, 0);
    if (w != (ssize_t)n) fail(c, "write", p, w < 0 ? strerror(errno) : "short write");
    else if (do_fsync && fsync(fd)) fail(c, "fsync", p, strerror(errno));
    if (close(fd)) fail(c, "close", p, strerror(errno));
  }
  c->bytes += n;
  return 0;
}
static int op_stat(struct client *c, const char *rel, size_t want) {
  char p[1024];
  path_of(p, sizeof p, rel);
  uint64_t size;
  if (is_nfs) {
    struct nfs_stat_64 st;
    int rc = nfs_stat64(c->nfs, p, &st);
    if (rc) return fail(c, "stat", p, nfs_err(c, rc)), -1;
    size = st.nfs_size;
  } else {
    struct stat st;
    if (stat(p, &st)) return fail(c, "stat", p, strerror(errno)), -1;
    size = (uint64_t)st.st_size;
  }
  if (size != want) return fail(c, "stat", p, "wrong size"), -1;
  return 0;
}
// open + read the whole file (one call more than its size, to see EOF) + verify + close
static int op_read(struct client *c, const char *rel, long i, size_t n) {
  char p[1024];
  path_of(p, sizeof p, rel);
  size_t got = 0;
  if (is_nfs) {
    struct nfsfh *fh;
    int rc = nfs_open(c->nfs, p, O_RDONLY, &fh);
    if (rc) return fail(c, "open", p, nfs_err(c, rc)), -1;
    while (got <= n) {
      rc = nfs_pread(c->nfs, fh, (uint64_t)got, (uint64_t)(max_size + 1 - (long)got), c->rbuf + got);
      if (rc <= 0) break;
      got += (size_t)rc;
    }
    if (rc < 0) fail(c, "read", p, nfs_err(c, rc));
    nfs_close(c->nfs, fh);
    if (rc < 0) return -1;
  } else {
    int fd = open(p, O_RDONLY);
    if (fd < 0) return fail(c, "open", p, strerror(errno)), -1;
    ssize_t r = 1;
    while (got <= n && (r = pread(fd, c->rbuf + got, (size_t)(max_size + 1) - got, (off_t)got)) > 0)
      got += (size_t)r;
    close(fd);
    if (r < 0) return fail(c, "read", p, strerror(errno)), -1;
  }
  fill(c->wbuf, n, i);
  if (got != n) return fail(c, "read", p, "wrong length"), -1;
  if (memcmp(c->wbuf, c->rbuf, n)) return fail(c, "read", p, "content differs from what was written"), -1;
  c->bytes += n;
  return 0;
}
static int op_unlink(struct client *c, const char *rel) {
  char p[1024];
  path_of(p, sizeof p, rel);
  int rc = is_nfs ? nfs_unlink(c->nfs, p) : (unlink(p) ? -errno : 0);
  if (rc) return fail(c, "unlink", p, is_nfs ? nfs_err(c, rc) : strerror(-rc)), -1;
  return 0;
}

static int connect_client(struct client *c) {
  if (!is_nfs) return 0;
  c->nfs = nfs_init_context();
  if (!c->nfs) return fprintf(stderr, "smallfiles: nfs_init_context failed\n"), -1;
  struct nfs_url *u = nfs_parse_url_dir(c->nfs, target);
  if (!u) return fprintf(stderr, "smallfiles: bad URL %s: %s\n", target, nfs_get_error(c->nfs)), -1;
  int rc = nfs_mount(c->nfs, u->server, u->path);
  if (rc) fprintf(stderr, "smallfiles: mount %s:%s: %s\n", u->server, u->path, nfs_get_error(c->nfs));
  nfs_destroy_url(u);
  return rc ? -1 : 0;
}

// ---- phases ------------------------------------------------------------------------------
enum phase { P_MKDIR, P_CREATE, P_STAT, P_READ, P_DELETE, P_RMDIR, P_CREATES, P_DONE };
static const char *phase_name[] = {"mkdir", "create", "stat", "read", "delete", "rmdir", "creates"};
static enum phase current;
static pthread_barrier_t start_bar, end_bar;
static struct timespec deadline;

// whether NAME is one of the comma-separated LIST
static int wanted_phase(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void file_rel(char *out, size_t n, long i) {
  snprintf(out, n, "%s/d%03ld/f%06ld", prefix, i % dirs, i);
}

static void run_phase(struct client *c, enum phase ph) {
  char rel[512];
  switch (ph) {
  case P_MKDIR:
  case P_RMDIR:
    for (long d = c->id; d < dirs; d += clients) {
      snprintf(rel, sizeof rel, "%s/d%03ld", prefix, d);
      if ((ph == P_MKDIR ? op_mkdir(c, rel) : op_rmdir(c, rel)) == 0) c->ops++;
    }
    break;
  case P_CREATE:
  case P_STAT:
  case P_READ:
  case P_DELETE:
    for (long i = c->id; i < files; i += clients) {
      file_rel(rel, sizeof rel, i);
      size_t n = file_size(i);
      int rc = ph == P_CREATE ? op_create(c, rel, i, n)
               : ph == P_STAT ? op_stat(c, rel, n)
               : ph == P_READ ? op_read(c, rel, i, n)
                              : op_unlink(c, rel);
      if (rc == 0) c->ops++;
    }
    break;
  case P_CREATES: {
    snprintf(rel, sizeof rel, "%s/c%02d", prefix, c->id);
    if (op_mkdir(c, rel)) break;
    double end = (double)deadline.tv_sec + (double)deadline.tv_nsec / 1e9;
    for (long i = 0; now() < end; i++) {
      snprintf(rel, sizeof rel, "%s/c%02d/f%07ld", prefix, c->id, i);
      if (op_create(c, rel, i, 4096) == 0) c->ops++;
      else break;  // a failing server would otherwise spin here until the deadline
    }
    break;
  }
  case P_DONE:
    break;
  }
}

static void *client_main(void *arg) {
  struct client *c = arg;
  for (;;) {
    pthread_barrier_wait(&start_bar);
    if (current == P_DONE) return NULL;
    run_phase(c, current);
    pthread_barrier_wait(&end_bar);
  }
}

static long parse_long(const char *opt, const char *v, long lo, long hi) {
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi) {
    fprintf(stderr, "smallfiles: %s wants a number in %ld..%ld, got '%s'\n", opt, lo, hi, v);
    exit(2);
  }
  return x;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"mode", 1, 0, 'm'},     {"clients", 1, 0, 'c'},  {"files", 1, 0, 'f'},
      {"dirs", 1, 0, 'd'},     {"min-size", 1, 0, 'a'}, {"max-size", 1, 0, 'b'},
      {"seconds", 1, 0, 's'},  {"seed", 1, 0, 'r'},     {"no-fsync", 0, 0, 'n'},
      {"prefix", 1, 0, 'p'},   {"phases", 1, 0, 'P'},   {"help", 0, 0, 'h'},
      {0, 0, 0, 0}};
  int o;
  snprintf(prefix, sizeof prefix, "sf-%d", (int)getpid());
  while ((o = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (o) {
    case 'm': mode = optarg; break;
    case 'c': clients = (int)parse_long("--clients", optarg, 1, 256); break;
    case 'f': files = parse_long("--files", optarg, 1, 10000000); break;
    case 'd': dirs = parse_long("--dirs", optarg, 1, 999); break;
    case 'a': min_size = parse_long("--min-size", optarg, 0, 64 << 20); break;
    case 'b': max_size = parse_long("--max-size", optarg, 0, 64 << 20); break;
    case 's': seconds = (double)parse_long("--seconds", optarg, 1, 3600); break;
    case 'r': seed = (uint64_t)parse_long("--seed", optarg, 0, 1L << 62); break;
    case 'n': do_fsync = 0; break;
    case 'p':
      if (!*optarg || strchr(optarg, '/') || strlen(optarg) > 200 || !strcmp(optarg, ".") || !strcmp(optarg, "..")) {
        fprintf(stderr, "smallfiles: --prefix must be one path component\n");
        return 2;
      }
      snprintf(prefix, sizeof prefix, "%s", optarg);
      break;
    case 'P': phases_opt = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) return usage(stderr), 2;
  target = argv[optind];
  is_nfs = !strncmp(target, "nfs://", 6);
  if (strcmp(mode, "tree") && strcmp(mode, "creates"))
    return fprintf(stderr, "smallfiles: --mode is tree or creates, not '%s'\n", mode), 2;
  if (min_size > max_size) return fprintf(stderr, "smallfiles: --min-size is above --max-size\n"), 2;
  if (phases_opt) {
    if (strcmp(mode, "tree")) return fprintf(stderr, "smallfiles: --phases is for --mode tree\n"), 2;
    // every listed name must be a tree phase
    char buf[256];
    snprintf(buf, sizeof buf, "%s", phases_opt);
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      int known = 0;
      for (int k = P_MKDIR; k <= P_RMDIR; k++) known |= !strcmp(t, phase_name[k]);
      if (!known) return fprintf(stderr, "smallfiles: unknown phase '%s' in --phases\n", t), 2;
    }
  }
  if (!is_nfs) {
    struct stat st;
    if (stat(target, &st) || !S_ISDIR(st.st_mode))
      return fprintf(stderr, "smallfiles: %s is neither an nfs:// URL nor a directory\n", target), 2;
  }

  struct client *cs = calloc((size_t)clients, sizeof *cs);
  if (!cs) return 1;
  for (int k = 0; k < clients; k++) {
    cs[k].id = k;
    cs[k].wbuf = malloc((size_t)max_size + 4096 + 8);
    cs[k].rbuf = malloc((size_t)max_size + 4096 + 8);
    if (!cs[k].wbuf || !cs[k].rbuf || connect_client(&cs[k])) return 1;
  }
  if (op_mkdir(&cs[0], prefix)) return 1;

  pthread_barrier_init(&start_bar, NULL, (unsigned)clients + 1);
  pthread_barrier_init(&end_bar, NULL, (unsigned)clients + 1);
  for (int k = 0; k < clients; k++) pthread_create(&cs[k].thread, NULL, client_main, &cs[k]);

  enum phase tree[] = {P_MKDIR, P_CREATE, P_STAT, P_READ, P_DELETE, P_RMDIR};
  enum phase creates[] = {P_CREATES};
  int is_tree = !strcmp(mode, "tree");
  enum phase *plan = is_tree ? tree : creates;
  int nplan = is_tree ? 6 : 1;
  if (is_tree && phases_opt) {  // keep the order of tree[], only the phases asked for
    int n = 0;
    for (int s = 0; s < 6; s++)
      if (wanted_phase(phases_opt, phase_name[tree[s]])) tree[n++] = tree[s];
    nplan = n;
  }
  for (int s = 0; s < nplan; s++) {
    for (int k = 0; k < clients; k++) cs[k].ops = 0, cs[k].bytes = 0, cs[k].errors = 0;
    current = plan[s];
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)seconds;
    double t0 = now();
    pthread_barrier_wait(&start_bar);
    pthread_barrier_wait(&end_bar);
    double secs = now() - t0;
    long ops = 0, errors = 0;
    uint64_t bytes = 0;
    for (int k = 0; k < clients; k++) ops += cs[k].ops, bytes += cs[k].bytes, errors += cs[k].errors;
    printf("{\"phase\":\"%s\",\"clients\":%d,\"ops\":%ld,\"bytes\":%" PRIu64
           ",\"secs\":%.4f,\"ops_per_sec\":%.1f,\"errors\":%ld}\n",
           phase_name[current], clients, ops, bytes, secs, secs > 0 ? (double)ops / secs : 0.0, errors);
    fflush(stdout);
  }
  current = P_DONE;
  pthread_barrier_wait(&start_bar);
  // the prefix goes with the tree's last phase (creates leaves its files for the caller)
  if (is_tree && nplan > 0 && plan[nplan - 1] == P_RMDIR) op_rmdir(&cs[0], prefix);
  for (int k = 0; k < clients; k++) {
    pthread_join(cs[k].thread, NULL);
    if (cs[k].nfs) nfs_destroy_context(cs[k].nfs);
  }
  long errs = atomic_load(&total_errors);
  if (errs) fprintf(stderr, "smallfiles: %ld operations failed\n", errs);
  return errs ? 1 : 0;
}
