/*
 * State locks; see lock.h.
 *
 * The lock file is never deleted: unlinking a flock'd file lets a process
 * that opened the old inode and one that creates a new inode both "hold" the
 * lock. Instead the holder truncates and rewrites the file's content, a
 * one-line JSON object {"key","pid","host","user","since","description"}, and
 * empties it again when it releases the lock.
 *
 * A contender can run between the holder's flock() and its write, and then
 * reads an empty or partial file; it re-reads for a short while before
 * reporting the holder as unknown.
 */
#include "state/lock.h"

#include "state/fsutil.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IBS_LOCK_DIR "locks"
#define IBS_LOCK_FILE_MAX (64 * 1024)
#define IBS_LOCK_POLL_MS 20L     /* interval between attempts while waiting */
#define IBS_LOCK_HOLDER_TRIES 25 /* re-reads of a holder that is still writing */
#define IBS_LOCK_HOLDER_PAUSE_MS 4L

struct ibs_lock {
    int fd;
    char *path;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void user_name(char *out, size_t n)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
        snprintf(out, n, "%s", res->pw_name);
    else
        snprintf(out, n, "uid %ld", (long)geteuid());
}

/* The content a holder writes into its lock file. */
static int holder_record(struct ibs_buf *out, const char *key, const char *description)
{
    struct ibs_value *rec = ibs_value_new_map();
    char host[256] = "";
    char user[256];
    char since[32];
    time_t t = time(NULL);
    struct tm tm;
    int rc = 0;

    if (!rec)
        return IBS_ENOMEM;
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    user_name(user, sizeof(user));
    if (!gmtime_r(&t, &tm) || !strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(since, sizeof(since), "unknown");
    if ((rc = ibs_value_map_set(rec, "key", ibs_value_new_string(key))) ||
        (rc = ibs_value_map_set(rec, "pid", ibs_value_new_int((int64_t)getpid()))) ||
        (rc = ibs_value_map_set(rec, "host", ibs_value_new_string(host))) ||
        (rc = ibs_value_map_set(rec, "user", ibs_value_new_string(user))) ||
        (rc = ibs_value_map_set(rec, "since", ibs_value_new_string(since))) ||
        (rc = ibs_value_map_set(rec, "description",
                                ibs_value_new_string(description ? description : "ibsync"))))
        goto done;
    /* map_set takes a NULL item (failed constructor) without complaint. */
    for (size_t i = 0; i < rec->count; i++)
        if (!rec->u.members[i].value) {
            rc = ibs_error_oom();
            goto done;
        }
    if ((rc = ibs_json_write(out, rec, 0)) || (rc = ibs_buf_putc(out, '\n')))
        goto done;
done:
    ibs_value_free(rec);
    return rc;
}

static int write_holder(int fd, const char *path, const char *key, const char *description)
{
    struct ibs_buf b = IBS_BUF_INIT;
    size_t off = 0;
    int rc;

    if ((rc = holder_record(&b, key, description)))
        goto done;
    if (ftruncate(fd, 0) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot write lock file %s: %s", path, strerror(errno));
        goto done;
    }
    while (off < b.size) {
        ssize_t n = pwrite(fd, b.ptr + off, b.size - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ibs_error_set(IBS_EIO, "cannot write lock file %s: %s", path, strerror(errno));
            goto done;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0)
        rc = ibs_error_set(IBS_EIO, "cannot sync lock file %s: %s", path, strerror(errno));
done:
    ibs_buf_release(&b);
    return rc;
}

/* "stack "NAME" (SCOPE)" for STACK@SCOPE keys, else "lock "KEY"". */
static void describe_key(struct ibs_buf *out, const char *key)
{
    const char *at = strchr(key, '@');

    if (at && at != key && at[1])
        ibs_buf_printf(out, "stack \"%.*s\" (%s)", (int)(at - key), key, at + 1);
    else
        ibs_buf_printf(out, "lock \"%s\"", key);
}

/* Reads the holder record; false while it is missing or partly written. */
static bool read_holder(struct ibs_value **out, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    bool ok = false;

    *out = NULL;
    if (ibs_fs_read_file(&text, &len, path, IBS_LOCK_FILE_MAX) == 0 && len &&
        text[len - 1] == '\n' && ibs_json_parse(out, text, len) == 0) {
        ok = (*out)->type == IBS_VALUE_MAP;
        if (!ok) {
            ibs_value_free(*out);
            *out = NULL;
        }
    }
    free(text);
    return ok;
}

/* Sets IBS_ELOCKED with a message naming whoever holds the lock at `path`. */
static int busy_error(const char *path, const char *key)
{
    struct ibs_buf what = IBS_BUF_INIT;
    struct ibs_value *holder = NULL;
    const struct ibs_value *pid;
    int rc;

    for (int i = 0; i < IBS_LOCK_HOLDER_TRIES && !read_holder(&holder, path); i++)
        sleep_ms(IBS_LOCK_HOLDER_PAUSE_MS);
    describe_key(&what, key);
    if ((rc = ibs_buf_oom(&what)))
        goto done;
    pid = ibs_value_map_get(holder, "pid");
    if (holder && pid && pid->type == IBS_VALUE_INT) {
        const char *host = ibs_value_map_get_str(holder, "host");
        const char *since = ibs_value_map_get_str(holder, "since");
        const char *desc = ibs_value_map_get_str(holder, "description");
        rc = ibs_error_set(IBS_ELOCKED, "%s is locked by pid %lld on host %s since %s (%s)",
                           what.ptr, (long long)pid->num.i, host ? host : "unknown",
                           since ? since : "an unknown time", desc ? desc : "no description");
    } else {
        rc = ibs_error_set(IBS_ELOCKED, "%s is locked by another process (holder unknown; see %s)",
                           what.ptr, path);
    }
done:
    ibs_value_free(holder);
    ibs_buf_release(&what);
    return rc;
}

int ibs_lock_acquire(struct ibs_lock **out, const char *state_dir, const char *key,
                     const char *holder_description, long wait_ms)
{
    struct ibs_buf dir = IBS_BUF_INIT;
    struct ibs_buf path = IBS_BUF_INIT;
    struct ibs_lock *lock = NULL;
    char *name = NULL;
    long deadline = now_ms() + (wait_ms > 0 ? wait_ms : 0);
    long left;
    int rc;

    *out = NULL;
    if ((rc = ibs_fs_key_to_name(&name, key)))
        goto done;
    ibs_buf_printf(&dir, "%s/%s", state_dir, IBS_LOCK_DIR);
    ibs_buf_printf(&path, "%s/%s.lock", dir.ptr, name);
    if ((rc = ibs_buf_oom(&dir)) || (rc = ibs_buf_oom(&path)))
        goto done;
    if ((rc = ibs_fs_mkdirs(dir.ptr, 0755)))
        goto done;
    if (!(lock = calloc(1, sizeof(*lock)))) {
        rc = ibs_error_oom();
        goto done;
    }
    lock->fd = open(path.ptr, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (lock->fd < 0) {
        rc = ibs_error_set(IBS_EIO, "cannot open lock file %s: %s", path.ptr, strerror(errno));
        goto done;
    }
    for (;;) {
        if (flock(lock->fd, LOCK_EX | LOCK_NB) == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            rc = ibs_error_set(IBS_EIO, "cannot lock %s: %s", path.ptr, strerror(errno));
            goto done;
        }
        if (now_ms() >= deadline) {
            rc = busy_error(path.ptr, key);
            goto done;
        }
        left = deadline - now_ms();
        sleep_ms(left < 1 ? 1 : left < IBS_LOCK_POLL_MS ? left : IBS_LOCK_POLL_MS);
    }
    if ((rc = write_holder(lock->fd, path.ptr, key, holder_description)))
        goto done;
    lock->path = ibs_buf_detach(&path);
    if (!lock->path) {
        rc = IBS_ENOMEM;
        goto done;
    }
    *out = lock;
    lock = NULL;
done:
    /* Closing the descriptor also drops a lock taken before a later failure. */
    if (lock && lock->fd >= 0)
        close(lock->fd);
    free(lock);
    free(name);
    ibs_buf_release(&path);
    ibs_buf_release(&dir);
    return rc;
}

void ibs_lock_release(struct ibs_lock *lock)
{
    int ignored;

    if (!lock)
        return;

    /* Empty the holder record while still holding the lock, so the file does
     * not name a process that no longer holds it. A failure is harmless: the
     * record is only read while the lock is held, and the next holder
     * rewrites it. */
    ignored = ftruncate(lock->fd, 0);
    (void)ignored;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    free(lock->path);
    free(lock);
}
