/*
 * Directory backend: desired state read from a plain directory.
 *
 * Symbolic links below the root are never followed, so a source cannot be
 * made to read outside its root. Both listing and reading walk the tree with
 * directory file descriptors (openat/fstatat with O_NOFOLLOW and
 * AT_SYMLINK_NOFOLLOW) rather than by building absolute paths, so a
 * component swapped for a symlink between the check and the open is refused
 * by the kernel too.
 *
 * Reads come in sorted order from the loader, so most files share the
 * directory of the previous one: the last directory walked stays open
 * (`dir_fd` for `dir_path`) and a read costs fstatat + openat + fstat +
 * read + close instead of a walk from the root. A directory swapped for a
 * symlink after it was opened is not followed either: the open descriptor
 * still refers to the directory that was checked. A source is used by one
 * thread at a time (source.h).
 */
#define _XOPEN_SOURCE 700 /* realpath() */
#define _DEFAULT_SOURCE   /* DT_REG, DT_DIR */

#include "state/source_backend.h"

#include "util/buf.h"
#include "util/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct dir_source {
    struct ibs_source base; /* first, so that the two pointers convert */
    char *root;             /* realpath of the directory */
    int dir_fd;             /* the directory of the last read, or -1 */
    char *dir_path;         /* its root-relative path ("" for the root), or NULL */
};

static int list_tree(struct ibs_vec *out, struct dir_source *ds, int fd, struct ibs_buf *rel);

/* Opens the root directory as a file descriptor. */
static int open_root(int *out, struct dir_source *ds)
{
    *out = open(ds->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*out < 0)
        return ibs_error_set(errno == ENOENT ? IBS_ENOTFOUND : IBS_EIO,
                             "cannot open directory \"%s\": %s", ds->base.description,
                             strerror(errno));
    return 0;
}

/* Handles one directory entry `name` of `dfd` whose root-relative path is in `rel`. */
static int list_entry(struct ibs_vec *out, struct dir_source *ds, int dfd, const char *name,
                      unsigned char d_type, struct ibs_buf *rel)
{
    struct stat st;
    char *copy = NULL;
    int fd, rc = 0;

    /* The entry's type from readdir() saves a fstatat() per file where the
     * file system reports it (DT_UNKNOWN elsewhere). */
    if (d_type == DT_REG || d_type == DT_DIR) {
        st.st_mode = d_type == DT_REG ? S_IFREG : S_IFDIR;
    } else if (d_type != DT_UNKNOWN) {
        goto done;
    } else if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        /* Removed while we were listing: it is simply not part of the listing. */
        if (errno != ENOENT)
            rc = ibs_error_set(IBS_EIO, "cannot stat \"%s\" in \"%s\": %s", rel->ptr,
                               ds->base.description, strerror(errno));
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        if (name[0] == '.')
            goto done;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rc = ibs_error_set(IBS_EIO, "cannot open directory \"%s\" in \"%s\": %s", rel->ptr,
                               ds->base.description, strerror(errno));
            goto done;
        }
        rc = list_tree(out, ds, fd, rel);
    } else if (S_ISREG(st.st_mode)) {
        rc = ibs_source_strdup(&copy, rel->ptr);
        if (rc)
            goto done;
        rc = ibs_vec_push(out, copy);
        if (rc)
            free(copy);
    }
    /* Symbolic links, sockets, FIFOs and devices are not desired state. */
done:
    return rc;
}

/*
 * Appends the regular files below directory `fd` (whose root-relative path
 * is in `rel`) to `out`. Takes ownership of `fd`. `rel` is restored before
 * returning.
 */
static int list_tree(struct ibs_vec *out, struct dir_source *ds, int fd, struct ibs_buf *rel)
{
    size_t mark = rel->size;
    struct dirent *ent;
    DIR *d;
    int rc = 0;

    d = fdopendir(fd);
    if (!d) {
        rc = ibs_error_set(IBS_EIO, "cannot read directory \"%s\" in \"%s\": %s", rel->ptr,
                           ds->base.description, strerror(errno));
        close(fd);
        goto done;
    }
    for (;;) {
        errno = 0;
        ent = readdir(d);
        if (!ent) {
            if (errno)
                rc = ibs_error_set(IBS_EIO, "cannot read directory \"%s\" in \"%s\": %s", rel->ptr,
                                   ds->base.description, strerror(errno));
            break;
        }
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        if (mark)
            ibs_buf_putc(rel, '/');
        ibs_buf_puts(rel, ent->d_name);
        rc = ibs_buf_oom(rel);
        if (!rc)
            rc = list_entry(out, ds, dirfd(d), ent->d_name, ent->d_type, rel);
        ibs_buf_truncate(rel, mark);
        if (rc)
            break;
    }
    closedir(d);
done:
    return rc;
}

static int dir_list(struct ibs_vec *out, struct ibs_source *src)
{
    struct dir_source *ds = (struct dir_source *)src;
    struct ibs_buf rel = IBS_BUF_INIT;
    int fd, rc;

    rc = open_root(&fd, ds);
    if (rc)
        goto done;
    rc = list_tree(out, ds, fd, &rel);
done:
    ibs_buf_release(&rel);
    return rc;
}

/* Reads up to `size` bytes of `fd` into a NUL-terminated heap buffer. */
static int read_fd(char **out, size_t *out_len, int fd, size_t size, const char *path)
{
    char *data;
    size_t got = 0;
    int rc = 0;

    data = malloc(size + 1);
    if (!data) {
        rc = ibs_error_oom();
        goto done;
    }
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ibs_error_set(IBS_EIO, "cannot read \"%s\": %s", path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break; /* the file shrank since fstat(): take what is there */
        got += (size_t)n;
    }
    data[got] = '\0';
    *out = data;
    *out_len = got;
    data = NULL;
done:
    free(data);
    return rc;
}

/* Classifies a failed fstatat()/openat() of `path` (prefix `prefix` bytes). */
static int open_error(struct dir_source *ds, const char *path, size_t prefix, int err)
{
    if (err == ENOENT || err == ENOTDIR)
        return ibs_error_set(IBS_ENOTFOUND, "file \"%s\" not found in \"%s\"", path,
                             ds->base.description);
    if (err == ELOOP)
        return ibs_error_set(IBS_EINVALID, "\"%.*s\" is a symbolic link", (int)prefix, path);
    return ibs_error_set(IBS_EIO, "cannot open \"%s\" in \"%s\": %s", path, ds->base.description,
                         strerror(err));
}

/*
 * Opens the entry `comp` of directory `fd` (the first `prefix` bytes of
 * `path` name it), refusing symbolic links: a directory when `want_dir`,
 * else a regular file. Never blocks on a FIFO.
 */
static int open_component(int *out, struct dir_source *ds, int fd, const char *comp,
                          const char *path, size_t prefix, bool want_dir)
{
    struct stat st;
    int next;

    *out = -1;
    if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return open_error(ds, path, prefix, errno);
    if (S_ISLNK(st.st_mode))
        return open_error(ds, path, prefix, ELOOP);
    if (want_dir && !S_ISDIR(st.st_mode))
        return open_error(ds, path, prefix, ENOTDIR);
    if (!want_dir && !S_ISREG(st.st_mode))
        return ibs_error_set(IBS_EINVALID, "\"%s\" is not a regular file", path);
    /* O_NONBLOCK: should a FIFO replace the file after fstatat, don't hang on it. */
    next = openat(fd, comp,
                  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                      (want_dir ? O_DIRECTORY : O_NONBLOCK));
    if (next < 0)
        return open_error(ds, path, prefix, errno);
    *out = next;
    return 0;
}

/*
 * Makes ds->dir_fd the directory of normalised `path` (its first `len`
 * bytes), walking from the root component by component unless it is the
 * directory of the previous read.
 */
static int open_parent(struct dir_source *ds, const char *path, size_t len)
{
    char *comp = NULL, *dir = NULL;
    int fd = -1, rc;

    if (ds->dir_path && strlen(ds->dir_path) == len && !memcmp(ds->dir_path, path, len))
        return 0;
    dir = strndup(path, len);
    if (!dir) {
        rc = ibs_error_oom();
        goto done;
    }
    rc = open_root(&fd, ds);
    for (const char *p = path; !rc && p < path + len;) {
        const char *slash = memchr(p, '/', (size_t)(path + len - p));
        size_t n = slash ? (size_t)(slash - p) : (size_t)(path + len - p);
        int next;

        free(comp);
        comp = strndup(p, n);
        if (!comp) {
            rc = ibs_error_oom();
            break;
        }
        rc = open_component(&next, ds, fd, comp, path, (size_t)(p - path) + n, true);
        if (rc)
            break;
        close(fd);
        fd = next;
        p += n + 1;
    }
    if (rc)
        goto done;
    if (ds->dir_fd >= 0)
        close(ds->dir_fd);
    free(ds->dir_path);
    ds->dir_fd = fd;
    ds->dir_path = dir;
    fd = -1;
    dir = NULL;
done:
    if (fd >= 0)
        close(fd);
    free(comp);
    free(dir);
    return rc;
}

/* Opens the regular file at normalised `path`, refusing symbolic links anywhere on the way. */
static int open_file(int *out, struct dir_source *ds, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    int rc;

    *out = -1;
    rc = open_parent(ds, path, dirlen);
    if (!rc)
        rc = open_component(out, ds, ds->dir_fd, slash ? slash + 1 : path, path, strlen(path),
                            false);
    return rc;
}

static int dir_read(char **out, size_t *out_len, struct ibs_source *src, const char *path,
                    size_t max_size)
{
    struct dir_source *ds = (struct dir_source *)src;
    struct stat st;
    int fd = -1, rc;

    if (!*path) {
        rc = ibs_error_set(IBS_EINVALID, "\"%s\" is not a regular file", path);
        goto done;
    }
    rc = open_file(&fd, ds, path);
    if (rc)
        goto done;
    if (fstat(fd, &st) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot stat \"%s\": %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ibs_error_set(IBS_EINVALID, "\"%s\" is not a regular file", path);
        goto done;
    }
    if ((unsigned long long)st.st_size > max_size) {
        rc = ibs_source_too_big(path, (unsigned long long)st.st_size, max_size);
        goto done;
    }
    rc = read_fd(out, out_len, fd, (size_t)st.st_size, path);
done:
    if (fd >= 0)
        close(fd);
    return rc;
}

static void dir_free(struct ibs_source *src)
{
    struct dir_source *ds = (struct dir_source *)src;
    if (ds->dir_fd >= 0)
        close(ds->dir_fd);
    free(ds->dir_path);
    free(ds->root);
    free(ds);
}

static const struct ibs_source_ops dir_ops = {
    .kind = "dir",
    .list = dir_list,
    .read = dir_read,
    .free = dir_free,
};

int ibs_source_open_dir(struct ibs_source **out, const char *dir)
{
    struct dir_source *ds = NULL;
    const char *base;
    struct stat st;
    int rc = 0;

    *out = NULL;
    if (!dir || !*dir) {
        rc = ibs_error_set(IBS_EINVALID, "no directory given");
        goto done;
    }
    /* The root itself may be a symlink: the user named it explicitly. */
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = ibs_error_set(IBS_ENOTFOUND, "directory \"%s\" does not exist", dir);
        else
            rc = ibs_error_set(IBS_EIO, "cannot access directory \"%s\": %s", dir, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = ibs_error_set(IBS_EINVALID, "\"%s\" is not a directory", dir);
        goto done;
    }
    ds = calloc(1, sizeof(*ds));
    if (!ds) {
        rc = ibs_error_oom();
        goto done;
    }
    ds->base.ops = &dir_ops;
    ds->dir_fd = -1;
    ds->root = realpath(dir, NULL);
    if (!ds->root) {
        rc = errno == ENOMEM ? ibs_error_oom()
                             : ibs_error_set(IBS_EIO, "cannot resolve directory \"%s\": %s", dir,
                                             strerror(errno));
        goto done;
    }
    base = strrchr(ds->root, '/');
    base = base && base[1] ? base + 1 : ds->root;
    rc = ibs_source_strdup(&ds->base.name, base);
    if (!rc)
        rc = ibs_source_strdup(&ds->base.description, dir);
    if (rc)
        goto done;
    *out = &ds->base;
    ds = NULL;
done:
    ibs_source_free(ds ? &ds->base : NULL);
    return rc;
}
