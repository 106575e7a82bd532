/*
 * Sources of desired state: a plain directory, or a tree inside a git
 * repository read through libgit2 without a checkout (any branch, tag or
 * commit; local path or remote URL fetched into a cache and reused).
 *
 * A source is a backend table (like libgit2's ODB backends): the loader only
 * lists files and reads them by path relative to the source root.
 */
#ifndef IBS_STATE_SOURCE_H
#define IBS_STATE_SOURCE_H

#include "util/vec.h"

#include <stddef.h>

struct ibs_source;

struct ibs_git_options {
    const char
        *repo;       /* local path (work tree or bare) or URL (file://, git://, https://, ssh://) */
    const char *ref; /* branch, tag, remote branch, or (abbreviated) commit; NULL: HEAD */
    const char *path;      /* sub-directory of the tree to use as root; NULL or "": the top */
    const char *cache_dir; /* where remote URLs are cloned (bare) and reused; required for URLs */
    /*
     * Authentication for remote URLs; every field is optional. No secret is
     * ever shown (description, error messages) or stored (the cache).
     *
     * http(s): HTTP basic auth with user `username` and password the token
     * read from `token_file` (read again by every open, surrounding
     * whitespace ignored), else `token`; sent only when the server asks.
     * Credentials in the URL are tried first.
     *
     * ssh (ssh://, scp-like user@host:path): public key auth with the
     * private key file `ssh_key`, unlocked with the passphrase read from
     * `ssh_key_passphrase_file`. The server's host key must be listed for
     * the host (as "[host]:port" for ports other than 22; plain or hashed)
     * in the OpenSSH known_hosts file `known_hosts`: unknown, changed or
     * revoked keys are refused, and so is every host when it is NULL.
     *
     * The user name is the URL's, else `username`, else "x-access-token"
     * (http(s): GitHub and GitLab take any name with a token) or "git"
     * (ssh). `auth_hint` (e.g. "check --git-token-file") is appended to
     * authentication failures, to tell the user where the credentials
     * come from.
     */
    const char *token;
    const char *token_file;
    const char *username;
    const char *ssh_key;
    const char *ssh_key_passphrase_file;
    const char *known_hosts;
    const char *auth_hint;
};

/* Opens directory `dir` as a source. *out is owned by the caller (ibs_source_free). */
int ibs_source_open_dir(struct ibs_source **out, const char *dir);

/*
 * Opens the tree at opts->ref (under opts->path) of opts->repo. Remote URLs
 * are fetched into a bare repository under opts->cache_dir named after the
 * URL, and fetched again (not re-cloned) on later calls. IBS_ENOTFOUND when
 * the ref or path does not exist, with a message naming it. IBS_EAUTH when
 * the server refuses the credentials ("authentication failed for URL: ...")
 * or an SSH host key cannot be verified ("host key verification failed for
 * URL: ..."); IBS_EUNSUPPORTED for ssh URLs when libgit2 lacks SSH support.
 * *out is owned by the caller (ibs_source_free); `opts` is only borrowed.
 */
int ibs_source_open_git(struct ibs_source **out, const struct ibs_git_options *opts);

/*
 * Appends to `out` every regular file below the root, recursively, as
 * '/'-separated paths relative to the root (heap strings owned by the
 * caller), sorted bytewise. Directories whose name starts with '.' are
 * skipped. Symbolic links are not followed.
 */
int ibs_source_list(struct ibs_vec *out, struct ibs_source *src);

/*
 * Reads the file at `path` (relative to the root, '/'-separated, normalised
 * with ibs_source_normalize) into a NUL-terminated heap buffer *out of
 * *out_len bytes, owned by the caller. IBS_ENOTFOUND if absent; IBS_EINVALID
 * if larger than `max_size` bytes or if the path is not a regular file.
 * A source is not thread-safe: read it from one thread at a time.
 */
int ibs_source_read(char **out, size_t *out_len, struct ibs_source *src, const char *path,
                    size_t max_size);

/*
 * Resolves `rel` relative to the directory of `base` (both root-relative),
 * collapsing "." and "..", into a heap string *out. IBS_EINVALID (with a
 * message) when the result would leave the root, or `rel` is absolute.
 */
int ibs_source_normalize(char **out, const char *base, const char *rel);

/* The commit id (40 hex) the tree was read from, or NULL for a directory. */
const char *ibs_source_commit(const struct ibs_source *src);

/* The name of the root directory (default stack name): last path component. */
const char *ibs_source_name(const struct ibs_source *src);

/* A display string: "DIR", or "REPO@REF:PATH (commit abcdef123456)". */
const char *ibs_source_describe(const struct ibs_source *src);

/* Closes the source. Accepts NULL. */
void ibs_source_free(struct ibs_source *src);

/*
 * Releases libgit2's global state (so leak checkers stay quiet). Call at most
 * once, at exit, after every source is freed and with no other thread using
 * sources; git sources cannot be opened afterwards.
 */
void ibs_source_global_shutdown(void);

#endif
