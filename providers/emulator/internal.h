/*
 * Internals of the emulator engine, shared by its source files only.
 *
 *   emulator.c   open/close, the call pipeline (validation, idempotency,
 *                transactions, request ids, AWS errors), the provider table
 *   store.c      SQLite persistence: schema, resources, tags, references,
 *                client tokens, policies, build counters, metadata
 *   resources.c  Create/Get/Update/Delete of the eight kinds, service
 *                defaults, references between resources, tags and policies
 *   list.c       List operations: owner/byName/filters, stable pagination
 *                with signed tokens
 *   images.c     images: StartImagePipelineExecution, CreateImage, the
 *                BUILDING -> AVAILABLE transition, output resources
 *   support.c    ARNs, semantic versions, timestamps, hashes and HMACs
 *                (through providers/aws/sigv4.h), random bytes and UUIDs,
 *                projection of documents onto API output shapes
 */
#ifndef IBS_PROVIDERS_EMULATOR_INTERNAL_H
#define IBS_PROVIDERS_EMULATOR_INTERNAL_H

#include "api/api.h"
#include "providers/emulator/emulator.h"
#include "util/buf.h"
#include "util/value.h"
#include "util/vec.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;

#define IBS_EMULATOR_SECRET_LEN 32

struct ibs_emulator {
    pthread_mutex_t lock;
    struct sqlite3 *db;
    char *db_path;
    char *region;
    char *account;
    char *arn_prefix;                              /* "arn:aws:imagebuilder:<region>:<account>:" */
    unsigned char secret[IBS_EMULATOR_SECRET_LEN]; /* signs pagination tokens */
    int64_t image_build_ms;
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
};

/* The resource kinds, in the order of the kind table. */
enum ibs_emulator_kind_id {
    IBS_EMU_COMPONENT,
    IBS_EMU_WORKFLOW,
    IBS_EMU_IMAGE_RECIPE,
    IBS_EMU_CONTAINER_RECIPE,
    IBS_EMU_INFRA,
    IBS_EMU_DIST,
    IBS_EMU_PIPELINE,
    IBS_EMU_LIFECYCLE,
    IBS_EMU_IMAGE,
    IBS_EMU_KIND_COUNT,
    IBS_EMU_NO_KIND = -1,
};

struct ibs_emulator_kind {
    enum ibs_emulator_kind_id id;
    const char *type;       /* ARN resource type and stored kind: "image-recipe" */
    const char *label;      /* for messages: "ImageRecipe" */
    bool versioned;         /* the ARN carries a semantic version */
    bool builds;            /* ... and a build number */
    const char *arn_member; /* request/response member naming one resource */
    const char *doc_member; /* Get response member holding the resource */
};

const struct ibs_emulator_kind *ibs_emulator_kind_get(enum ibs_emulator_kind_id id);
/* The kind whose ARN resource type is `type`, or NULL. */
const struct ibs_emulator_kind *ibs_emulator_kind_by_type(const char *type, size_t len);

/* One stored resource. */
struct ibs_emulator_record {
    int64_t seq; /* creation sequence: strictly increasing, never reused */
    enum ibs_emulator_kind_id kind;
    char *arn;
    char *name;    /* as given by the user */
    char *path;    /* ARN path after the type: "my-comp", "build/my-flow" */
    char *version; /* semantic version, or NULL */
    int64_t build; /* build number, 0 when the kind has none */
    char *owner;
    char *parent; /* image: ARN of the pipeline that built it; else NULL */
    int64_t created_ms;
    int64_t updated_ms;    /* 0: never updated */
    struct ibs_value *doc; /* NULL when scanned without documents */
};

void ibs_emulator_record_free(struct ibs_emulator_record *rec);
/* ibs_vec_release_with() adapter. */
void ibs_emulator_record_free_item(void *rec);

/* One call in progress (emulator.c sets it up for the handlers). */
struct ibs_emulator_req {
    struct ibs_emulator *emu;
    const struct ibs_api_operation *op;
    const struct ibs_value *input;  /* never NULL: an empty map stands for no input */
    enum ibs_emulator_kind_id kind; /* the kind the handler works on */
    int64_t now_ms;
    char request_id[IBS_EMULATOR_REQUEST_ID_SIZE];
    const char *aws_code; /* set by ibs_emulator_fail() */
    char *message;
};

/*
 * Records the AWS error `aws_code` with a printf-style message on `req` and
 * returns the matching enum ibs_error_code. Handlers return it directly.
 * Failures that are not AWS errors (out of memory, SQLite) are returned
 * without calling this and become ServiceException.
 */
int ibs_emulator_fail(struct ibs_emulator_req *req, const char *aws_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The enum ibs_error_code for an AWS error code. */
int ibs_emulator_error_code(const char *aws_code);
/* Whether the operation documents error `aws_code`. */
bool ibs_emulator_op_documents(const struct ibs_api_operation *op, const char *aws_code);
/* The error the operation documents for invalid parameters. */
const char *ibs_emulator_validation_error(const struct ibs_api_operation *op);

/* Operation handlers: on success *out is the response (without requestId
 * and clientToken, which the pipeline adds). */

int ibs_emulator_op_create(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_get(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_update(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_delete(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_tag(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_untag(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_list_tags(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_get_policy(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_put_policy(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_list(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_list_builds(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_list_pipeline_images(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_start_pipeline(struct ibs_emulator_req *req, struct ibs_value **out);
int ibs_emulator_op_create_image(struct ibs_emulator_req *req, struct ibs_value **out);

/* resources.c: lookups shared with list.c and images.c. */

/*
 * The resource of `kind` that `arn` names: a build ARN names one record; for
 * versioned kinds a version ARN, possibly with "x" wildcards, names the
 * latest matching build. Returns IBS_ENOTFOUND (no AWS error recorded) when
 * there is none. *out is a new record (caller frees).
 */
int ibs_emulator_resolve(struct ibs_emulator_record **out, struct ibs_emulator_req *req,
                         enum ibs_emulator_kind_id kind, const char *arn);
/*
 * The full view of a record as Get returns it before projection: the stored
 * document plus dateCreated/dateUpdated, tags (kinds whose Get shape has
 * them) and, for images, the current state. *out is new (caller frees).
 */
int ibs_emulator_view(struct ibs_value **out, struct ibs_emulator_req *req,
                      const struct ibs_emulator_record *rec);

/* images.c: the state-dependent members of an image view. */
int ibs_emulator_image_decorate(struct ibs_emulator_req *req, struct ibs_value *view,
                                const struct ibs_emulator_record *rec);

/* store.c */
int ibs_emulator_store_open(struct ibs_emulator *emu, const char *region, const char *account);
void ibs_emulator_store_close(struct ibs_emulator *emu);
int ibs_emulator_store_begin(struct ibs_emulator *emu);
int ibs_emulator_store_commit(struct ibs_emulator *emu);
void ibs_emulator_store_rollback(struct ibs_emulator *emu);
/* Inserts `rec` (all members but seq set); sets rec->seq. IBS_EEXISTS when
 * the ARN is taken. */
int ibs_emulator_store_insert(struct ibs_emulator *emu, struct ibs_emulator_record *rec);
/* Rewrites the document and updated_ms of the record with rec->arn. */
int ibs_emulator_store_update(struct ibs_emulator *emu, const struct ibs_emulator_record *rec);
/* Deletes the record with `arn` with its tags, policy and outgoing references. */
int ibs_emulator_store_delete(struct ibs_emulator *emu, const char *arn);
/* The record with exactly `arn`; IBS_ENOTFOUND when absent. */
int ibs_emulator_store_get(struct ibs_emulator_record **out, struct ibs_emulator *emu,
                           const char *arn);
/*
 * Appends to `out` (struct ibs_emulator_record *, caller frees) the records
 * of `kind` in creation order, restricted to ARN path `path` and to parent
 * `parent` when those are not NULL. Without `with_docs` the records' doc is
 * NULL, which saves reading and parsing documents that are not looked at;
 * ibs_emulator_store_load_doc() fills it in.
 */
int ibs_emulator_store_scan(struct ibs_vec *out, struct ibs_emulator *emu,
                            enum ibs_emulator_kind_id kind, const char *path, const char *parent,
                            bool with_docs);
/* Reads and parses the document of `rec` (scanned without it) into
 * rec->doc, which the record owns; nothing to do when rec->doc is set.
 * IBS_ENOTFOUND when the record is gone. */
int ibs_emulator_store_load_doc(struct ibs_emulator *emu, struct ibs_emulator_record *rec);
/* Allocates the next build number of (kind, path, version), starting at 1;
 * numbers are never reused, even after a delete. */
int ibs_emulator_store_next_build(int64_t *out, struct ibs_emulator *emu,
                                  enum ibs_emulator_kind_id kind, const char *path,
                                  const char *version);
/* The tags of `arn` as a new string map (caller frees). */
int ibs_emulator_store_tags_get(struct ibs_value **out, struct ibs_emulator *emu, const char *arn);
/* Sets every member of the string map `tags` on `arn`. */
int ibs_emulator_store_tags_put(struct ibs_emulator *emu, const char *arn,
                                const struct ibs_value *tags);
/* Removes the keys in the string list `keys` from `arn`. */
int ibs_emulator_store_tags_remove(struct ibs_emulator *emu, const char *arn,
                                   const struct ibs_value *keys);
/* Replaces the outgoing references of `from` with the strings in `to`. */
int ibs_emulator_store_refs_set(struct ibs_emulator *emu, const char *from,
                                const struct ibs_vec *to);
/* Appends to `out_from` and `out_to` (heap strings, caller frees) the
 * references whose target starts with `prefix`. */
int ibs_emulator_store_refs_find(struct ibs_vec *out_from, struct ibs_vec *out_to,
                                 struct ibs_emulator *emu, const char *prefix);
/* The stored client token of (token, operation): IBS_ENOTFOUND when unseen;
 * else *out_hash and *out_response are heap strings (caller frees). */
int ibs_emulator_store_token_get(char **out_hash, char **out_response, struct ibs_emulator *emu,
                                 const char *token, const char *operation);
int ibs_emulator_store_token_put(struct ibs_emulator *emu, const char *token, const char *operation,
                                 const char *hash, const char *response, int64_t now_ms);
/* The policy of `arn` (heap string) or IBS_ENOTFOUND. */
int ibs_emulator_store_policy_get(char **out, struct ibs_emulator *emu, const char *arn);
int ibs_emulator_store_policy_put(struct ibs_emulator *emu, const char *arn, const char *policy);

/* support.c */

/* A name as the service writes it in ARNs: lower-cased (ASCII), spaces
 * as hyphens. NULL when out of memory. */
char *ibs_emulator_arn_name(const char *s);
/* "2024-05-01T12:00:00.123Z" for `ms` since the epoch; `buf` >= 32 bytes. */
void ibs_emulator_iso8601(char *buf, size_t size, int64_t ms);
/* Milliseconds since the epoch of an ISO-8601 UTC string; false if malformed. */
bool ibs_emulator_parse_iso8601(int64_t *out, const char *s);
/* A random UUID v4 into `buf` (>= 37 bytes). */
int ibs_emulator_uuid(char *buf, size_t size);
/* Fills `out` with `len` random bytes from the kernel; IBS_EIO when none
 * are available. */
int ibs_emulator_random(unsigned char *out, size_t len);
/* Lower-case hex SHA-256 of `data` into `hex` (>= 65 bytes). */
int ibs_emulator_sha256_hex(char *hex, const void *data, size_t len);
/* HMAC-SHA256 of `data` with `key` into `mac` (32 bytes). */
int ibs_emulator_hmac(unsigned char *mac, const unsigned char *key, size_t keylen, const void *data,
                      size_t len);
/* Whether `len` bytes at `a` and `b` are equal, in time independent of
 * their contents (for comparing MACs). */
bool ibs_emulator_mem_equal(const void *a, const void *b, size_t len);
/* base64url without padding; appends to `out`. */
int ibs_emulator_b64url_encode(struct ibs_buf *out, const unsigned char *data, size_t len);
/* Decodes base64url (no padding) into `out` (at most `cap` bytes); -1 if
 * malformed or too long, else the decoded length. */
long ibs_emulator_b64url_decode(unsigned char *out, size_t cap, const char *s);
/* Hash of the canonical JSON of `v` without the members listed in `skip`
 * (NULL-terminated), for idempotency and pagination tokens. */
int ibs_emulator_request_hash(char *hex, const struct ibs_value *v, const char *const *skip);

/* A parsed semantic version "1.2.3" where each node may be "x" (-1). */
struct ibs_emulator_semver {
    int64_t node[3];
};
/* Parses "1.2.3" (wildcards allowed when `wildcards`); false if malformed. */
bool ibs_emulator_semver_parse(struct ibs_emulator_semver *out, const char *s, size_t len,
                               bool wildcards);
/* Whether concrete version `v` matches `pattern` (wildcards allowed). */
bool ibs_emulator_semver_match(const struct ibs_emulator_semver *pattern,
                               const struct ibs_emulator_semver *v);
/* Orders two concrete versions ("1.10.0" > "1.9.0"). */
int ibs_emulator_semver_cmp(const char *a, const char *b);

/* The pieces of an Image Builder ARN. Strings point into a copy owned by
 * the struct (ibs_emulator_arn_release). */
struct ibs_emulator_arn {
    char *buf;
    const char *region;
    const char *account;
    const char *type;    /* "component" */
    const char *path;    /* "my-comp" or "build/my-flow" */
    const char *version; /* "1.0.0", "1.x.x" or NULL */
    int64_t build;       /* 0 when absent */
    const struct ibs_emulator_kind *kind;
};
/* Splits `arn`; false when it is not an Image Builder ARN of a known kind. */
bool ibs_emulator_arn_parse(struct ibs_emulator_arn *out, const char *arn);
void ibs_emulator_arn_release(struct ibs_emulator_arn *arn);

/*
 * Copies `v` keeping only what `shape` describes: structure members not in
 * the shape are dropped (recursively through lists and maps), and ISO-8601
 * strings where the shape wants a timestamp become epoch seconds, as the
 * REST-JSON protocol serialises them. A NULL shape copies everything.
 */
int ibs_emulator_project(struct ibs_value **out, const struct ibs_value *v,
                         const struct ibs_api_shape *shape);
/* The shape of member `name` of structure `shape`, or NULL. */
const struct ibs_api_shape *ibs_emulator_member_shape(const struct ibs_api_shape *shape,
                                                      const char *name);

/* Value helpers: set a string / bool / int member, NULL-safe for out of memory. */
int ibs_emulator_set_str(struct ibs_value *map, const char *key, const char *s);
int ibs_emulator_set_bool(struct ibs_value *map, const char *key, bool b);
int ibs_emulator_set_int(struct ibs_value *map, const char *key, int64_t i);
/* Serialises `v` as compact JSON into a heap string. */
int ibs_emulator_to_json(char **out, const struct ibs_value *v, unsigned flags);

#endif
