/*
 * Content digests: the git blob id (SHA-1 of "blob <len>\0" + data) of a
 * byte string, as 40 lowercase hex digits. Used for plan ids, client tokens,
 * plan-file checksums and long state file names; identical to
 * `git hash-object --stdin`, so any digest can be checked with git.
 */
#ifndef IBS_STATE_DIGEST_H
#define IBS_STATE_DIGEST_H

#include <stddef.h>

/* Hex digits in a digest, without the terminating NUL. */
#define IBS_DIGEST_HEX_LEN 40

/*
 * Writes the digest of `len` bytes at `data` (NULL is fine when len is 0)
 * into `out` as 40 hex digits and a NUL. Thread-safe; always returns 0 (an
 * int like every other call, so callers need not change should a backend
 * ever be able to fail).
 */
int ibs_digest_hex(char out[41], const void *data, size_t len);

#endif
