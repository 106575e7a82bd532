/*
 * The EC2 Image Builder emulator engine: a local, persistent Image Builder
 * account that answers API operations the way the service does.
 *
 * The engine is transport-free. A caller (the in-process provider below, or
 * an HTTP server mapping the REST-JSON binding onto it) passes the API
 * operation name and the request as an ibs_value map shaped exactly like the
 * API's JSON request, with URI and query members included under their member
 * names ({"componentBuildVersionArn": "arn:..."}). The answer is the API's
 * JSON response as an ibs_value map, or an AWS error: error code
 * ("ResourceNotFoundException"), HTTP status, message and request id.
 *
 * State lives in an SQLite database inside the data directory (WAL journal,
 * synchronous=FULL: a call that returned success survives kill -9). All
 * calls on one struct ibs_emulator are serialised by a mutex, so it may be
 * shared between threads.
 */
#ifndef IBS_PROVIDERS_EMULATOR_EMULATOR_H
#define IBS_PROVIDERS_EMULATOR_EMULATOR_H

#include "providers/provider.h"
#include "util/value.h"

#include <stdbool.h>
#include <stdint.h>

struct ibs_emulator;

struct ibs_emulator_options {
    /* Directory holding the database; created (with its parents) if missing. */
    const char *data_dir;
    /* Region and account of the emulated account. NULL: the values the
     * database was created with, else "us-east-1" and "123456789012". A value
     * that differs from the one stored in an existing database is an error,
     * since every stored ARN embeds them. */
    const char *region;
    const char *account;
    /* Milliseconds an image stays BUILDING before it becomes AVAILABLE; 0
     * makes new images AVAILABLE on the next read. */
    int64_t image_build_ms;
    /* Wall clock in milliseconds since the Unix epoch; NULL for the system
     * clock. Tests use it to control dateCreated and image builds. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
};

/*
 * Opens (creating if needed) the emulated account stored in opts->data_dir.
 * On success *out is a new emulator that the caller frees with
 * ibs_emulator_free(). Fails with IBS_EINVALID for bad options or a database
 * of a newer schema version, IBS_EIO when the directory or database cannot be
 * opened. `opts` is not kept.
 */
int ibs_emulator_open(struct ibs_emulator **out, const struct ibs_emulator_options *opts);

/*
 * Performs API `operation` with `input` (borrowed; may be NULL for an empty
 * request). On success returns 0 and *out is the response map (caller frees).
 * On failure returns a negative enum ibs_error_code, sets ibs_error_set() to
 * "<AwsCode>: <message>" and, when `err` is not NULL, fills it (the caller
 * releases it with ibs_provider_error_release()). Every call, successful or
 * not, gets a new request id (a UUID v4); responses whose shape has a
 * requestId member carry it. Unknown operations fail with
 * UnknownOperationException (404) and operations the engine does not
 * implement with InvalidRequestException.
 */
int ibs_emulator_call(struct ibs_emulator *emu, struct ibs_value **out,
                      struct ibs_provider_error *err, const char *operation,
                      const struct ibs_value *input);

/* Length of a request id including its terminating NUL. */
#define IBS_EMULATOR_REQUEST_ID_SIZE 37

/*
 * ibs_emulator_call() for a transport that must report the request id of
 * every answer (the x-amzn-requestid header), including answers whose
 * output shape has no requestId member: the call's request id is copied to
 * `out_request_id` (IBS_EMULATOR_REQUEST_ID_SIZE bytes) whatever the outcome.
 */
int ibs_emulator_serve(struct ibs_emulator *emu, struct ibs_value **out, char *out_request_id,
                       struct ibs_provider_error *err, const char *operation,
                       const struct ibs_value *input);

/* The region and account of the emulated account (owned by `emu`). */
const char *ibs_emulator_region(const struct ibs_emulator *emu);
const char *ibs_emulator_account(const struct ibs_emulator *emu);

/*
 * Wraps `emu` in a provider table (name "emulator"). When `owned` is true the
 * provider takes ownership: ibs_provider_free() frees the emulator, even if
 * this call fails. Otherwise `emu` must outlive the provider. On success *out
 * is freed with ibs_provider_free().
 */
int ibs_emulator_provider_new(struct ibs_provider **out, struct ibs_emulator *emu, bool owned);

/* Closes the database and frees the emulator. Accepts NULL. */
void ibs_emulator_free(struct ibs_emulator *emu);

#endif
