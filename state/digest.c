/*
 * Digests through libgit2's object hashing (git_odb_hash), the hashing
 * library this module already links. libgit2 must be initialised before it
 * hashes; its init is reference-counted, so this file takes one reference of
 * its own, once, and never drops it (ibs_source_global_shutdown() drops only
 * the source backend's reference).
 */
#include "state/digest.h"

#include "util/error.h"

#include <git2.h>

#include <pthread.h>
#include <stdbool.h>

static pthread_once_t digest_once = PTHREAD_ONCE_INIT;
static bool digest_ready;

static void digest_init_once(void)
{
    digest_ready = git_libgit2_init() > 0;
}

int ibs_digest_hex(char out[41], const void *data, size_t len)
{
    git_oid oid;
    int rc = 0;

    out[0] = '\0';
    pthread_once(&digest_once, digest_init_once);
    if (!digest_ready) {
        rc = ibs_error_set(IBS_ERROR, "cannot initialise libgit2 for hashing");
        goto done;
    }
    if (git_odb_hash(&oid, len ? data : "", len, GIT_OBJECT_BLOB) < 0) {
        const git_error *e = git_error_last();
        rc = ibs_error_set(IBS_ERROR, "cannot compute a digest: %s",
                           e && e->message ? e->message : "libgit2 failed");
        goto done;
    }
    git_oid_fmt(out, &oid);
    out[IBS_DIGEST_HEX_LEN] = '\0';
done:
    return rc;
}
