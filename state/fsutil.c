/*
 * File-system helpers; see fsutil.h.
 *
 * Atomic replacement follows the usual recipe (write a temporary file in the
 * same directory, fsync it, rename it over the target, fsync the directory):
 * rename(2) within one file system is atomic, and the two fsyncs make sure
 * that after a crash the name points at complete data rather than at an
 * empty or partly written inode (ext4/xfs delayed allocation).
 */
#include "state/fsutil.h"

#include "state/digest.h"
#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Encoded names longer than IBS_FS_NAME_MAX keep this many bytes before "~<digest>". */
#define IBS_FS_NAME_CUT (IBS_FS_NAME_MAX - 1 - IBS_DIGEST_HEX_LEN)

static atomic_uint tmp_counter;

static int errno_code(int err)
{
    return err == ENOENT || err == ENOTDIR ? IBS_ENOTFOUND : IBS_EIO;
}

int ibs_fs_mkdirs(const char *path, mode_t mode)
{
    char *copy = NULL;
    struct stat st;
    int rc = 0;

    if (!path || !*path)
        return ibs_error_set(IBS_EINVALID, "cannot create a directory with an empty name");
    copy = strdup(path);
    if (!copy)
        return ibs_error_oom();
    /* Walk the prefixes "a", "a/b", "a/b/c", creating each one that is missing. */
    for (char *p = copy + 1;; p++) {
        bool last = *p == '\0';
        if (!last && *p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, mode) != 0) {
            int err = errno;
            if (err != EEXIST || stat(copy, &st) != 0 || !S_ISDIR(st.st_mode)) {
                rc = ibs_error_set(IBS_EIO, "cannot create directory %s: %s", copy,
                                   strerror(err == EEXIST ? ENOTDIR : err));
                goto done;
            }
        }
        if (last)
            break;
        *p = '/';
        while (p[1] == '/')
            p++;
    }
done:
    free(copy);
    return rc;
}

int ibs_fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return ibs_error_set(errno_code(errno), "cannot open directory %s: %s", dir,
                             strerror(errno));
    /* Some file systems cannot fsync a directory; their renames are then as
     * durable as they will ever be. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = ibs_error_set(IBS_EIO, "cannot sync directory %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* Writes all of data, resuming after short writes and signals. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ibs_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    struct ibs_buf dir = IBS_BUF_INIT;
    struct ibs_buf tmp = IBS_BUF_INIT;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    bool created = false;
    int fd = -1;
    int rc = 0;

    if (!*base) {
        rc = ibs_error_set(IBS_EINVALID, "cannot write %s: not a file name", path);
        goto done;
    }
    if (!slash)
        ibs_buf_puts(&dir, ".");
    else if (slash == path)
        ibs_buf_puts(&dir, "/");
    else
        ibs_buf_put(&dir, path, (size_t)(slash - path));
    if ((rc = ibs_buf_oom(&dir)))
        goto done;
    /* O_EXCL with a per-process counter: never reuses another writer's file. */
    for (;;) {
        ibs_buf_clear(&tmp);
        ibs_buf_printf(&tmp, "%s/.%s.%ld.%u.tmp", dir.ptr, base, (long)getpid(),
                       atomic_fetch_add(&tmp_counter, 1u));
        if ((rc = ibs_buf_oom(&tmp)))
            goto done;
        fd = open(tmp.ptr, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        rc = ibs_error_set(errno_code(errno), "cannot write %s: cannot create %s: %s", path,
                           tmp.ptr, strerror(errno));
        goto done;
    }
    created = true;
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot write %s: %s", tmp.ptr, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ibs_error_set(IBS_EIO, "cannot write %s: %s", tmp.ptr, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp.ptr, path) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot rename %s to %s: %s", tmp.ptr, path, strerror(errno));
        goto done;
    }
    created = false;
    rc = ibs_fs_sync_dir(dir.ptr);
done:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp.ptr);
    ibs_buf_release(&tmp);
    ibs_buf_release(&dir);
    return rc;
}

int ibs_fs_read_file(char **out, size_t *out_len, const char *path, size_t max)
{
    struct ibs_buf b = IBS_BUF_INIT;
    struct stat st;
    int fd;
    int rc = 0;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ibs_error_set(errno_code(errno), "cannot open %s: %s", path, strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot stat %s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ibs_error_set(IBS_EINVALID, "%s is not a regular file", path);
        goto done;
    }
    if ((uintmax_t)st.st_size > max) {
        rc = ibs_error_set(IBS_EINVALID, "%s is larger than %zu bytes", path, max);
        goto done;
    }
    if ((rc = ibs_buf_grow(&b, (size_t)st.st_size + 1)))
        goto done;
    /* Read to end of file rather than trusting st_size: the file may grow. */
    for (;;) {
        ssize_t n;
        if (b.asize - b.size < 2 && (rc = ibs_buf_grow(&b, 4096)))
            goto done;
        n = read(fd, b.ptr + b.size, b.asize - b.size - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = ibs_error_set(IBS_EIO, "cannot read %s: %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        b.size += (size_t)n;
        b.ptr[b.size] = '\0';
        if (b.size > max) {
            rc = ibs_error_set(IBS_EINVALID, "%s is larger than %zu bytes", path, max);
            goto done;
        }
    }
    *out_len = b.size;
    if (!(*out = ibs_buf_detach(&b)))
        rc = IBS_ENOMEM;
done:
    if (fd >= 0)
        close(fd);
    ibs_buf_release(&b);
    return rc;
}

static bool name_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_.@+=,-", c) != NULL;
}

int ibs_fs_key_to_name(char **out, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    struct ibs_buf b = IBS_BUF_INIT;
    char digest[IBS_DIGEST_HEX_LEN + 1];
    int rc = 0;

    *out = NULL;
    if (!key || !*key) {
        rc = ibs_error_set(IBS_EINVALID, "empty state key");
        goto done;
    }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if (name_byte_ok(*p) && !(*p == '.' && p == (const unsigned char *)key)) {
            ibs_buf_putc(&b, (char)*p);
        } else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            ibs_buf_put(&b, esc, sizeof(esc));
        }
    }
    if ((rc = ibs_buf_oom(&b)))
        goto done;
    if (b.size > IBS_FS_NAME_MAX) {
        size_t cut = IBS_FS_NAME_CUT;
        /* Do not split a %XX escape. */
        if (b.ptr[cut - 1] == '%')
            cut -= 1;
        else if (b.ptr[cut - 2] == '%')
            cut -= 2;
        if ((rc = ibs_digest_hex(digest, key, strlen(key))))
            goto done;
        ibs_buf_truncate(&b, cut);
        ibs_buf_printf(&b, "~%s", digest);
        if ((rc = ibs_buf_oom(&b)))
            goto done;
    }
    if (!(*out = ibs_buf_detach(&b)))
        rc = IBS_ENOMEM;
done:
    ibs_buf_release(&b);
    return rc;
}
