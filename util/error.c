/* Thread-local last-error slot; see error.h. */
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IBS_ERROR_MSG_MAX 4096

static _Thread_local int last_code;
static _Thread_local char last_msg[IBS_ERROR_MSG_MAX];
static _Thread_local struct ibs_error last_error;

int ibs_error_vset(int code, const char *fmt, va_list ap)
{
    last_code = code;
    vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    return code;
}

int ibs_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ibs_error_vset(code, fmt, ap);
    va_end(ap);
    return code;
}

int ibs_error_oom(void)
{
    return ibs_error_set(IBS_ENOMEM, "out of memory");
}

int ibs_error_prefix(const char *fmt, ...)
{
    char prefix[IBS_ERROR_MSG_MAX];
    char old[IBS_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, last_msg, sizeof(old));
    /* Both parts are bounded; whatever does not fit is cut off. */
    size_t n = strlen(prefix);
    if (n > sizeof(last_msg) - 3)
        n = sizeof(last_msg) - 3;
    memcpy(last_msg, prefix, n);
    memcpy(last_msg + n, ": ", 2);
    n += 2;
    size_t m = strlen(old);
    if (m > sizeof(last_msg) - 1 - n)
        m = sizeof(last_msg) - 1 - n;
    memcpy(last_msg + n, old, m);
    last_msg[n + m] = '\0';
    return last_code;
}

const struct ibs_error *ibs_error_last(void)
{
    last_error.code = last_code;
    last_error.message = last_msg;
    return &last_error;
}

void ibs_error_clear(void)
{
    last_code = IBS_OK;
    last_msg[0] = '\0';
}

const char *ibs_error_name(int code)
{
    switch (code) {
    case IBS_OK:
        return "ok";
    case IBS_ENOTFOUND:
        return "not found";
    case IBS_EEXISTS:
        return "already exists";
    case IBS_EINVALID:
        return "invalid";
    case IBS_ECONFLICT:
        return "conflict";
    case IBS_ETHROTTLED:
        return "throttled";
    case IBS_ENOMEM:
        return "out of memory";
    case IBS_EIO:
        return "i/o error";
    case IBS_ETIMEOUT:
        return "timeout";
    case IBS_EAUTH:
        return "authentication";
    case IBS_EDEPENDENCY:
        return "dependency";
    case IBS_ELOCKED:
        return "locked";
    case IBS_EUNSUPPORTED:
        return "unsupported";
    case IBS_ECANCELED:
        return "canceled";
    case IBS_ESERVICE:
        return "service error";
    default:
        return "error";
    }
}
