/*
 * File-system helpers for the state directory: mkdir -p, crash-safe file
 * replacement, bounded whole-file reads, and the mapping from state keys
 * (which contain ':' '/' '@' ...) to safe file names.
 */
#ifndef IBS_STATE_FSUTIL_H
#define IBS_STATE_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* File names made by ibs_fs_key_to_name() are at most this many bytes. */
#define IBS_FS_NAME_MAX 200

/*
 * Creates `path` and every missing parent directory with `mode` (like
 * mkdir -p). Existing directories are fine; IBS_EIO (naming the path) when a
 * component exists and is not a directory or cannot be created.
 */
int ibs_fs_mkdirs(const char *path, mode_t mode);

/*
 * Replaces the file at `path` with `len` bytes of `data`, so that a crash at
 * any point leaves either the old or the new content, never a mix: the data
 * goes to a temporary file in the same directory (".NAME.PID.N.tmp"), which
 * is fsync'd, renamed over `path`, and the directory is fsync'd. The file gets
 * exactly `mode` (the umask is not applied). On failure the temporary file is
 * removed and `path` is untouched; IBS_ENOTFOUND when the directory does not
 * exist, IBS_EIO otherwise. A crash can leave a stale ".*.tmp" file behind;
 * it is never read.
 */
int ibs_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Reads the regular file at `path` into *out, a NUL-terminated heap buffer of
 * *out_len bytes owned by the caller (free()). IBS_ENOTFOUND when absent,
 * IBS_EINVALID when it is not a regular file or is larger than `max` bytes,
 * IBS_EIO on other failures. On failure *out is NULL and *out_len 0.
 */
int ibs_fs_read_file(char **out, size_t *out_len, const char *path, size_t max);

/*
 * fsync()s the directory `dir`, so that entries created, renamed or removed
 * in it survive a crash. File systems that cannot sync a directory (EINVAL)
 * are accepted.
 */
int ibs_fs_sync_dir(const char *dir);

/*
 * Maps a key such as "golden-ami@123456789012/us-east-1" to a file name
 * usable in any directory, into the heap string *out (caller frees). Bytes
 * other than [A-Za-z0-9_.@+=,-] and a leading '.' are written as %XX, so
 * distinct keys give distinct names and no name is hidden, "." or "..".
 * Names that would exceed IBS_FS_NAME_MAX bytes are cut and end with "~" and
 * the 40-hex digest of the whole key (still distinct). IBS_EINVALID for an
 * empty key.
 */
int ibs_fs_key_to_name(char **out, const char *key);

#endif
