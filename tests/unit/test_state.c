/* Unit tests of the durable state pieces in state/: file helpers (atomic
 * replacement, mkdir -p, key → file name), digests (checked against
 * `git hash-object`), locks (contention with a forked holder, SIGKILL,
 * waiting), the apply journal (torn tails, corruption, 8 writer threads,
 * archive rotation), saved plan files and the persistent cache. Everything
 * runs in a fresh temporary directory.
 * ibs-test-libs: ibs_state ibs_util */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "state/cache.h"
#include "state/digest.h"
#include "state/fsutil.h"
#include "state/journal.h"
#include "state/lock.h"
#include "state/planfile.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"
#include "util/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Like assert_int_equal(expr, 0), but shows the error message on failure. */
#define assert_ok(expr)                                                                            \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_)                                                                                   \
            fail_msg("%s returned %d: %s", #expr, rc_, ibs_error_last()->message);                 \
    } while (0)

/* Asserts that expr fails with `code` and exactly `message`. */
#define assert_fails(expr, code, want_)                                                            \
    do {                                                                                           \
        assert_int_equal((expr), (code));                                                          \
        assert_string_equal(ibs_error_last()->message, (want_));                                   \
    } while (0)

#define KEY "golden-ami@123456789012/us-east-1"
#define KEY_DISPLAY "stack \"golden-ami\" (123456789012/us-east-1)"
#define KEY_FILE "golden-ami@123456789012%2Fus-east-1"

static char root[256]; /* the temporary directory of this run */
static unsigned dir_counter;

/* A new empty directory under root for one test. */
static void fresh_dir(char *out, size_t n, const char *what)
{
    int len = snprintf(out, n, "%s/%s-%u", root, what, ++dir_counter);
    assert_true(len > 0 && (size_t)len < n);
    assert_int_equal(mkdir(out, 0755), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void append_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static char *slurp(size_t *out_len, const char *path)
{
    char *data = NULL;
    size_t len = 0;
    assert_ok(ibs_fs_read_file(&data, &len, path, 64u * 1024 * 1024));
    if (out_len)
        *out_len = len;
    return data;
}

/* Entries of `dir` other than . and .., joined with ',' in sorted order. */
static void list_dir(struct ibs_buf *out, const char *dir)
{
    struct ibs_vec names = IBS_VEC_INIT;
    struct dirent *de;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            assert_int_equal(ibs_vec_push(&names, strdup(de->d_name)), 0);
    }
    closedir(d);
    for (size_t i = 1; i < names.count; i++)
        for (size_t k = i; k > 0 && strcmp(names.items[k - 1], names.items[k]) > 0; k--) {
            void *t = names.items[k];
            names.items[k] = names.items[k - 1];
            names.items[k - 1] = t;
        }
    ibs_buf_clear(out);
    for (size_t i = 0; i < names.count; i++)
        ibs_buf_printf(out, "%s%s", i ? "," : "", (char *)names.items[i]);
    ibs_vec_release_with(&names, free);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static struct ibs_value *parse(const char *json)
{
    struct ibs_value *v = NULL;
    assert_ok(ibs_json_parse(&v, json, strlen(json)));
    return v;
}

static int setup_root(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "%s/ibs-state-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(root) ? 0 : -1;
}

static int teardown_root(void **state)
{
    char cmd[512];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- fsutil ---- */

static void test_mkdirs(void **state)
{
    char dir[512], path[1024], msg[4096];
    struct stat st;
    (void)state;

    fresh_dir(dir, sizeof(dir), "mkdirs");
    snprintf(path, sizeof(path), "%s/a//b/c/", dir);
    assert_ok(ibs_fs_mkdirs(path, 0750));
    snprintf(path, sizeof(path), "%s/a/b/c", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Existing directories are fine. */
    assert_ok(ibs_fs_mkdirs(path, 0750));
    /* A file in the way is an error naming it. */
    snprintf(path, sizeof(path), "%s/file", dir);
    write_file(path, "x", 1);
    snprintf(path, sizeof(path), "%s/file/sub", dir);
    snprintf(msg, sizeof(msg), "cannot create directory %s/file: Not a directory", dir);
    assert_fails(ibs_fs_mkdirs(path, 0755), IBS_EIO, msg);
    assert_fails(ibs_fs_mkdirs("", 0755), IBS_EINVALID,
                 "cannot create a directory with an empty name");
}

static void test_write_atomic_replaces(void **state)
{
    char dir[512], path[1024], msg[4096];
    struct ibs_buf names = IBS_BUF_INIT;
    struct stat st;
    size_t len;
    char *data;
    (void)state;

    fresh_dir(dir, sizeof(dir), "atomic");
    snprintf(path, sizeof(path), "%s/state.json", dir);
    assert_ok(ibs_fs_write_atomic(path, "old", 3, 0644));
    assert_ok(ibs_fs_write_atomic(path, "new content", 11, 0640));
    data = slurp(&len, path);
    assert_int_equal(len, 11);
    assert_string_equal(data, "new content");
    free(data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    /* Empty content is a valid file too. */
    assert_ok(ibs_fs_write_atomic(path, NULL, 0, 0644));
    data = slurp(&len, path);
    assert_int_equal(len, 0);
    free(data);
    /* No temporary file is left behind. */
    list_dir(&names, dir);
    assert_string_equal(names.ptr, "state.json");
    /* A missing directory. */
    snprintf(path, sizeof(path), "%s/missing/state.json", dir);
    assert_int_equal(ibs_fs_write_atomic(path, "x", 1, 0644), IBS_ENOTFOUND);
    snprintf(msg, sizeof(msg), "cannot write %s: cannot create %s/missing/.state.json.", path, dir);
    assert_memory_equal(ibs_error_last()->message, msg, strlen(msg));
    ibs_buf_release(&names);
}

/* A write that fails half-way (file size limit) keeps the old file intact. */
static void test_write_atomic_failure_keeps_old(void **state)
{
    char dir[512], path[1024];
    struct ibs_buf names = IBS_BUF_INIT;
    static char big[8192];
    char *data;
    pid_t pid;
    int status;
    (void)state;

    fresh_dir(dir, sizeof(dir), "atomic-fail");
    snprintf(path, sizeof(path), "%s/plan.bin", dir);
    assert_ok(ibs_fs_write_atomic(path, "old content", 11, 0644));
    memset(big, 'x', sizeof(big));
    /* The rlimit is set in a child so that it does not affect the other tests;
     * it works for root too, unlike a read-only directory. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {100, 100};
        int rc;
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(2);
        rc = ibs_fs_write_atomic(path, big, sizeof(big), 0644);
        _exit(rc == IBS_EIO && strstr(ibs_error_last()->message, "File too large") ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    data = slurp(NULL, path);
    assert_string_equal(data, "old content");
    free(data);
    list_dir(&names, dir);
    assert_string_equal(names.ptr, "plan.bin");

    /* A read-only directory (only meaningful when permissions apply to us). */
    if (geteuid() != 0) {
        assert_int_equal(chmod(dir, 0555), 0);
        assert_int_equal(ibs_fs_write_atomic(path, "new", 3, 0644), IBS_EIO);
        assert_int_equal(chmod(dir, 0755), 0);
        data = slurp(NULL, path);
        assert_string_equal(data, "old content");
        free(data);
    }
    ibs_buf_release(&names);
}

static void test_read_file(void **state)
{
    char dir[512], path[1024], msg[4096];
    char *data = (char *)"untouched";
    size_t len = 7;
    (void)state;

    fresh_dir(dir, sizeof(dir), "read");
    snprintf(path, sizeof(path), "%s/f", dir);
    snprintf(msg, sizeof(msg), "cannot open %s: No such file or directory", path);
    assert_fails(ibs_fs_read_file(&data, &len, path, 100), IBS_ENOTFOUND, msg);
    assert_null(data);
    assert_int_equal(len, 0);
    write_file(path, "hello", 5);
    snprintf(msg, sizeof(msg), "%s is larger than 4 bytes", path);
    assert_fails(ibs_fs_read_file(&data, &len, path, 4), IBS_EINVALID, msg);
    assert_ok(ibs_fs_read_file(&data, &len, path, 5));
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    snprintf(msg, sizeof(msg), "%s is not a regular file", dir);
    assert_fails(ibs_fs_read_file(&data, &len, dir, 100), IBS_EINVALID, msg);
}

static void assert_name(const char *key, const char *want)
{
    char *name = NULL;
    assert_ok(ibs_fs_key_to_name(&name, key));
    assert_string_equal(name, want);
    free(name);
}

static void test_key_to_name(void **state)
{
    char key[400], want[256], digest[41];
    char *a = NULL, *b = NULL;
    (void)state;

    assert_name(KEY, KEY_FILE);
    assert_name("a:b c", "a%3Ab%20c");
    assert_name(".", "%2E");
    assert_name("..", "%2E.");
    assert_name(".hidden", "%2Ehidden");
    assert_name("50%", "50%25");
    assert_name("x/../y", "x%2F..%2Fy");
    assert_name("caf\xc3\xa9", "caf%C3%A9");
    assert_fails(ibs_fs_key_to_name(&a, ""), IBS_EINVALID, "empty state key");
    assert_null(a);

    /* Long keys: cut, plus "~" and the digest of the whole key. */
    memset(key, 'k', 300);
    key[300] = '\0';
    assert_ok(ibs_digest_hex(digest, key, 300));
    memset(want, 'k', 159);
    snprintf(want + 159, sizeof(want) - 159, "~%s", digest);
    assert_name(key, want);
    assert_int_equal(strlen(want), IBS_FS_NAME_MAX);
    /* The cut never splits a %XX escape (whichever of its bytes the limit
     * falls on), and the results stay distinct. */
    for (size_t lead = 0; lead < 3; lead++) {
        memset(key, 'a', lead);
        memset(key + lead, '/', 100);
        key[lead + 100] = '\0';
        assert_ok(ibs_fs_key_to_name(&a, key));
        key[lead + 99] = ':';
        assert_ok(ibs_fs_key_to_name(&b, key));
        assert_true(strlen(a) <= IBS_FS_NAME_MAX);
        /* Escapes start at lead, lead + 3, ...: the last whole one before byte 159. */
        assert_int_equal(strchr(a, '~') - a, 159 - (159 - lead) % 3);
        assert_int_equal(strchr(a, '~')[-1], 'F');
        assert_string_not_equal(a, b);
        free(a);
        free(b);
    }
}

/* ---- digest ---- */

static void test_digest_known_values(void **state)
{
    char hex[41], cmd[1400], path[1024], dir[512], line[128];
    static unsigned char blob[100000];
    FILE *p;
    (void)state;

    /* Values printed by `printf '%s' ... | git hash-object --stdin`. */
    assert_ok(ibs_digest_hex(hex, NULL, 0));
    assert_string_equal(hex, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    assert_ok(ibs_digest_hex(hex, "hello\n", 6));
    assert_string_equal(hex, "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_ok(ibs_digest_hex(hex, "IBSYNC", 6));
    assert_string_equal(hex, "07c814c5a1a46d830d67b55c71881abea5ade170");

    /* A binary buffer with every byte value, hashed by git now. */
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (unsigned char)((i * 7919u) ^ (i >> 8));
    fresh_dir(dir, sizeof(dir), "digest");
    snprintf(path, sizeof(path), "%s/blob", dir);
    write_file(path, blob, sizeof(blob));
    snprintf(cmd, sizeof(cmd), "git hash-object --stdin < '%s'", path);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    line[strcspn(line, "\n")] = '\0';
    assert_ok(ibs_digest_hex(hex, blob, sizeof(blob)));
    assert_string_equal(hex, line);
}

/* ---- locks ---- */

/* Asserts the contention message for a holder that took the lock between
 * t0 and t1 (the exact second is not known to the observer). */
static void assert_locked_message(const char *display, long pid, const char *desc, time_t t0,
                                  time_t t1)
{
    const char *msg = ibs_error_last()->message;
    char host[256] = "", want[1024], since[32];
    struct tm tm;

    assert_int_equal(ibs_error_last()->code, IBS_ELOCKED);
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    for (time_t t = t0; t <= t1; t++) {
        assert_non_null(gmtime_r(&t, &tm));
        strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(want, sizeof(want), "%s is locked by pid %ld on host %s since %s (%s)", display,
                 pid, host, since, desc);
        if (strcmp(msg, want) == 0)
            return;
    }
    fail_msg("unexpected lock message: %s (last candidate: %s)", msg, want);
}

/*
 * Forks a child that takes the lock and reports through a pipe. With
 * hold_ms >= 0 it releases after that long and exits; otherwise it holds
 * until *out_ctl (the write end of a pipe it reads) is closed, or it is
 * killed. The child dies with the test process in any case.
 */
static pid_t spawn_holder(int *out_ctl, const char *dir, const char *key, long hold_ms)
{
    int ready[2], ctl[2];
    char c = 0;
    pid_t pid;

    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(ctl), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct ibs_lock *lock = NULL;
        char byte;
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        close(ready[0]);
        close(ctl[1]);
        byte = ibs_lock_acquire(&lock, dir, key, "ibsync apply", 0) == 0 ? 'R' : 'E';
        if (write(ready[1], &byte, 1) != 1)
            _exit(3);
        if (hold_ms >= 0) {
            struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else {
            while (read(ctl[0], &byte, 1) > 0)
                ;
        }
        ibs_lock_release(lock);
        _exit(0);
    }
    close(ready[1]);
    close(ctl[0]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    assert_int_equal(c, 'R');
    *out_ctl = ctl[1];
    return pid;
}

static void test_lock_acquire_release(void **state)
{
    char dir[512], path[1024];
    struct ibs_lock *a = NULL, *b = NULL;
    struct ibs_value *rec;
    time_t t0, t1;
    char *text;
    (void)state;

    fresh_dir(dir, sizeof(dir), "lock");
    t0 = time(NULL);
    assert_ok(ibs_lock_acquire(&a, dir, KEY, "ibsync apply", 0));
    t1 = time(NULL);
    assert_non_null(a);
    /* The holder record is in the lock file. */
    snprintf(path, sizeof(path), "%s/locks/%s.lock", dir, KEY_FILE);
    text = slurp(NULL, path);
    rec = parse(text);
    assert_int_equal(ibs_value_map_get(rec, "pid")->num.i, (int64_t)getpid());
    assert_string_equal(ibs_value_map_get_str(rec, "description"), "ibsync apply");
    assert_string_equal(ibs_value_map_get_str(rec, "key"), KEY);
    assert_non_null(ibs_value_map_get_str(rec, "user"));
    ibs_value_free(rec);
    free(text);

    /* A second handle in the same process conflicts (separate open file description). */
    assert_int_equal(ibs_lock_acquire(&b, dir, KEY, "ibsync apply", 0), IBS_ELOCKED);
    assert_null(b);
    assert_locked_message(KEY_DISPLAY, (long)getpid(), "ibsync apply", t0, t1);
    /* Other keys are independent; keys without '@' are shown as they are. */
    t0 = time(NULL);
    assert_ok(ibs_lock_acquire(&b, dir, "plain:key", NULL, 0));
    ibs_lock_release(a);
    a = NULL;
    assert_int_equal(ibs_lock_acquire(&a, dir, "plain:key", "ibsync apply", 0), IBS_ELOCKED);
    assert_locked_message("lock \"plain:key\"", (long)getpid(), "ibsync", t0, time(NULL));
    ibs_lock_release(b);

    /* Released: free again, and the record is emptied. */
    text = slurp(NULL, path);
    assert_string_equal(text, "");
    free(text);
    assert_ok(ibs_lock_acquire(&a, dir, KEY, "ibsync destroy", 0));
    ibs_lock_release(a);
    ibs_lock_release(NULL);
}

static void test_lock_held_by_child_then_killed(void **state)
{
    char dir[512];
    struct ibs_lock *lock = NULL;
    int ctl, status;
    time_t t0, t1;
    pid_t pid;
    (void)state;

    fresh_dir(dir, sizeof(dir), "lock-child");
    t0 = time(NULL);
    pid = spawn_holder(&ctl, dir, KEY, -1);
    t1 = time(NULL);
    assert_int_equal(ibs_lock_acquire(&lock, dir, KEY, "ibsync apply", 0), IBS_ELOCKED);
    assert_null(lock);
    assert_locked_message(KEY_DISPLAY, (long)pid, "ibsync apply", t0, t1);

    /* SIGKILL gives the holder no chance to clean up; the kernel drops the lock. */
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    close(ctl);
    assert_ok(ibs_lock_acquire(&lock, dir, KEY, "ibsync apply", 0));
    ibs_lock_release(lock);
}

static void test_lock_wait(void **state)
{
    char dir[512];
    struct ibs_lock *lock = NULL;
    int ctl, status;
    time_t t0, t1;
    long start, elapsed;
    pid_t pid;
    (void)state;

    fresh_dir(dir, sizeof(dir), "lock-wait");
    /* The holder gives up the lock after 300 ms: a wait of 5 s gets it. */
    pid = spawn_holder(&ctl, dir, KEY, 300);
    assert_int_equal(ibs_lock_acquire(&lock, dir, KEY, "ibsync apply", 0), IBS_ELOCKED);
    start = now_ms();
    assert_ok(ibs_lock_acquire(&lock, dir, KEY, "ibsync apply", 5000));
    elapsed = now_ms() - start;
    assert_true(elapsed < 3000);
    ibs_lock_release(lock);
    lock = NULL;
    close(ctl);
    assert_int_equal(waitpid(pid, &status, 0), pid);

    /* A holder that stays: the wait ends after wait_ms with the holder named. */
    t0 = time(NULL);
    pid = spawn_holder(&ctl, dir, KEY, -1);
    t1 = time(NULL);
    start = now_ms();
    assert_int_equal(ibs_lock_acquire(&lock, dir, KEY, "ibsync apply", 150), IBS_ELOCKED);
    elapsed = now_ms() - start;
    assert_true(elapsed >= 150);
    assert_true(elapsed < 2000);
    assert_locked_message(KEY_DISPLAY, (long)pid, "ibsync apply", t0, t1);
    /* Closing the control pipe lets the child release and exit normally. */
    close(ctl);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- journal ---- */

static void journal_path(char *out, size_t n, const char *dir, const char *key)
{
    char *name = NULL;
    assert_ok(ibs_fs_key_to_name(&name, key));
    snprintf(out, n, "%s/journal/%s.jsonl", dir, name);
    free(name);
}

static void free_records(struct ibs_vec *v)
{
    for (size_t i = 0; i < v->count; i++)
        ibs_value_free(v->items[i]);
    ibs_vec_release(v);
}

static void append_json(struct ibs_journal *j, const char *json)
{
    struct ibs_value *v = parse(json);
    assert_ok(ibs_journal_append(j, v));
    ibs_value_free(v);
}

static int64_t rec_int(const struct ibs_value *rec, const char *key)
{
    const struct ibs_value *v = ibs_value_map_get(rec, key);
    assert_non_null(v);
    assert_int_equal(v->type, IBS_VALUE_INT);
    return v->num.i;
}

static void test_journal_append_replay(void **state)
{
    char dir[512], path[1024], msg[4096];
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_journal *j = NULL;
    struct ibs_value *v, *want;
    const char *time_str;
    size_t torn = 99;
    (void)state;

    fresh_dir(dir, sizeof(dir), "journal");
    journal_path(path, sizeof(path), dir, KEY);
    snprintf(msg, sizeof(msg), "no journal for \"%s\" (%s)", KEY, path);
    assert_fails(ibs_journal_replay(&recs, dir, KEY, &torn), IBS_ENOTFOUND, msg);
    assert_int_equal(recs.count, 0);

    assert_ok(ibs_journal_open(&j, dir, KEY));
    append_json(j, "{\"event\":\"start\",\"action\":\"create ImageRecipe/web@1.0.0\","
                   "\"token\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\"}");
    append_json(j, "{\"event\":\"done\",\"detail\":{\"arns\":[\"arn:a\",\"arn:b\"],\"n\":2},"
                   "\"text\":\"line\\nbreak\"}");
    append_json(j, "{}");
    /* Bad records are refused and do not use a sequence number. */
    v = parse("[1]");
    assert_fails(ibs_journal_append(j, v), IBS_EINVALID,
                 "a journal record must be a map, not a list");
    ibs_value_free(v);
    v = parse("{\"seq\":7}");
    assert_fails(ibs_journal_append(j, v), IBS_EINVALID,
                 "a journal record cannot set \"seq\" or \"time\"");
    ibs_value_free(v);
    ibs_journal_close(j);
    ibs_journal_close(NULL);

    assert_ok(ibs_journal_replay(&recs, dir, KEY, &torn));
    assert_int_equal(torn, 0);
    assert_int_equal(recs.count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(rec_int(recs.items[i], "seq"), (int64_t)i + 1);
        /* "2026-11-23T10:00:00.123Z" */
        time_str = ibs_value_map_get_str(recs.items[i], "time");
        assert_non_null(time_str);
        assert_int_equal(strlen(time_str), 24);
        assert_int_equal(time_str[10], 'T');
        assert_int_equal(time_str[19], '.');
        assert_int_equal(time_str[23], 'Z');
    }
    want = parse("{\"arns\":[\"arn:a\",\"arn:b\"],\"n\":2}");
    assert_true(ibs_value_equal(ibs_value_map_get(recs.items[1], "detail"), want));
    ibs_value_free(want);
    assert_string_equal(ibs_value_map_get_str(recs.items[1], "text"), "line\nbreak");
    assert_string_equal(ibs_value_map_get_str(recs.items[0], "token"),
                        "7c9e6679-7425-40de-944b-e07fc1f90ae7");
    assert_int_equal(((struct ibs_value *)recs.items[2])->count, 2);
    free_records(&recs);

    /* Reopening continues the sequence. */
    assert_ok(ibs_journal_open(&j, dir, KEY));
    append_json(j, "{\"event\":\"complete\"}");
    ibs_journal_close(j);
    assert_ok(ibs_journal_replay(&recs, dir, KEY, NULL));
    assert_int_equal(recs.count, 4);
    assert_int_equal(rec_int(recs.items[3], "seq"), 4);
    assert_string_equal(ibs_value_map_get_str(recs.items[3], "event"), "complete");
    free_records(&recs);
}

static void test_journal_torn_tail(void **state)
{
    static const char *const tails[] = {
        "{\"seq\":3,\"time\":\"2026-11-23T10:0", /* cut mid-line, no newline */
        "{\"seq\":3,\"ti\n",                     /* newline, but not JSON */
        "\n",                                    /* an empty last line */
    };
    char dir[512], path[1024];
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_journal *j = NULL;
    struct stat before, after;
    size_t torn = 0;
    (void)state;

    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        fresh_dir(dir, sizeof(dir), "journal-torn");
        journal_path(path, sizeof(path), dir, KEY);
        assert_ok(ibs_journal_open(&j, dir, KEY));
        append_json(j, "{\"n\":1}");
        append_json(j, "{\"n\":2}");
        ibs_journal_close(j);
        assert_int_equal(stat(path, &before), 0);
        append_file(path, tails[t]);

        assert_ok(ibs_journal_replay(&recs, dir, KEY, &torn));
        assert_int_equal(torn, 1);
        assert_int_equal(recs.count, 2);
        assert_int_equal(rec_int(recs.items[1], "n"), 2);
        free_records(&recs);

        /* Opening cuts the torn line off, so the next line starts clean. */
        assert_ok(ibs_journal_open(&j, dir, KEY));
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(after.st_size, before.st_size);
        append_json(j, "{\"n\":3}");
        ibs_journal_close(j);
        assert_ok(ibs_journal_replay(&recs, dir, KEY, &torn));
        assert_int_equal(torn, 0);
        assert_int_equal(recs.count, 3);
        assert_int_equal(rec_int(recs.items[2], "seq"), 3);
        assert_int_equal(rec_int(recs.items[2], "n"), 3);
        free_records(&recs);
    }
}

static void test_journal_corrupt_middle(void **state)
{
    char dir[512], path[1024], want[4096];
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_journal *j = NULL;
    void *sentinel = (void *)"kept";
    size_t torn = 7;
    (void)state;

    fresh_dir(dir, sizeof(dir), "journal-corrupt");
    journal_path(path, sizeof(path), dir, KEY);
    assert_ok(ibs_journal_open(&j, dir, KEY));
    append_json(j, "{\"n\":1}");
    ibs_journal_close(j);
    append_file(path, "{\"seq\":2,garbage}\n");
    assert_ok(ibs_journal_open(&j, dir, "other@key/x")); /* an unrelated journal is fine */
    ibs_journal_close(j);
    append_file(path, "{\"seq\":3,\"time\":\"x\",\"n\":3}\n");

    /* replay leaves `out` as it was (here: one item of the caller's). */
    assert_int_equal(ibs_vec_push(&recs, sentinel), 0);
    assert_int_equal(ibs_journal_replay(&recs, dir, KEY, &torn), IBS_EINVALID);
    snprintf(want, sizeof(want), "journal %s: line 2 is corrupt: ", path);
    assert_memory_equal(ibs_error_last()->message, want, strlen(want));
    assert_int_equal(recs.count, 1);
    assert_ptr_equal(recs.items[0], sentinel);
    ibs_vec_release(&recs);

    /* A valid JSON line that is not an object is corrupt too. */
    fresh_dir(dir, sizeof(dir), "journal-corrupt");
    journal_path(path, sizeof(path), dir, KEY);
    assert_ok(ibs_journal_open(&j, dir, KEY));
    append_json(j, "{\"n\":1}");
    append_json(j, "{\"n\":2}");
    ibs_journal_close(j);
    append_file(path, "[3]\n{\"seq\":4}\n");
    snprintf(want, sizeof(want), "journal %s: line 3 is corrupt: a list, not a JSON object", path);
    assert_fails(ibs_journal_replay(&recs, dir, KEY, NULL), IBS_EINVALID, want);
    assert_int_equal(recs.count, 0);
    ibs_vec_release(&recs);
    /* Open refuses to append after corruption. */
    assert_fails(ibs_journal_open(&j, dir, KEY), IBS_EINVALID, want);
    assert_null(j);
}

#define THREADS 8
#define PER_THREAD 200

struct writer {
    struct ibs_journal *j;
    int id;
    int failures;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct ibs_value *rec = ibs_value_new_map();
        if (!rec || ibs_value_map_set(rec, "thread", ibs_value_new_int(w->id)) ||
            ibs_value_map_set(rec, "i", ibs_value_new_int(i)) || ibs_journal_append(w->j, rec))
            w->failures++;
        ibs_value_free(rec);
    }
    return NULL;
}

static void test_journal_concurrent_appends(void **state)
{
    char dir[512];
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_journal *j = NULL;
    struct writer w[THREADS];
    pthread_t tid[THREADS];
    int next[THREADS] = {0};
    size_t torn = 9;
    (void)state;

    fresh_dir(dir, sizeof(dir), "journal-threads");
    assert_ok(ibs_journal_open(&j, dir, KEY));
    for (int t = 0; t < THREADS; t++) {
        w[t].j = j;
        w[t].id = t;
        w[t].failures = 0;
        assert_int_equal(pthread_create(&tid[t], NULL, writer_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(tid[t], NULL), 0);
        assert_int_equal(w[t].failures, 0);
    }
    ibs_journal_close(j);

    assert_ok(ibs_journal_replay(&recs, dir, KEY, &torn));
    assert_int_equal(torn, 0);
    assert_int_equal(recs.count, THREADS * PER_THREAD);
    for (size_t k = 0; k < recs.count; k++) {
        int64_t t = rec_int(recs.items[k], "thread");
        assert_int_equal(rec_int(recs.items[k], "seq"), (int64_t)k + 1);
        assert_true(t >= 0 && t < THREADS);
        /* Each thread's records appear once each, in the order it wrote them. */
        assert_int_equal(rec_int(recs.items[k], "i"), next[t]);
        next[t]++;
    }
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(next[t], PER_THREAD);
    free_records(&recs);
}

/* Archives of `name` in `adir`, oldest first, as the "round" of their record. */
static void archived_rounds(struct ibs_buf *out, const char *adir, const char *name)
{
    struct ibs_buf names = IBS_BUF_INIT;
    char path[2048];
    size_t nlen = strlen(name);

    list_dir(&names, adir);
    ibs_buf_clear(out);
    for (char *s = names.ptr, *e; s && *s; s = e ? e + 1 : NULL) {
        struct ibs_value *rec;
        char *text;
        e = strchr(s, ',');
        if (e)
            *e = '\0';
        /* NAME-<26-character stamp>.jsonl ("NAME-x-<stamp>" is another key's). */
        if (strncmp(s, name, nlen) != 0 || s[nlen] != '-' || strlen(s) != nlen + 1 + 26 + 6)
            continue;
        snprintf(path, sizeof(path), "%s/%s", adir, s);
        text = slurp(NULL, path);
        rec = parse(text);
        ibs_buf_printf(out, "%s%lld", out->size ? "," : "", (long long)rec_int(rec, "round"));
        ibs_value_free(rec);
        free(text);
    }
    ibs_buf_release(&names);
}

static void test_journal_archive_rotation(void **state)
{
    char dir[512], adir[1024], path[1024], msg[4096];
    struct ibs_buf rounds = IBS_BUF_INIT;
    struct ibs_buf want = IBS_BUF_INIT;
    struct ibs_vec recs = IBS_VEC_INIT;
    struct ibs_journal *j = NULL;
    char round[64];
    (void)state;

    fresh_dir(dir, sizeof(dir), "journal-archive");
    snprintf(adir, sizeof(adir), "%s/journal/archive", dir);
    /* A key whose file name extends ours: its archives must survive our pruning. */
    assert_ok(ibs_journal_open(&j, dir, "web@1/us-x"));
    for (int r = 0; r < 2; r++) {
        snprintf(round, sizeof(round), "{\"round\":%d}", 100 + r);
        append_json(j, round);
        assert_ok(ibs_journal_archive(j));
    }
    ibs_journal_close(j);

    assert_ok(ibs_journal_open(&j, dir, "web@1/us"));
    /* Archiving an empty journal archives nothing. */
    assert_ok(ibs_journal_archive(j));
    for (int r = 0; r < 23; r++) {
        snprintf(round, sizeof(round), "{\"round\":%d}", r);
        append_json(j, round);
        assert_ok(ibs_journal_archive(j));
    }
    ibs_journal_close(j);

    /* The journal is gone: a replay finds nothing to resume. */
    journal_path(path, sizeof(path), dir, "web@1/us");
    snprintf(msg, sizeof(msg), "no journal for \"web@1/us\" (%s)", path);
    assert_fails(ibs_journal_replay(&recs, dir, "web@1/us", NULL), IBS_ENOTFOUND, msg);

    archived_rounds(&rounds, adir, "web@1%2Fus");
    for (int r = 3; r < 23; r++)
        ibs_buf_printf(&want, "%s%d", want.size ? "," : "", r);
    assert_string_equal(rounds.ptr, want.ptr);
    archived_rounds(&rounds, adir, "web@1%2Fus-x");
    assert_string_equal(rounds.ptr, "100,101");
    ibs_buf_release(&rounds);
    ibs_buf_release(&want);
}

/* ---- plan files ---- */

static const char plan_json[] =
    "{\"stack\":\"golden-ami\",\"plan_id\":\"0123456789abcdef0123456789abcdef01234567\","
    "\"actions\":[{\"type\":\"create\",\"kind\":\"ImageRecipe\",\"name\":\"web\","
    "\"version\":\"1.0.0\",\"request\":{\"semanticVersion\":\"1.0.0\",\"components\":"
    "[{\"componentArn\":\"arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x\"}],"
    "\"description\":\"caf\\u00e9 \\\"quoted\\\"\\n\",\"size\":30,\"ratio\":0.5,"
    "\"enabled\":true,\"none\":null}}],\"region\":\"us-east-1\"}";

static void test_planfile_roundtrip(void **state)
{
    char dir[512], path[1024], path2[1024], digest[41];
    struct ibs_value *plan = parse(plan_json), *back = NULL, *reordered;
    const char *json_start, *trailer;
    char *text, *text2;
    size_t len, len2;
    (void)state;

    fresh_dir(dir, sizeof(dir), "plan");
    snprintf(path, sizeof(path), "%s/plan.bin", dir);
    assert_ok(ibs_planfile_write(path, plan));
    assert_ok(ibs_planfile_read(&back, path));
    assert_true(ibs_value_equal(plan, back));
    ibs_value_free(back);

    /* Layout: magic line, canonical JSON, checksum of exactly the JSON text. */
    text = slurp(&len, path);
    assert_memory_equal(text, "IBSYNC-PLAN 1\n{\n", 16);
    json_start = text + strlen("IBSYNC-PLAN 1\n");
    trailer = text + len - strlen("checksum ") - 41;
    assert_memory_equal(trailer, "checksum ", 9);
    assert_int_equal(trailer[-1], '\n');
    assert_ok(ibs_digest_hex(digest, json_start, (size_t)(trailer - 1 - json_start)));
    assert_memory_equal(trailer + 9, digest, 40);
    assert_int_equal(text[len - 1], '\n');
    /* Sorted keys: "actions" comes before "plan_id", "region" and "stack". */
    assert_true(strstr(text, "\"actions\"") < strstr(text, "\"plan_id\""));
    assert_true(strstr(text, "\"region\"") < strstr(text, "\"stack\""));

    /* Canonical: the same plan built in another member order gives the same bytes. */
    reordered = ibs_value_new_map();
    assert_non_null(reordered);
    for (size_t i = plan->count; i-- > 0;) {
        struct ibs_value *c = NULL;
        assert_ok(ibs_value_clone(&c, plan->u.members[i].value));
        assert_ok(ibs_value_map_set(reordered, plan->u.members[i].key, c));
    }
    snprintf(path2, sizeof(path2), "%s/plan2.bin", dir);
    assert_ok(ibs_planfile_write(path2, reordered));
    text2 = slurp(&len2, path2);
    assert_int_equal(len, len2);
    assert_memory_equal(text, text2, len);
    free(text2);
    free(text);
    ibs_value_free(reordered);
    ibs_value_free(plan);
}

/* The v1 fixture (tests/data/state/plan-v1.bin) stays readable, and its
 * checksum is what git computes for the JSON part. */
static void test_planfile_fixture(void **state)
{
    char path[1024], cmd[2400], line[128];
    struct ibs_value *plan = NULL, *want = parse(plan_json);
    FILE *p;
    (void)state;

    snprintf(path, sizeof(path), "%s/state/plan-v1.bin", IBS_TEST_DATA);
    assert_ok(ibs_planfile_read(&plan, path));
    assert_true(ibs_value_equal(plan, want));
    snprintf(cmd, sizeof(cmd),
             "sed -e 1d -e '$d' '%s' | head -c -1 | git hash-object --stdin && tail -n 1 '%s'",
             path, path);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(strlen(line), 40);
    {
        char trailer[128];
        assert_non_null(fgets(trailer, sizeof(trailer), p));
        trailer[strcspn(trailer, "\n")] = '\0';
        assert_memory_equal(trailer, "checksum ", 9);
        assert_string_equal(trailer + 9, line);
    }
    assert_int_equal(pclose(p), 0);
    ibs_value_free(plan);
    ibs_value_free(want);
}

static void read_fails(const char *path, int code, const char *message)
{
    struct ibs_value *v = (struct ibs_value *)&v;
    assert_int_equal(ibs_planfile_read(&v, path), code);
    assert_null(v);
    if (message)
        assert_string_equal(ibs_error_last()->message, message);
}

static void test_planfile_truncated(void **state)
{
    char dir[512], good[1024], path[1024], msg[4096];
    struct ibs_value *plan = parse(plan_json);
    char *text;
    size_t len;
    (void)state;

    fresh_dir(dir, sizeof(dir), "plan-trunc");
    snprintf(good, sizeof(good), "%s/good.bin", dir);
    snprintf(path, sizeof(path), "%s/plan.bin", dir);
    assert_ok(ibs_planfile_write(good, plan));
    text = slurp(&len, good);
    /* Every possible truncation is refused. */
    for (size_t cut = 0; cut < len; cut++) {
        write_file(path, text, cut);
        read_fails(path, IBS_EINVALID, NULL);
    }
    write_file(path, text, 5);
    snprintf(msg, sizeof(msg), "%s is not an ibsync plan", path);
    read_fails(path, IBS_EINVALID, msg);
    write_file(path, text, 13);
    snprintf(msg, sizeof(msg), "%s is corrupt: truncated in its first line", path);
    read_fails(path, IBS_EINVALID, msg);
    write_file(path, text, len - 1);
    snprintf(msg, sizeof(msg),
             "%s is corrupt: the checksum line is missing or damaged (truncated or edited file)",
             path);
    read_fails(path, IBS_EINVALID, msg);
    write_file(path, text, len - 50); /* the header and the JSON line, no checksum */
    read_fails(path, IBS_EINVALID, msg);
    free(text);
    ibs_value_free(plan);
}

static void test_planfile_bit_flips(void **state)
{
    char dir[512], good[1024], path[1024], mismatch[2048];
    struct ibs_value *plan = parse(plan_json);
    size_t len, json_start = strlen("IBSYNC-PLAN 1\n");
    char *text;
    (void)state;

    fresh_dir(dir, sizeof(dir), "plan-flip");
    snprintf(good, sizeof(good), "%s/good.bin", dir);
    snprintf(path, sizeof(path), "%s/plan.bin", dir);
    assert_ok(ibs_planfile_write(good, plan));
    text = slurp(&len, good);
    snprintf(mismatch, sizeof(mismatch), "%s is corrupt: checksum mismatch", path);
    /* One flipped bit anywhere, each position in turn: always refused; inside
     * the JSON, always by the checksum (most flips there are still valid JSON). */
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 3) {
            text[i] ^= (char)(1u << bit);
            write_file(path, text, len);
            text[i] ^= (char)(1u << bit);
            read_fails(path, IBS_EINVALID, i >= json_start && i < len - 51 ? mismatch : NULL);
        }
    }
    free(text);
    ibs_value_free(plan);
}

static void test_planfile_magic_and_version(void **state)
{
    char dir[512], good[1024], path[1024], msg[4096];
    struct ibs_value *plan = parse(plan_json);
    struct ibs_buf edited = IBS_BUF_INIT;
    char *text;
    size_t len;
    (void)state;

    fresh_dir(dir, sizeof(dir), "plan-magic");
    snprintf(good, sizeof(good), "%s/good.bin", dir);
    snprintf(path, sizeof(path), "%s/plan.bin", dir);
    assert_ok(ibs_planfile_write(good, plan));
    text = slurp(&len, good);

    snprintf(msg, sizeof(msg), "%s is not an ibsync plan", path);
    write_file(path, "", 0);
    read_fails(path, IBS_EINVALID, msg);
    write_file(path, plan_json, strlen(plan_json));
    read_fails(path, IBS_EINVALID, msg);
    memcpy(text, "IBSYNC-PLAM", 11);
    write_file(path, text, len);
    read_fails(path, IBS_EINVALID, msg);
    memcpy(text, "IBSYNC-PLAN", 11);
    ibs_buf_printf(&edited, "IBSYNC-PLAN 01\n%s", text + 14);
    write_file(path, edited.ptr, edited.size);
    read_fails(path, IBS_EINVALID, msg);

    /* Another format: refused before anything else is looked at. */
    ibs_buf_clear(&edited);
    ibs_buf_printf(&edited, "IBSYNC-PLAN 2\n%s", text + 14);
    write_file(path, edited.ptr, edited.size);
    snprintf(msg, sizeof(msg), "%s was written by plan format 2; this ibsync reads format 1", path);
    read_fails(path, IBS_EINVALID, msg);
    write_file(path, "IBSYNC-PLAN 17\nwhatever layout", 30);
    snprintf(msg, sizeof(msg), "%s was written by plan format 17; this ibsync reads format 1",
             path);
    read_fails(path, IBS_EINVALID, msg);

    snprintf(path, sizeof(path), "%s/missing.bin", dir);
    snprintf(msg, sizeof(msg), "cannot open %s: No such file or directory", path);
    read_fails(path, IBS_ENOTFOUND, msg);
    /* Writing into a missing directory fails and creates nothing. */
    snprintf(path, sizeof(path), "%s/no/such/plan.bin", dir);
    assert_int_equal(ibs_planfile_write(path, plan), IBS_ENOTFOUND);
    ibs_buf_release(&edited);
    free(text);
    ibs_value_free(plan);
}

/* ---- cache ---- */

static void cache_file(char *out, size_t n, const char *dir, const char *name)
{
    char *fname = NULL;
    assert_ok(ibs_fs_key_to_name(&fname, name));
    snprintf(out, n, "%s/cache/%s.json", dir, fname);
    free(fname);
}

static void assert_cached(const struct ibs_cache *c, const char *key, const char *json)
{
    const struct ibs_value *got = (const struct ibs_value *)&got;
    assert_ok(ibs_cache_get(&got, c, key));
    if (!json) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    {
        struct ibs_value *want = parse(json);
        assert_true(ibs_value_equal(got, want));
        ibs_value_free(want);
    }
}

static void test_cache_roundtrip(void **state)
{
    char dir[512], path[1024];
    struct ibs_cache *c = NULL;
    struct stat st1, st2;
    char *text;
    (void)state;

    fresh_dir(dir, sizeof(dir), "cache");
    cache_file(path, sizeof(path), dir, "components:us-east-1");
    assert_ok(ibs_cache_open(&c, dir, "components:us-east-1"));
    assert_null(ibs_cache_warning(c));
    assert_int_equal(ibs_cache_count(c), 0);
    assert_cached(c, "missing", NULL);
    /* Nothing changed: saving writes nothing. */
    assert_ok(ibs_cache_save(c));
    assert_int_equal(stat(path, &st1), -1);

    assert_ok(ibs_cache_put(c, "arn:b/1.0.0/1", parse("{\"platform\":\"Linux\",\"n\":1}")));
    assert_ok(ibs_cache_put(c, "arn:a/1.0.0/1", parse("[1,2.5,\"x\"]")));
    assert_ok(ibs_cache_put(c, "arn:c/1.0.0/1", parse("\"old\"")));
    assert_ok(ibs_cache_put(c, "arn:c/1.0.0/1", parse("\"new\"")));
    assert_int_equal(ibs_cache_count(c), 3);
    assert_cached(c, "arn:c/1.0.0/1", "\"new\"");
    assert_ok(ibs_cache_save(c));
    ibs_cache_free(c);
    ibs_cache_free(NULL);

    /* Sorted, one entry per line, with the format version. */
    text = slurp(NULL, path);
    assert_string_equal(text, "{\"format\":1,\"name\":\"components:us-east-1\",\"entries\":{\n"
                              "\"arn:a/1.0.0/1\":[1,2.5,\"x\"],\n"
                              "\"arn:b/1.0.0/1\":{\"n\":1,\"platform\":\"Linux\"},\n"
                              "\"arn:c/1.0.0/1\":\"new\"\n"
                              "}}\n");
    free(text);

    assert_ok(ibs_cache_open(&c, dir, "components:us-east-1"));
    assert_null(ibs_cache_warning(c));
    assert_int_equal(ibs_cache_count(c), 3);
    assert_cached(c, "arn:a/1.0.0/1", "[1,2.5,\"x\"]");
    assert_cached(c, "arn:b/1.0.0/1", "{\"n\":1,\"platform\":\"Linux\"}");
    /* Putting an equal value is not a change: the file is not rewritten. */
    assert_int_equal(stat(path, &st1), 0);
    assert_ok(ibs_cache_put(c, "arn:c/1.0.0/1", parse("\"new\"")));
    assert_ok(ibs_cache_save(c));
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    /* Removal. */
    assert_true(ibs_cache_remove(c, "arn:b/1.0.0/1"));
    assert_false(ibs_cache_remove(c, "arn:b/1.0.0/1"));
    assert_cached(c, "arn:b/1.0.0/1", NULL);
    assert_ok(ibs_cache_save(c));
    ibs_cache_free(c);
    assert_ok(ibs_cache_open(&c, dir, "components:us-east-1"));
    assert_int_equal(ibs_cache_count(c), 2);
    assert_cached(c, "arn:b/1.0.0/1", NULL);
    assert_cached(c, "arn:a/1.0.0/1", "[1,2.5,\"x\"]");
    ibs_cache_free(c);

    assert_fails(ibs_cache_open(&c, dir, ""), IBS_EINVALID, "empty state key");
    assert_null(c);
}

static void assert_discarded(const char *dir, const char *content, const char *want_why)
{
    char path[1024], want[2048];
    struct ibs_cache *c = NULL;
    const char *w;

    cache_file(path, sizeof(path), dir, "images");
    write_file(path, content, strlen(content));
    assert_ok(ibs_cache_open(&c, dir, "images"));
    assert_int_equal(ibs_cache_count(c), 0);
    w = ibs_cache_warning(c);
    assert_non_null(w);
    snprintf(want, sizeof(want), "cache %s %s; starting with an empty cache", path, want_why);
    if (want_why[strlen(want_why) - 1] == '*') {
        /* Only the start is fixed (the JSON parser's message follows). */
        size_t n = strlen("cache ") + strlen(path) + strlen(want_why);
        assert_memory_equal(w, want, n);
        assert_non_null(strstr(w, "; starting with an empty cache"));
    } else {
        assert_string_equal(w, want);
    }
    ibs_cache_free(c);
}

static void test_cache_unusable_files(void **state)
{
    char dir[512], path[1024];
    struct ibs_cache *c = NULL;
    (void)state;

    fresh_dir(dir, sizeof(dir), "cache-bad");
    assert_int_equal(mkdir(strcat(strcpy(path, dir), "/cache"), 0755), 0);
    assert_discarded(dir, "{\"format\":1,\"entries\":{\"a\":1,", "is corrupt (invalid JSON*");
    assert_discarded(dir, "", "is corrupt (invalid JSON*");
    assert_discarded(dir, "{\"format\":2,\"entries\":{\"a\":1}}",
                     "has format 2, this ibsync uses format 1");
    assert_discarded(dir, "{\"entries\":{\"a\":1}}", "is corrupt (no format version)");
    assert_discarded(dir, "[1,2]", "is corrupt (no format version)");
    assert_discarded(dir, "{\"format\":1,\"entries\":[]}", "is corrupt (\"entries\" is not a map)");

    /* A discarded cache still works, and saving replaces the bad file. */
    assert_ok(ibs_cache_open(&c, dir, "images"));
    assert_non_null(ibs_cache_warning(c));
    assert_ok(ibs_cache_put(c, "k", ibs_value_new_int(5)));
    assert_ok(ibs_cache_save(c));
    ibs_cache_free(c);
    assert_ok(ibs_cache_open(&c, dir, "images"));
    assert_null(ibs_cache_warning(c));
    assert_cached(c, "k", "5");
    ibs_cache_free(c);

    /* A directory where the file should be: empty cache, and save reports it. */
    cache_file(path, sizeof(path), dir, "dir");
    assert_int_equal(mkdir(path, 0755), 0);
    assert_ok(ibs_cache_open(&c, dir, "dir"));
    assert_non_null(strstr(ibs_cache_warning(c), "is not a regular file"));
    assert_ok(ibs_cache_put(c, "k", ibs_value_new_int(5)));
    assert_int_equal(ibs_cache_save(c), IBS_EIO);
    ibs_cache_free(c);
}

#define MANY 20000

static void test_cache_many_entries(void **state)
{
    char dir[512], key[64];
    struct ibs_cache *c = NULL;
    const struct ibs_value *v;
    long start, elapsed;
    (void)state;

    fresh_dir(dir, sizeof(dir), "cache-many");
    assert_ok(ibs_cache_open(&c, dir, "versions"));
    start = now_ms();
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "arn:aws:imagebuilder:us-east-1:1:image/x/%d.0.0/1", i);
        assert_ok(ibs_cache_put(c, key, ibs_value_new_int(i)));
    }
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < MANY; i++) {
            snprintf(key, sizeof(key), "arn:aws:imagebuilder:us-east-1:1:image/x/%d.0.0/1", i);
            assert_ok(ibs_cache_get(&v, c, key));
            if (!v || v->num.i != i)
                fail_msg("entry %d lost", i);
        }
    /* Remove every third entry (exercises deletion inside probe runs). */
    for (int i = 0; i < MANY; i += 3) {
        snprintf(key, sizeof(key), "arn:aws:imagebuilder:us-east-1:1:image/x/%d.0.0/1", i);
        assert_true(ibs_cache_remove(c, key));
    }
    elapsed = now_ms() - start;
    /* 20,000 puts and 100,000 gets: linear lookups would take far longer. */
    assert_true(elapsed < 1500);
    assert_int_equal(ibs_cache_count(c), MANY - (MANY + 2) / 3);
    assert_ok(ibs_cache_save(c));
    ibs_cache_free(c);

    assert_ok(ibs_cache_open(&c, dir, "versions"));
    assert_null(ibs_cache_warning(c));
    assert_int_equal(ibs_cache_count(c), MANY - (MANY + 2) / 3);
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "arn:aws:imagebuilder:us-east-1:1:image/x/%d.0.0/1", i);
        assert_ok(ibs_cache_get(&v, c, key));
        if (i % 3 == 0 ? v != NULL : (!v || v->num.i != i))
            fail_msg("entry %d wrong after reload", i);
    }
    ibs_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdirs),
        cmocka_unit_test(test_write_atomic_replaces),
        cmocka_unit_test(test_write_atomic_failure_keeps_old),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_key_to_name),
        cmocka_unit_test(test_digest_known_values),
        cmocka_unit_test(test_lock_acquire_release),
        cmocka_unit_test(test_lock_held_by_child_then_killed),
        cmocka_unit_test(test_lock_wait),
        cmocka_unit_test(test_journal_append_replay),
        cmocka_unit_test(test_journal_torn_tail),
        cmocka_unit_test(test_journal_corrupt_middle),
        cmocka_unit_test(test_journal_concurrent_appends),
        cmocka_unit_test(test_journal_archive_rotation),
        cmocka_unit_test(test_planfile_roundtrip),
        cmocka_unit_test(test_planfile_fixture),
        cmocka_unit_test(test_planfile_truncated),
        cmocka_unit_test(test_planfile_bit_flips),
        cmocka_unit_test(test_planfile_magic_and_version),
        cmocka_unit_test(test_cache_roundtrip),
        cmocka_unit_test(test_cache_unusable_files),
        cmocka_unit_test(test_cache_many_entries),
    };
    return cmocka_run_group_tests(tests, setup_root, teardown_root);
}
