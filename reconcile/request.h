/*
 * From a desired resource to the API requests that create or update it.
 *
 * A request is built in two steps. At plan time the spec is converted to the
 * types the API wants (a YAML `value: 5` in a string member becomes "5") and
 * every {ref:} becomes a placeholder {"$ref": "Component/install-nginx@1.0.1"}
 * naming the exact version the plan chose. The placeholder form is what
 * ibsync hashes (so the hash does not depend on the account) and what saved
 * plans keep. At apply time ibs_request_resolve() replaces placeholders by
 * ARNs, known from the live state or from the answers of earlier actions.
 */
#ifndef IBS_RECONCILE_REQUEST_H
#define IBS_RECONCILE_REQUEST_H

#include "reconcile/model.h"
#include "util/value.h"

#include <stdbool.h>
#include <stddef.h>

/* Placeholder key in requests. */
#define IBS_REQUEST_REF_KEY "$ref"

/*
 * Builds the typed, placeholder form of `res`'s spec into *out (caller
 * frees): members converted to their API types (strings from plain YAML
 * scalars, integers, booleans), {ref:} maps replaced by {"$ref": SYMBOL}
 * with SYMBOL from ibs_request_symbol(). `version_of(ctx, target)` returns
 * the version the plan chose for a versioned target (borrowed), or NULL
 * when there is none yet (IBS_EINVALID then).
 */
int ibs_request_build(struct ibs_value **out, const struct ibs_resource *res,
                      const char *(*version_of)(void *ctx, const struct ibs_resource *target),
                      void *ctx);

/* "Kind/name" or "Kind/name@version" into *out (caller frees). */
int ibs_request_symbol(char **out, enum ibs_kind kind, const char *name, const char *version);

/*
 * Copies `request` into *out with every placeholder replaced by
 * `arn_of(ctx, symbol, member)` (the member is the name holding the
 * placeholder, e.g. "parentImage"; the result is borrowed, NULL when
 * unknown). IBS_ENOTFOUND (naming the symbol) when one cannot be resolved.
 */
int ibs_request_resolve(struct ibs_value **out, const struct ibs_value *request,
                        const char *(*arn_of)(void *ctx, const char *symbol, const char *member),
                        void *ctx);

/* Whether `v` is a placeholder map; *out_symbol (may be NULL) gets the
 * borrowed symbol. */
bool ibs_request_is_ref(const struct ibs_value *v, const char **out_symbol);

/*
 * The content hash of a request in placeholder form: the digest of its
 * canonical JSON (sorted keys) together with the kind, leaving out the
 * top-level member `skip` when not NULL (the version of a versioned kind is
 * not part of its content). 40 hex characters into out.
 */
int ibs_request_hash(char out[41], enum ibs_kind kind, const struct ibs_value *request,
                     const char *skip);

/*
 * A clientToken for an action: 36 characters (the API allows 1..36), shaped
 * like a UUID, derived from the plan id and the action key so that re-sending
 * an action of the same plan reuses its token.
 */
int ibs_request_client_token(char out[37], const char *plan_id, const char *action_key);

/* Semantic versions "MAJOR.MINOR.PATCH". */
struct ibs_semver {
    unsigned long major, minor, patch;
};

/* Parses "1.2.3" (no build suffix); IBS_EINVALID otherwise. */
int ibs_semver_parse(struct ibs_semver *out, const char *s);
int ibs_semver_compare(const struct ibs_semver *a, const struct ibs_semver *b);
/* "1.2.3" into out (at least 64 bytes). */
void ibs_semver_format(char *out, size_t size, const struct ibs_semver *v);

#endif
