/* Unit tests of state/source*: path normalisation, the directory backend and
 * the git backend (local work tree and bare repositories, file:// and git://
 * remotes fetched into a cache; authentication over smart HTTP with a token
 * and over SSH with keys and known_hosts). Fixtures are built at test time by
 * tests/data/source/make-fixtures.sh in a temporary directory; the servers
 * are git daemon, tests/data/source/git-http-auth-server.py (python3) and
 * sshd configured by tests/data/source/sshd-setup.sh (skipped without sshd).
 * ibs-test-libs: ibs_state ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "state/source.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/vec.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define IBS_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IBS_TEST_LSAN 1
#endif
#endif
#ifdef IBS_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define GIT_CLI "git -c user.name=ibsync-test -c user.email=test@ibsync.invalid"
#define MiB (1024u * 1024u)

/* Like assert_int_equal(expr, 0), but shows the error message on failure. */
#define assert_ok(expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_)                                                                                   \
            fail_msg("%s returned %d: %s", #expr, rc_, ibs_error_last()->message);                 \
    } while (0)

static char root[256];   /* the temporary directory of this run */
static char dir[300];    /* plain directory fixture */
static char work[300];   /* git work tree fixture */
static char origin[300]; /* bare clone of work */
static pid_t daemon_pid = -1;
static pid_t server_pid = -1; /* the HTTP or SSH server of the authentication tests */
/* Every message and description the authentication tests saw, searched for secrets. */
static struct ibs_buf seen = IBS_BUF_INIT;

static void path_at(char *out, size_t n, const char *rel)
{
    int len = snprintf(out, n, "%s/%s", root, rel);
    assert_true(len > 0 && (size_t)len < n);
}

/* Runs a shell command; returns its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    n = system(cmd);
    return n != -1 && WIFEXITED(n) ? WEXITSTATUS(n) : -1;
}

/* The first line printed by a shell command, without its newline. */
static void capture(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void capture(char *out, size_t n, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    FILE *p;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(out, (int)n, p))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    assert_int_equal(pclose(p), 0);
}

static void rev_parse(char out[41], const char *repo, const char *rev)
{
    char line[128];
    capture(line, sizeof(line), "git -C '%s' rev-parse --verify -q '%s^{commit}'", repo, rev);
    assert_int_equal(strlen(line), 40);
    memcpy(out, line, 41);
}

/* The listing as one comma-separated string, for readable comparisons. */
static void assert_listing(struct ibs_source *src, const char *expected)
{
    struct ibs_vec v = IBS_VEC_INIT;
    struct ibs_buf b = IBS_BUF_INIT;
    assert_ok(ibs_source_list(&v, src));
    for (size_t i = 0; i < v.count; i++)
        ibs_buf_printf(&b, "%s%s", i ? "," : "", (const char *)v.items[i]);
    assert_string_equal(b.ptr, expected);
    ibs_buf_release(&b);
    ibs_vec_release_with(&v, free);
}

static void assert_content(struct ibs_source *src, const char *path, const char *expected)
{
    char *data = NULL;
    size_t len = 0;
    assert_ok(ibs_source_read(&data, &len, src, path, MiB));
    assert_int_equal(len, strlen(expected));
    assert_string_equal(data, expected);
    free(data);
}

static void assert_read_fails(struct ibs_source *src, const char *path, size_t max, int code,
                              const char *message)
{
    char *data = (char *)"untouched";
    size_t len = 99;
    assert_int_equal(ibs_source_read(&data, &len, src, path, max), code);
    assert_string_equal(ibs_error_last()->message, message);
    assert_null(data);
    assert_int_equal(len, 0);
}

static int open_git(struct ibs_source **out, const char *repo, const char *ref, const char *path,
                    const char *cache)
{
    struct ibs_git_options o = {.repo = repo, .ref = ref, .path = path, .cache_dir = cache};
    return ibs_source_open_git(out, &o);
}

/* The only entry of directory `path` (the cache holds one repository per URL). */
static void only_entry(char *out, size_t n, const char *path)
{
    struct dirent *ent;
    DIR *d = opendir(path);
    int count = 0;
    assert_non_null(d);
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        snprintf(out, n, "%s/%s", path, ent->d_name);
        count++;
    }
    closedir(d);
    assert_int_equal(count, 1);
}

static int setup_fixtures(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "%s/ibs-source-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return -1;
    /* Before libgit2 first looks: no user or system configuration applies. */
    setenv("HOME", root, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    snprintf(dir, sizeof(dir), "%s/dir", root);
    snprintf(work, sizeof(work), "%s/work", root);
    snprintf(origin, sizeof(origin), "%s/origin.git", root);
    return run("sh '%s/source/make-fixtures.sh' '%s'", IBS_TEST_DATA, root) == 0 ? 0 : -1;
}

static int teardown_fixtures(void **state)
{
    (void)state;
    ibs_source_global_shutdown();
    ibs_buf_release(&seen);
    return run("rm -rf '%s'", root) == 0 ? 0 : -1;
}

/* ---- normalisation ---- */

static void test_normalize_table(void **state)
{
    static const struct {
        const char *base, *rel, *want; /* want NULL: error `message` */
        const char *message;
    } cases[] = {
        {NULL, "a.yaml", "a.yaml", NULL},
        {"", "./a//b/./c.yaml", "a/b/c.yaml", NULL},
        {"dir/main.yaml", "other.yaml", "dir/other.yaml", NULL},
        {"dir/main.yaml", "../x.yaml", "x.yaml", NULL},
        {"dir/sub/main.yaml", "../../x/./y.yaml", "x/y.yaml", NULL},
        {"dir//sub/", "a", "dir/sub/a", NULL},
        {"main.yaml", "a/b/../../c", "c", NULL},
        {"a/b.yaml", "..", "", NULL},
        {"", ".", "", NULL},
        {"a/b.yaml", "", "a", NULL},
        {"", "a/", "a", NULL},
        {"", "..a/b..", "..a/b..", NULL},
        {"x.yaml", "../../x", NULL, "path \"../../x\" leaves the source root"},
        {"a/b.yaml", "../../x", NULL, "path \"../../x\" leaves the source root"},
        {"", "a/../../b", NULL, "path \"a/../../b\" leaves the source root"},
        {"", "..", NULL, "path \"..\" leaves the source root"},
        {"", "/etc/passwd", NULL, "path \"/etc/passwd\" is absolute"},
        {"/abs/base.yaml", "x", NULL, "path \"/abs/base.yaml\" is absolute"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = (char *)"untouched";
        int rc = ibs_source_normalize(&out, cases[i].base, cases[i].rel);
        if (cases[i].want) {
            assert_int_equal(rc, 0);
            assert_string_equal(out, cases[i].want);
            free(out);
        } else {
            assert_int_equal(rc, IBS_EINVALID);
            assert_null(out);
            assert_string_equal(ibs_error_last()->message, cases[i].message);
        }
    }
}

/* ---- directory backend ---- */

static void test_dir_list_sorted_skips_dot_dirs_and_links(void **state)
{
    struct ibs_source *src = NULL;
    struct ibs_vec v = IBS_VEC_INIT;
    (void)state;
    assert_ok(ibs_source_open_dir(&src, dir));
    /* Bytewise: '.' < 'U' < '_' < 'a'; FIFO and symlinks are absent. */
    assert_listing(src, ".keep.yaml,Upper/u.yaml,_z.yaml,a.yaml,big.yaml,sub/b.yaml,"
                        "sub/deep/c.yaml");
    /* Appends after what the vector already holds. */
    assert_int_equal(ibs_vec_push(&v, strdup("first")), 0);
    assert_ok(ibs_source_list(&v, src));
    assert_int_equal(v.count, 8);
    assert_string_equal(v.items[0], "first");
    assert_string_equal(v.items[1], ".keep.yaml");
    ibs_vec_release_with(&v, free);
    assert_null(ibs_source_commit(src));
    assert_string_equal(ibs_source_name(src), "dir");
    assert_string_equal(ibs_source_describe(src), dir);
    ibs_source_free(src);
}

static void test_dir_read(void **state)
{
    struct ibs_source *src = NULL;
    char message[1024];
    (void)state;
    assert_ok(ibs_source_open_dir(&src, dir));
    assert_content(src, "a.yaml", "a: 1\n");
    assert_content(src, "sub/deep/../b.yaml", "b: 2\n");
    assert_content(src, ".hidden/h.yaml", "h: 4\n");
    assert_content(src, "./sub//deep/c.yaml", "c: 3\n");
    assert_read_fails(src, "sub/b.yaml", 4, IBS_EINVALID,
                      "\"sub/b.yaml\" is 5 bytes; the limit is 4");
    assert_read_fails(src, "big.yaml", 50 * MiB - 1, IBS_EINVALID,
                      "\"big.yaml\" is 52428800 bytes; the limit is 52428799");
    assert_read_fails(src, "link.yaml", MiB, IBS_EINVALID, "\"link.yaml\" is a symbolic link");
    assert_read_fails(src, "linkdir/b.yaml", MiB, IBS_EINVALID, "\"linkdir\" is a symbolic link");
    assert_read_fails(src, "sub", MiB, IBS_EINVALID, "\"sub\" is not a regular file");
    assert_read_fails(src, "fifo", MiB, IBS_EINVALID, "\"fifo\" is not a regular file");
    assert_read_fails(src, "../work/a.yaml", MiB, IBS_EINVALID,
                      "path \"../work/a.yaml\" leaves the source root");
    assert_read_fails(src, "/etc/passwd", MiB, IBS_EINVALID, "path \"/etc/passwd\" is absolute");
    snprintf(message, sizeof(message), "file \"sub/nope.yaml\" not found in \"%s\"", dir);
    assert_read_fails(src, "sub/nope.yaml", MiB, IBS_ENOTFOUND, message);
    snprintf(message, sizeof(message), "file \"a.yaml/x\" not found in \"%s\"", dir);
    assert_read_fails(src, "a.yaml/x", MiB, IBS_ENOTFOUND, message);
    ibs_source_free(src);
}

static void test_dir_open_errors_and_name(void **state)
{
    struct ibs_source *src = (struct ibs_source *)&src;
    char path[512], message[600];
    (void)state;
    path_at(path, sizeof(path), "missing");
    assert_int_equal(ibs_source_open_dir(&src, path), IBS_ENOTFOUND);
    assert_null(src);
    snprintf(message, sizeof(message), "directory \"%s\" does not exist", path);
    assert_string_equal(ibs_error_last()->message, message);
    path_at(path, sizeof(path), "dir/a.yaml");
    assert_int_equal(ibs_source_open_dir(&src, path), IBS_EINVALID);
    /* The name comes from the real path, not from what was typed. */
    path_at(path, sizeof(path), "dir/sub/..//");
    assert_ok(ibs_source_open_dir(&src, path));
    assert_string_equal(ibs_source_name(src), "dir");
    ibs_source_free(src);
    path_at(path, sizeof(path), "dir/linkdir");
    assert_ok(ibs_source_open_dir(&src, path));
    assert_string_equal(ibs_source_name(src), "sub");
    assert_listing(src, "b.yaml,deep/c.yaml");
    ibs_source_free(src);
    ibs_source_free(NULL);
}

/* ---- git backend, local repositories ---- */

static void test_git_head_of_work_tree(void **state)
{
    struct ibs_source *src = NULL;
    char head[41], want[512];
    (void)state;
    rev_parse(head, work, "main");
    assert_ok(open_git(&src, work, NULL, NULL, NULL));
    assert_string_equal(ibs_source_commit(src), head);
    assert_string_equal(ibs_source_name(src), "work");
    snprintf(want, sizeof(want), "%s@HEAD (commit %.12s)", work, head);
    assert_string_equal(ibs_source_describe(src), want);
    /* .hidden skipped; symlink blobs link.yaml and linkdir skipped; run.sh is executable. */
    assert_listing(src, "a.yaml,file.yaml,run.sh,sub/b.yaml,sub/deep/c.yaml");
    assert_content(src, "a.yaml", "a: four\n");
    assert_content(src, ".hidden/h.yaml", "h: 4\n");
    assert_content(src, "sub/deep/../b.yaml", "b: 2\n");
    ibs_source_free(src);
}

static void test_git_refs(void **state)
{
    static const struct {
        const char *ref, *commit_of, *a_yaml, *listing;
    } cases[] = {
        {"main", "main", "a: four\n", "a.yaml,file.yaml,run.sh,sub/b.yaml,sub/deep/c.yaml"},
        {"feature", "feature", "a: two\n",
         "a.yaml,feature.yaml,file.yaml,run.sh,sub/b.yaml,sub/deep/c.yaml"},
        {"refs/heads/feature", "feature", "a: two\n", NULL},
        {"v1", "v1", "a: one\n", "a.yaml,file.yaml,sub/b.yaml"},
        {"v2", "v2", "a: two\n", NULL},
        {"refs/tags/v2", "v2", "a: two\n", NULL},
        {"HEAD~1", "main~1", "a: two\n", NULL},
        {"HEAD", "main", "a: four\n", NULL},
    };
    struct ibs_source *src = NULL;
    char want[41], v1[41], v2[41], abbrev[8], desc[512];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rev_parse(want, work, cases[i].commit_of);
        assert_ok(open_git(&src, work, cases[i].ref, "", NULL));
        assert_string_equal(ibs_source_commit(src), want);
        assert_content(src, "a.yaml", cases[i].a_yaml);
        if (cases[i].listing)
            assert_listing(src, cases[i].listing);
        snprintf(desc, sizeof(desc), "%s@%s (commit %.12s)", work, cases[i].ref, want);
        assert_string_equal(ibs_source_describe(src), desc);
        ibs_source_free(src);
    }
    /* Full and abbreviated ids; an annotated tag is peeled to its commit. */
    rev_parse(v1, work, "v1");
    assert_ok(open_git(&src, work, v1, NULL, NULL));
    assert_string_equal(ibs_source_commit(src), v1);
    assert_content(src, "a.yaml", "a: one\n");
    ibs_source_free(src);
    rev_parse(v2, work, "v2");
    memcpy(abbrev, v2, 7);
    abbrev[7] = '\0';
    assert_ok(open_git(&src, work, abbrev, NULL, NULL));
    assert_string_equal(ibs_source_commit(src), v2);
    ibs_source_free(src);
}

static void test_git_sub_path(void **state)
{
    struct ibs_source *src = NULL;
    char head[41], want[512];
    (void)state;
    rev_parse(head, work, "main");
    assert_ok(open_git(&src, work, "main", "./sub/deep/..", NULL));
    assert_string_equal(ibs_source_name(src), "sub");
    snprintf(want, sizeof(want), "%s@main:sub (commit %.12s)", work, head);
    assert_string_equal(ibs_source_describe(src), want);
    assert_listing(src, "b.yaml,deep/c.yaml");
    assert_content(src, "deep/c.yaml", "c: 3\n");
    assert_read_fails(src, "../a.yaml", MiB, IBS_EINVALID,
                      "path \"../a.yaml\" leaves the source root");
    ibs_source_free(src);
    assert_ok(open_git(&src, work, "main", "sub/deep", NULL));
    assert_string_equal(ibs_source_name(src), "deep");
    assert_listing(src, "c.yaml");
    ibs_source_free(src);
}

static void test_git_errors(void **state)
{
    struct ibs_source *src = (struct ibs_source *)&src;
    char head[41], message[600], path[512];
    (void)state;
    rev_parse(head, work, "main");
    assert_int_equal(open_git(&src, work, "nope", NULL, NULL), IBS_ENOTFOUND);
    assert_null(src);
    snprintf(message, sizeof(message), "ref \"nope\" not found in %s", work);
    assert_string_equal(ibs_error_last()->message, message);

    assert_int_equal(open_git(&src, work, "main", "x/y", NULL), IBS_ENOTFOUND);
    snprintf(message, sizeof(message), "path \"x/y\" not found at main (commit %.7s)", head);
    assert_string_equal(ibs_error_last()->message, message);

    assert_int_equal(open_git(&src, work, "main", "sub/b.yaml", NULL), IBS_EINVALID);
    snprintf(message, sizeof(message),
             "path \"sub/b.yaml\" at main (commit %.7s) is a file, not a directory", head);
    assert_string_equal(ibs_error_last()->message, message);

    assert_int_equal(open_git(&src, work, NULL, "linkdir", NULL), IBS_EINVALID);
    snprintf(message, sizeof(message),
             "path \"linkdir\" at HEAD (commit %.7s) is a symbolic link, not a directory", head);
    assert_string_equal(ibs_error_last()->message, message);

    assert_int_equal(open_git(&src, work, "main", "../x", NULL), IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message, "path \"../x\" leaves the source root");

    assert_int_equal(open_git(&src, work, "treetag", NULL, NULL), IBS_EINVALID);
    snprintf(message, sizeof(message), "ref \"treetag\" in %s does not point to a commit", work);
    assert_string_equal(ibs_error_last()->message, message);

    path_at(path, sizeof(path), "missing");
    assert_int_equal(open_git(&src, path, NULL, NULL, NULL), IBS_ENOTFOUND);
    snprintf(message, sizeof(message), "repository \"%s\" does not exist", path);
    assert_string_equal(ibs_error_last()->message, message);

    assert_int_equal(open_git(&src, dir, NULL, NULL, NULL), IBS_EINVALID);
    snprintf(message, sizeof(message), "\"%s\" is not a git repository", dir);
    assert_string_equal(ibs_error_last()->message, message);

    /* scp-like syntax is remote, so it needs a cache; a colon alone is a local path. */
    assert_int_equal(open_git(&src, "git@host.invalid:org/repo.git", NULL, NULL, NULL),
                     IBS_EINVALID);
    assert_string_equal(ibs_error_last()->message,
                        "a cache directory is required to fetch git@host.invalid:org/repo.git");
    assert_int_equal(open_git(&src, "no-such:dir", NULL, NULL, NULL), IBS_ENOTFOUND);
    assert_string_equal(ibs_error_last()->message, "repository \"no-such:dir\" does not exist");
    assert_null(src);
}

static void test_git_read_errors(void **state)
{
    struct ibs_source *src = NULL;
    char message[600], head[41];
    (void)state;
    rev_parse(head, work, "main");
    assert_ok(open_git(&src, work, NULL, NULL, NULL));
    assert_read_fails(src, "link.yaml", MiB, IBS_EINVALID, "\"link.yaml\" is a symbolic link");
    assert_read_fails(src, "linkdir/b.yaml", MiB, IBS_EINVALID, "\"linkdir\" is a symbolic link");
    assert_read_fails(src, "sub", MiB, IBS_EINVALID, "\"sub\" is not a regular file");
    assert_read_fails(src, "a.yaml", 7, IBS_EINVALID, "\"a.yaml\" is 8 bytes; the limit is 7");
    assert_content(src, "run.sh", "#!/bin/sh\n");
    snprintf(message, sizeof(message), "file \"sub/x.yaml\" not found in %s@HEAD (commit %.12s)",
             work, head);
    assert_read_fails(src, "sub/x.yaml", MiB, IBS_ENOTFOUND, message);
    snprintf(message, sizeof(message), "file \"a.yaml/x\" not found in %s@HEAD (commit %.12s)",
             work, head);
    assert_read_fails(src, "a.yaml/x", MiB, IBS_ENOTFOUND, message);
    ibs_source_free(src);
}

static void test_git_bare_local(void **state)
{
    struct ibs_source *src = NULL;
    char want[41];
    (void)state;
    rev_parse(want, work, "feature");
    assert_ok(open_git(&src, origin, "feature", NULL, NULL));
    assert_string_equal(ibs_source_commit(src), want);
    assert_string_equal(ibs_source_name(src), "origin");
    assert_content(src, "feature.yaml", "feature: yes\n");
    ibs_source_free(src);
}

/* ---- git backend, remotes fetched into a cache ---- */

static void test_git_file_url_cache_fetches(void **state)
{
    struct ibs_source *src = NULL;
    char remote[512], push[512], cache[512], url[600], repo_dir[1024], marker[1100];
    char before[41], after[41], feature[41], line[1024];
    const char *suffix;
    struct stat st;
    (void)state;
    path_at(remote, sizeof(remote), "remote1.git");
    path_at(push, sizeof(push), "push1");
    path_at(cache, sizeof(cache), "cache1/nested");
    snprintf(url, sizeof(url), "file://%s", remote);
    assert_int_equal(run("git clone -q --bare '%s' '%s'", work, remote), 0);
    rev_parse(before, remote, "main");
    rev_parse(feature, remote, "feature");

    assert_ok(open_git(&src, url, NULL, NULL, cache));
    assert_string_equal(ibs_source_commit(src), before);
    assert_string_equal(ibs_source_name(src), "remote1");
    assert_content(src, "a.yaml", "a: four\n");
    ibs_source_free(src);

    /* One bare repository, named after the URL, with origin's refs and tags. */
    only_entry(repo_dir, sizeof(repo_dir), cache);
    snprintf(line, sizeof(line), "%s/tmp-", cache);
    assert_memory_equal(repo_dir, line, strlen(line));
    suffix = strstr(repo_dir, "-remote1.git-");
    assert_non_null(suffix);
    assert_int_equal(strlen(suffix), strlen("-remote1.git-") + 12);
    capture(line, sizeof(line), "git --git-dir='%s' rev-parse --is-bare-repository", repo_dir);
    assert_string_equal(line, "true");
    capture(line, sizeof(line), "git --git-dir='%s' rev-parse refs/remotes/origin/feature",
            repo_dir);
    assert_string_equal(line, feature);
    capture(line, sizeof(line), "git --git-dir='%s' symbolic-ref refs/remotes/origin/HEAD",
            repo_dir);
    assert_string_equal(line, "refs/remotes/origin/main");
    snprintf(marker, sizeof(marker), "%s/ibsync-test-marker", repo_dir);
    assert_int_equal(run("touch '%s'", marker), 0);

    /* Remote tracking branches, tags and HEAD~1 resolve in the cache too. */
    assert_ok(open_git(&src, url, "feature", NULL, cache));
    assert_string_equal(ibs_source_commit(src), feature);
    ibs_source_free(src);
    assert_ok(open_git(&src, url, "v1", NULL, cache));
    assert_content(src, "a.yaml", "a: one\n");
    ibs_source_free(src);
    assert_ok(open_git(&src, url, "HEAD~1", NULL, cache));
    assert_content(src, "a.yaml", "a: two\n");
    ibs_source_free(src);

    /* New commit on origin, a deleted branch and tag: fetched and pruned, not re-cloned. */
    assert_int_equal(
        run("git clone -q '%s' '%s' && cd '%s' && printf 'a: five\\n' > a.yaml && " GIT_CLI
            " commit -q -a -m c5 && git push -q origin main 2>/dev/null && "
            "git --git-dir='%s' branch -q -D feature && git --git-dir='%s' tag -d v1 "
            ">/dev/null",
            remote, push, push, remote, remote),
        0);
    rev_parse(after, remote, "main");
    assert_string_not_equal(before, after);
    assert_ok(open_git(&src, url, NULL, NULL, cache));
    assert_string_equal(ibs_source_commit(src), after);
    assert_content(src, "a.yaml", "a: five\n");
    ibs_source_free(src);
    assert_int_equal(stat(marker, &st), 0);
    assert_int_equal(open_git(&src, url, "feature", NULL, cache), IBS_ENOTFOUND);
    snprintf(line, sizeof(line), "ref \"feature\" not found in %s", url);
    assert_string_equal(ibs_error_last()->message, line);
    assert_int_equal(open_git(&src, url, "v1", NULL, cache), IBS_ENOTFOUND);
    assert_int_equal(stat(marker, &st), 0);
    /* Tags of trees survive fetches (libgit2 1.5's file:// transport needs care there). */
    assert_int_equal(open_git(&src, url, "treetag", NULL, cache), IBS_EINVALID);
    snprintf(line, sizeof(line), "ref \"treetag\" in %s does not point to a commit", url);
    assert_string_equal(ibs_error_last()->message, line);

    /* A cache that is no repository any more is deleted and fetched again. */
    assert_int_equal(run("rm -rf '%s'/* && echo junk > '%s/HEAD'", repo_dir, repo_dir), 0);
    assert_ok(open_git(&src, url, "main", NULL, cache));
    assert_string_equal(ibs_source_commit(src), after);
    ibs_source_free(src);
    assert_int_equal(stat(marker, &st), -1);
    only_entry(line, sizeof(line), cache);
    assert_string_equal(line, repo_dir);

    assert_int_equal(open_git(&src, url, NULL, NULL, NULL), IBS_EINVALID);
    snprintf(line, sizeof(line), "a cache directory is required to fetch %s", url);
    assert_string_equal(ibs_error_last()->message, line);
}

/* A TCP port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int accepts(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static int start_daemon(void)
{
    char base[300], listen_port[32];
    struct timespec pause = {0, 20 * 1000 * 1000};
    int port = free_port(), status;

    snprintf(base, sizeof(base), "--base-path=%s", root);
    snprintf(listen_port, sizeof(listen_port), "--port=%d", port);
    daemon_pid = fork();
    assert_true(daemon_pid >= 0);
    if (daemon_pid == 0) {
        int null = open("/dev/null", O_RDWR);
        setpgid(0, 0); /* its own group, so that its children are stopped with it */
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* and gone should this test crash */
#endif
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execlp("git", "git", "daemon", "--reuseaddr", base, "--export-all", "--listen=127.0.0.1",
               listen_port, (char *)NULL);
        _exit(127);
    }
    setpgid(daemon_pid, daemon_pid);
    for (int i = 0; i < 500; i++) {
        if (accepts(port))
            return port;
        assert_int_equal(waitpid(daemon_pid, &status, WNOHANG), 0);
        nanosleep(&pause, NULL);
    }
    fail_msg("git daemon did not start on port %d", port);
    return -1;
}

static int stop_daemon(void **state)
{
    (void)state;
    if (daemon_pid > 0) {
        kill(-daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        daemon_pid = -1;
    }
    return 0;
}

static void test_git_daemon_and_credentials(void **state)
{
    struct ibs_source *src = NULL;
    char cache[512], url[256], secret_url[256], entry[1024], line[512], want[41], desc[512];
    const char *msg;
    int port;
    (void)state;
    rev_parse(want, origin, "main");
    path_at(cache, sizeof(cache), "cache-daemon");
    port = start_daemon();
    snprintf(url, sizeof(url), "git://127.0.0.1:%d/origin.git", port);
    snprintf(secret_url, sizeof(secret_url), "git://robot:s3cret@127.0.0.1:%d/origin.git", port);

    assert_ok(open_git(&src, url, "v2", "sub", cache));
    assert_string_equal(ibs_source_name(src), "sub");
    assert_listing(src, "b.yaml,deep/c.yaml");
    ibs_source_free(src);

    /* Credentials are used but never shown or stored; the cache is the same. */
    assert_ok(open_git(&src, secret_url, NULL, NULL, cache));
    assert_string_equal(ibs_source_commit(src), want);
    assert_string_equal(ibs_source_name(src), "origin");
    snprintf(desc, sizeof(desc), "%s@HEAD (commit %.12s)", url, want);
    assert_string_equal(ibs_source_describe(src), desc);
    ibs_source_free(src);
    only_entry(entry, sizeof(entry), cache);
    assert_null(strstr(entry, "s3cret"));
    assert_null(strstr(entry, "robot"));
    capture(line, sizeof(line), "git --git-dir='%s' config remote.origin.url", entry);
    assert_string_equal(line, url);
    assert_int_equal(run("grep -rq s3cret '%s'", entry), 1);

    /* Nor in error messages: nobody listens on this port any more. */
    stop_daemon(NULL);
    snprintf(secret_url, sizeof(secret_url), "http://robot:s3cret@127.0.0.1:%d/x.git", port);
    assert_int_equal(open_git(&src, secret_url, NULL, NULL, cache), IBS_EIO);
    msg = ibs_error_last()->message;
    snprintf(line, sizeof(line), "cannot fetch http://127.0.0.1:%d/x.git: ", port);
    assert_memory_equal(msg, line, strlen(line));
    assert_null(strstr(msg, "s3cret"));
}

/* ---- authentication ---- */

/*
 * ibs_source_open_git(), with LeakSanitizer looking away during SSH
 * fetches: libgit2 1.5.1 (Debian 12) leaks at every SSH connection the
 * libssh2 known_hosts handle and the $HOME/.ssh/known_hosts path strings of
 * its load_known_hosts(), in frames without symbols that no suppression can
 * single out. HTTP fetches, through the same callbacks, stay checked.
 */
static int open_opts(struct ibs_source **out, const struct ibs_git_options *o)
{
    int rc;
#ifdef IBS_TEST_LSAN
    bool ssh = !strncmp(o->repo, "ssh://", 6);
    if (ssh)
        __lsan_disable();
#endif
    rc = ibs_source_open_git(out, o);
#ifdef IBS_TEST_LSAN
    if (ssh)
        __lsan_enable();
#endif
    return rc;
}

static void assert_open_fails(const struct ibs_git_options *o, int code, const char *message)
{
    struct ibs_source *src = NULL;
    int rc = open_opts(&src, o);
    const char *msg = ibs_error_last()->message;

    ibs_buf_printf(&seen, "%s\n", msg);
    if (rc != code)
        fail_msg("ibs_source_open_git returned %d, not %d: %s", rc, code, msg);
    assert_null(src);
    if (message)
        assert_string_equal(msg, message);
}

static void assert_open_ok(const struct ibs_git_options *o, const char *commit)
{
    struct ibs_source *src = NULL;
    assert_ok(open_opts(&src, o));
    assert_string_equal(ibs_source_commit(src), commit);
    ibs_buf_printf(&seen, "%s\n", ibs_source_describe(src));
    ibs_source_free(src);
}

/* `secret` appears in no message or description seen, nor in any file of `cache`. */
static void assert_not_leaked(const char *secret, const char *cache)
{
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);
    if (strstr(seen.ptr, secret))
        fail_msg("\"%s\" leaked into a message:\n%s", secret, seen.ptr);
    assert_int_equal(run("grep -rqaF -e '%s' '%s'", secret, cache), 1);
}

/* Writes `text` to file `path`. */
static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Starts argv[0] in its own process group, output appended to `log`, as server_pid. */
static void start_server(char *const argv[], const char *log)
{
    server_pid = fork();
    assert_true(server_pid >= 0);
    if (server_pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        setpgid(0, 0);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
        dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    setpgid(server_pid, server_pid);
}

/* Waits until `port` accepts connections; fails if the server exits first. */
static void wait_for_port(int port, const char *log)
{
    struct timespec pause = {0, 20 * 1000 * 1000};
    int status;

    for (int i = 0; i < 500; i++) {
        if (port > 0 && accepts(port))
            return;
        if (waitpid(server_pid, &status, WNOHANG) != 0) {
            server_pid = -1;
            run("cat '%s' >&2", log);
            fail_msg("the server exited before listening on port %d", port);
        }
        nanosleep(&pause, NULL);
    }
    fail_msg("the server did not listen on port %d", port);
}

static int stop_server(void **state)
{
    (void)state;
    if (server_pid > 0) {
        kill(-server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
    return 0;
}

static void test_git_http_token(void **state)
{
    static const char token[] = "tok-3b9a4f1c7d2e", rotated[] = "tok-rotated-8c5d0e";
    static const char url_secret[] = "url-secret-6f2a";
    char cache[512], cache_url[512], token_file[512], bad_file[512], empty_file[512], missing[512];
    char server_token[512], port_file[512], log[512], script[512], text[128];
    char url[256], url_token[300], url_user[300], msg[1024], want[41];
    struct ibs_git_options o;
    FILE *f;
    int port = 0;
    (void)state;

    rev_parse(want, origin, "main");
    path_at(cache, sizeof(cache), "cache-http");
    path_at(cache_url, sizeof(cache_url), "cache-http-url");
    path_at(token_file, sizeof(token_file), "token");
    path_at(bad_file, sizeof(bad_file), "token-bad");
    path_at(empty_file, sizeof(empty_file), "token-empty");
    path_at(missing, sizeof(missing), "token-missing");
    path_at(server_token, sizeof(server_token), "server-token");
    path_at(port_file, sizeof(port_file), "http-port");
    path_at(log, sizeof(log), "http.log");
    snprintf(script, sizeof(script), "%s/source/git-http-auth-server.py", IBS_TEST_DATA);
    snprintf(text, sizeof(text), "%s\n", token);
    write_file(token_file, text);
    write_file(server_token, text);
    write_file(bad_file, "not-the-token\n");
    write_file(empty_file, " \n\n");

    {
        char *argv[] = {"python3", script, root, "x-access-token", server_token, port_file, NULL};
        struct timespec pause = {0, 20 * 1000 * 1000};
        start_server(argv, log);
        for (int i = 0; i < 500 && !port; i++) {
            if ((f = fopen(port_file, "r")) != NULL) {
                assert_int_equal(fscanf(f, "%d", &port), 1);
                fclose(f);
            } else {
                nanosleep(&pause, NULL);
            }
        }
        wait_for_port(port, log);
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/origin.git", port);
    memset(&o, 0, sizeof(o));
    o.repo = url;
    o.cache_dir = cache;

    /* No token: refused, naming the URL. */
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server requires credentials and no token was "
             "given",
             url);
    assert_open_fails(&o, IBS_EAUTH, msg);

    /* A token file (its newline ignored); the caller's hint follows every refusal. */
    o.token_file = token_file;
    o.auth_hint = "check the token file";
    assert_open_ok(&o, want);
    capture(msg, sizeof(msg), "git --git-dir=\"$(ls -d '%s'/*)\" config remote.origin.url", cache);
    assert_string_equal(msg, url);

    o.token_file = bad_file;
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server rejected the token for user "
             "\"x-access-token\"; check the token file",
             url);
    assert_open_fails(&o, IBS_EAUTH, msg);

    /* Every open reads the file again: a rotated token is picked up. */
    snprintf(text, sizeof(text), "%s\n", rotated);
    write_file(server_token, text);
    o.token_file = token_file;
    assert_open_fails(&o, IBS_EAUTH, NULL);
    write_file(token_file, text);
    assert_open_ok(&o, want);

    /* A token string, used when no file is given; the file wins over it. */
    o.token_file = NULL;
    o.token = rotated;
    assert_open_ok(&o, want);
    o.token_file = bad_file;
    assert_open_fails(&o, IBS_EAUTH, NULL);
    o.token_file = NULL;

    /* Another user name; the URL's user name wins over it. */
    o.username = "robot";
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server rejected the token for user \"robot\"; "
             "check the token file",
             url);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(url_user, sizeof(url_user), "http://x-access-token@127.0.0.1:%d/origin.git", port);
    o.repo = url_user;
    assert_open_ok(&o, want);
    o.username = NULL;

    /* Credentials in the URL keep working (a new cache: made with them), then the token is tried.
     */
    o.token = NULL;
    o.cache_dir = cache_url;
    snprintf(url_token, sizeof(url_token), "http://x-access-token:%s@127.0.0.1:%d/origin.git",
             rotated, port);
    o.repo = url_token;
    assert_open_ok(&o, want);
    snprintf(url_token, sizeof(url_token), "http://x-access-token:%s@127.0.0.1:%d/origin.git",
             url_secret, port);
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server rejected the credentials in the URL; "
             "check the token file",
             url);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.token = rotated;
    assert_open_ok(&o, want);
    capture(msg, sizeof(msg), "git --git-dir=\"$(ls -d '%s'/*)\" config remote.origin.url",
            cache_url);
    assert_string_equal(msg, url);

    /* Token files that cannot be used, before any connection. */
    o.repo = url;
    o.cache_dir = cache;
    o.token = NULL;
    o.token_file = missing;
    snprintf(msg, sizeof(msg), "cannot read token file \"%s\": No such file or directory", missing);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.token_file = empty_file;
    snprintf(msg, sizeof(msg), "token file \"%s\" is empty", empty_file);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.token_file = root;
    snprintf(msg, sizeof(msg), "cannot read token file \"%s\": Is a directory", root);
    assert_open_fails(&o, IBS_EAUTH, msg);

    /* The server saw the default user name with the token. */
    assert_int_equal(run("grep -q 'GET /origin.git/info/refs?service=git-upload-pack 200 "
                         "user=x-access-token' '%s'",
                         log),
                     0);
    assert_not_leaked(token, cache);
    assert_not_leaked(rotated, cache);
    assert_not_leaked(url_secret, cache);
    assert_not_leaked(token, cache_url);
    assert_not_leaked(rotated, cache_url);
    assert_not_leaked(url_secret, cache_url);
}

/* The SHA256 fingerprint of public key file `pub`, as ssh-keygen shows it. */
static void fingerprint(char *out, size_t n, const char *pub)
{
    capture(out, n, "ssh-keygen -E sha256 -lf '%s' | cut -d' ' -f2", pub);
    assert_memory_equal(out, "SHA256:", 7);
}

static void test_git_ssh_keys_and_known_hosts(void **state)
{
    static const char passphrase[] = "correct horse battery staple";
    const char *sshd = NULL, *user;
    char ssh[300], cache[512], config[512], log[512], kh[512], key[512], locked[512], pass[512];
    char stranger[512], wrong_pass[512], missing[512], host_pub[600], fp[128], msg[2048];
    char url[512], display[512], bare_url[512], want[41], line[1024];
    struct passwd *pw = getpwuid(getuid());
    struct ibs_git_options o;
    int port;
    (void)state;

    if (access("/usr/sbin/sshd", X_OK) == 0)
        sshd = "/usr/sbin/sshd";
    else if (access("/usr/bin/sshd", X_OK) == 0)
        sshd = "/usr/bin/sshd";
    if (!sshd || run("command -v ssh-keygen >/dev/null") != 0) {
        print_message("sshd or ssh-keygen is not installed (openssh-server): SSH not tested\n");
        skip();
    }
    assert_non_null(pw);
    user = pw->pw_name;
    rev_parse(want, origin, "main");
    path_at(ssh, sizeof(ssh), "ssh");
    path_at(cache, sizeof(cache), "cache-ssh");
    assert_int_equal(mkdir(ssh, 0700), 0);
    port = free_port();
    assert_int_equal(run("sh '%s/source/sshd-setup.sh' '%s' %d", IBS_TEST_DATA, ssh, port), 0);
    snprintf(config, sizeof(config), "%s/sshd_config", ssh);
    snprintf(log, sizeof(log), "%s/sshd.log", ssh);
    {
        char *argv[] = {(char *)sshd, "-D", "-e", "-f", config, NULL};
        start_server(argv, log);
        wait_for_port(port, log);
    }
    snprintf(key, sizeof(key), "%s/id_plain", ssh);
    snprintf(locked, sizeof(locked), "%s/id_locked", ssh);
    snprintf(stranger, sizeof(stranger), "%s/id_stranger", ssh);
    snprintf(pass, sizeof(pass), "%s/passphrase", ssh);
    snprintf(wrong_pass, sizeof(wrong_pass), "%s/wrong-passphrase", ssh);
    snprintf(missing, sizeof(missing), "%s/missing", ssh);
    snprintf(host_pub, sizeof(host_pub), "%s/host_key.pub", ssh);
    write_file(wrong_pass, "horse battery staple correct\n");
    fingerprint(fp, sizeof(fp), host_pub);
    snprintf(url, sizeof(url), "ssh://%s@127.0.0.1:%d%s", user, port, origin);
    snprintf(display, sizeof(display), "ssh://127.0.0.1:%d%s", port, origin);
    snprintf(bare_url, sizeof(bare_url), "ssh://127.0.0.1:%d%s", port, origin);

    memset(&o, 0, sizeof(o));
    o.repo = url;
    o.cache_dir = cache;
    o.ssh_key = key;
    o.auth_hint = "check the key";

    /* Host keys: plain and hashed entries match, on the URL's port. */
    snprintf(kh, sizeof(kh), "%s/known_hosts", ssh);
    o.known_hosts = kh;
    assert_open_ok(&o, want);
    snprintf(kh, sizeof(kh), "%s/known_hosts_hashed", ssh);
    assert_open_ok(&o, want);
    snprintf(kh, sizeof(kh), "%s/known_hosts_patterns", ssh);
    snprintf(line, sizeof(line),
             "[127.0.0.1]:%d ssh-ed25519 AAAA-not-base64\n"
             "[127.0.0.?]:%d,[::1]:%d $(cut -d' ' -f1,2 '%s') comment\n",
             port, port, port, host_pub);
    assert_int_equal(run("printf '%%s' \"%s\" > '%s'", line, kh), 0);
    assert_open_ok(&o, want);

    /* Unknown, changed and revoked keys are refused. */
    snprintf(kh, sizeof(kh), "%s/known_hosts_elsewhere", ssh);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: [127.0.0.1]:%d is not in known_hosts file "
             "\"%s\" (the server's key is ssh-ed25519 %s)",
             display, port, kh, fp);
    assert_open_fails(&o, IBS_EAUTH, msg);
    /* The host's key on port 22 is no key for another port, hashed or not. */
    snprintf(kh, sizeof(kh), "%s/known_hosts_elsewhere_hashed", ssh);
    assert_int_equal(run("cp '%s/known_hosts_elsewhere' '%s' && ssh-keygen -q -H -f '%s' "
                         ">/dev/null 2>&1 && rm -f '%s.old' && ! grep -q 127.0.0 '%s'",
                         ssh, kh, kh, kh, kh),
                     0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: [127.0.0.1]:%d is not in known_hosts file "
             "\"%s\" (the server's key is ssh-ed25519 %s)",
             display, port, kh, fp);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(kh, sizeof(kh), "%s/known_hosts_negated", ssh);
    assert_int_equal(
        run("echo \"*,![127.0.0.1]:%d $(cut -d' ' -f1,2 '%s')\" > '%s'", port, host_pub, kh), 0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: [127.0.0.1]:%d is not in known_hosts file "
             "\"%s\" (the server's key is ssh-ed25519 %s)",
             display, port, kh, fp);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(kh, sizeof(kh), "%s/known_hosts_changed", ssh);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: the host key of [127.0.0.1]:%d (ssh-ed25519 "
             "%s) does not match line 1 of known_hosts file \"%s\": the key changed, or someone "
             "is intercepting the connection",
             display, port, fp, kh);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(kh, sizeof(kh), "%s/known_hosts_other_type", ssh);
    assert_int_equal(run("ssh-keygen -q -t ecdsa -N '' -f '%s/ecdsa' && "
                         "echo \"[127.0.0.1]:%d $(cut -d' ' -f1,2 '%s/ecdsa.pub')\" > '%s'",
                         ssh, port, ssh, kh),
                     0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: known_hosts file \"%s\" has keys of other "
             "types only for [127.0.0.1]:%d (the server's key is ssh-ed25519 %s)",
             display, kh, port, fp);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(kh, sizeof(kh), "%s/known_hosts_revoked", ssh);
    assert_int_equal(run("k=$(cut -d' ' -f1,2 '%s') && printf '%%s\\n' \"[127.0.0.1]:%d $k\" "
                         "\"@revoked * $k\" > '%s'",
                         host_pub, port, kh),
                     0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: the host key of [127.0.0.1]:%d (ssh-ed25519 "
             "%s) is revoked at line 2 of known_hosts file \"%s\"",
             display, port, fp, kh);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(kh, sizeof(kh), "%s/known_hosts_revoked_hashed", ssh);
    assert_int_equal(run("printf '%%s\\n' \"[127.0.0.1]:%d $(cut -d' ' -f1,2 '%s')\" "
                         "\"@revoked $(sed -n 2p '%s/known_hosts_hashed')\" > '%s'",
                         port, host_pub, ssh, kh),
                     0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: the host key of [127.0.0.1]:%d (ssh-ed25519 "
             "%s) is revoked at line 2 of known_hosts file \"%s\"",
             display, port, fp, kh);
    assert_open_fails(&o, IBS_EAUTH, msg);
    /* Hashed entries are matched for the mismatch message too, with their line. */
    snprintf(kh, sizeof(kh), "%s/known_hosts_changed_hashed", ssh);
    assert_int_equal(
        run("printf '# hashed\\n[127.0.0.2]:%d %%s\\n[127.0.0.1]:%d %%s\\n' "
            "\"$(cut -d' ' -f1,2 '%s')\" \"$(cut -d' ' -f1,2 '%s/other_host_key.pub')\" "
            "> '%s' && ssh-keygen -q -H -f '%s' >/dev/null 2>&1 && rm -f '%s.old' && "
            "! grep -q 127.0.0 '%s'",
            port, port, host_pub, ssh, kh, kh, kh, kh),
        0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: the host key of [127.0.0.1]:%d (ssh-ed25519 "
             "%s) does not match line 3 of known_hosts file \"%s\": the key changed, or someone "
             "is intercepting the connection",
             display, port, fp, kh);
    assert_open_fails(&o, IBS_EAUTH, msg);
    /* A certificate authority's key is no host key. */
    snprintf(kh, sizeof(kh), "%s/known_hosts_ca", ssh);
    assert_int_equal(run("echo \"@cert-authority [127.0.0.1]:%d $(cut -d' ' -f1,2 '%s')\" > '%s'",
                         port, host_pub, kh),
                     0);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: [127.0.0.1]:%d is not in known_hosts file "
             "\"%s\" (the server's key is ssh-ed25519 %s)",
             display, port, kh, fp);
    assert_open_fails(&o, IBS_EAUTH, msg);
    /* Lines that cannot be parsed are skipped, not the end of the file. */
    snprintf(kh, sizeof(kh), "%s/known_hosts_skipped", ssh);
    assert_int_equal(run("printf '%%s\\n' \"[127.0.0.1]:%d ssh-ed25519 AAAA\" "
                         "\"[127.0.0.1]:%d\" \"|1|!|! ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\" "
                         "\"[127.0.0.1]:%d $(cut -d' ' -f1,2 '%s')\" > '%s'",
                         port, port, port, host_pub, kh),
                     0);
    assert_open_ok(&o, want);
    snprintf(kh, sizeof(kh), "%s/known_hosts_missing", ssh);
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: cannot read known_hosts file \"%s\": No such "
             "file or directory",
             display, kh);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.known_hosts = NULL;
    snprintf(msg, sizeof(msg),
             "host key verification failed for %s: no known_hosts file was given to verify the "
             "host key of [127.0.0.1]:%d (ssh-ed25519 %s)",
             display, port, fp);
    assert_open_fails(&o, IBS_EAUTH, msg);
    snprintf(kh, sizeof(kh), "%s/known_hosts", ssh);
    o.known_hosts = kh;

    /* Keys: refused, missing, locked with a passphrase, unreadable. */
    o.ssh_key = stranger;
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server rejected SSH key \"%s\" for user \"%s\"; "
             "check the key",
             display, stranger, user);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.ssh_key = NULL;
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server requires an SSH key for user \"%s\" and "
             "none was given; check the key",
             display, user);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.ssh_key_passphrase_file = pass;
    assert_open_fails(&o, IBS_EINVALID, "an SSH key passphrase file is given without an SSH key");
    o.ssh_key = locked;
    assert_open_ok(&o, want);
    o.ssh_key_passphrase_file = wrong_pass;
    assert_open_fails(&o, IBS_EAUTH, NULL);
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: SSH key \"%s\" cannot be used: ", display, locked);
    assert_memory_equal(ibs_error_last()->message, msg, strlen(msg));
    assert_non_null(strstr(ibs_error_last()->message, "; check the key"));
    o.ssh_key_passphrase_file = NULL;
    o.ssh_key = missing;
    snprintf(msg, sizeof(msg), "cannot read SSH key \"%s\": No such file or directory", missing);
    assert_open_fails(&o, IBS_EAUTH, msg);

    /* The user name: the URL's, else the option, else "git". */
    o.repo = bare_url;
    o.ssh_key = key;
    snprintf(msg, sizeof(msg),
             "authentication failed for %s: the server rejected SSH key \"%s\" for user \"git\"; "
             "check the key",
             display, key);
    assert_open_fails(&o, IBS_EAUTH, msg);
    o.username = user;
    assert_open_ok(&o, want);

    assert_not_leaked(passphrase, cache);
    assert_not_leaked("horse battery staple correct", cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_dir_list_sorted_skips_dot_dirs_and_links),
        cmocka_unit_test(test_dir_read),
        cmocka_unit_test(test_dir_open_errors_and_name),
        cmocka_unit_test(test_git_head_of_work_tree),
        cmocka_unit_test(test_git_refs),
        cmocka_unit_test(test_git_sub_path),
        cmocka_unit_test(test_git_errors),
        cmocka_unit_test(test_git_read_errors),
        cmocka_unit_test(test_git_bare_local),
        cmocka_unit_test(test_git_file_url_cache_fetches),
        cmocka_unit_test_teardown(test_git_daemon_and_credentials, stop_daemon),
        cmocka_unit_test_teardown(test_git_http_token, stop_server),
        cmocka_unit_test_teardown(test_git_ssh_keys_and_known_hosts, stop_server),
    };
    return cmocka_run_group_tests(tests, setup_fixtures, teardown_fixtures);
}
