/*
 * The HTTP face of the emulator: serves the Image Builder REST-JSON
 * protocol on top of the engine (emulator.h), so that the AWS SDKs and CLI,
 * and ibsync's own AWS provider, work against it unchanged with only the
 * endpoint overridden.
 *
 * Requests are bound as the API model describes (method + path route to an
 * operation; URI labels, query-string members and the JSON body make up the
 * engine's input map). Answers are what the service sends: 200 with the
 * JSON output, or the error's HTTP status with an `x-amzn-errortype: <Code>`
 * header and a {"message": "..."} body; every answer carries
 * `x-amzn-requestid`. With credentials configured, every API request must
 * be signed with SigV4 (service imagebuilder, the emulator's region, 5
 * minutes of clock skew); failures are answered with 403 and the code the
 * service uses. Faults can be injected (faults.h).
 *
 * Outside the API's path space, and never signature-checked, an admin
 * endpoint for tests and operators:
 *
 *   GET  /_ibsync/health   {"status": "ok", "region", "account", "inFlight"}
 *   GET  /_ibsync/faults   the fault settings (faults.h, ibs_faults_to_value)
 *   POST /_ibsync/faults   a JSON object of settings to change; answers the
 *                          new settings, or 400 naming the bad member
 *
 * libmicrohttpd runs the server in a pool of threads; the engine serialises
 * its calls itself, so clients are served concurrently up to the engine.
 * No third-party type appears here.
 */
#ifndef IBS_PROVIDERS_EMULATOR_SERVER_H
#define IBS_PROVIDERS_EMULATOR_SERVER_H

#include "providers/emulator/emulator.h"
#include "providers/emulator/faults.h"

#include <stddef.h>
#include <stdint.h>

/* Defaults for struct ibs_server_options members left 0. */
#define IBS_SERVER_DEFAULT_THREADS 4
#define IBS_SERVER_MAX_THREADS 256
#define IBS_SERVER_DEFAULT_MAX_BODY (16u * 1024u * 1024u)
/* How long ibs_server_free() waits for requests in flight. */
#define IBS_SERVER_DEFAULT_GRACE_MS 10000

struct ibs_server_options {
    /*
     * Address to listen on: "HOST:PORT", "[IPV6]:PORT" or ":PORT" (all
     * interfaces). HOST is an address or a name resolved once at start.
     * PORT 0 picks a free port (see ibs_server_port()). NULL: "127.0.0.1:0".
     */
    const char *listen;
    unsigned threads; /* worker threads; 0: IBS_SERVER_DEFAULT_THREADS */
    size_t max_body;  /* largest request body in bytes (larger: 413); 0: the default */
    /*
     * When both are set, every API request must carry a valid SigV4
     * signature by this key pair; otherwise requests are accepted signed
     * with anything or unsigned. Copied.
     */
    const char *access_key_id;
    const char *secret_access_key;
    /*
     * File to which one JSON line is appended (and flushed) per API request:
     * {"time", "method", "path", "operation", "status", "latency_ms",
     * "fault", "requestId"}. "operation" is null for requests that match no
     * operation; for a dropped call "status" is the status of the answer
     * that was not sent. NULL: no log.
     */
    const char *request_log;
    struct ibs_faults_config faults; /* initial fault settings (all 0: none) */
};

struct ibs_server;

/*
 * Starts serving `emu` (borrowed: it must outlive the server) as described
 * by `opts` (not kept). On success *out is the running server, which the
 * caller stops and frees with ibs_server_free(). Fails with IBS_EINVALID for
 * bad options (address, fault settings, credentials), IBS_EIO when the log
 * cannot be opened or the address cannot be bound.
 */
int ibs_server_start(struct ibs_server **out, struct ibs_emulator *emu,
                     const struct ibs_server_options *opts);

/* The port the server listens on (the chosen one when 0 was asked for). */
unsigned ibs_server_port(const struct ibs_server *srv);

/* "http://HOST:PORT" for clients (owned by the server). */
const char *ibs_server_url(const struct ibs_server *srv);

/* The live fault settings (owned by the server; thread-safe to change). */
struct ibs_faults *ibs_server_faults(struct ibs_server *srv);

/*
 * Stops accepting connections, answers the requests in flight (calls
 * waiting for injected latency go ahead at once) and waits up to
 * `grace_ms` for them to finish, then closes every connection. Returns 0,
 * or IBS_ETIMEOUT when requests were still running after `grace_ms` (they
 * are cut off). Calling it again does nothing. The engine is untouched:
 * the caller frees it afterwards.
 */
int ibs_server_stop(struct ibs_server *srv, int64_t grace_ms);

/*
 * Stops the server (ibs_server_stop() with IBS_SERVER_DEFAULT_GRACE_MS if
 * still running), closes the request log and frees it. Accepts NULL.
 */
void ibs_server_free(struct ibs_server *srv);

#endif
