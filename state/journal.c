/*
 * Apply journal; see journal.h.
 *
 * Durability: a line is written with one write(2) on an O_APPEND descriptor
 * and fdatasync'd while the journal's mutex is held, so when an append
 * returns, its line and every line before it are on disk. Holding the mutex
 * across the sync serialises appends; they come a few per action, and an
 * action is an API call that takes far longer than a sync.
 *
 * A crash can leave a partial last line (or, after power loss on some file
 * systems, a tail of NUL bytes). Replay skips it; open truncates the file to
 * the end of the last good line, so that new lines do not follow garbage.
 * A failed write is cut off the same way at once; a failed fdatasync leaves
 * the journal unusable, because after it the kernel no longer says which
 * data reached the disk.
 */
#include "state/journal.h"

#include "state/fsutil.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IBS_JOURNAL_DIR "journal"
#define IBS_JOURNAL_ARCHIVE_DIR "archive"
#define IBS_JOURNAL_EXT ".jsonl"
#define IBS_JOURNAL_MAX ((size_t)256 * 1024 * 1024)
/* "20261123T100000.123456789Z": the archive time stamp, which sorts by time. */
#define IBS_JOURNAL_STAMP_LEN 26

struct ibs_journal {
    pthread_mutex_t mu; /* guards everything below */
    char *dir;          /* DIR/journal */
    char *name;         /* the key as a file name */
    char *path;         /* DIR/journal/<name>.jsonl */
    int fd;             /* -1 until the first append after open or archive */
    off_t size;         /* bytes in the file: where the next line starts */
    uint64_t next_seq;
    bool failed; /* a sync failed: refuse further appends */
};

/* What a scan of the journal text found. */
struct scan {
    size_t good_end; /* offset just past the last complete line */
    size_t torn;     /* 1 when a torn last line was skipped */
    uint64_t max_seq;
};

static int journal_paths(struct ibs_buf *dir, char **out_name, struct ibs_buf *path,
                         const char *state_dir, const char *key)
{
    int rc;

    *out_name = NULL;
    if ((rc = ibs_fs_key_to_name(out_name, key)))
        return rc;
    ibs_buf_printf(dir, "%s/%s", state_dir, IBS_JOURNAL_DIR);
    ibs_buf_printf(path, "%s/%s%s", dir->ptr, *out_name, IBS_JOURNAL_EXT);
    if ((rc = ibs_buf_oom(dir)) || (rc = ibs_buf_oom(path))) {
        free(*out_name);
        *out_name = NULL;
    }
    return rc;
}

/*
 * Splits `text` into lines and parses each. Records go to `records` when it
 * is not NULL. A last line without newline, or one that is not a JSON object,
 * is the torn tail; a bad line anywhere else is IBS_EINVALID.
 */
static int scan_text(struct scan *out, struct ibs_vec *records, const char *text, size_t len,
                     const char *path)
{
    struct ibs_value *rec = NULL;
    size_t start = 0;
    unsigned line = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        const struct ibs_value *seq;

        line++;
        if (!nl) {
            out->torn = 1;
            break;
        }
        rc = ibs_json_parse(&rec, text + start, end - start);
        if (rc == 0 && rec->type != IBS_VALUE_MAP)
            rc = ibs_error_set(IBS_EINVALID, "a %s, not a JSON object",
                               ibs_value_type_name(rec->type));
        if (rc) {
            if (rc == IBS_EINVALID && end + 1 == len) {
                out->torn = 1;
                ibs_error_clear();
                rc = 0;
                break;
            }
            if (rc == IBS_EINVALID)
                ibs_error_prefix("journal %s: line %u is corrupt", path, line);
            goto done;
        }
        seq = ibs_value_map_get(rec, "seq");
        if (seq && seq->type == IBS_VALUE_INT && seq->num.i > 0 &&
            (uint64_t)seq->num.i > out->max_seq)
            out->max_seq = (uint64_t)seq->num.i;
        if (records) {
            if ((rc = ibs_vec_push(records, rec)))
                goto done;
        } else {
            ibs_value_free(rec);
        }
        rec = NULL;
        start = end + 1;
        out->good_end = start;
    }
done:
    ibs_value_free(rec);
    return rc;
}

int ibs_journal_replay(struct ibs_vec *out, const char *state_dir, const char *key,
                       size_t *out_torn)
{
    struct ibs_buf dir = IBS_BUF_INIT;
    struct ibs_buf path = IBS_BUF_INIT;
    size_t old_count = out->count;
    struct scan scan;
    char *name = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (out_torn)
        *out_torn = 0;
    if ((rc = journal_paths(&dir, &name, &path, state_dir, key)))
        goto done;
    rc = ibs_fs_read_file(&text, &len, path.ptr, IBS_JOURNAL_MAX);
    if (rc == IBS_ENOTFOUND) {
        rc = ibs_error_set(IBS_ENOTFOUND, "no journal for \"%s\" (%s)", key, path.ptr);
        goto done;
    }
    if (rc)
        goto done;
    if ((rc = scan_text(&scan, out, text, len, path.ptr)))
        goto done;
    if (out_torn)
        *out_torn = scan.torn;
done:
    if (rc) {
        while (out->count > old_count)
            ibs_value_free(ibs_vec_pop(out));
    }
    free(text);
    free(name);
    ibs_buf_release(&path);
    ibs_buf_release(&dir);
    return rc;
}

/* Reads an existing journal, cuts off a torn tail and sets size/next_seq. */
static int journal_recover(struct ibs_journal *j)
{
    struct scan scan;
    char *text = NULL;
    size_t len = 0;
    int fd = -1;
    int rc;

    j->size = 0;
    j->next_seq = 1;
    rc = ibs_fs_read_file(&text, &len, j->path, IBS_JOURNAL_MAX);
    if (rc == IBS_ENOTFOUND) {
        ibs_error_clear();
        rc = 0;
        goto done;
    }
    if (rc || (rc = scan_text(&scan, NULL, text, len, j->path)))
        goto done;
    if (scan.good_end < len) {
        fd = open(j->path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)scan.good_end) != 0 || fsync(fd) != 0) {
            rc = ibs_error_set(IBS_EIO, "cannot cut the torn last line off %s: %s", j->path,
                               strerror(errno));
            goto done;
        }
    }
    j->size = (off_t)scan.good_end;
    j->next_seq = scan.max_seq + 1;
done:
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

int ibs_journal_open(struct ibs_journal **out, const char *state_dir, const char *key)
{
    struct ibs_buf dir = IBS_BUF_INIT;
    struct ibs_buf path = IBS_BUF_INIT;
    struct ibs_journal *j = NULL;
    bool mutex_ready = false;
    int rc;

    *out = NULL;
    if (!(j = calloc(1, sizeof(*j)))) {
        rc = ibs_error_oom();
        goto done;
    }
    j->fd = -1;
    if (pthread_mutex_init(&j->mu, NULL) != 0) {
        rc = ibs_error_set(IBS_ERROR, "cannot create the journal mutex");
        goto done;
    }
    mutex_ready = true;
    if ((rc = journal_paths(&dir, &j->name, &path, state_dir, key)))
        goto done;
    if ((rc = ibs_fs_mkdirs(dir.ptr, 0755)))
        goto done;
    j->dir = ibs_buf_detach(&dir);
    j->path = ibs_buf_detach(&path);
    if (!j->dir || !j->path) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = journal_recover(j)))
        goto done;
    *out = j;
    j = NULL;
done:
    if (j) {
        if (mutex_ready)
            pthread_mutex_destroy(&j->mu);
        free(j->dir);
        free(j->name);
        free(j->path);
        free(j);
    }
    ibs_buf_release(&path);
    ibs_buf_release(&dir);
    return rc;
}

/* Opens the file for appending; the caller holds the mutex. */
static int open_for_append(struct ibs_journal *j)
{
    struct stat st;
    bool existed = stat(j->path, &st) == 0;

    j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (j->fd < 0)
        return ibs_error_set(IBS_EIO, "cannot open journal %s: %s", j->path, strerror(errno));
    if (fstat(j->fd, &st) != 0) {
        int rc = ibs_error_set(IBS_EIO, "cannot stat journal %s: %s", j->path, strerror(errno));
        close(j->fd);
        j->fd = -1;
        return rc;
    }
    j->size = st.st_size;
    /* Make a new file's name durable before anything relies on it. */
    return existed ? 0 : ibs_fs_sync_dir(j->dir);
}

static void utc_now(char *out, size_t n, bool compact)
{
    struct timespec ts;
    struct tm tm;
    char sec[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm) ||
        !strftime(sec, sizeof(sec), compact ? "%Y%m%dT%H%M%S" : "%Y-%m-%dT%H:%M:%S", &tm))
        snprintf(sec, sizeof(sec), compact ? "19700101T000000" : "1970-01-01T00:00:00");
    if (compact)
        snprintf(out, n, "%s.%09ldZ", sec, (long)ts.tv_nsec);
    else
        snprintf(out, n, "%s.%03ldZ", sec, (long)ts.tv_nsec / 1000000L);
}

int ibs_journal_append(struct ibs_journal *j, const struct ibs_value *record)
{
    struct ibs_buf body = IBS_BUF_INIT;
    struct ibs_buf line = IBS_BUF_INIT;
    char now[64];
    bool locked = false;
    ssize_t n;
    int rc;

    if (!record || record->type != IBS_VALUE_MAP) {
        rc = ibs_error_set(IBS_EINVALID, "a journal record must be a map, not a %s",
                           record ? ibs_value_type_name(record->type) : "null");
        goto done;
    }
    if (ibs_value_map_get(record, "seq") || ibs_value_map_get(record, "time")) {
        rc = ibs_error_set(IBS_EINVALID, "a journal record cannot set \"seq\" or \"time\"");
        goto done;
    }
    /* Compact JSON has no newline: strings escape theirs. */
    if ((rc = ibs_json_write(&body, record, 0)))
        goto done;
    pthread_mutex_lock(&j->mu);
    locked = true;
    if (j->failed) {
        rc = ibs_error_set(IBS_EIO, "journal %s is unusable after an earlier failure", j->path);
        goto done;
    }
    if (j->fd < 0 && (rc = open_for_append(j)))
        goto done;
    utc_now(now, sizeof(now), false);
    /* body is "{...}": put seq and time in front of its members. */
    ibs_buf_printf(&line, "{\"seq\":%" PRIu64 ",\"time\":\"%s\"%s%s\n", j->next_seq, now,
                   body.size > 2 ? "," : "", body.ptr + 1);
    if ((rc = ibs_buf_oom(&line)))
        goto done;
    do
        n = write(j->fd, line.ptr, line.size);
    while (n < 0 && errno == EINTR);
    if (n < 0 || (size_t)n != line.size) {
        int err = n < 0 ? errno : ENOSPC;
        /* Remove a partial line so that the next one does not continue it. */
        if (n > 0 && ftruncate(j->fd, j->size) != 0)
            j->failed = true;
        rc = ibs_error_set(IBS_EIO, "cannot write journal %s: %s", j->path, strerror(err));
        goto done;
    }
    if (fdatasync(j->fd) != 0) {
        j->failed = true;
        rc = ibs_error_set(IBS_EIO, "cannot sync journal %s: %s", j->path, strerror(errno));
        goto done;
    }
    j->size += (off_t)line.size;
    j->next_seq++;
done:
    if (locked)
        pthread_mutex_unlock(&j->mu);
    ibs_buf_release(&line);
    ibs_buf_release(&body);
    return rc;
}

/* Whether `file` is "<name>-<stamp>.jsonl", an archive of this journal. */
static bool is_archive_of(const char *file, const char *name)
{
    size_t nlen = strlen(name);
    const char *s;
    static const char pattern[] = "DDDDDDDDTDDDDDD.DDDDDDDDDZ";

    if (strncmp(file, name, nlen) != 0 || file[nlen] != '-')
        return false;
    s = file + nlen + 1;
    for (size_t i = 0; i < IBS_JOURNAL_STAMP_LEN; i++) {
        if (pattern[i] == 'D' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
            return false;
    }
    return strcmp(s + IBS_JOURNAL_STAMP_LEN, IBS_JOURNAL_EXT) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes all but the newest IBS_JOURNAL_ARCHIVE_KEEP archives of j. */
static int prune_archives(struct ibs_journal *j, const char *archive_dir)
{
    struct ibs_vec names = IBS_VEC_INIT;
    struct ibs_buf victim = IBS_BUF_INIT;
    struct dirent *de;
    DIR *d = opendir(archive_dir);
    int rc = 0;

    if (!d)
        return ibs_error_set(IBS_EIO, "cannot list %s: %s", archive_dir, strerror(errno));
    while ((de = readdir(d))) {
        char *copy;
        if (!is_archive_of(de->d_name, j->name))
            continue;
        if (!(copy = strdup(de->d_name))) {
            rc = ibs_error_oom();
            goto done;
        }
        if ((rc = ibs_vec_push(&names, copy))) {
            free(copy);
            goto done;
        }
    }
    if (names.count <= IBS_JOURNAL_ARCHIVE_KEEP)
        goto done;
    /* Fixed-width UTC stamps: name order is time order. */
    ibs_vec_sort(&names, cmp_names);
    for (size_t i = 0; i + IBS_JOURNAL_ARCHIVE_KEEP < names.count; i++) {
        ibs_buf_clear(&victim);
        ibs_buf_printf(&victim, "%s/%s", archive_dir, (const char *)names.items[i]);
        if ((rc = ibs_buf_oom(&victim)))
            goto done;
        if (unlink(victim.ptr) != 0 && errno != ENOENT) {
            rc = ibs_error_set(IBS_EIO, "cannot remove old journal %s: %s", victim.ptr,
                               strerror(errno));
            goto done;
        }
    }
    rc = ibs_fs_sync_dir(archive_dir);
done:
    closedir(d);
    ibs_buf_release(&victim);
    ibs_vec_release_with(&names, free);
    return rc;
}

int ibs_journal_archive(struct ibs_journal *j)
{
    struct ibs_buf adir = IBS_BUF_INIT;
    struct ibs_buf dest = IBS_BUF_INIT;
    struct stat st;
    char stamp[64];
    int rc = 0;

    pthread_mutex_lock(&j->mu);
    if (j->fd >= 0) {
        close(j->fd);
        j->fd = -1;
    }
    if (stat(j->path, &st) != 0) {
        if (errno != ENOENT)
            rc = ibs_error_set(IBS_EIO, "cannot stat %s: %s", j->path, strerror(errno));
        goto done;
    }
    if (st.st_size == 0) {
        if (unlink(j->path) != 0)
            rc = ibs_error_set(IBS_EIO, "cannot remove %s: %s", j->path, strerror(errno));
        else
            rc = ibs_fs_sync_dir(j->dir);
        goto done;
    }
    ibs_buf_printf(&adir, "%s/%s", j->dir, IBS_JOURNAL_ARCHIVE_DIR);
    if ((rc = ibs_buf_oom(&adir)) || (rc = ibs_fs_mkdirs(adir.ptr, 0755)))
        goto done;
    /* rename() replaces silently: pick a name that is not taken. */
    for (;;) {
        struct stat ignored;
        utc_now(stamp, sizeof(stamp), true);
        ibs_buf_clear(&dest);
        ibs_buf_printf(&dest, "%s/%s-%s%s", adir.ptr, j->name, stamp, IBS_JOURNAL_EXT);
        if ((rc = ibs_buf_oom(&dest)))
            goto done;
        if (lstat(dest.ptr, &ignored) != 0)
            break;
    }
    if (rename(j->path, dest.ptr) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot move %s to %s: %s", j->path, dest.ptr, strerror(errno));
        goto done;
    }
    j->size = 0;
    if ((rc = ibs_fs_sync_dir(adir.ptr)) || (rc = ibs_fs_sync_dir(j->dir)))
        goto done;
    rc = prune_archives(j, adir.ptr);
done:
    pthread_mutex_unlock(&j->mu);
    ibs_buf_release(&dest);
    ibs_buf_release(&adir);
    return rc;
}

void ibs_journal_close(struct ibs_journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    pthread_mutex_destroy(&j->mu);
    free(j->dir);
    free(j->name);
    free(j->path);
    free(j);
}
