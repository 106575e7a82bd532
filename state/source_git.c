/*
 * Git backend: desired state read from a tree of a git repository through
 * libgit2, without a checkout.
 *
 * opts->repo is either a local repository (work tree or bare, opened in
 * place) or a URL. URLs are fetched into a bare cache repository
 * cache_dir/<host-path>-<hash of URL>: the first use initialises it and
 * fetches, later uses fetch again into the same repository (branches into
 * refs/remotes/origin/NAME, tags into refs/tags/NAME, pruning both), so only new
 * objects cross the network. The cache is built in a temporary directory and
 * renamed into place, so an interrupted first fetch leaves no half cache; a
 * cache that libgit2 cannot open is deleted and fetched again from scratch.
 *
 * Credentials embedded in a URL ("https://user:token@host/...") are used for
 * the fetch only: the cache's configuration, the description and every error
 * message carry the URL without them. Git's url.<base>.insteadOf rewriting
 * is not applied (see fetch_origin()).
 *
 * Authentication (struct ibs_git_options) goes through libgit2's remote
 * callbacks, set up in fetch_options_setup(): a token for HTTP basic auth,
 * an SSH key, and the SSH host key check against a known_hosts file given
 * by the caller. libgit2 cannot do the latter: 1.5.0 accepts any host key,
 * 1.5.1 (CVE-2023-22742) checks $HOME/.ssh/known_hosts only. The check
 * goes through libssh2's known-hosts API (the SSH library under libgit2),
 * with what libssh2 lacks done here: markers (@revoked) and host patterns
 * (see struct known_hosts). Secrets read
 * for a fetch live in struct repo_location, are scrubbed from every message
 * and wiped on release.
 */
#define _DEFAULT_SOURCE /* explicit_bzero() */

#include "state/source_backend.h"

#include "util/buf.h"
#include "util/error.h"

#include <git2.h>
#include <libssh2.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define IBS_GIT_REMOTE "origin"
#define IBS_GIT_BRANCH_SPEC "+refs/heads/*:refs/remotes/origin/*"
#define IBS_GIT_TAG_SPEC "+refs/tags/*:refs/tags/*"
#define IBS_GIT_REMOTE_HEAD "refs/remotes/origin/HEAD"
#define IBS_GIT_CACHE_NAME_MAX 64 /* bytes of the readable part of a cache directory name */
#define IBS_GIT_CACHE_HASH_LEN 12
/* The user name sent with a token: GitHub and GitLab accept it (and any other). */
#define IBS_GIT_DEFAULT_HTTP_USER "x-access-token"
#define IBS_GIT_DEFAULT_SSH_USER "git"
#define IBS_GIT_SSH_PORT 22
#define IBS_GIT_SECRET_MAX (64u * 1024u)             /* bytes of a token or passphrase file */
#define IBS_GIT_KNOWN_HOSTS_MAX (4u * 1024u * 1024u) /* bytes of a known_hosts file */

struct gsrc {
    struct ibs_source base; /* first, so that the two pointers convert */
    git_repository *repo;
    git_tree *root; /* the tree at opts->path */
};

enum gsrc_transport {
    IBS_GSRC_VIA_LOCAL, /* a local path */
    IBS_GSRC_VIA_HTTP,  /* http:// or https:// */
    IBS_GSRC_VIA_SSH,   /* ssh://, git+ssh://, ssh+git:// or scp-like user@host:path */
    IBS_GSRC_VIA_OTHER, /* file://, git://, ... : no authentication */
};

/* What opts->repo designates, split once, and how to authenticate to it. */
struct repo_location {
    bool remote;
    enum gsrc_transport transport;
    unsigned port;    /* the URL's explicit port, or 0 */
    char *display;    /* opts->repo without credentials: safe to show and store */
    char *secret;     /* the "userinfo@" removed from display, or NULL */
    char *password;   /* the password part of secret, if any, or NULL */
    char *host_path;  /* remote: host[:port]/path (for naming); NULL for local paths */
    char *token;      /* http(s): opts->token_file's content or opts->token, or NULL */
    char *passphrase; /* ssh: opts->ssh_key_passphrase_file's content, or NULL */
    const struct ibs_git_options *opts; /* borrowed, for the other authentication options */
};

/* Per-fetch state handed to libgit2's remote callbacks (payload). */
struct fetch_context {
    const struct repo_location *loc;
    /*
     * How often a token or a key was handed out: libgit2 asks again only
     * when the server refused the previous one.
     */
    unsigned tokens_sent;
    unsigned keys_sent;
    struct ibs_buf user; /* the user name last handed out */
    int failure_code;    /* nonzero when a callback stopped the fetch, with `failure` */
    struct ibs_buf failure;
};

enum gsrc_global_state {
    IBS_GSRC_UNSET,
    IBS_GSRC_READY,
    IBS_GSRC_FAILED,
    IBS_GSRC_SHUT_DOWN,
};

static pthread_once_t gsrc_once = PTHREAD_ONCE_INIT;
static enum gsrc_global_state gsrc_state = IBS_GSRC_UNSET;

static void gsrc_init_once(void)
{
    gsrc_state = git_libgit2_init() > 0 ? IBS_GSRC_READY : IBS_GSRC_FAILED;
}

static void gsrc_disable_once(void)
{
    gsrc_state = IBS_GSRC_SHUT_DOWN;
}

static int gsrc_global_init(void)
{
    pthread_once(&gsrc_once, gsrc_init_once);
    switch (gsrc_state) {
    case IBS_GSRC_READY:
        return 0;
    case IBS_GSRC_SHUT_DOWN:
        return ibs_error_set(IBS_ERROR, "libgit2 has been shut down");
    default:
        return ibs_error_set(IBS_ERROR, "cannot initialise libgit2");
    }
}

void ibs_source_global_shutdown(void)
{
    /* Marks the once-control as done, so that no later open initialises again. */
    pthread_once(&gsrc_once, gsrc_disable_once);
    if (gsrc_state == IBS_GSRC_READY)
        git_libgit2_shutdown();
    gsrc_state = IBS_GSRC_SHUT_DOWN;
}

/* Replaces every occurrence of `secret` in `b` with `with`. */
static void scrub(struct ibs_buf *b, const char *secret, const char *with)
{
    struct ibs_buf out = IBS_BUF_INIT;
    size_t n = strlen(secret);
    const char *p, *hit;

    if (!n || b->oom || !strstr(b->ptr, secret))
        return;
    for (p = b->ptr; (hit = strstr(p, secret)) != NULL; p = hit + n) {
        ibs_buf_put(&out, p, (size_t)(hit - p));
        ibs_buf_puts(&out, with);
    }
    ibs_buf_puts(&out, p);
    ibs_buf_release(b);
    *b = out;
}

static int map_git_error(int gerr, int fallback)
{
    switch (gerr) {
    case GIT_ENOTFOUND:
        return IBS_ENOTFOUND;
    case GIT_EAUTH:
    case GIT_ECERTIFICATE:
        return IBS_EAUTH;
    case GIT_EUSER:
        return IBS_ECANCELED;
    case GIT_ELOCKED:
        return IBS_ELOCKED;
    case GIT_EOWNER:
        return IBS_EINVALID;
    default:
        return fallback;
    }
}

/* Removes every secret of `loc` (may be NULL) from `b`. */
static void scrub_secrets(struct ibs_buf *b, const struct repo_location *loc)
{
    if (!loc)
        return;
    /* libgit2 may name the URL, or (decoded or not) the password alone. */
    if (loc->secret)
        scrub(b, loc->secret, "");
    if (loc->password)
        scrub(b, loc->password, "***");
    if (loc->token)
        scrub(b, loc->token, "***");
    if (loc->passphrase)
        scrub(b, loc->passphrase, "***");
}

/*
 * Records "<context>: <libgit2's message>[; <hint>]" with `code`, removing
 * the secrets of `loc` (may be NULL) from the text. Returns `code`.
 */
static int gsrc_vfail(int code, const struct repo_location *loc, const char *hint, const char *fmt,
                      va_list ap) __attribute__((format(printf, 4, 0)));

static int gsrc_vfail(int code, const struct repo_location *loc, const char *hint, const char *fmt,
                      va_list ap)
{
    const git_error *e = git_error_last();
    struct ibs_buf b = IBS_BUF_INIT;
    int rc;

    ibs_buf_vprintf(&b, fmt, ap);
    ibs_buf_printf(&b, ": %s", e && e->message ? e->message : "unknown libgit2 error");
    if (hint && *hint)
        ibs_buf_printf(&b, "; %s", hint);
    scrub_secrets(&b, loc);
    rc = ibs_buf_oom(&b);
    if (!rc)
        rc = ibs_error_set(code, "%s", b.ptr);
    ibs_buf_release(&b);
    return rc;
}

static int gsrc_fail(int code, const struct repo_location *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gsrc_fail(int code, const struct repo_location *loc, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = gsrc_vfail(code, loc, NULL, fmt, ap);
    va_end(ap);
    return rc;
}

/* As gsrc_fail, with IBS_EAUTH and the caller's hint (opts->auth_hint) appended. */
static int gsrc_fail_auth(const struct repo_location *loc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int gsrc_fail_auth(const struct repo_location *loc, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = gsrc_vfail(IBS_EAUTH, loc, loc->opts ? loc->opts->auth_hint : NULL, fmt, ap);
    va_end(ap);
    return rc;
}

/* free() for strings that held a secret: wiped first. Accepts NULL. */
static void free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void location_release(struct repo_location *loc)
{
    free(loc->display);
    free_secret(loc->secret);
    free_secret(loc->password);
    free(loc->host_path);
    free_secret(loc->token);
    free_secret(loc->passphrase);
    memset(loc, 0, sizeof(*loc));
}

static bool valid_scheme(const char *s, size_t n)
{
    if (!n || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* The transport of URLs with scheme s[0..n). */
static enum gsrc_transport scheme_transport(const char *s, size_t n)
{
    static const struct {
        const char *name;
        enum gsrc_transport transport;
    } schemes[] = {
        {"http", IBS_GSRC_VIA_HTTP},   {"https", IBS_GSRC_VIA_HTTP},  {"ssh", IBS_GSRC_VIA_SSH},
        {"ssh+git", IBS_GSRC_VIA_SSH}, {"git+ssh", IBS_GSRC_VIA_SSH},
    };

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strlen(schemes[i].name) == n && !strncasecmp(s, schemes[i].name, n))
            return schemes[i].transport;
    return IBS_GSRC_VIA_OTHER;
}

/* The port of authority a[0..n) ("host", "host:port", "[v6]:port"), or 0. */
static unsigned authority_port(const char *a, size_t n)
{
    const char *end = a + n, *colon = NULL;
    unsigned long port = 0;

    if (n && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (!close || close + 1 == end || close[1] != ':')
            return 0;
        colon = close + 1;
    } else {
        for (const char *p = a; p < end; p++)
            if (*p == ':')
                colon = p;
        if (!colon)
            return 0;
    }
    if (colon + 1 == end)
        return 0;
    for (const char *p = colon + 1; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535)
            return 0;
    }
    return (unsigned)port;
}

/*
 * Splits opts->repo: "scheme://[userinfo@]host/path" and scp-like
 * "user@host:path" are remote; anything else is a local path.
 */
static int location_parse(struct repo_location *out, const char *repo)
{
    const char *sep = strstr(repo, "://");
    const char *colon, *slash, *at = NULL;
    struct ibs_buf b = IBS_BUF_INIT;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (sep && valid_scheme(repo, (size_t)(sep - repo))) {
        const char *auth = sep + 3;
        size_t alen = strcspn(auth, "/?#");
        /* The last '@' of the authority ends the userinfo ('@' in a password is invalid). */
        for (const char *p = auth; p < auth + alen; p++)
            if (*p == '@')
                at = p;
        out->remote = true;
        out->transport = scheme_transport(repo, (size_t)(sep - repo));
        out->port = at ? authority_port(at + 1, (size_t)(auth + alen - at - 1))
                       : authority_port(auth, alen);
        if (at) {
            const char *colon_at = memchr(auth, ':', (size_t)(at - auth));
            out->secret = strndup(auth, (size_t)(at + 1 - auth));
            if (colon_at && at - colon_at > 1) {
                out->password = strndup(colon_at + 1, (size_t)(at - colon_at - 1));
                if (!out->password) {
                    rc = ibs_error_oom();
                    goto done;
                }
            }
            ibs_buf_put(&b, repo, (size_t)(auth - repo));
            ibs_buf_puts(&b, at + 1);
            out->display = ibs_buf_detach(&b);
        } else {
            out->display = strdup(repo);
        }
        out->host_path = strdup(at ? at + 1 : auth);
        if (!out->display || !out->host_path || (at && !out->secret))
            rc = ibs_error_oom();
        goto done;
    }
    colon = strchr(repo, ':');
    slash = strchr(repo, '/');
    if (colon && (!slash || colon < slash)) {
        for (const char *p = repo; p < colon; p++)
            if (*p == '@')
                at = p;
    }
    out->display = strdup(repo);
    if (!out->display) {
        rc = ibs_error_oom();
        goto done;
    }
    if (at) {
        /* scp-like: the user is a login name, never a secret, so it stays. */
        out->remote = true;
        out->transport = IBS_GSRC_VIA_SSH;
        ibs_buf_put(&b, at + 1, (size_t)(colon - at - 1));
        ibs_buf_putc(&b, '/');
        ibs_buf_puts(&b, colon + 1);
        out->host_path = ibs_buf_detach(&b);
        if (!out->host_path)
            rc = IBS_ENOMEM;
    }
done:
    ibs_buf_release(&b);
    if (rc)
        location_release(out);
    return rc;
}

/* The last component of `path` without trailing slashes and ".git" suffix. */
static int repo_basename(char **out, const char *path)
{
    size_t end = strlen(path), start;

    while (end > 0 && path[end - 1] == '/')
        end--;
    start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    if (end - start > 4 && !memcmp(path + end - 4, ".git", 4))
        end -= 4;
    if (end == start || (end - start == 4 && !memcmp(path + start, ".git", 4)))
        return ibs_source_strdup(out, "repo");
    *out = strndup(path + start, end - start);
    return *out ? 0 : ibs_error_oom();
}

/*
 * The cache directory name for `loc`: its host and path reduced to
 * [A-Za-z0-9._-] (readable, never hidden, never "..") plus a hash of the
 * whole credential-free URL, so distinct URLs never share a cache.
 */
static int cache_name(char **out, const struct repo_location *loc)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char hex[GIT_OID_HEXSZ + 1];
    git_oid oid;
    size_t start;
    int rc = 0;

    *out = NULL;
    /* Long names keep their end, which holds the repository's own name. */
    start = strlen(loc->host_path);
    start = start > IBS_GIT_CACHE_NAME_MAX ? start - IBS_GIT_CACHE_NAME_MAX : 0;
    for (const char *p = loc->host_path + start; *p; p++) {
        char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || (c == '.' && b.size > 0);
        if (keep)
            ibs_buf_putc(&b, c);
        else if (b.size > 0 && b.ptr[b.size - 1] != '-')
            ibs_buf_putc(&b, '-');
    }
    while (b.size > 0 && (b.ptr[b.size - 1] == '-' || b.ptr[b.size - 1] == '.'))
        ibs_buf_truncate(&b, b.size - 1);
    if (git_odb_hash(&oid, loc->display, strlen(loc->display), GIT_OBJECT_BLOB) != 0) {
        rc = gsrc_fail(IBS_ERROR, loc, "cannot hash \"%s\"", loc->display);
        goto done;
    }
    git_oid_tostr(hex, sizeof(hex), &oid);
    ibs_buf_printf(&b, "%s%.*s", b.size ? "-" : "repo-", IBS_GIT_CACHE_HASH_LEN, hex);
    *out = ibs_buf_detach(&b);
    if (!*out)
        rc = IBS_ENOMEM;
done:
    ibs_buf_release(&b);
    return rc;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char *copy = NULL;
    struct stat st;
    int rc = 0;

    rc = ibs_source_strdup(&copy, path);
    if (rc)
        goto done;
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0777) != 0 && errno != EEXIST) {
            rc =
                ibs_error_set(IBS_EIO, "cannot create directory \"%s\": %s", copy, strerror(errno));
            goto done;
        }
        *p = saved;
        if (!saved)
            break;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = ibs_error_set(IBS_EIO, "\"%s\" is not a directory", path);
        goto done;
    }
done:
    free(copy);
    return rc;
}

/* rm -rf of `name` in directory `parent`, never following symbolic links. */
static int remove_tree_at(int parent, const char *name, const char *display)
{
    struct dirent *ent;
    DIR *d = NULL;
    int fd, rc = 0;

    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            goto done;
        if ((errno == ENOTDIR || errno == ELOOP) && unlinkat(parent, name, 0) == 0)
            goto done;
        rc = ibs_error_set(IBS_EIO, "cannot remove \"%s\": %s", display, strerror(errno));
        goto done;
    }
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        rc = ibs_error_set(IBS_EIO, "cannot remove \"%s\": %s", display, strerror(errno));
        goto done;
    }
    while ((ent = readdir(d)) != NULL) {
        if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, ".."))
            continue;
        rc = remove_tree_at(dirfd(d), ent->d_name, display);
        if (rc)
            goto done;
    }
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        rc = ibs_error_set(IBS_EIO, "cannot remove \"%s\": %s", display, strerror(errno));
done:
    if (d)
        closedir(d);
    return rc;
}

static int remove_tree(const char *path)
{
    return remove_tree_at(AT_FDCWD, path, path);
}

/*
 * Reads the secret in file `path` into *out (heap, for free_secret) without
 * surrounding whitespace: secrets mounted by Kubernetes or written with echo
 * end with a newline. `what` names the file in messages, which never carry
 * its content. Any readable file works, pipes included ("<(...)").
 */
static int read_secret_file(char **out, const char *path, const char *what)
{
    char *data = NULL;
    size_t len = 0, start = 0;
    ssize_t n;
    int fd = -1, rc = 0;

    *out = NULL;
    data = malloc(IBS_GIT_SECRET_MAX + 1);
    if (!data) {
        rc = ibs_error_oom();
        goto done;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = ibs_error_set(IBS_EAUTH, "cannot read %s \"%s\": %s", what, path, strerror(errno));
        goto done;
    }
    for (;;) {
        n = read(fd, data + len, IBS_GIT_SECRET_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = ibs_error_set(IBS_EAUTH, "cannot read %s \"%s\": %s", what, path, strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > IBS_GIT_SECRET_MAX) {
            rc = ibs_error_set(IBS_EAUTH, "%s \"%s\" is larger than %u bytes", what, path,
                               IBS_GIT_SECRET_MAX);
            goto done;
        }
    }
    while (len > 0 && isspace((unsigned char)data[len - 1]))
        len--;
    while (start < len && isspace((unsigned char)data[start]))
        start++;
    if (start == len) {
        rc = ibs_error_set(IBS_EAUTH, "%s \"%s\" is empty", what, path);
        goto done;
    }
    if (memchr(data + start, '\0', len - start)) {
        rc = ibs_error_set(IBS_EAUTH, "%s \"%s\" contains a NUL byte", what, path);
        goto done;
    }
    *out = strndup(data + start, len - start);
    if (!*out)
        rc = ibs_error_oom();
done:
    if (fd >= 0)
        close(fd);
    if (data) {
        explicit_bzero(data, IBS_GIT_SECRET_MAX + 1);
        free(data);
    }
    return rc;
}

/*
 * Reads the secrets that fetching `loc` may need, again on every open so
 * that rotated secrets are picked up, and checks that the SSH key can be
 * read, before any connection is made.
 */
static int auth_prepare(struct repo_location *loc, const struct ibs_git_options *opts)
{
    bool has_key = opts->ssh_key && *opts->ssh_key;
    int fd, rc = 0;

    loc->opts = opts;
    switch (loc->transport) {
    case IBS_GSRC_VIA_HTTP:
        if (opts->token_file && *opts->token_file)
            rc = read_secret_file(&loc->token, opts->token_file, "token file");
        else if (opts->token && *opts->token)
            rc = ibs_source_strdup(&loc->token, opts->token);
        break;
    case IBS_GSRC_VIA_SSH:
        if (!(git_libgit2_features() & GIT_FEATURE_SSH)) {
            rc = ibs_error_set(IBS_EUNSUPPORTED,
                               "cannot fetch %s: this ibsync's libgit2 has no SSH support",
                               loc->display);
            break;
        }
        if (opts->ssh_key_passphrase_file && *opts->ssh_key_passphrase_file) {
            if (!has_key) {
                rc = ibs_error_set(IBS_EINVALID,
                                   "an SSH key passphrase file is given without an SSH key");
                break;
            }
            rc = read_secret_file(&loc->passphrase, opts->ssh_key_passphrase_file,
                                  "SSH key passphrase file");
            if (rc)
                break;
        }
        if (has_key) {
            /* libssh2 reads the key itself, with a vaguer message when it cannot. */
            fd = open(opts->ssh_key, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                rc = ibs_error_set(IBS_EAUTH, "cannot read SSH key \"%s\": %s", opts->ssh_key,
                                   strerror(errno));
            else
                close(fd);
        }
        break;
    default:
        break;
    }
    return rc;
}

/*
 * Records why a callback stops the fetch, as "<what> for <URL>: <reason>"
 * (plus the caller's hint after authentication failures), for
 * fetch_origin() to report instead of libgit2's message. Returns `gerr`,
 * for the callback to hand to libgit2.
 */
static int refuse(struct fetch_context *ctx, int gerr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct fetch_context *ctx, int gerr, const char *fmt, ...)
{
    const char *hint = ctx->loc->opts ? ctx->loc->opts->auth_hint : NULL;
    bool auth = gerr == GIT_EAUTH;
    va_list ap;

    ibs_buf_clear(&ctx->failure);
    ibs_buf_printf(&ctx->failure,
                   "%s for %s: ", auth ? "authentication failed" : "host key verification failed",
                   ctx->loc->display);
    va_start(ap, fmt);
    ibs_buf_vprintf(&ctx->failure, fmt, ap);
    va_end(ap);
    if (auth && hint && *hint)
        ibs_buf_printf(&ctx->failure, "; %s", hint);
    ctx->failure_code = IBS_EAUTH;
    git_error_set_str(GIT_ERROR_CALLBACK, auth ? "authentication failed" : "host key refused");
    return gerr;
}

/* Remembers the user name handed to libgit2, for messages. */
static const char *remember_user(struct fetch_context *ctx, const char *user)
{
    ibs_buf_clear(&ctx->user);
    ibs_buf_puts(&ctx->user, user);
    return user;
}

/*
 * libgit2's credential callback. It is called when the server asks for
 * credentials (HTTP 401; SSH at every connection), and again each time
 * the server refused what it was given: a second token or key means a
 * refusal, which ends the fetch with a message naming the URL and the
 * user but no secret. `url` may contain the URL's credentials: unused.
 */
static int acquire_credentials(git_credential **out, const char *url, const char *username_from_url,
                               unsigned int allowed_types, void *payload)
{
    struct fetch_context *ctx = payload;
    const struct repo_location *loc = ctx->loc;
    const struct ibs_git_options *opts = loc->opts;
    const char *user;

    (void)url;
    if (username_from_url && *username_from_url)
        user = username_from_url;
    else if (opts && opts->username && *opts->username)
        user = opts->username;
    else
        user = loc->transport == IBS_GSRC_VIA_SSH ? IBS_GIT_DEFAULT_SSH_USER
                                                  : IBS_GIT_DEFAULT_HTTP_USER;
    if (loc->transport == IBS_GSRC_VIA_SSH) {
        if (allowed_types & GIT_CREDENTIAL_SSH_KEY) {
            if (!opts || !opts->ssh_key || !*opts->ssh_key)
                return refuse(ctx, GIT_EAUTH,
                              "the server requires an SSH key for user \"%s\" and none was given",
                              user);
            if (ctx->keys_sent)
                return refuse(ctx, GIT_EAUTH, "the server rejected SSH key \"%s\" for user \"%s\"",
                              opts->ssh_key, ctx->user.ptr);
            ctx->keys_sent++;
            return git_credential_ssh_key_new(out, remember_user(ctx, user), NULL, opts->ssh_key,
                                              loc->passphrase);
        }
        if (allowed_types & GIT_CREDENTIAL_USERNAME)
            return git_credential_username_new(out, remember_user(ctx, user));
        return refuse(ctx, GIT_EAUTH,
                      "the server offers no authentication method ibsync supports (public key)");
    }
    if (!(allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT))
        return refuse(ctx, GIT_EAUTH,
                      "the server offers no authentication method ibsync supports (basic auth)");
    if (ctx->tokens_sent)
        return refuse(ctx, GIT_EAUTH, "the server rejected the token for user \"%s\"",
                      ctx->user.ptr);
    if (!loc->token)
        return refuse(ctx, GIT_EAUTH, "%s",
                      loc->password ? "the server rejected the credentials in the URL"
                                    : "the server requires credentials and no token was given");
    ctx->tokens_sent++;
    return git_credential_userpass_plaintext_new(out, remember_user(ctx, user), loc->token);
}

/*
 * Appends base64 of d[0..n): unpadded as OpenSSH shows fingerprints, or
 * padded (`pad`) as known_hosts lists keys.
 */
static void base64_encode(struct ibs_buf *b, const unsigned char *d, size_t n, bool pad)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned long acc = 0;
    size_t start = b->size;
    int bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | d[i]) & 0xffffu;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            ibs_buf_putc(b, digits[(acc >> bits) & 63]);
        }
    }
    if (bits > 0)
        ibs_buf_putc(b, digits[(acc << (6 - bits)) & 63]);
    while (pad && !b->oom && (b->size - start) % 4)
        ibs_buf_putc(b, '=');
}

/* The server's host key, as libgit2 hands it over, and how to name it. */
struct host_key {
    const git_cert_hostkey *cert;
    struct ibs_buf name;  /* "host", or "[host]:port" off port 22, lower case: as in known_hosts */
    struct ibs_buf type;  /* "ssh-ed25519", ...; empty when unknown */
    struct ibs_buf shown; /* "TYPE SHA256:..." for messages */
};

/* Whether s matches pattern p[0..pend) of '*' and '?' wildcards, ignoring case. */
static bool wildcard_match(const char *p, const char *pend, const char *s)
{
    while (p < pend) {
        if (*p == '*') {
            while (p < pend && *p == '*')
                p++;
            if (p == pend)
                return true;
            for (; *s; s++)
                if (wildcard_match(p, pend, s))
                    return true;
            return false;
        }
        if (!*s || (*p != '?' && tolower((unsigned char)*p) != tolower((unsigned char)*s)))
            return false;
        p++;
        s++;
    }
    return !*s;
}

/*
 * Whether the plain (not hashed) host field f[0..n) of a known_hosts line
 * names `name`, as OpenSSH matches it: a comma-separated list of patterns
 * with '*' and '?', ignoring case, where a matching "!pattern" excludes the
 * host whatever else matches.
 */
static bool hosts_match(const char *f, size_t n, const char *name)
{
    const char *end = f + n;
    bool positive = false;

    while (f < end) {
        const char *comma = memchr(f, ',', (size_t)(end - f));
        const char *stop = comma ? comma : end;
        bool negated = *f == '!';
        if (wildcard_match(f + negated, stop, name)) {
            if (negated)
                return false;
            positive = true;
        }
        f = comma ? comma + 1 : end;
    }
    return positive;
}

/* Fills in the names of the server's key `cert` for host `host`. */
static int host_key_init(struct host_key *out, const git_cert_hostkey *cert, const char *host,
                         unsigned port)
{
    const unsigned char *raw = (const unsigned char *)cert->hostkey;

    out->cert = cert;
    if (port != IBS_GIT_SSH_PORT)
        ibs_buf_putc(&out->name, '[');
    for (const char *p = host; *p; p++)
        ibs_buf_putc(&out->name, (char)tolower((unsigned char)*p));
    if (port != IBS_GIT_SSH_PORT)
        ibs_buf_printf(&out->name, "]:%u", port);
    /* A key blob starts with its type as an SSH string: uint32 length, bytes. */
    if ((cert->type & GIT_CERT_SSH_RAW) && cert->hostkey_len >= 4) {
        size_t n = (size_t)raw[0] << 24 | (size_t)raw[1] << 16 | (size_t)raw[2] << 8 | raw[3];
        if (n > 0 && n < 64 && n <= cert->hostkey_len - 4)
            ibs_buf_put(&out->type, raw + 4, n);
    }
    ibs_buf_printf(&out->shown, "%s%s", out->type.ptr, out->type.size ? " " : "");
    if (cert->type & GIT_CERT_SSH_SHA256) {
        /* libssh2 hashed the key for libgit2 (libssh2_hostkey_hash()). */
        ibs_buf_puts(&out->shown, "SHA256:");
        base64_encode(&out->shown, cert->hash_sha256, sizeof(cert->hash_sha256), false);
    } else if (cert->type & GIT_CERT_SSH_RAW) {
        /*
         * A libssh2 without SHA-256 (before 1.9): the key itself, as a
         * known_hosts line would list it, rather than an older hash.
         */
        base64_encode(&out->shown, raw, cert->hostkey_len, true);
    } else {
        ibs_buf_puts(&out->shown, "of unknown fingerprint");
    }
    if (ibs_buf_oom(&out->name) || ibs_buf_oom(&out->type) || ibs_buf_oom(&out->shown))
        return ibs_error_oom();
    return 0;
}

static void host_key_release(struct host_key *k)
{
    ibs_buf_release(&k->name);
    ibs_buf_release(&k->type);
    ibs_buf_release(&k->shown);
}

/* Reads all of known_hosts file `path` into *out (heap, NUL-terminated). */
static int read_known_hosts(char **out, const char *path)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char chunk[8192];
    FILE *f;
    size_t n;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "re");
    if (!f)
        return ibs_error_set(IBS_EAUTH, "cannot read known_hosts file \"%s\": %s", path,
                             strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ibs_buf_put(&b, chunk, n);
        if (b.size > IBS_GIT_KNOWN_HOSTS_MAX) {
            rc = ibs_error_set(IBS_EAUTH, "known_hosts file \"%s\" is larger than %u bytes", path,
                               IBS_GIT_KNOWN_HOSTS_MAX);
            goto done;
        }
    }
    if (ferror(f)) {
        rc = ibs_error_set(IBS_EAUTH, "cannot read known_hosts file \"%s\": %s", path,
                           strerror(errno));
        goto done;
    }
    rc = ibs_buf_oom(&b);
    if (!rc)
        *out = ibs_buf_detach(&b);
done:
    fclose(f);
    ibs_buf_release(&b);
    return rc;
}

/* The known_hosts line an entry of a libssh2 known-hosts collection came from. */
struct kh_origin {
    struct libssh2_knownhost *entry; /* owned by the collection */
    unsigned line;
};

/* A libssh2 known-hosts collection, and where each of its entries came from. */
struct kh_set {
    LIBSSH2_KNOWNHOSTS *hosts;
    struct kh_origin *origins; /* in the collection's order, which is the file's */
    size_t count;
    size_t cap;
};

/*
 * One known_hosts file, loaded into libssh2 for one host name. libssh2
 * (1.10) parses entries, computes the HMAC-SHA1 of hashed ones and compares
 * keys, but reads a marker such as "@revoked" as a host name, and compares
 * plain host names with strcmp(): no '*' or '?' patterns, no "!" negation,
 * case-sensitive. So markers and plain host fields are dealt with here (see
 * known_hosts_load()), and @revoked lines go into a collection of their own.
 */
struct known_hosts {
    LIBSSH2_SESSION *session; /* never connected: libssh2's collections need one */
    struct kh_set keys;       /* lines without a marker */
    struct kh_set revoked;    /* @revoked lines */
};

static int kh_set_init(struct kh_set *out, LIBSSH2_SESSION *session)
{
    out->hosts = libssh2_knownhost_init(session);
    return out->hosts ? 0 : ibs_error_oom();
}

static void kh_set_release(struct kh_set *set)
{
    if (set->hosts)
        libssh2_knownhost_free(set->hosts);
    free(set->origins);
    memset(set, 0, sizeof(*set));
}

/*
 * Hands known_hosts line `line` (number `line_no`) to libssh2 and notes the
 * line of the entries it adds. A line libssh2 cannot parse (a key too short,
 * a hash that is not base64) is skipped, as OpenSSH skips it.
 */
static int kh_set_add(struct kh_set *set, const char *line, size_t len, unsigned line_no)
{
    struct libssh2_knownhost *prev, *entry = NULL;
    int rc;

    rc = libssh2_knownhost_readline(set->hosts, line, len, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
    if (rc == LIBSSH2_ERROR_ALLOC)
        return ibs_error_oom();
    prev = set->count ? set->origins[set->count - 1].entry : NULL;
    while (libssh2_knownhost_get(set->hosts, &entry, prev) == 0) {
        if (set->count == set->cap) {
            size_t cap = set->cap ? set->cap * 2 : 16;
            struct kh_origin *grown = realloc(set->origins, cap * sizeof(*grown));
            if (!grown)
                return ibs_error_oom();
            set->origins = grown;
            set->cap = cap;
        }
        set->origins[set->count].entry = entry;
        set->origins[set->count].line = line_no;
        set->count++;
        prev = entry;
    }
    return 0;
}

/* The known_hosts line of `entry`, an entry of `set`. */
static unsigned kh_set_line(const struct kh_set *set, const struct libssh2_knownhost *entry)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->origins[i].entry == entry)
            return set->origins[i].line;
    return 0;
}

static void known_hosts_release(struct known_hosts *kh)
{
    kh_set_release(&kh->keys);
    kh_set_release(&kh->revoked);
    if (kh->session)
        libssh2_session_free(kh->session);
    kh->session = NULL;
}

/*
 * Loads the lines of known_hosts text `text` ("[@marker] hosts keytype
 * base64-key [comment]", '#' comments) that may concern host `name` into
 * `kh`: hashed host fields ("|1|salt|hash") as they are, for libssh2 to
 * match; plain host fields only when they match `name`, handed over as
 * `name` itself. @cert-authority lines are skipped: libgit2 hands over no
 * certificates. libgit2's initialisation has initialised libssh2.
 */
static int known_hosts_load(struct known_hosts *kh, char *text, const char *name)
{
    struct ibs_buf entry = IBS_BUF_INIT;
    unsigned line_no = 0;
    int rc;

    kh->session = libssh2_session_init();
    if (!kh->session) {
        rc = ibs_error_oom();
        goto done;
    }
    rc = kh_set_init(&kh->keys, kh->session);
    if (!rc)
        rc = kh_set_init(&kh->revoked, kh->session);
    if (rc)
        goto done;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        const char *field[4] = {NULL, NULL, NULL, NULL};
        size_t len[4] = {0, 0, 0, 0}, count = 0;
        struct kh_set *set = &kh->keys;

        if (next)
            *next++ = '\0';
        line_no++;
        for (char *p = line; *p && count < 4;) {
            p += strspn(p, " \t\r");
            if (!*p)
                break;
            field[count] = p;
            len[count] = strcspn(p, " \t\r");
            p += len[count];
            count++;
        }
        line = next;
        if (count == 0 || field[0][0] == '#')
            continue;
        if (field[0][0] == '@') {
            if (len[0] != 8 || memcmp(field[0], "@revoked", 8) != 0)
                continue;
            set = &kh->revoked;
            memmove(field, field + 1, sizeof(field[0]) * 3);
            memmove(len, len + 1, sizeof(len[0]) * 3);
            count--;
        }
        if (count < 3)
            continue;
        ibs_buf_clear(&entry);
        if (len[0] > 3 && !memcmp(field[0], "|1|", 3))
            ibs_buf_put(&entry, field[0], len[0]);
        else if (hosts_match(field[0], len[0], name))
            ibs_buf_puts(&entry, name);
        else
            continue;
        ibs_buf_putc(&entry, ' ');
        ibs_buf_put(&entry, field[1], len[1]);
        ibs_buf_putc(&entry, ' ');
        ibs_buf_put(&entry, field[2], len[2]);
        rc = ibs_buf_oom(&entry);
        if (!rc)
            rc = kh_set_add(set, entry.ptr, entry.size, line_no);
        if (rc)
            goto done;
    }
done:
    ibs_buf_release(&entry);
    return rc;
}

/* libssh2's known-hosts key type of the server's key; 0 (any) when unknown. */
static int known_hosts_key_type(const git_cert_hostkey *cert)
{
    switch (cert->raw_type) {
    case GIT_CERT_SSH_RAW_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case GIT_CERT_SSH_RAW_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
        return 0;
    }
}

enum host_key_verdict {
    IBS_HOSTKEY_UNKNOWN,     /* no line for the host */
    IBS_HOSTKEY_OTHER_TYPES, /* lines for the host, with keys of other types only */
    IBS_HOSTKEY_MISMATCH,    /* a line for the host with another key of the same type */
    IBS_HOSTKEY_MATCH,
    IBS_HOSTKEY_REVOKED, /* the key is marked @revoked */
    IBS_HOSTKEY_FAILED,  /* libssh2 could not check (*out_line is 0) */
};

/*
 * Checks the server's key `key->cert` (GIT_CERT_SSH_RAW) for `key->name`
 * against `set`: a libssh2 LIBSSH2_KNOWNHOST_CHECK_* verdict, the matching
 * (or first mismatching) entry's line in *out_line. `key_type` 0 compares
 * the key with the host's entries of every type.
 */
static int known_hosts_check(unsigned *out_line, const struct kh_set *set,
                             const struct host_key *key, int key_type)
{
    struct libssh2_knownhost *entry = NULL;
    int verdict;

    /*
     * Port -1: the name is "[host]:port" already. Given the port, libssh2
     * would also accept the plain "host" entries, the host's keys on port
     * 22, which OpenSSH does not.
     */
    verdict = libssh2_knownhost_checkp(
        set->hosts, key->name.ptr, -1, key->cert->hostkey, key->cert->hostkey_len,
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_type, &entry);
    *out_line = entry && (verdict == LIBSSH2_KNOWNHOST_CHECK_MATCH ||
                          verdict == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
                    ? kh_set_line(set, entry)
                    : 0;
    return verdict;
}

/*
 * Looks the server's key up in `kh`, as OpenSSH does: @revoked wins over
 * everything (whatever type its line names: the key is what is revoked),
 * then a matching key, then a key of the same type that differs
 * (*out_line: its line number), then keys of other types.
 */
static enum host_key_verdict host_key_lookup(unsigned *out_line, const struct known_hosts *kh,
                                             const struct host_key *key)
{
    int type = known_hosts_key_type(key->cert);
    int verdict;

    verdict = known_hosts_check(out_line, &kh->revoked, key, 0);
    if (verdict == LIBSSH2_KNOWNHOST_CHECK_MATCH)
        return IBS_HOSTKEY_REVOKED;
    if (verdict == LIBSSH2_KNOWNHOST_CHECK_FAILURE)
        return IBS_HOSTKEY_FAILED;
    verdict = known_hosts_check(out_line, &kh->keys, key, type);
    if (verdict == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && type != 0) {
        /* No key of the server's type: the host's keys of any type tell "other types" apart. */
        verdict = known_hosts_check(out_line, &kh->keys, key, 0);
        *out_line = 0;
        if (verdict == LIBSSH2_KNOWNHOST_CHECK_MATCH || verdict == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
            return IBS_HOSTKEY_OTHER_TYPES;
    }
    switch (verdict) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        return IBS_HOSTKEY_MATCH;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        return IBS_HOSTKEY_MISMATCH;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
        return IBS_HOSTKEY_UNKNOWN;
    default:
        return IBS_HOSTKEY_FAILED;
    }
}

/* libssh2's last error message in `kh`'s session. */
static const char *known_hosts_error(const struct known_hosts *kh)
{
    char *msg = NULL;

    libssh2_session_last_error(kh->session, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown libssh2 error";
}

/*
 * Verifies the SSH server's host key against the caller's known_hosts file.
 * libgit2's own verdict (`valid`: 1.5.1 checks $HOME/.ssh/known_hosts, 1.5.0
 * nothing) is ignored. Returns 0 to go on, else GIT_ECERTIFICATE with the
 * reason recorded.
 */
static int verify_host_key(struct fetch_context *ctx, const git_cert_hostkey *cert,
                           const char *host)
{
    const struct repo_location *loc = ctx->loc;
    const char *file = loc->opts ? loc->opts->known_hosts : NULL;
    struct host_key key = {cert, IBS_BUF_INIT, IBS_BUF_INIT, IBS_BUF_INIT};
    struct known_hosts kh;
    unsigned line = 0;
    char *text = NULL;
    int rc;

    memset(&kh, 0, sizeof(kh));
    rc = host_key_init(&key, cert, host ? host : "", loc->port ? loc->port : IBS_GIT_SSH_PORT);
    if (rc)
        goto done;
    if (!(cert->type & GIT_CERT_SSH_RAW)) {
        rc = refuse(ctx, GIT_ECERTIFICATE, "libgit2 did not provide the host key of %s",
                    key.name.ptr);
        goto done;
    }
    if (!file || !*file) {
        rc = refuse(ctx, GIT_ECERTIFICATE,
                    "no known_hosts file was given to verify the host key of %s (%s)", key.name.ptr,
                    key.shown.ptr);
        goto done;
    }
    rc = read_known_hosts(&text, file);
    if (rc) {
        rc = refuse(ctx, GIT_ECERTIFICATE, "%s", ibs_error_last()->message);
        goto done;
    }
    rc = known_hosts_load(&kh, text, key.name.ptr);
    if (rc)
        goto done;
    switch (host_key_lookup(&line, &kh, &key)) {
    case IBS_HOSTKEY_MATCH:
        break;
    case IBS_HOSTKEY_UNKNOWN:
        rc = refuse(ctx, GIT_ECERTIFICATE,
                    "%s is not in known_hosts file \"%s\" (the server's key is %s)", key.name.ptr,
                    file, key.shown.ptr);
        break;
    case IBS_HOSTKEY_OTHER_TYPES:
        rc = refuse(ctx, GIT_ECERTIFICATE,
                    "known_hosts file \"%s\" has keys of other types only for %s (the server's "
                    "key is %s)",
                    file, key.name.ptr, key.shown.ptr);
        break;
    case IBS_HOSTKEY_MISMATCH:
        rc = refuse(ctx, GIT_ECERTIFICATE,
                    "the host key of %s (%s) does not match line %u of known_hosts file \"%s\": "
                    "the key changed, or someone is intercepting the connection",
                    key.name.ptr, key.shown.ptr, line, file);
        break;
    case IBS_HOSTKEY_REVOKED:
        rc = refuse(ctx, GIT_ECERTIFICATE,
                    "the host key of %s (%s) is revoked at line %u of known_hosts file \"%s\"",
                    key.name.ptr, key.shown.ptr, line, file);
        break;
    case IBS_HOSTKEY_FAILED:
        rc = refuse(ctx, GIT_ECERTIFICATE,
                    "cannot look up %s in known_hosts file \"%s\" (the server's key is %s): %s",
                    key.name.ptr, file, key.shown.ptr, known_hosts_error(&kh));
        break;
    }
done:
    if (rc && !ctx->failure_code) {
        /* Out of memory: kept for fetch_origin() to report, rather than libgit2's words. */
        ctx->failure_code = rc;
        ibs_buf_puts(&ctx->failure, ibs_error_last()->message);
        rc = -1;
    }
    known_hosts_release(&kh);
    free(text);
    host_key_release(&key);
    return rc;
}

/*
 * libgit2's certificate callback: SSH host keys are verified here; TLS
 * certificates are left to libgit2's own verification (system CAs).
 */
static int check_certificate(git_cert *cert, int valid, const char *host, void *payload)
{
    (void)valid;
    if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
        return GIT_PASSTHROUGH;
    return verify_host_key(payload, (const git_cert_hostkey *)cert, host);
}

/*
 * Every fetch is configured here, so that authentication (credential and
 * certificate callbacks, which get `ctx` as payload) has a single place.
 */
static void fetch_options_setup(git_fetch_options *out, struct fetch_context *ctx)
{
    git_fetch_options_init(out, GIT_FETCH_OPTIONS_VERSION);
    out->callbacks.credentials = acquire_credentials;
    out->callbacks.certificate_check = check_certificate;
    out->callbacks.payload = ctx;
    out->prune = GIT_FETCH_PRUNE;
    out->download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
    out->update_fetchhead = 0;
}

/*
 * Copies into `out` libssh2's reason when libgit2's last error says that SSH
 * authentication failed without the server refusing the key: libssh2 could
 * not load or unlock it (wrong passphrase, unsupported format). Returns
 * whether it did.
 */
static bool ssh_key_unusable(struct ibs_buf *out)
{
    static const char prefix[] = "Failed to authenticate SSH session: ";
    const git_error *e = git_error_last();

    if (!e || e->klass != GIT_ERROR_SSH || !e->message ||
        strncmp(e->message, prefix, sizeof(prefix) - 1) != 0)
        return false;
    ibs_buf_puts(out, e->message + sizeof(prefix) - 1);
    return true;
}

/* Whether the last libgit2 error says the local repository itself is damaged. */
static bool repository_damaged(void)
{
    const git_error *e = git_error_last();

    if (!e)
        return false;
    switch (e->klass) {
    case GIT_ERROR_ODB:
    case GIT_ERROR_OBJECT:
    case GIT_ERROR_REFERENCE:
    case GIT_ERROR_REPOSITORY:
    case GIT_ERROR_CONFIG:
    case GIT_ERROR_ZLIB:
        return true;
    default:
        return false;
    }
}

/*
 * Points refs/remotes/origin/HEAD at the remote's default branch and
 * detaches the cache's HEAD there, so that "HEAD", "HEAD~1" and a NULL ref
 * mean what they mean in a clone. A remote without branches is left alone.
 */
static int update_remote_head(git_repository *repo, git_remote *remote,
                              const struct repo_location *loc)
{
    static const char heads[] = "refs/heads/";
    git_buf head = GIT_BUF_INIT;
    git_reference *ref = NULL;
    struct ibs_buf target = IBS_BUF_INIT;
    git_oid oid;
    int err, rc = 0;

    err = git_remote_default_branch(&head, remote);
    if (err == GIT_ENOTFOUND)
        goto done;
    if (err) {
        rc = gsrc_fail(IBS_EIO, loc, "cannot find the default branch of %s", loc->display);
        goto done;
    }
    if (strncmp(head.ptr, heads, sizeof(heads) - 1) != 0)
        goto done;
    ibs_buf_printf(&target, "refs/remotes/" IBS_GIT_REMOTE "/%s", head.ptr + sizeof(heads) - 1);
    rc = ibs_buf_oom(&target);
    if (rc)
        goto done;
    err = git_reference_name_to_id(&oid, repo, target.ptr);
    if (err == GIT_ENOTFOUND)
        goto done;
    if (!err)
        err = git_reference_symbolic_create(&ref, repo, IBS_GIT_REMOTE_HEAD, target.ptr, 1,
                                            "ibsync: remote HEAD");
    if (!err)
        err = git_repository_set_head_detached(repo, &oid);
    if (err)
        rc = gsrc_fail(IBS_EIO, loc, "cannot record the default branch of %s", loc->display);
done:
    git_reference_free(ref);
    git_buf_dispose(&head);
    ibs_buf_release(&target);
    return rc;
}

/*
 * Deletes the cache's tags that do not lead to a commit (tags of trees or
 * blobs). libgit2 1.5's local transport (file:// URLs) hides every local ref
 * in its revision walk and fails with "object is not a committish" on such a
 * tag as soon as a fetch has anything to transfer. The fetch that follows
 * recreates the tags the remote still has.
 */
static int drop_non_commit_tags(git_repository *repo, const struct repo_location *loc)
{
    git_reference_iterator *it = NULL;
    git_reference *ref = NULL;
    git_object *obj = NULL;
    struct ibs_vec names = IBS_VEC_INIT;
    char *name;
    int err, rc = 0;

    err = git_reference_iterator_glob_new(&it, repo, "refs/tags/*");
    while (!err && (err = git_reference_next(&ref, it)) == 0) {
        if (git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT) != 0) {
            /* Deleted after the walk: the iterator may be reading packed-refs. */
            rc = ibs_source_strdup(&name, git_reference_name(ref));
            if (!rc)
                rc = ibs_vec_push(&names, name);
            if (rc) {
                free(name);
                goto done;
            }
        }
        git_object_free(obj);
        obj = NULL;
        git_reference_free(ref);
        ref = NULL;
    }
    if (err != GIT_ITEROVER) {
        rc = gsrc_fail(IBS_EIO, loc, "cannot list the tags of the cache of %s", loc->display);
        goto done;
    }
    for (size_t i = 0; i < names.count; i++) {
        err = git_reference_remove(repo, names.items[i]);
        if (err && err != GIT_ENOTFOUND) {
            rc = gsrc_fail(IBS_EIO, loc, "cannot update the cache of %s", loc->display);
            goto done;
        }
    }
done:
    git_object_free(obj);
    git_reference_free(ref);
    git_reference_iterator_free(it);
    ibs_vec_release_with(&names, free);
    return rc;
}

static bool is_file_url(const char *url)
{
    return !strncasecmp(url, "file://", 7);
}

/*
 * Fetches every branch and tag of `url` into the cache `repo`, pruning what
 * the remote deleted. *out_damaged tells whether a failure came from the
 * local repository (worth deleting and fetching again) rather than from the
 * network or the remote.
 */
static int fetch_origin(bool *out_damaged, git_repository *repo, const struct repo_location *loc,
                        const char *url)
{
    static char branch_spec[] = IBS_GIT_BRANCH_SPEC, tag_spec[] = IBS_GIT_TAG_SPEC;
    char *spec_list[] = {branch_spec, tag_spec};
    git_strarray specs = {spec_list, 2};
    struct fetch_context ctx = {loc, 0, 0, IBS_BUF_INIT, 0, IBS_BUF_INIT};
    struct ibs_buf reason = IBS_BUF_INIT;
    git_remote_create_options co;
    git_fetch_options fo;
    git_remote *remote = NULL;
    int err, rc = 0;

    *out_damaged = false;
    /*
     * An in-memory remote with explicit refspecs rather than the configured
     * "origin": libgit2 1.5 leaks pcre2 match data for every configuration
     * entry each time it looks up or creates a named remote (or applies
     * url.*.insteadOf), which a long-running reconciler cannot afford. The
     * real URL, credentials included, thus lives in memory only.
     */
    git_remote_create_options_init(&co, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    co.repository = repo;
    co.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    err = git_remote_create_with_opts(&remote, url, &co);
    if (err) {
        rc = gsrc_fail(map_git_error(err, IBS_EINVALID), loc, "cannot use %s", loc->display);
        goto done;
    }
    if (is_file_url(url)) {
        rc = drop_non_commit_tags(repo, loc);
        if (rc)
            goto done;
    }
    fetch_options_setup(&fo, &ctx);
    err = git_remote_fetch(remote, &specs, &fo, "ibsync: fetch");
    if (err && !ctx.failure_code && ctx.keys_sent && ssh_key_unusable(&reason))
        refuse(&ctx, GIT_EAUTH, "SSH key \"%s\" cannot be used: %s", loc->opts->ssh_key,
               reason.ptr);
    if (err && ctx.failure_code) {
        /* A callback said why; scrubbed all the same, as it may quote libssh2. */
        scrub_secrets(&ctx.failure, loc);
        rc = ibs_buf_oom(&ctx.failure);
        if (!rc)
            rc = ibs_error_set(ctx.failure_code, "%s", ctx.failure.ptr);
        goto done;
    }
    if (err == GIT_EAUTH) {
        rc = gsrc_fail_auth(loc, "authentication failed for %s", loc->display);
        goto done;
    }
    if (err) {
        /* A lock held by a concurrent run is no damage: never delete under its feet. */
        *out_damaged = err != GIT_ELOCKED && repository_damaged();
        rc = gsrc_fail(map_git_error(err, IBS_EIO), loc, "cannot fetch %s", loc->display);
        goto done;
    }
    rc = update_remote_head(repo, remote, loc);
done:
    ibs_buf_release(&reason);
    ibs_buf_release(&ctx.user);
    ibs_buf_release(&ctx.failure);
    git_remote_free(remote);
    return rc;
}

/* Opens an existing cache and fetches into it. */
static int cache_update(git_repository **out, bool *out_damaged, const char *path,
                        const struct repo_location *loc, const char *url)
{
    git_repository *repo = NULL;
    int err, rc = 0;

    *out = NULL;
    *out_damaged = false;
    err = git_repository_open_ext(&repo, path,
                                  GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
    if (err) {
        *out_damaged = err != GIT_EOWNER;
        rc = gsrc_fail(map_git_error(err, IBS_EIO), loc, "cannot open cache \"%s\"", path);
        goto done;
    }
    rc = fetch_origin(out_damaged, repo, loc, url);
    if (rc)
        goto done;
    *out = repo;
    repo = NULL;
done:
    git_repository_free(repo);
    return rc;
}

/*
 * Creates the cache at `path`: a bare repository with remote "origin"
 * (credential-free URL), fetched in a temporary directory next to `path`
 * and renamed into place.
 */
static int cache_create(git_repository **out, const char *path, const struct repo_location *loc,
                        const char *url)
{
    git_repository *repo = NULL;
    git_config *config = NULL;
    struct ibs_buf tmp = IBS_BUF_INIT;
    bool made = false, damaged;
    int err, rc = 0;

    *out = NULL;
    ibs_buf_printf(&tmp, "%s.tmp-XXXXXX", path);
    rc = ibs_buf_oom(&tmp);
    if (rc)
        goto done;
    if (!mkdtemp(tmp.ptr)) {
        rc = ibs_error_set(IBS_EIO, "cannot create \"%s\": %s", tmp.ptr, strerror(errno));
        goto done;
    }
    made = true;
    err = git_repository_init(&repo, tmp.ptr, 1);
    if (!err)
        err = git_repository_config(&config, repo);
    /* For people looking into the cache with git; ibsync itself does not read it. */
    if (!err)
        err = git_config_set_string(config, "remote." IBS_GIT_REMOTE ".url", loc->display);
    if (!err)
        err = git_config_set_string(config, "remote." IBS_GIT_REMOTE ".fetch", IBS_GIT_BRANCH_SPEC);
    if (err) {
        rc = gsrc_fail(IBS_EIO, loc, "cannot create cache \"%s\"", tmp.ptr);
        goto done;
    }
    rc = fetch_origin(&damaged, repo, loc, url);
    if (rc)
        goto done;
    git_repository_free(repo);
    repo = NULL;
    if (rename(tmp.ptr, path) != 0) {
        /* Another run created the cache meanwhile: use theirs, it is just as fresh. */
        if (errno != EEXIST && errno != ENOTEMPTY) {
            rc = ibs_error_set(IBS_EIO, "cannot rename \"%s\" to \"%s\": %s", tmp.ptr, path,
                               strerror(errno));
            goto done;
        }
    } else {
        made = false;
    }
    err = git_repository_open_ext(&repo, path,
                                  GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
    if (err) {
        rc = gsrc_fail(IBS_EIO, loc, "cannot open cache \"%s\"", path);
        goto done;
    }
    *out = repo;
    repo = NULL;
done:
    git_config_free(config);
    git_repository_free(repo);
    if (made)
        remove_tree(tmp.ptr);
    ibs_buf_release(&tmp);
    return rc;
}

/* Opens (fetching) or creates the cache of remote `loc` under `cache_dir`. */
static int open_remote(git_repository **out, const struct repo_location *loc, const char *url,
                       const char *cache_dir)
{
    struct ibs_buf path = IBS_BUF_INIT;
    char *name = NULL;
    struct stat st;
    bool damaged;
    int rc;

    *out = NULL;
    if (!cache_dir || !*cache_dir) {
        rc = ibs_error_set(IBS_EINVALID, "a cache directory is required to fetch %s", loc->display);
        goto done;
    }
    rc = make_dirs(cache_dir);
    if (!rc)
        rc = cache_name(&name, loc);
    if (rc)
        goto done;
    ibs_buf_printf(&path, "%s/%s", cache_dir, name);
    rc = ibs_buf_oom(&path);
    if (rc)
        goto done;
    if (lstat(path.ptr, &st) == 0) {
        rc = cache_update(out, &damaged, path.ptr, loc, url);
        if (!rc || !damaged)
            goto done;
        /* A cache we cannot use is only a cache: start it again. */
        rc = remove_tree(path.ptr);
        if (rc)
            goto done;
    } else if (errno != ENOENT) {
        rc = ibs_error_set(IBS_EIO, "cannot access cache \"%s\": %s", path.ptr, strerror(errno));
        goto done;
    }
    rc = cache_create(out, path.ptr, loc, url);
done:
    ibs_buf_release(&path);
    free(name);
    return rc;
}

static int open_local(git_repository **out, const struct repo_location *loc)
{
    struct stat st;
    int err, rc = 0;

    *out = NULL;
    if (stat(loc->display, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = ibs_error_set(IBS_ENOTFOUND, "repository \"%s\" does not exist", loc->display);
        else
            rc = ibs_error_set(IBS_EIO, "cannot access repository \"%s\": %s", loc->display,
                               strerror(errno));
        goto done;
    }
    err = git_repository_open_ext(out, loc->display, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (err == GIT_ENOTFOUND)
        rc = ibs_error_set(IBS_EINVALID, "\"%s\" is not a git repository", loc->display);
    else if (err)
        rc = gsrc_fail(map_git_error(err, IBS_EIO), loc, "cannot open repository \"%s\"",
                       loc->display);
done:
    return rc;
}

/* Peels `ref` to a commit; IBS_EINVALID when it names something else. */
static int peel_reference(git_commit **out, git_reference *ref, const char *name,
                          const struct repo_location *loc)
{
    git_object *obj = NULL;
    int err, rc = 0;

    err = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);
    /* A symbolic ref to a branch without commits yet (an empty repository) is not found. */
    if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH)
        rc = ibs_error_set(IBS_ENOTFOUND, "ref \"%s\" not found in %s", name, loc->display);
    else if (err)
        rc = ibs_error_set(IBS_EINVALID, "ref \"%s\" in %s does not point to a commit", name,
                           loc->display);
    else
        *out = (git_commit *)obj;
    return rc;
}

/*
 * Resolves `ref` to a commit: as a full ref name, a local branch, a branch
 * of origin, a tag, then any revision expression git understands
 * (abbreviated ids, HEAD~1, ...). NULL means HEAD (origin's HEAD in a cache).
 */
static int resolve_commit(git_commit **out, git_repository *repo, const char *ref,
                          const struct repo_location *loc)
{
    static const char *const prefixes[] = {"", "refs/heads/", "refs/remotes/" IBS_GIT_REMOTE "/",
                                           "refs/tags/"};
    const char *shown = ref ? ref : "HEAD";
    struct ibs_buf name = IBS_BUF_INIT;
    git_reference *r = NULL;
    git_object *obj = NULL;
    int err, rc = 0;

    *out = NULL;
    if (!ref) {
        err = git_reference_lookup(&r, repo, loc->remote ? IBS_GIT_REMOTE_HEAD : "HEAD");
        if (err == GIT_ENOTFOUND || err == GIT_EUNBORNBRANCH)
            rc = ibs_error_set(IBS_ENOTFOUND, "ref \"HEAD\" not found in %s", loc->display);
        else if (err)
            rc = gsrc_fail(IBS_EIO, loc, "cannot read HEAD of %s", loc->display);
        else
            rc = peel_reference(out, r, shown, loc);
        goto done;
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        ibs_buf_clear(&name);
        ibs_buf_printf(&name, "%s%s", prefixes[i], ref);
        rc = ibs_buf_oom(&name);
        if (rc)
            goto done;
        err = git_reference_lookup(&r, repo, name.ptr);
        if (!err) {
            rc = peel_reference(out, r, shown, loc);
            goto done;
        }
        /* Not a valid ref name ("main" alone, an id, "HEAD~1") is just "not this one". */
        if (err != GIT_ENOTFOUND && err != GIT_EINVALIDSPEC) {
            rc = gsrc_fail(IBS_EIO, loc, "cannot look up ref \"%s\" in %s", ref, loc->display);
            goto done;
        }
    }
    err = git_revparse_single(&obj, repo, ref);
    if (err == GIT_ENOTFOUND || err == GIT_EINVALIDSPEC) {
        rc = ibs_error_set(IBS_ENOTFOUND, "ref \"%s\" not found in %s", ref, loc->display);
        goto done;
    }
    if (err == GIT_EAMBIGUOUS) {
        rc = ibs_error_set(IBS_EINVALID, "ref \"%s\" is ambiguous in %s", ref, loc->display);
        goto done;
    }
    if (err) {
        rc = gsrc_fail(IBS_EIO, loc, "cannot resolve ref \"%s\" in %s", ref, loc->display);
        goto done;
    }
    if (git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT) != 0)
        rc = ibs_error_set(IBS_EINVALID, "ref \"%s\" in %s does not point to a commit", ref,
                           loc->display);
done:
    git_object_free(obj);
    git_reference_free(r);
    ibs_buf_release(&name);
    return rc;
}

/* The tree at `path` ("" for the top) of `commit`. */
static int find_root(git_tree **out, git_repository *repo, git_commit *commit, const char *path,
                     const char *ref)
{
    char sha[GIT_OID_HEXSZ + 1];
    git_tree *top = NULL;
    git_tree_entry *entry = NULL;
    const char *what = NULL;
    int err, rc = 0;

    *out = NULL;
    git_oid_tostr(sha, sizeof(sha), git_commit_id(commit));
    if (git_commit_tree(&top, commit) != 0) {
        rc = gsrc_fail(IBS_EIO, NULL, "cannot read the tree of commit %.7s", sha);
        goto done;
    }
    if (!*path) {
        *out = top;
        top = NULL;
        goto done;
    }
    err = git_tree_entry_bypath(&entry, top, path);
    if (err == GIT_ENOTFOUND) {
        rc = ibs_error_set(IBS_ENOTFOUND, "path \"%s\" not found at %s (commit %.7s)", path, ref,
                           sha);
        goto done;
    }
    if (err) {
        rc = gsrc_fail(IBS_EIO, NULL, "cannot look up \"%s\" at %s (commit %.7s)", path, ref, sha);
        goto done;
    }
    switch (git_tree_entry_filemode(entry)) {
    case GIT_FILEMODE_TREE:
        if (git_tree_lookup(out, repo, git_tree_entry_id(entry)) != 0)
            rc = gsrc_fail(IBS_EIO, NULL, "cannot read \"%s\" at %s (commit %.7s)", path, ref, sha);
        goto done;
    case GIT_FILEMODE_LINK:
        what = "a symbolic link";
        break;
    case GIT_FILEMODE_COMMIT:
        what = "a submodule";
        break;
    default:
        what = "a file";
        break;
    }
    rc = ibs_error_set(IBS_EINVALID, "path \"%s\" at %s (commit %.7s) is %s, not a directory", path,
                       ref, sha, what);
done:
    git_tree_entry_free(entry);
    git_tree_free(top);
    return rc;
}

struct walk_context {
    struct ibs_vec *out;
    int rc;
};

static int walk_entry(const char *prefix, const git_tree_entry *entry, void *payload)
{
    struct walk_context *ctx = payload;
    const char *name = git_tree_entry_name(entry);
    git_filemode_t mode = git_tree_entry_filemode(entry);
    struct ibs_buf path = IBS_BUF_INIT;
    char *copy;

    /* In pre-order a positive return skips the subtree. */
    if (mode == GIT_FILEMODE_TREE)
        return name[0] == '.' ? 1 : 0;
    if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
        return 0;
    ibs_buf_printf(&path, "%s%s", prefix, name);
    copy = ibs_buf_detach(&path);
    ctx->rc = copy ? ibs_vec_push(ctx->out, copy) : IBS_ENOMEM;
    if (ctx->rc) {
        free(copy);
        return -1;
    }
    return 0;
}

static int gsrc_list(struct ibs_vec *out, struct ibs_source *src)
{
    struct gsrc *gs = (struct gsrc *)src;
    struct walk_context ctx = {out, 0};
    int err;

    err = git_tree_walk(gs->root, GIT_TREEWALK_PRE, walk_entry, &ctx);
    if (ctx.rc)
        return ctx.rc;
    if (err)
        return gsrc_fail(IBS_EIO, NULL, "cannot list %s", src->description);
    return 0;
}

static int gsrc_read(char **out, size_t *out_len, struct ibs_source *src, const char *path,
                     size_t max_size)
{
    struct gsrc *gs = (struct gsrc *)src;
    const git_tree *tree = gs->root;
    git_tree *owned = NULL;
    git_blob *blob = NULL;
    const git_tree_entry *entry = NULL;
    char *comp = NULL, *data;
    const char *p = path;
    git_object_size_t size;
    int rc = 0;

    if (!*path) {
        rc = ibs_error_set(IBS_EINVALID, "\"%s\" is not a regular file", path);
        goto done;
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        size_t prefix = (size_t)(p - path) + n;
        git_tree *next;

        free(comp);
        comp = strndup(p, n);
        if (!comp) {
            rc = ibs_error_oom();
            goto done;
        }
        entry = git_tree_entry_byname(tree, comp);
        if (!entry || (slash && git_tree_entry_type(entry) != GIT_OBJECT_TREE &&
                       git_tree_entry_filemode(entry) != GIT_FILEMODE_LINK)) {
            rc =
                ibs_error_set(IBS_ENOTFOUND, "file \"%s\" not found in %s", path, src->description);
            goto done;
        }
        if (git_tree_entry_filemode(entry) == GIT_FILEMODE_LINK) {
            rc = ibs_error_set(IBS_EINVALID, "\"%.*s\" is a symbolic link", (int)prefix, path);
            goto done;
        }
        if (!slash)
            break;
        if (git_tree_lookup(&next, git_tree_owner(tree), git_tree_entry_id(entry)) != 0) {
            rc = gsrc_fail(IBS_EIO, NULL, "cannot read \"%.*s\" in %s", (int)prefix, path,
                           src->description);
            goto done;
        }
        git_tree_free(owned);
        tree = owned = next;
        p = slash + 1;
    }
    if (git_tree_entry_filemode(entry) != GIT_FILEMODE_BLOB &&
        git_tree_entry_filemode(entry) != GIT_FILEMODE_BLOB_EXECUTABLE) {
        rc = ibs_error_set(IBS_EINVALID, "\"%s\" is not a regular file", path);
        goto done;
    }
    if (git_blob_lookup(&blob, gs->repo, git_tree_entry_id(entry)) != 0) {
        rc = gsrc_fail(IBS_EIO, NULL, "cannot read \"%s\" in %s", path, src->description);
        goto done;
    }
    size = git_blob_rawsize(blob);
    if (size > max_size) {
        rc = ibs_source_too_big(path, (unsigned long long)size, max_size);
        goto done;
    }
    data = malloc((size_t)size + 1);
    if (!data) {
        rc = ibs_error_oom();
        goto done;
    }
    memcpy(data, git_blob_rawcontent(blob), (size_t)size);
    data[size] = '\0';
    *out = data;
    *out_len = (size_t)size;
done:
    git_blob_free(blob);
    git_tree_free(owned);
    free(comp);
    return rc;
}

static void gsrc_free(struct ibs_source *src)
{
    struct gsrc *gs = (struct gsrc *)src;
    git_tree_free(gs->root);
    git_repository_free(gs->repo);
    free(gs);
}

static const struct ibs_source_ops gsrc_ops = {
    .kind = "git",
    .list = gsrc_list,
    .read = gsrc_read,
    .free = gsrc_free,
};

/* The default name: the last component of the sub-path, else of the repository. */
static int source_name(char **out, const struct repo_location *loc, git_repository *repo,
                       const char *path)
{
    const char *slash, *dir;

    if (*path) {
        slash = strrchr(path, '/');
        return ibs_source_strdup(out, slash ? slash + 1 : path);
    }
    if (loc->remote)
        return repo_basename(out, loc->host_path);
    dir = git_repository_workdir(repo);
    return repo_basename(out, dir ? dir : git_repository_path(repo));
}

int ibs_source_open_git(struct ibs_source **out, const struct ibs_git_options *opts)
{
    struct repo_location loc;
    struct gsrc *gs = NULL;
    git_commit *commit = NULL;
    struct ibs_buf desc = IBS_BUF_INIT;
    char *path = NULL;
    char sha[GIT_OID_HEXSZ + 1];
    const char *ref;
    int rc;

    *out = NULL;
    memset(&loc, 0, sizeof(loc));
    if (!opts || !opts->repo || !*opts->repo) {
        rc = ibs_error_set(IBS_EINVALID, "no git repository given");
        goto done;
    }
    ref = opts->ref && *opts->ref ? opts->ref : NULL;
    rc = gsrc_global_init();
    if (!rc)
        rc = location_parse(&loc, opts->repo);
    if (!rc)
        rc = ibs_source_normalize(&path, NULL, opts->path ? opts->path : "");
    if (rc)
        goto done;
    gs = calloc(1, sizeof(*gs));
    if (!gs) {
        rc = ibs_error_oom();
        goto done;
    }
    gs->base.ops = &gsrc_ops;
    if (loc.remote) {
        rc = auth_prepare(&loc, opts);
        if (!rc)
            rc = open_remote(&gs->repo, &loc, opts->repo, opts->cache_dir);
    } else {
        rc = open_local(&gs->repo, &loc);
    }
    if (!rc)
        rc = resolve_commit(&commit, gs->repo, ref, &loc);
    if (!rc)
        rc = find_root(&gs->root, gs->repo, commit, path, ref ? ref : "HEAD");
    if (rc)
        goto done;
    git_oid_tostr(sha, sizeof(sha), git_commit_id(commit));
    ibs_buf_printf(&desc, "%s@%s%s%s (commit %.12s)", loc.display, ref ? ref : "HEAD",
                   *path ? ":" : "", path, sha);
    gs->base.description = ibs_buf_detach(&desc);
    if (!gs->base.description) {
        rc = IBS_ENOMEM;
        goto done;
    }
    rc = ibs_source_strdup(&gs->base.commit, sha);
    if (!rc)
        rc = source_name(&gs->base.name, &loc, gs->repo, path);
    if (rc)
        goto done;
    *out = &gs->base;
    gs = NULL;
done:
    ibs_source_free(gs ? &gs->base : NULL);
    git_commit_free(commit);
    ibs_buf_release(&desc);
    location_release(&loc);
    free(path);
    return rc;
}
