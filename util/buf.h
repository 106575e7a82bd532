/*
 * Growable byte buffers (after git's strbuf and libgit2's git_str).
 *
 * A struct ibs_buf owns its memory. The content is always NUL-terminated, so
 * `ptr` can be used as a C string once the buffer is initialised. Allocation
 * failure is sticky: after one failed append every later append is a no-op
 * and returns IBS_ENOMEM, so a sequence of appends can be checked once at the
 * end with ibs_buf_oom().
 */
#ifndef IBS_UTIL_BUF_H
#define IBS_UTIL_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct ibs_buf {
    char *ptr;    /* content, NUL-terminated; points at a static "" when empty */
    size_t size;  /* bytes used, excluding the terminating NUL */
    size_t asize; /* bytes allocated; 0 while ptr is the static "" */
    bool oom;     /* an allocation failed */
};

#define IBS_BUF_INIT                                                                               \
    {                                                                                              \
        (char *)ibs_buf__empty, 0, 0, false                                                        \
    }
extern const char ibs_buf__empty[];

void ibs_buf_init(struct ibs_buf *buf);
/* Frees the content and re-initialises the buffer. */
void ibs_buf_release(struct ibs_buf *buf);
/* Empties the buffer, keeping its allocation. */
void ibs_buf_clear(struct ibs_buf *buf);
/* Makes room for `extra` more bytes. */
int ibs_buf_grow(struct ibs_buf *buf, size_t extra);
int ibs_buf_put(struct ibs_buf *buf, const void *data, size_t len);
int ibs_buf_puts(struct ibs_buf *buf, const char *s);
int ibs_buf_putc(struct ibs_buf *buf, char c);
int ibs_buf_printf(struct ibs_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ibs_buf_vprintf(struct ibs_buf *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Shortens the content to `len` bytes (no-op when already shorter). */
void ibs_buf_truncate(struct ibs_buf *buf, size_t len);
/*
 * Hands the content to the caller, who frees it with free(); the buffer is
 * re-initialised. Returns NULL (and sets the error) if an append had failed.
 */
char *ibs_buf_detach(struct ibs_buf *buf);
/* IBS_ENOMEM (with the error set) if any append failed, else 0. */
int ibs_buf_oom(const struct ibs_buf *buf);

#endif
