/*
 * Error reporting for every ibsync library.
 *
 * Functions return int: 0 on success, a negative enum ibs_error_code on
 * failure. The human-readable message of the last failure is kept in
 * thread-local storage (like libgit2's git_error_last()), so library code
 * never prints; cmd/ reads it and maps the code to an exit status.
 */
#ifndef IBS_UTIL_ERROR_H
#define IBS_UTIL_ERROR_H

#include <stdarg.h>

enum ibs_error_code {
    IBS_OK = 0,
    IBS_ERROR = -1,         /* generic failure */
    IBS_ENOTFOUND = -2,     /* a resource, file or ref does not exist */
    IBS_EEXISTS = -3,       /* the thing being created already exists */
    IBS_EINVALID = -4,      /* invalid input (user data, arguments) */
    IBS_ECONFLICT = -5,     /* state changed underneath us, or ownership clash */
    IBS_ETHROTTLED = -6,    /* the service asked us to slow down */
    IBS_ENOMEM = -7,        /* allocation failed */
    IBS_EIO = -8,           /* filesystem or network I/O failed */
    IBS_ETIMEOUT = -9,      /* an operation timed out */
    IBS_EAUTH = -10,        /* credentials missing, expired or rejected */
    IBS_EDEPENDENCY = -11,  /* resource still in use by another */
    IBS_ELOCKED = -12,      /* a lock is held by someone else */
    IBS_EUNSUPPORTED = -13, /* not supported by this backend */
    IBS_ECANCELED = -14,    /* interrupted by a signal or by the user */
    IBS_ESERVICE = -15,     /* the remote service failed (5xx) */
};

struct ibs_error {
    int code;            /* one of enum ibs_error_code */
    const char *message; /* never NULL; owned by the thread-local slot */
};

/*
 * Records an error for the calling thread and returns `code`, so that callers
 * can write `return ibs_error_set(IBS_EINVALID, "...")`. The message is
 * copied; a later ibs_error_set() on the same thread replaces it.
 */
int ibs_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ibs_error_vset(int code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Records an out-of-memory error and returns IBS_ENOMEM. */
int ibs_error_oom(void);

/*
 * Prefixes the current message with "<prefix>: " (for adding context while
 * unwinding). Returns the current code.
 */
int ibs_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The calling thread's last error. Never NULL: with no error recorded the
 * code is IBS_OK and the message is empty. The pointer stays valid until the
 * next ibs_error_* call on this thread.
 */
const struct ibs_error *ibs_error_last(void);

/* Forgets the calling thread's last error. */
void ibs_error_clear(void);

/* A short constant name for a code ("not found", "invalid", ...). */
const char *ibs_error_name(int code);

#endif
