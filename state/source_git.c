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
 */
#include "state/source_backend.h"

#include "util/buf.h"
#include "util/error.h"

#include <git2.h>

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

struct gsrc {
    struct ibs_source base; /* first, so that the two pointers convert */
    git_repository *repo;
    git_tree *root; /* the tree at opts->path */
};

/* What opts->repo designates, split once. */
struct repo_location {
    bool remote;
    char *display;   /* opts->repo without credentials: safe to show and store */
    char *secret;    /* the "userinfo@" removed from display, or NULL */
    char *password;  /* the password part of secret, if any, or NULL */
    char *host_path; /* remote: host[:port]/path (for naming); NULL for local paths */
};

/* Per-fetch state handed to libgit2's remote callbacks (payload). */
struct fetch_context {
    const struct repo_location *loc;
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

/*
 * Records "<context>: <libgit2's message>" with `code`, removing the URL
 * credentials of `loc` (may be NULL) from the text. Returns `code`.
 */
static int gsrc_fail(int code, const struct repo_location *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gsrc_fail(int code, const struct repo_location *loc, const char *fmt, ...)
{
    const git_error *e = git_error_last();
    struct ibs_buf b = IBS_BUF_INIT;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    ibs_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    ibs_buf_printf(&b, ": %s", e && e->message ? e->message : "unknown libgit2 error");
    /* libgit2 may name the URL, or (decoded or not) the password alone. */
    if (loc && loc->secret)
        scrub(&b, loc->secret, "");
    if (loc && loc->password)
        scrub(&b, loc->password, "***");
    rc = ibs_buf_oom(&b);
    if (!rc)
        rc = ibs_error_set(code, "%s", b.ptr);
    ibs_buf_release(&b);
    return rc;
}

static void location_release(struct repo_location *loc)
{
    free(loc->display);
    free(loc->secret);
    free(loc->password);
    free(loc->host_path);
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
 * Every fetch is configured here, so that authentication (credential and
 * certificate callbacks, which get `ctx` as payload) has a single place.
 */
static void fetch_options_setup(git_fetch_options *out, struct fetch_context *ctx)
{
    git_fetch_options_init(out, GIT_FETCH_OPTIONS_VERSION);
    out->callbacks.payload = ctx;
    out->prune = GIT_FETCH_PRUNE;
    out->download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;
    out->update_fetchhead = 0;
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
    struct fetch_context ctx = {loc};
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
    if (err) {
        /* A lock held by a concurrent run is no damage: never delete under its feet. */
        *out_damaged = err != GIT_ELOCKED && repository_damaged();
        rc = gsrc_fail(map_git_error(err, IBS_EIO), loc, "cannot fetch %s", loc->display);
        goto done;
    }
    rc = update_remote_head(repo, remote, loc);
done:
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
    if (loc.remote)
        rc = open_remote(&gs->repo, &loc, opts->repo, opts->cache_dir);
    else
        rc = open_local(&gs->repo, &loc);
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
