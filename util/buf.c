/* Growable byte buffers; see buf.h for the ownership rules. */
#include "util/buf.h"

#include "util/error.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char ibs_buf__empty[1] = "";

void ibs_buf_init(struct ibs_buf *buf)
{
    buf->ptr = (char *)ibs_buf__empty;
    buf->size = 0;
    buf->asize = 0;
    buf->oom = false;
}

void ibs_buf_release(struct ibs_buf *buf)
{
    if (buf->asize)
        free(buf->ptr);
    ibs_buf_init(buf);
}

void ibs_buf_clear(struct ibs_buf *buf)
{
    buf->size = 0;
    if (buf->asize)
        buf->ptr[0] = '\0';
}

int ibs_buf_grow(struct ibs_buf *buf, size_t extra)
{
    size_t need, nsize;
    char *p;

    if (buf->oom)
        return IBS_ENOMEM;
    if (extra > SIZE_MAX - buf->size - 1)
        goto oom;
    need = buf->size + extra + 1;
    if (need <= buf->asize)
        return 0;
    nsize = buf->asize ? buf->asize : 64;
    while (nsize < need)
        nsize = nsize > SIZE_MAX / 2 ? need : nsize * 2;
    p = realloc(buf->asize ? buf->ptr : NULL, nsize);
    if (!p)
        goto oom;
    if (!buf->asize)
        p[0] = '\0';
    buf->ptr = p;
    buf->asize = nsize;
    return 0;
oom:
    buf->oom = true;
    return ibs_error_oom();
}

int ibs_buf_put(struct ibs_buf *buf, const void *data, size_t len)
{
    int rc = ibs_buf_grow(buf, len);
    if (rc)
        return rc;
    if (len)
        memmove(buf->ptr + buf->size, data, len);
    buf->size += len;
    buf->ptr[buf->size] = '\0';
    return 0;
}

int ibs_buf_puts(struct ibs_buf *buf, const char *s)
{
    return ibs_buf_put(buf, s, strlen(s));
}

int ibs_buf_putc(struct ibs_buf *buf, char c)
{
    return ibs_buf_put(buf, &c, 1);
}

int ibs_buf_vprintf(struct ibs_buf *buf, const char *fmt, va_list ap)
{
    va_list cp;
    size_t room;
    int n;
    int rc;

    /* Format once into the spare room (at least 64 bytes): a second pass
     * only when the text does not fit. */
    rc = ibs_buf_grow(buf, 64);
    if (rc)
        return rc;
    room = buf->asize - buf->size;
    va_copy(cp, ap);
    n = vsnprintf(buf->ptr + buf->size, room, fmt, cp);
    va_end(cp);
    if (n < 0) {
        buf->ptr[buf->size] = '\0';
        return ibs_error_set(IBS_EINVALID, "bad format string");
    }
    if ((size_t)n >= room) {
        rc = ibs_buf_grow(buf, (size_t)n);
        if (rc) {
            buf->ptr[buf->size] = '\0';
            return rc;
        }
        vsnprintf(buf->ptr + buf->size, (size_t)n + 1, fmt, ap);
    }
    buf->size += (size_t)n;
    return 0;
}

int ibs_buf_printf(struct ibs_buf *buf, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = ibs_buf_vprintf(buf, fmt, ap);
    va_end(ap);
    return rc;
}

void ibs_buf_truncate(struct ibs_buf *buf, size_t len)
{
    if (len < buf->size) {
        buf->size = len;
        buf->ptr[len] = '\0';
    }
}

char *ibs_buf_detach(struct ibs_buf *buf)
{
    char *p;

    if (buf->oom) {
        ibs_buf_release(buf);
        ibs_error_oom();
        return NULL;
    }
    if (!buf->asize) {
        p = calloc(1, 1);
        if (!p)
            ibs_error_oom();
    } else {
        p = buf->ptr;
    }
    ibs_buf_init(buf);
    return p;
}

int ibs_buf_oom(const struct ibs_buf *buf)
{
    return buf->oom ? ibs_error_oom() : 0;
}
