/* Diagnostic collection and formatting; see diag.h. */
#include "util/diag.h"

#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IBS_DIAG_DEFAULT_LIMIT 1000

void ibs_diag_init(struct ibs_diags *d)
{
    memset(d, 0, sizeof(*d));
}

void ibs_diag_release(struct ibs_diags *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].path);
        free(d->items[i].message);
    }
    free(d->items);
    ibs_diag_init(d);
}

static char *dup_or_null(const char *s, int *rc)
{
    char *p;
    if (!s)
        return NULL;
    p = strdup(s);
    if (!p)
        *rc = ibs_error_oom();
    return p;
}

int ibs_diag_vadd(struct ibs_diags *d, enum ibs_severity sev, const struct ibs_loc *loc,
                  const char *path, const char *fmt, va_list ap)
{
    struct ibs_buf msg = IBS_BUF_INIT;
    struct ibs_diag item = {0};
    size_t limit = d->limit ? d->limit : IBS_DIAG_DEFAULT_LIMIT;
    int rc = 0;

    if (sev == IBS_SEV_ERROR)
        d->errors++;
    if (d->count >= limit) {
        d->dropped++;
        return 0;
    }
    if (d->count == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 16;
        struct ibs_diag *p = realloc(d->items, ncap * sizeof(*p));
        if (!p)
            return ibs_error_oom();
        d->items = p;
        d->cap = ncap;
    }
    ibs_buf_vprintf(&msg, fmt, ap);
    if ((rc = ibs_buf_oom(&msg)))
        goto done;
    item.severity = sev;
    item.file = dup_or_null(loc ? loc->file : NULL, &rc);
    item.line = loc ? loc->line : 0;
    item.col = loc ? loc->col : 0;
    item.path = dup_or_null(path && *path ? path : NULL, &rc);
    item.message = ibs_buf_detach(&msg);
    if (!item.message)
        rc = IBS_ENOMEM;
    if (rc) {
        free(item.file);
        free(item.path);
        free(item.message);
        goto done;
    }
    d->items[d->count++] = item;
done:
    ibs_buf_release(&msg);
    return rc;
}

int ibs_diag_add(struct ibs_diags *d, enum ibs_severity sev, const struct ibs_loc *loc,
                 const char *path, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = ibs_diag_vadd(d, sev, loc, path, fmt, ap);
    va_end(ap);
    return rc;
}

static int cmp_str(const char *a, const char *b)
{
    if (!a || !b)
        return a ? 1 : b ? -1 : 0;
    return strcmp(a, b);
}

static int cmp_diag(const void *pa, const void *pb)
{
    const struct ibs_diag *a = pa, *b = pb;
    int c = cmp_str(a->file, b->file);
    if (c)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    c = cmp_str(a->path, b->path);
    if (c)
        return c;
    return cmp_str(a->message, b->message);
}

void ibs_diag_sort(struct ibs_diags *d)
{
    if (d->count > 1)
        qsort(d->items, d->count, sizeof(*d->items), cmp_diag);
}

int ibs_diag_format(struct ibs_buf *out, const struct ibs_diag *diag)
{
    if (diag->file) {
        ibs_buf_puts(out, diag->file);
        if (diag->line)
            ibs_buf_printf(out, ":%u:%u", diag->line, diag->col ? diag->col : 1);
        ibs_buf_puts(out, ": ");
    }
    ibs_buf_puts(out, diag->severity == IBS_SEV_ERROR ? "error: " : "warning: ");
    if (diag->path)
        ibs_buf_printf(out, "%s: ", diag->path);
    ibs_buf_puts(out, diag->message);
    return ibs_buf_oom(out);
}

int ibs_diag_format_all(struct ibs_buf *out, const struct ibs_diags *d)
{
    for (size_t i = 0; i < d->count; i++) {
        ibs_diag_format(out, &d->items[i]);
        ibs_buf_putc(out, '\n');
    }
    if (d->dropped)
        ibs_buf_printf(out, "note: %zu more diagnostics not shown\n", d->dropped);
    return ibs_buf_oom(out);
}
