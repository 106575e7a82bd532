/*
 * AWS Signature Version 4 with OpenSSL 3 (EVP_Digest for SHA-256, EVP_Q_mac
 * for HMAC-SHA256); the canonicalisation rules are listed in sigv4.h.
 *
 * Signing, presigning and verification share one pipeline: the request's
 * headers are collected into a list of struct chdr (lower-case name, folded
 * value, repeated names joined with ','), sorted, and fed together with the
 * canonical URI, the canonical query (plus the X-Amz-* parameters when
 * presigning) and the payload hash into canonical_request(). The three entry
 * points differ only in which headers they collect: sign adds X-Amz-Date and
 * the token header, presign adds nothing, verify keeps exactly the headers
 * the client listed in SignedHeaders.
 *
 * Secrets: "AWS4" + secret key and every derived key are wiped with
 * OPENSSL_cleanse() before their memory is released, and no message ever
 * includes a key, a token or a signature.
 */
#include "providers/aws/sigv4.h"

#include "util/error.h"
#include "util/vec.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHA256_LEN 32
#define SCOPE_TERMINATOR "aws4_request"

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

/* ---- small helpers --------------------------------------------------- */

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower(*a) != ascii_lower(*b))
            return false;
    return *a == *b;
}

static bool ascii_ieqn(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

static bool ascii_iprefix(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (ascii_lower(*s) != ascii_lower(*prefix))
            return false;
    return true;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void to_hex(char *out, const unsigned char *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex_lower[bytes[i] >> 4];
        out[2 * i + 1] = hex_lower[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Wipes a buffer's whole allocation (it may hold a secret) and frees it. */
static void buf_release_secret(struct ibs_buf *b)
{
    if (b->asize)
        OPENSSL_cleanse(b->ptr, b->asize);
    ibs_buf_release(b);
}

/* ---- hashing --------------------------------------------------------- */

static int sha256(unsigned char *out, const void *data, size_t len)
{
    unsigned int n = 0;
    if (!EVP_Digest(data ? data : "", len, out, &n, EVP_sha256(), NULL) || n != SHA256_LEN) {
        ERR_clear_error();
        return ibs_error_set(IBS_ERROR, "sigv4: SHA-256 failed in OpenSSL");
    }
    return 0;
}

int ibs_sigv4_sha256_hex(char *out, const void *data, size_t len)
{
    unsigned char md[SHA256_LEN];
    int rc = sha256(md, data, len);
    if (rc == 0)
        to_hex(out, md, sizeof(md));
    return rc;
}

static int hmac_sha256(unsigned char *out, const void *key, size_t keylen, const void *data,
                       size_t len)
{
    size_t n = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen,
                   (const unsigned char *)(data ? data : ""), len, out, SHA256_LEN, &n) ||
        n != SHA256_LEN) {
        ERR_clear_error();
        return ibs_error_set(IBS_ERROR, "sigv4: HMAC-SHA256 failed in OpenSSL");
    }
    return 0;
}

int ibs_sigv4_hmac_sha256(unsigned char *out, const void *key, size_t keylen, const void *data,
                          size_t len)
{
    return hmac_sha256(out, key, keylen, data, len);
}

/*
 * signature = HMAC(kSigning, string_to_sign), where kSigning is derived as
 * HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
 */
static int compute_signature(char *out, const char *secret, const char *amz_date,
                             const char *region, const char *service, const char *sts)
{
    struct ibs_buf ksecret = IBS_BUF_INIT;
    unsigned char k1[SHA256_LEN], k2[SHA256_LEN];
    size_t slen = strlen(secret);
    int rc;

    /* Sized once so that no realloc leaves a copy of the secret behind. */
    if ((rc = ibs_buf_grow(&ksecret, 4 + slen)))
        goto done;
    ibs_buf_puts(&ksecret, "AWS4");
    ibs_buf_put(&ksecret, secret, slen);
    if ((rc = ibs_buf_oom(&ksecret)))
        goto done;
    if ((rc = hmac_sha256(k1, ksecret.ptr, ksecret.size, amz_date, 8)) ||
        (rc = hmac_sha256(k2, k1, sizeof(k1), region, strlen(region))) ||
        (rc = hmac_sha256(k1, k2, sizeof(k2), service, strlen(service))) ||
        (rc = hmac_sha256(k2, k1, sizeof(k1), SCOPE_TERMINATOR, strlen(SCOPE_TERMINATOR))) ||
        (rc = hmac_sha256(k1, k2, sizeof(k2), sts, strlen(sts))))
        goto done;
    to_hex(out, k1, sizeof(k1));
done:
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    buf_release_secret(&ksecret);
    return rc;
}

/* ---- dates ----------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* Unix seconds of 0000-01-01T00:00:00Z and of 10000-01-01T00:00:00Z. */
#define MIN_TIME (-62167219200LL)
#define END_TIME (253402300800LL)

/* Writes `v` as exactly `n` decimal digits. */
static void put_digits(char *out, int64_t v, int n)
{
    while (n-- > 0) {
        out[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

int ibs_sigv4_format_date(char *out, int64_t t)
{
    int64_t days, secs, y, m, d;

    if (t < MIN_TIME || t >= END_TIME)
        return ibs_error_set(IBS_EINVALID,
                             "sigv4: signing time %" PRId64 " is outside years 0-9999", t);
    days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    secs = t - days * 86400;
    civil_from_days(days, &y, &m, &d);
    put_digits(out, y, 4);
    put_digits(out + 4, m, 2);
    put_digits(out + 6, d, 2);
    out[8] = 'T';
    put_digits(out + 9, secs / 3600, 2);
    put_digits(out + 11, secs / 60 % 60, 2);
    put_digits(out + 13, secs % 60, 2);
    out[15] = 'Z';
    out[16] = '\0';
    return 0;
}

static bool parse_digits(int64_t *out, const char *s, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int ibs_sigv4_parse_date(int64_t *out, const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t y, mo, d, h, mi, sec;

    if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' || !parse_digits(&y, s, 4) ||
        !parse_digits(&mo, s + 4, 2) || !parse_digits(&d, s + 6, 2) ||
        !parse_digits(&h, s + 9, 2) || !parse_digits(&mi, s + 11, 2) ||
        !parse_digits(&sec, s + 13, 2))
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
        goto bad;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        goto bad;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
bad:
    return ibs_error_set(IBS_EINVALID, "sigv4: date is not in the form YYYYMMDDTHHMMSSZ");
}

/* ---- URI and query --------------------------------------------------- */

int ibs_sigv4_uri_encode(struct ibs_buf *out, const char *s, size_t len, bool encode_slash)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (c == '/' && !encode_slash)) {
            ibs_buf_putc(out, (char)c);
        } else {
            char esc[3] = {'%', hex_upper[c >> 4], hex_upper[c & 15]};
            ibs_buf_put(out, esc, sizeof(esc));
        }
    }
    return ibs_buf_oom(out);
}

/* A '%' not followed by two hex digits stays a literal '%'. */
static int uri_decode(struct ibs_buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hex_value(s[i + 1])) >= 0 &&
            (lo = hex_value(s[i + 2])) >= 0) {
            ibs_buf_putc(out, (char)(hi << 4 | lo));
            i += 2;
        } else {
            ibs_buf_putc(out, s[i]);
        }
    }
    return ibs_buf_oom(out);
}

static int put_path_part(struct ibs_buf *out, const char *s, size_t len, bool double_encode)
{
    if (double_encode)
        return ibs_sigv4_uri_encode(out, s, len, false);
    ibs_buf_put(out, s, len);
    return ibs_buf_oom(out);
}

struct segment {
    const char *ptr;
    size_t len;
};

/*
 * Normalisation as in the AWS SDKs: empty and "." segments are dropped, ".."
 * drops the previous segment, a leading '/' is kept and a trailing '/' is
 * kept when any segment remains ("//example//" -> "/example/").
 */
int ibs_sigv4_canonical_uri(struct ibs_buf *out, const char *path, bool normalize,
                            bool double_encode)
{
    struct segment *segs = NULL;
    size_t len = strlen(path), nsegs = 0, cap = 1, start = out->size;
    const char *p = path;
    int rc = 0;

    if (!normalize) {
        rc = put_path_part(out, path, len, double_encode);
        goto done;
    }
    for (size_t i = 0; i < len; i++)
        cap += path[i] == '/';
    segs = calloc(cap, sizeof(*segs));
    if (!segs) {
        rc = ibs_error_oom();
        goto done;
    }
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (nsegs)
                nsegs--;
        } else if (n && !(n == 1 && p[0] == '.')) {
            segs[nsegs].ptr = p;
            segs[nsegs].len = n;
            nsegs++;
        }
        if (!slash)
            break;
        p = slash + 1;
    }
    if (path[0] == '/')
        ibs_buf_putc(out, '/');
    for (size_t i = 0; i < nsegs && rc == 0; i++) {
        if (i)
            ibs_buf_putc(out, '/');
        rc = put_path_part(out, segs[i].ptr, segs[i].len, double_encode);
    }
    if (rc == 0 && nsegs && len && path[len - 1] == '/')
        ibs_buf_putc(out, '/');
    rc = rc ? rc : ibs_buf_oom(out);
done:
    if (rc == 0 && out->size == start)
        rc = ibs_buf_putc(out, '/');
    free(segs);
    return rc;
}

/* One query parameter, both parts already in canonical (encoded) form. */
struct qparam {
    char *key;
    char *value;
};

static void qparam_free(void *p)
{
    struct qparam *q = p;
    if (!q)
        return;
    free(q->key);
    free(q->value);
    free(q);
}

/* Adds a parameter; `decode` says whether the parts come percent-encoded. */
static int qparams_add(struct ibs_vec *v, const char *k, size_t klen, const char *val, size_t vlen,
                       bool decode)
{
    struct ibs_buf raw = IBS_BUF_INIT, enc = IBS_BUF_INIT;
    struct qparam *q = calloc(1, sizeof(*q));
    int rc = 0;

    if (!q) {
        rc = ibs_error_oom();
        goto done;
    }
    for (int part = 0; part < 2; part++) {
        const char *s = part ? val : k;
        size_t n = part ? vlen : klen;
        ibs_buf_clear(&raw);
        if (decode) {
            if ((rc = uri_decode(&raw, s, n)))
                goto done;
            s = raw.ptr;
            n = raw.size;
        }
        if ((rc = ibs_sigv4_uri_encode(&enc, s, n, true)))
            goto done;
        if (part)
            q->value = ibs_buf_detach(&enc);
        else
            q->key = ibs_buf_detach(&enc);
        if (!(part ? q->value : q->key)) {
            rc = IBS_ENOMEM;
            goto done;
        }
    }
    if ((rc = ibs_vec_push(v, q)))
        goto done;
    q = NULL;
done:
    qparam_free(q);
    ibs_buf_release(&raw);
    ibs_buf_release(&enc);
    return rc;
}

/* Splits a raw query on '&'; "k" alone counts as "k=" and empty pieces are skipped. */
static int qparams_parse(struct ibs_vec *v, const char *query)
{
    const char *p = query;
    int rc = 0;

    while (p && *p && rc == 0) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n) {
            const char *eq = memchr(p, '=', n);
            size_t klen = eq ? (size_t)(eq - p) : n;
            rc = qparams_add(v, p, klen, eq ? eq + 1 : p + n, eq ? n - klen - 1 : 0, true);
        }
        p = amp ? amp + 1 : NULL;
    }
    return rc;
}

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = *(const struct qparam *const *)a;
    const struct qparam *y = *(const struct qparam *const *)b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* Canonical query of `query` plus `nextra` unencoded parameters. */
static int canonical_query(struct ibs_buf *out, const char *query,
                           const struct ibs_sigv4_header *extra, size_t nextra)
{
    struct ibs_vec params = IBS_VEC_INIT;
    bool first = true;
    int rc;

    if ((rc = qparams_parse(&params, query)))
        goto done;
    for (size_t i = 0; i < nextra; i++)
        if ((rc = qparams_add(&params, extra[i].name, strlen(extra[i].name), extra[i].value,
                              strlen(extra[i].value), false)))
            goto done;
    ibs_vec_sort(&params, qparam_cmp);
    for (size_t i = 0; i < params.count; i++) {
        const struct qparam *q = params.items[i];
        /* The signature cannot sign itself (presigned URLs carry it). */
        if (ascii_ieq(q->key, "X-Amz-Signature"))
            continue;
        ibs_buf_printf(out, "%s%s=%s", first ? "" : "&", q->key, q->value);
        first = false;
    }
    rc = ibs_buf_oom(out);
done:
    ibs_vec_release_with(&params, qparam_free);
    return rc;
}

int ibs_sigv4_canonical_query(struct ibs_buf *out, const char *query)
{
    return canonical_query(out, query, NULL, 0);
}

/* ---- headers --------------------------------------------------------- */

struct chdr {
    char *name;           /* lower-case */
    struct ibs_buf value; /* folded; repeated headers joined by ',' */
};

static void chdr_free(void *p)
{
    struct chdr *h = p;
    if (!h)
        return;
    free(h->name);
    ibs_buf_release(&h->value);
    free(h);
}

/* Appends `s` trimmed, with runs of blanks and line breaks folded to one space. */
static void fold_value(struct ibs_buf *out, const char *s)
{
    size_t start = out->size;
    bool blank = false;

    for (; *s; s++) {
        if (is_blank(*s)) {
            blank = true;
            continue;
        }
        if (blank && out->size > start)
            ibs_buf_putc(out, ' ');
        blank = false;
        ibs_buf_putc(out, *s);
    }
}

static int hdrs_add(struct ibs_vec *v, const char *name, const char *value)
{
    struct chdr *h = NULL;
    size_t nlen = strlen(name);
    int rc = 0;

    for (size_t i = 0; i < v->count; i++) {
        struct chdr *e = v->items[i];
        if (ascii_ieq(e->name, name)) {
            ibs_buf_putc(&e->value, ',');
            fold_value(&e->value, value);
            return ibs_buf_oom(&e->value);
        }
    }
    h = calloc(1, sizeof(*h));
    if (!h || !(h->name = malloc(nlen + 1))) {
        rc = ibs_error_oom();
        goto done;
    }
    for (size_t i = 0; i <= nlen; i++)
        h->name[i] = ascii_lower(name[i]);
    ibs_buf_init(&h->value);
    fold_value(&h->value, value);
    if ((rc = ibs_buf_oom(&h->value)) || (rc = ibs_vec_push(v, h)))
        goto done;
    h = NULL;
done:
    chdr_free(h);
    return rc;
}

static int chdr_cmp(const void *a, const void *b)
{
    const struct chdr *x = *(const struct chdr *const *)a;
    const struct chdr *y = *(const struct chdr *const *)b;
    return strcmp(x->name, y->name);
}

static const struct chdr *hdrs_find(const struct ibs_vec *v, const char *name)
{
    for (size_t i = 0; i < v->count; i++) {
        const struct chdr *h = v->items[i];
        if (strcmp(h->name, name) == 0)
            return h;
    }
    return NULL;
}

/* The first header of the request called `name` (any case), or NULL. */
static const char *req_header(const struct ibs_sigv4_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name && ascii_ieq(req->headers[i].name, name))
            return req->headers[i].value ? req->headers[i].value : "";
    return NULL;
}

/*
 * Headers the SDKs never sign: hop-by-hop headers and others that proxies
 * add or rewrite, which would break the signature on the way.
 */
static bool is_unsignable(const char *name)
{
    static const char *const names[] = {
        "cache-control", "connection",        "expect",
        "from",          "keep-alive",        "max-forwards",
        "pragma",        "referer",           "te",
        "trailer",       "transfer-encoding", "upgrade",
        "user-agent",    "x-amzn-trace-id",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (ascii_ieq(name, names[i]))
            return true;
    return ascii_iprefix(name, "proxy-") || ascii_iprefix(name, "sec-");
}

/* Collects the request headers a client signs, checking the ones it must not pass. */
static int collect_headers(struct ibs_vec *out, const struct ibs_sigv4_request *req)
{
    static const char *const reserved[] = {"authorization", "x-amz-date", "x-amz-security-token"};
    int rc = 0;

    for (size_t i = 0; i < req->nheaders && rc == 0; i++) {
        const char *name = req->headers[i].name;
        if (!name || !*name)
            return ibs_error_set(IBS_EINVALID, "sigv4: request header %zu has no name", i);
        for (size_t j = 0; j < sizeof(reserved) / sizeof(reserved[0]); j++)
            if (ascii_ieq(name, reserved[j]))
                return ibs_error_set(IBS_EINVALID, "sigv4: the signer sets the %s header itself",
                                     reserved[j]);
        if (is_unsignable(name))
            continue;
        rc = hdrs_add(out, name, req->headers[i].value ? req->headers[i].value : "");
    }
    if (rc == 0 && !hdrs_find(out, "host"))
        rc = ibs_error_set(IBS_EINVALID, "sigv4: the request has no Host header to sign");
    return rc;
}

/* ---- canonical request and string to sign ------------------------------ */

static int signed_header_list(struct ibs_buf *out, const struct ibs_vec *hdrs)
{
    for (size_t i = 0; i < hdrs->count; i++) {
        const struct chdr *h = hdrs->items[i];
        if (i)
            ibs_buf_putc(out, ';');
        ibs_buf_puts(out, h->name);
    }
    return ibs_buf_oom(out);
}

struct canon_input {
    const struct ibs_sigv4_request *req;
    bool normalize_path;
    bool double_encode_path;
    const struct ibs_vec *hdrs; /* sorted */
    const char *signed_headers;
    const struct ibs_sigv4_header *extra_query; /* presign parameters, unencoded */
    size_t nextra_query;
    const char *payload_hash;
};

static int canonical_request(struct ibs_buf *out, const struct canon_input *in)
{
    int rc;

    ibs_buf_puts(out, in->req->method);
    ibs_buf_putc(out, '\n');
    if ((rc = ibs_sigv4_canonical_uri(out, in->req->path, in->normalize_path,
                                      in->double_encode_path)))
        return rc;
    ibs_buf_putc(out, '\n');
    if ((rc = canonical_query(out, in->req->query, in->extra_query, in->nextra_query)))
        return rc;
    ibs_buf_putc(out, '\n');
    for (size_t i = 0; i < in->hdrs->count; i++) {
        const struct chdr *h = in->hdrs->items[i];
        ibs_buf_printf(out, "%s:%s\n", h->name, h->value.ptr);
    }
    ibs_buf_printf(out, "\n%s\n%s", in->signed_headers, in->payload_hash);
    return ibs_buf_oom(out);
}

static int string_to_sign(struct ibs_buf *out, const char *amz_date, const char *scope,
                          const char *creq)
{
    char hash[2 * SHA256_LEN + 1];
    int rc = ibs_sigv4_sha256_hex(hash, creq, strlen(creq));
    if (rc)
        return rc;
    ibs_buf_printf(out, IBS_SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
    return ibs_buf_oom(out);
}

static int credential_scope(struct ibs_buf *out, const char *amz_date, const char *region,
                            const char *service)
{
    ibs_buf_printf(out, "%.8s/%s/%s/" SCOPE_TERMINATOR, amz_date, region, service);
    return ibs_buf_oom(out);
}

/* ---- signing --------------------------------------------------------- */

static bool nonempty(const char *s)
{
    return s && *s;
}

static int check_sign_input(const struct ibs_sigv4_request *req,
                            const struct ibs_sigv4_credentials *creds,
                            const struct ibs_sigv4_params *params)
{
    if (!req || !creds || !params)
        return ibs_error_set(IBS_EINVALID, "sigv4: missing request, credentials or parameters");
    if (!nonempty(req->method) || !nonempty(req->path))
        return ibs_error_set(IBS_EINVALID, "sigv4: the request needs a method and a path");
    if ((req->nheaders && !req->headers) || (req->payload_len && !req->payload))
        return ibs_error_set(IBS_EINVALID, "sigv4: headers or payload missing for their count");
    if (!nonempty(params->region) || !nonempty(params->service) || strchr(params->region, '/') ||
        strchr(params->service, '/'))
        return ibs_error_set(IBS_EINVALID, "sigv4: invalid region or service name");
    if (!nonempty(creds->access_key_id) || !nonempty(creds->secret_access_key) ||
        strchr(creds->access_key_id, '/'))
        return ibs_error_set(IBS_EINVALID, "sigv4: incomplete credentials");
    return 0;
}

/* The caller's x-amz-content-sha256 value, else the hex SHA-256 of the body. */
static int payload_hash(char *out, bool *out_from_header, const struct ibs_sigv4_request *req)
{
    const char *given = req_header(req, "x-amz-content-sha256");

    *out_from_header = given != NULL;
    if (!given)
        return ibs_sigv4_sha256_hex(out, req->payload, req->payload_len);
    if (!*given || strlen(given) > 2 * SHA256_LEN)
        return ibs_error_set(IBS_EINVALID, "sigv4: invalid x-amz-content-sha256 header");
    memcpy(out, given, strlen(given) + 1);
    return 0;
}

static char *detach_or_null(struct ibs_buf *b, int *rc)
{
    char *s = ibs_buf_detach(b);
    if (!s && *rc == 0)
        *rc = IBS_ENOMEM;
    return s;
}

static bool has_token(const struct ibs_sigv4_credentials *creds)
{
    return nonempty(creds->session_token);
}

/*
 * The steps after the header list is known, shared by sign and presign:
 * canonical request, string to sign and signature, stored into `out`.
 */
static int sign_canonical(struct ibs_sigv4_result *out, const struct canon_input *in,
                          const char *scope, const struct ibs_sigv4_credentials *creds,
                          const struct ibs_sigv4_params *params)
{
    struct ibs_buf creq = IBS_BUF_INIT, sts = IBS_BUF_INIT;
    int rc;

    if ((rc = canonical_request(&creq, in)) ||
        (rc = string_to_sign(&sts, out->amz_date, scope, creq.ptr)) ||
        (rc = compute_signature(out->signature, creds->secret_access_key, out->amz_date,
                                params->region, params->service, sts.ptr)))
        goto done;
    out->canonical_request = detach_or_null(&creq, &rc);
    out->string_to_sign = detach_or_null(&sts, &rc);
done:
    ibs_buf_release(&creq);
    ibs_buf_release(&sts);
    return rc;
}

int ibs_sigv4_sign(struct ibs_sigv4_result *out, const struct ibs_sigv4_request *req,
                   const struct ibs_sigv4_credentials *creds, const struct ibs_sigv4_params *params)
{
    struct ibs_vec hdrs = IBS_VEC_INIT;
    struct ibs_buf sh = IBS_BUF_INIT, scope = IBS_BUF_INIT, auth = IBS_BUF_INIT;
    struct canon_input in;
    bool hash_given = false, add_sha = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = check_sign_input(req, creds, params)) ||
        (rc = ibs_sigv4_format_date(out->amz_date, params->time)) ||
        (rc = payload_hash(out->payload_hash, &hash_given, req)) ||
        (rc = collect_headers(&hdrs, req)) || (rc = hdrs_add(&hdrs, "x-amz-date", out->amz_date)))
        goto done;
    if (has_token(creds) && !params->omit_session_token &&
        (rc = hdrs_add(&hdrs, "x-amz-security-token", creds->session_token)))
        goto done;
    add_sha = params->content_sha256_header && !hash_given;
    if (add_sha && (rc = hdrs_add(&hdrs, "x-amz-content-sha256", out->payload_hash)))
        goto done;
    ibs_vec_sort(&hdrs, chdr_cmp);
    if ((rc = signed_header_list(&sh, &hdrs)) ||
        (rc = credential_scope(&scope, out->amz_date, params->region, params->service)))
        goto done;

    memset(&in, 0, sizeof(in));
    in.req = req;
    in.normalize_path = params->normalize_path;
    in.double_encode_path = params->double_encode_path;
    in.hdrs = &hdrs;
    in.signed_headers = sh.ptr;
    in.payload_hash = out->payload_hash;
    if ((rc = sign_canonical(out, &in, scope.ptr, creds, params)))
        goto done;

    ibs_buf_printf(&auth, IBS_SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                   creds->access_key_id, scope.ptr, sh.ptr, out->signature);
    out->authorization = detach_or_null(&auth, &rc);
    out->signed_headers = detach_or_null(&sh, &rc);
    if (rc == 0 && has_token(creds) && !(out->session_token = strdup(creds->session_token)))
        rc = ibs_error_oom();
    if (rc)
        goto done;
    out->headers[out->nheaders++] = (struct ibs_sigv4_header){"X-Amz-Date", out->amz_date};
    if (out->session_token)
        out->headers[out->nheaders++] =
            (struct ibs_sigv4_header){"X-Amz-Security-Token", out->session_token};
    if (add_sha)
        out->headers[out->nheaders++] =
            (struct ibs_sigv4_header){"X-Amz-Content-Sha256", out->payload_hash};
    out->headers[out->nheaders++] = (struct ibs_sigv4_header){"Authorization", out->authorization};
done:
    if (rc)
        ibs_sigv4_result_release(out);
    ibs_vec_release_with(&hdrs, chdr_free);
    ibs_buf_release(&sh);
    ibs_buf_release(&scope);
    ibs_buf_release(&auth);
    return rc;
}

/* Appends "&name=value" (value URI-encoded) to a presigned query string. */
static void put_query_param(struct ibs_buf *q, const char *name, const char *value)
{
    if (q->size)
        ibs_buf_putc(q, '&');
    ibs_buf_printf(q, "%s=", name);
    ibs_sigv4_uri_encode(q, value, strlen(value), true);
}

int ibs_sigv4_presign(struct ibs_sigv4_result *out, const struct ibs_sigv4_request *req,
                      const struct ibs_sigv4_credentials *creds,
                      const struct ibs_sigv4_params *params, int64_t expires)
{
    struct ibs_vec hdrs = IBS_VEC_INIT;
    struct ibs_buf sh = IBS_BUF_INIT, scope = IBS_BUF_INIT, cred = IBS_BUF_INIT,
                   query = IBS_BUF_INIT;
    struct ibs_sigv4_header extra[6];
    char expires_text[24];
    struct canon_input in;
    bool hash_given = false;
    size_t nextra = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((rc = check_sign_input(req, creds, params)))
        goto done;
    if (expires < 1 || expires > IBS_SIGV4_MAX_EXPIRES) {
        rc = ibs_error_set(IBS_EINVALID, "sigv4: presigned expiry must be 1 to %d seconds",
                           IBS_SIGV4_MAX_EXPIRES);
        goto done;
    }
    if ((rc = ibs_sigv4_format_date(out->amz_date, params->time)) ||
        (rc = payload_hash(out->payload_hash, &hash_given, req)) ||
        (rc = collect_headers(&hdrs, req)))
        goto done;
    ibs_vec_sort(&hdrs, chdr_cmp);
    if ((rc = signed_header_list(&sh, &hdrs)) ||
        (rc = credential_scope(&scope, out->amz_date, params->region, params->service)))
        goto done;
    ibs_buf_printf(&cred, "%s/%s", creds->access_key_id, scope.ptr);
    if ((rc = ibs_buf_oom(&cred)))
        goto done;
    snprintf(expires_text, sizeof(expires_text), "%" PRId64, expires);

    extra[nextra++] = (struct ibs_sigv4_header){"X-Amz-Algorithm", IBS_SIGV4_ALGORITHM};
    extra[nextra++] = (struct ibs_sigv4_header){"X-Amz-Credential", cred.ptr};
    extra[nextra++] = (struct ibs_sigv4_header){"X-Amz-Date", out->amz_date};
    extra[nextra++] = (struct ibs_sigv4_header){"X-Amz-Expires", expires_text};
    if (has_token(creds) && !params->omit_session_token)
        extra[nextra++] = (struct ibs_sigv4_header){"X-Amz-Security-Token", creds->session_token};
    extra[nextra++] = (struct ibs_sigv4_header){"X-Amz-SignedHeaders", sh.ptr};

    memset(&in, 0, sizeof(in));
    in.req = req;
    in.normalize_path = params->normalize_path;
    in.double_encode_path = params->double_encode_path;
    in.hdrs = &hdrs;
    in.signed_headers = sh.ptr;
    in.extra_query = extra;
    in.nextra_query = nextra;
    in.payload_hash = out->payload_hash;
    if ((rc = sign_canonical(out, &in, scope.ptr, creds, params)))
        goto done;

    /* The caller's query as it was, then the parameters in the SDKs' order. */
    if (req->query)
        ibs_buf_puts(&query, req->query);
    put_query_param(&query, "X-Amz-Algorithm", IBS_SIGV4_ALGORITHM);
    put_query_param(&query, "X-Amz-Credential", cred.ptr);
    put_query_param(&query, "X-Amz-Date", out->amz_date);
    put_query_param(&query, "X-Amz-SignedHeaders", sh.ptr);
    put_query_param(&query, "X-Amz-Expires", expires_text);
    if (has_token(creds))
        put_query_param(&query, "X-Amz-Security-Token", creds->session_token);
    put_query_param(&query, "X-Amz-Signature", out->signature);
    out->query = detach_or_null(&query, &rc);
    out->signed_headers = detach_or_null(&sh, &rc);
done:
    if (rc)
        ibs_sigv4_result_release(out);
    ibs_vec_release_with(&hdrs, chdr_free);
    ibs_buf_release(&sh);
    ibs_buf_release(&scope);
    ibs_buf_release(&cred);
    ibs_buf_release(&query);
    return rc;
}

void ibs_sigv4_result_release(struct ibs_sigv4_result *r)
{
    if (!r)
        return;
    free(r->authorization);
    free(r->query);
    free(r->canonical_request);
    free(r->string_to_sign);
    free(r->signed_headers);
    if (r->session_token) {
        OPENSSL_cleanse(r->session_token, strlen(r->session_token));
        free(r->session_token);
    }
    memset(r, 0, sizeof(*r));
}

/* ---- verification ---------------------------------------------------- */

#define MSG_MISMATCH                                                                               \
    "The request signature we calculated does not match the signature you provided. Check "        \
    "your AWS Secret Access Key and signing method. Consult the service documentation for "        \
    "details."

static int reject(struct ibs_sigv4_verdict *out, int status, const char *aws_code, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

static int reject(struct ibs_sigv4_verdict *out, int status, const char *aws_code, const char *fmt,
                  ...)
{
    va_list ap;
    int rc;

    out->status = status;
    out->aws_code = aws_code;
    va_start(ap, fmt);
    rc = ibs_error_vset(IBS_EAUTH, fmt, ap);
    va_end(ap);
    return rc;
}

/* The parts of "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
struct auth_header {
    char *copy; /* owns the strings below */
    const char *credential;
    const char *signed_headers;
    const char *signature;
};

static char *trim(char *s)
{
    char *end;
    while (is_blank(*s))
        s++;
    end = s + strlen(s);
    while (end > s && is_blank(end[-1]))
        *--end = '\0';
    return s;
}

static int parse_authorization(struct auth_header *a, struct ibs_sigv4_verdict *out,
                               const char *value)
{
    struct ibs_buf missing = IBS_BUF_INIT;
    char *p, *alg, *part, *save = NULL;
    int rc = 0;

    if (!(a->copy = strdup(value)))
        return ibs_error_oom();
    p = trim(a->copy);
    alg = p;
    p += strcspn(p, " \t");
    if (*p)
        *p++ = '\0';
    if (strcmp(alg, IBS_SIGV4_ALGORITHM) != 0) {
        rc = reject(out, 403, "IncompleteSignatureException",
                    "Unsupported AWS 'algorithm': '%.40s'.", alg);
        goto done;
    }
    for (part = strtok_r(p, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        char *eq;
        part = trim(part);
        if (!(eq = strchr(part, '=')))
            continue;
        *eq = '\0';
        if (strcmp(part, "Credential") == 0)
            a->credential = eq + 1;
        else if (strcmp(part, "SignedHeaders") == 0)
            a->signed_headers = eq + 1;
        else if (strcmp(part, "Signature") == 0)
            a->signature = eq + 1;
    }
    if (!a->credential)
        ibs_buf_puts(&missing, "Authorization header requires 'Credential' parameter. ");
    if (!a->signature)
        ibs_buf_puts(&missing, "Authorization header requires 'Signature' parameter. ");
    if (!a->signed_headers)
        ibs_buf_puts(&missing, "Authorization header requires 'SignedHeaders' parameter. ");
    if ((rc = ibs_buf_oom(&missing)))
        goto done;
    if (missing.size)
        rc = reject(out, 403, "IncompleteSignatureException", "%s", trim(missing.ptr));
done:
    ibs_buf_release(&missing);
    return rc;
}

/* Whether `name` (any case) is one of the ';'-separated `list`. */
static bool in_header_list(const char *list, const char *name)
{
    size_t nlen = strlen(name);
    while (*list) {
        size_t n = strcspn(list, ";");
        if (n == nlen && ascii_ieqn(list, n, name))
            return true;
        list += n;
        if (*list)
            list++;
    }
    return false;
}

/* Scope "AKID/20150830/us-east-1/service/aws4_request", split in place. */
struct scope_parts {
    char *copy;
    const char *key, *date, *region, *service, *terminator;
};

static int parse_scope(struct scope_parts *s, struct ibs_sigv4_verdict *out, const char *credential)
{
    const char **fields[] = {&s->key, &s->date, &s->region, &s->service, &s->terminator};
    size_t slashes = 0;
    char *p;

    for (const char *c = credential; *c; c++)
        slashes += *c == '/';
    if (slashes != 4)
        return reject(out, 403, "IncompleteSignatureException",
                      "Credential should have exactly 5 slash-separated parts "
                      "(key/date/region/service/aws4_request), not %zu.",
                      slashes + 1);
    if (!(s->copy = strdup(credential)))
        return ibs_error_oom();
    p = s->copy;
    for (size_t i = 0; i < 5; i++) {
        char *slash = strchr(p, '/');
        *fields[i] = p;
        if (slash) {
            *slash = '\0';
            p = slash + 1;
        }
    }
    return 0;
}

static void format_skew(char *out, size_t size, int64_t skew)
{
    if (skew % 60 == 0)
        snprintf(out, size, "%" PRId64 " min.", skew / 60);
    else
        snprintf(out, size, "%" PRId64 " sec.", skew);
}

/* Checks the request's date against the server clock (AWS's wording). */
static int check_skew(struct ibs_sigv4_verdict *out, const char *amz_date, int64_t t,
                      const struct ibs_sigv4_verifier *v)
{
    int64_t skew = v->max_skew > 0 ? v->max_skew : IBS_SIGV4_DEFAULT_SKEW;
    char now[17], bound[17], span[32];

    if (t >= v->now - skew && t <= v->now + skew)
        return 0;
    if (ibs_sigv4_format_date(now, v->now) ||
        ibs_sigv4_format_date(bound, t < v->now ? v->now - skew : v->now + skew))
        return reject(out, 403, "InvalidSignatureException", "Signature expired.");
    format_skew(span, sizeof(span), skew);
    if (t < v->now)
        return reject(out, 403, "InvalidSignatureException",
                      "Signature expired: %s is now earlier than %s (%s - %s)", amz_date, bound,
                      now, span);
    return reject(out, 403, "InvalidSignatureException",
                  "Signature not yet current: %s is still later than %s (%s + %s)", amz_date, bound,
                  now, span);
}

/* Collects the received headers the client listed in SignedHeaders. */
static int collect_signed_headers(struct ibs_vec *out, const struct ibs_sigv4_request *req,
                                  const char *list)
{
    int rc = 0;
    for (size_t i = 0; i < req->nheaders && rc == 0; i++) {
        const struct ibs_sigv4_header *h = &req->headers[i];
        if (h->name && in_header_list(list, h->name))
            rc = hdrs_add(out, h->name, h->value ? h->value : "");
    }
    if (rc == 0)
        ibs_vec_sort(out, chdr_cmp);
    return rc;
}

static int verify_signature(struct ibs_sigv4_verdict *out, const struct ibs_sigv4_request *req,
                            const struct ibs_sigv4_verifier *v, const struct auth_header *a,
                            const char *amz_date, const char *secret, const char *body_hash)
{
    struct ibs_vec hdrs = IBS_VEC_INIT;
    struct ibs_buf sh = IBS_BUF_INIT, scope = IBS_BUF_INIT, creq = IBS_BUF_INIT, sts = IBS_BUF_INIT;
    char expected[2 * SHA256_LEN + 1];
    struct canon_input in;
    int rc;

    if ((rc = collect_signed_headers(&hdrs, req, a->signed_headers)) ||
        (rc = signed_header_list(&sh, &hdrs)) ||
        (rc = credential_scope(&scope, amz_date, v->region, v->service)))
        goto done;
    memset(&in, 0, sizeof(in));
    in.req = req;
    in.normalize_path = v->normalize_path;
    in.double_encode_path = v->double_encode_path;
    in.hdrs = &hdrs;
    /* The client's own list: if it differs from what we found, the hashes differ. */
    in.signed_headers = a->signed_headers;
    in.payload_hash = body_hash;
    if ((rc = canonical_request(&creq, &in)) ||
        (rc = string_to_sign(&sts, amz_date, scope.ptr, creq.ptr)) ||
        (rc = compute_signature(expected, secret, amz_date, v->region, v->service, sts.ptr)))
        goto done;
    if (strlen(a->signature) != 2 * SHA256_LEN ||
        CRYPTO_memcmp(expected, a->signature, 2 * SHA256_LEN) != 0)
        rc = reject(out, 403, "InvalidSignatureException", MSG_MISMATCH);
done:
    OPENSSL_cleanse(expected, sizeof(expected));
    ibs_vec_release_with(&hdrs, chdr_free);
    ibs_buf_release(&sh);
    ibs_buf_release(&scope);
    ibs_buf_release(&creq);
    ibs_buf_release(&sts);
    return rc;
}

int ibs_sigv4_verify(struct ibs_sigv4_verdict *out, const struct ibs_sigv4_request *req,
                     const struct ibs_sigv4_verifier *v)
{
    struct auth_header a = {0};
    struct scope_parts s = {0};
    struct ibs_buf secret = IBS_BUF_INIT, date_copy = IBS_BUF_INIT;
    char body_hash[2 * SHA256_LEN + 1];
    const char *auth, *date, *given_hash;
    int64_t t;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!req || !v || !v->get_secret || !nonempty(v->region) || !nonempty(v->service) ||
        !nonempty(req->method) || !req->path || (req->nheaders && !req->headers) ||
        (req->payload_len && !req->payload)) {
        rc = ibs_error_set(IBS_EINVALID, "sigv4: incomplete request or verifier");
        goto done;
    }
    if (!(auth = req_header(req, "authorization"))) {
        rc =
            reject(out, 403, "MissingAuthenticationTokenException", "Missing Authentication Token");
        goto done;
    }
    if ((rc = parse_authorization(&a, out, auth)))
        goto done;

    /* X-Amz-Date wins; a Date header counts only in the same basic ISO 8601 form. */
    date = req_header(req, "x-amz-date");
    if (!date)
        date = req_header(req, "date");
    if (!date) {
        rc = reject(out, 403, "IncompleteSignatureException",
                    "Authorization header requires existence of either a 'X-Amz-Date' or a "
                    "'Date' header.");
        goto done;
    }
    ibs_buf_puts(&date_copy, date);
    if ((rc = ibs_buf_oom(&date_copy)))
        goto done;
    date = trim(date_copy.ptr);
    if (ibs_sigv4_parse_date(&t, date)) {
        rc = reject(out, 403, "IncompleteSignatureException",
                    "Date must be in ISO-8601 'basic format'. Got '%.40s'. See "
                    "http://en.wikipedia.org/wiki/ISO_8601",
                    date);
        goto done;
    }

    if ((rc = parse_scope(&s, out, a.credential)))
        goto done;
    if (strlen(s.key) < sizeof(out->access_key_id))
        memcpy(out->access_key_id, s.key, strlen(s.key) + 1);
    if (strcmp(s.terminator, SCOPE_TERMINATOR) != 0) {
        rc = reject(out, 403, "InvalidSignatureException",
                    "Credential should be scoped with a valid terminator: 'aws4_request', not "
                    "'%.40s'.",
                    s.terminator);
        goto done;
    }
    if (strlen(s.date) != 8 || strncmp(s.date, date, 8) != 0) {
        rc = reject(out, 403, "InvalidSignatureException",
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                    "date from HTTP: '%.8s' != '%.8s', from '%s'.",
                    s.date, date, date);
        goto done;
    }
    if (strcmp(s.region, v->region) != 0) {
        rc = reject(out, 403, "InvalidSignatureException",
                    "Credential should be scoped to a valid region.");
        goto done;
    }
    if (strcmp(s.service, v->service) != 0) {
        rc = reject(out, 403, "InvalidSignatureException",
                    "Credential should be scoped to correct service: '%s'.", v->service);
        goto done;
    }
    if (!in_header_list(a.signed_headers, "host")) {
        rc = reject(out, 403, "IncompleteSignatureException",
                    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
        goto done;
    }

    if (!out->access_key_id[0]) {
        rc = reject(out, 403, "UnrecognizedClientException",
                    "The security token included in the request is invalid.");
        goto done;
    }
    rc = v->get_secret(&secret, out->access_key_id, v->ctx);
    if (rc == IBS_ENOTFOUND) {
        rc = reject(out, 403, "UnrecognizedClientException",
                    "The security token included in the request is invalid.");
        goto done;
    }
    if (rc == 0)
        rc = ibs_buf_oom(&secret);
    if (rc)
        goto done;

    if ((rc = check_skew(out, date, t, v)))
        goto done;

    /*
     * A server must hash the body itself: trusting the client's
     * x-amz-content-sha256 would let a tampered body through.
     */
    if ((rc = ibs_sigv4_sha256_hex(body_hash, req->payload, req->payload_len)))
        goto done;
    given_hash = req_header(req, "x-amz-content-sha256");
    if (given_hash && strcmp(given_hash, body_hash) != 0) {
        rc = reject(out, 400, "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was "
                    "computed.");
        goto done;
    }
    rc = verify_signature(out, req, v, &a, date, secret.ptr, body_hash);
done:
    if (rc && !out->aws_code) {
        out->status = 500;
        out->aws_code = "InternalFailure";
    }
    buf_release_secret(&secret);
    ibs_buf_release(&date_copy);
    free(a.copy);
    free(s.copy);
    return rc;
}
