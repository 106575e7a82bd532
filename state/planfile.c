/*
 * Saved plan files; see planfile.h for the layout.
 *
 * Reading checks, in order: the magic (is this a plan at all?), the format
 * version (a newer layout may differ below the first line, so nothing else
 * is looked at), the checksum line, the checksum, and only then parses the
 * JSON. Any change to the JSON text, even one that keeps it valid JSON,
 * fails the checksum.
 */
#include "state/planfile.h"

#include "state/digest.h"
#include "state/fsutil.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define IBS_PLANFILE_MAGIC "IBSYNC-PLAN "
#define IBS_PLANFILE_CHECKSUM "checksum "
#define IBS_PLANFILE_MAX ((size_t)256 * 1024 * 1024)
#define IBS_PLANFILE_VERSION_DIGITS 9

int ibs_planfile_write(const char *path, const struct ibs_value *plan)
{
    struct ibs_buf b = IBS_BUF_INIT;
    char digest[IBS_DIGEST_HEX_LEN + 1];
    size_t json_start;
    int rc;

    ibs_buf_printf(&b, "%s%d\n", IBS_PLANFILE_MAGIC, IBS_PLANFILE_VERSION);
    json_start = b.size;
    if ((rc = ibs_json_write(&b, plan, IBS_JSON_PRETTY | IBS_JSON_SORTED)))
        goto done;
    if ((rc = ibs_digest_hex(digest, b.ptr + json_start, b.size - json_start)))
        goto done;
    ibs_buf_printf(&b, "\n%s%s\n", IBS_PLANFILE_CHECKSUM, digest);
    if ((rc = ibs_buf_oom(&b)))
        goto done;
    rc = ibs_fs_write_atomic(path, b.ptr, b.size, 0644);
done:
    ibs_buf_release(&b);
    return rc;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Checks the first line; on success *out_body is where the JSON starts. */
static int check_header(size_t *out_body, const char *path, const char *text, size_t len)
{
    const size_t mlen = strlen(IBS_PLANFILE_MAGIC);
    const char *v = text + mlen;
    size_t digits = 0;

    *out_body = 0;
    if (len < mlen || memcmp(text, IBS_PLANFILE_MAGIC, mlen) != 0)
        return ibs_error_set(IBS_EINVALID, "%s is not an ibsync plan", path);
    while (mlen + digits < len && v[digits] >= '0' && v[digits] <= '9')
        digits++;
    if (mlen + digits == len)
        return ibs_error_set(IBS_EINVALID, "%s is corrupt: truncated in its first line", path);
    if (!digits || digits > IBS_PLANFILE_VERSION_DIGITS || v[0] == '0' || v[digits] != '\n')
        return ibs_error_set(IBS_EINVALID, "%s is not an ibsync plan", path);
    if (strtol(v, NULL, 10) != IBS_PLANFILE_VERSION)
        return ibs_error_set(IBS_EINVALID,
                             "%s was written by plan format %.*s; this ibsync reads format %d",
                             path, (int)digits, v, IBS_PLANFILE_VERSION);
    *out_body = mlen + digits + 1;
    return 0;
}

int ibs_planfile_read(struct ibs_value **out, const char *path)
{
    const size_t clen = strlen(IBS_PLANFILE_CHECKSUM);
    char digest[IBS_DIGEST_HEX_LEN + 1];
    const char *json, *trailer;
    size_t body, json_len;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = ibs_fs_read_file(&text, &len, path, IBS_PLANFILE_MAX)))
        goto done;
    if ((rc = check_header(&body, path, text, len)))
        goto done;
    /* The last line must be exactly "checksum <hex>\n", after a newline ending the JSON. */
    trailer = len < body + 1 + clen + IBS_DIGEST_HEX_LEN + 1
                  ? NULL
                  : text + len - (clen + IBS_DIGEST_HEX_LEN + 1);
    if (!trailer || trailer[-1] != '\n' || memcmp(trailer, IBS_PLANFILE_CHECKSUM, clen) != 0 ||
        !is_lower_hex(trailer + clen, IBS_DIGEST_HEX_LEN) || text[len - 1] != '\n') {
        rc = ibs_error_set(IBS_EINVALID,
                           "%s is corrupt: the checksum line is missing or damaged "
                           "(truncated or edited file)",
                           path);
        goto done;
    }
    json = text + body;
    json_len = (size_t)(trailer - 1 - json);
    if ((rc = ibs_digest_hex(digest, json, json_len)))
        goto done;
    if (memcmp(digest, trailer + clen, IBS_DIGEST_HEX_LEN) != 0) {
        rc = ibs_error_set(IBS_EINVALID, "%s is corrupt: checksum mismatch", path);
        goto done;
    }
    if ((rc = ibs_json_parse(out, json, json_len))) {
        ibs_error_prefix("%s is corrupt", path);
        goto done;
    }
done:
    free(text);
    return rc;
}
