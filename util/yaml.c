/*
 * YAML codec: libfyaml's event parser drives an explicit stack of open
 * collections, so the C stack depth never depends on the input; the tree is
 * built bottom-up, one ibs_value per document.
 *
 * Hostile input is bounded before and during parsing: the whole input is
 * checked for size, NUL bytes and UTF-8 validity first; nesting depth, scalar
 * size and the node count are checked as events arrive. Every anchor records
 * the size and height of its subtree, so an alias whose expansion would exceed
 * max_nodes or max_depth fails before anything is copied. Copies are also
 * held to a ratio of the nodes actually written (see count_copies()), so a
 * "billion laughs" document fails after a few MB instead of filling
 * max_nodes.
 *
 * Errors come in two kinds. Syntax errors (from libfyaml, collected through
 * its diagnostic object so it never prints) and exceeded limits stop parsing
 * at once. Semantic errors (duplicate keys, tags, aliases, merge keys) are
 * reported and parsing goes on to the end of the document to find more; the
 * document is then dropped and the stream stops there. Nodes that must not
 * outlive their document (keys, rejected nodes, merge sources) may still be
 * the target of an anchor, so they are parked in a "graveyard" freed at the
 * end of the document instead of being freed on the spot.
 *
 * libfyaml 0.7.12 is trusted with the structure of the stream, not with
 * everything else. The text of quoted and block scalars is decoded here from
 * the source (its own decoding garbles several cases, see decode_scalar());
 * where it misjudges the end of a scalar, the parse fails instead of
 * yielding a wrong tree; inputs that crash it (see check_tab_indentation())
 * and top-level block scalars it misreads are refused before it sees them.
 *
 * Locations are 1-based lines and columns counted in characters (a tab is one
 * column, a leading BOM none), matching libfyaml's own marks.
 */
#include "util/yaml.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/text.h"

#include <libfyaml.h>

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_DEPTH 128
#define DEFAULT_MAX_NODES 2000000
#define DEFAULT_MAX_SCALAR (16u * 1024 * 1024)
#define DEFAULT_MAX_INPUT (64u * 1024 * 1024)

/* Maps up to this size are searched linearly for duplicate keys. */
#define SMALL_MAP 8
/* Bytes of user text quoted in a message before it is cut off. */
#define EXCERPT_MAX 60
/* YAML limits implicit keys to 1024 characters; longer ones are emitted
 * with the explicit "? key" syntax. */
#define IMPLICIT_KEY_MAX 1000

#define CORE_TAG "tag:yaml.org,2002:"

/* Alias expansion budget: see count_copies(). */
#define ALIAS_FLOOR 100000
#define ALIAS_RATIO 10

void ibs_yaml_limits_init(struct ibs_yaml_limits *limits)
{
    limits->max_depth = DEFAULT_MAX_DEPTH;
    limits->max_nodes = DEFAULT_MAX_NODES;
    limits->max_scalar = DEFAULT_MAX_SCALAR;
    limits->max_input = DEFAULT_MAX_INPUT;
}

/* ------------------------------------------------------------------------ */
/* Text helpers shared by the parser and the emitter                         */

/*
 * Copies a short, printable excerpt of s into dst for use in messages:
 * control characters are escaped and long text is cut at a character
 * boundary and marked with "...".
 */
static void excerpt(char *dst, size_t dstsz, const char *s, size_t len)
{
    size_t o = 0, i = 0;

    while (i < len && o + 8 < dstsz) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t n;

        if (i >= EXCERPT_MAX) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '"' ? "\\\"" : NULL;
            if (c == '\\')
                esc = "\\\\";
            if (esc)
                o += (size_t)snprintf(dst + o, dstsz - o, "%s", esc);
            else
                o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02x", c);
            i++;
            continue;
        }
        n = ibs_text_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (n == 0) {
            o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02x", c);
            i++;
            continue;
        }
        memcpy(dst + o, s + i, n);
        o += n;
        i += n;
    }
    dst[o] = '\0';
}

/* "a string", "an integer", ... for messages. */
static const char *type_with_article(enum ibs_value_type type)
{
    switch (type) {
    case IBS_VALUE_NULL:
        return "null";
    case IBS_VALUE_BOOL:
        return "a boolean";
    case IBS_VALUE_INT:
        return "an integer";
    case IBS_VALUE_FLOAT:
        return "a number";
    case IBS_VALUE_STRING:
        return "a string";
    case IBS_VALUE_LIST:
        return "a list";
    case IBS_VALUE_MAP:
        return "a map";
    }
    return "a value";
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool text_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/*
 * YAML 1.2 core schema integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+.
 * Values outside int64 become floats (the text stays available in `str`).
 * `v` may be NULL to only classify.
 */
static bool resolve_int(const char *s, size_t len, struct ibs_value *v)
{
    size_t i = 0;
    unsigned base = 10;
    bool neg = false, overflow = false;
    uint64_t acc = 0, limit;
    double dacc = 0;

    if (len >= 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        i = 2;
    } else if (len && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return false;
    for (; i < len; i++) {
        int d = digit_value(s[i]);
        if (d < 0 || (unsigned)d >= base)
            return false;
        if (acc > (UINT64_MAX - (unsigned)d) / base)
            overflow = true;
        else
            acc = acc * base + (unsigned)d;
        dacc = dacc * base + d;
    }
    if (!v)
        return true;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (overflow || acc > limit) {
        v->type = IBS_VALUE_FLOAT;
        /* strtod rounds a long decimal correctly; the text is NUL-terminated. */
        v->num.d = base == 10 ? strtod(v->str, NULL) : dacc;
        return true;
    }
    v->type = IBS_VALUE_INT;
    if (neg)
        v->num.i = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        v->num.i = (int64_t)acc;
    return true;
}

static size_t count_digits(const char *s, size_t len, size_t i)
{
    size_t n = 0;
    while (i + n < len && s[i + n] >= '0' && s[i + n] <= '9')
        n++;
    return n;
}

/* Core schema floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?,
 * [-+]?\.(inf|Inf|INF), \.(nan|NaN|NAN). */
static bool resolve_float(const char *s, size_t len, struct ibs_value *v)
{
    size_t i = 0, whole, frac = 0;
    bool neg = false;

    if (text_is(s, len, ".nan") || text_is(s, len, ".NaN") || text_is(s, len, ".NAN")) {
        if (v)
            v->num.d = NAN;
        goto matched;
    }
    if (len && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (text_is(s + i, len - i, ".inf") || text_is(s + i, len - i, ".Inf") ||
        text_is(s + i, len - i, ".INF")) {
        if (v)
            v->num.d = neg ? -INFINITY : INFINITY;
        goto matched;
    }
    whole = count_digits(s, len, i);
    i += whole;
    if (i < len && s[i] == '.') {
        i++;
        frac = count_digits(s, len, i);
        i += frac;
    }
    if (whole == 0 && frac == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (count_digits(s, len, i) == 0)
            return false;
        i += count_digits(s, len, i);
    }
    if (i != len)
        return false;
    /* The grammar above is a subset of strtod's (in the C locale). */
    if (v)
        v->num.d = strtod(v->str, NULL);
matched:
    if (v)
        v->type = IBS_VALUE_FLOAT;
    return true;
}

static bool is_null_text(const char *s, size_t len)
{
    return len == 0 || text_is(s, len, "~") || text_is(s, len, "null") || text_is(s, len, "Null") ||
           text_is(s, len, "NULL");
}

static int bool_text(const char *s, size_t len)
{
    if (text_is(s, len, "true") || text_is(s, len, "True") || text_is(s, len, "TRUE"))
        return 1;
    if (text_is(s, len, "false") || text_is(s, len, "False") || text_is(s, len, "FALSE"))
        return 0;
    return -1;
}

/*
 * The core-schema type of plain scalar text. With `v` (whose str/len hold
 * the text), also sets v->type and v->num.
 */
static enum ibs_value_type resolve_plain(const char *s, size_t len, struct ibs_value *v)
{
    int b;

    if (is_null_text(s, len)) {
        if (v)
            v->type = IBS_VALUE_NULL;
        return IBS_VALUE_NULL;
    }
    b = bool_text(s, len);
    if (b >= 0) {
        if (v) {
            v->type = IBS_VALUE_BOOL;
            v->num.b = b == 1;
        }
        return IBS_VALUE_BOOL;
    }
    if (resolve_int(s, len, v))
        return v ? v->type : IBS_VALUE_INT;
    if (resolve_float(s, len, v))
        return IBS_VALUE_FLOAT;
    if (v)
        v->type = IBS_VALUE_STRING;
    return IBS_VALUE_STRING;
}

/* ------------------------------------------------------------------------ */
/* Key sets: open addressing over indices into a caller's array            */

struct keyset {
    size_t *slots; /* index + 1, 0 for an empty slot */
    size_t cap;    /* a power of two, or 0 before the first insert */
    size_t used;
};

static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return (size_t)h;
}

/* Slot holding `key`, or the empty slot where it would go. */
static size_t *keyset_slot(const struct keyset *ks, const char *(*key_at)(const void *, size_t),
                           const void *ctx, const char *key)
{
    size_t mask = ks->cap - 1;
    size_t i = hash_key(key) & mask;

    while (ks->slots[i] && strcmp(key_at(ctx, ks->slots[i] - 1), key) != 0)
        i = (i + 1) & mask;
    return &ks->slots[i];
}

/* Index of `key` in the caller's array, or SIZE_MAX. */
static size_t keyset_find(const struct keyset *ks, const char *(*key_at)(const void *, size_t),
                          const void *ctx, const char *key)
{
    size_t *slot;
    if (!ks->cap)
        return SIZE_MAX;
    slot = keyset_slot(ks, key_at, ctx, key);
    return *slot ? *slot - 1 : SIZE_MAX;
}

/* Maps the key of element `idx` to `idx`, replacing an earlier element with
 * the same key. */
static int keyset_put(struct keyset *ks, const char *(*key_at)(const void *, size_t),
                      const void *ctx, size_t idx)
{
    size_t *slot;

    if ((ks->used + 1) * 2 > ks->cap) {
        size_t ncap = ks->cap ? ks->cap * 2 : 16;
        struct keyset grown = {calloc(ncap, sizeof(size_t)), ncap, 0};
        if (!grown.slots)
            return ibs_error_oom();
        for (size_t i = 0; i < ks->cap; i++) {
            if (ks->slots[i]) {
                *keyset_slot(&grown, key_at, ctx, key_at(ctx, ks->slots[i] - 1)) = ks->slots[i];
                grown.used++;
            }
        }
        free(ks->slots);
        *ks = grown;
    }
    slot = keyset_slot(ks, key_at, ctx, key_at(ctx, idx));
    if (!*slot)
        ks->used++;
    *slot = idx + 1;
    return 0;
}

static void keyset_release(struct keyset *ks)
{
    free(ks->slots);
    memset(ks, 0, sizeof(*ks));
}

static const char *member_key_at(const void *ctx, size_t idx)
{
    const struct ibs_value *map = ctx;
    return map->u.members[idx].key;
}

/* ------------------------------------------------------------------------ */
/* Parser state                                                             */

struct anchor {
    char *name;
    struct ibs_value *node; /* NULL while the anchored collection is open */
    size_t size;            /* nodes in the subtree */
    size_t height;          /* collection levels in the subtree */
};

struct frame {
    struct ibs_value *node; /* the open list or map */
    size_t start_nodes;     /* node count before this collection */
    size_t height;          /* highest child collection so far */
    size_t anchor;          /* anchor index + 1, or 0 */
    bool loc_from_child;    /* no start mark: take the first child's location */
    long indent;            /* column of the first entry (block collections) */
    /* maps only */
    struct ibs_value *key; /* key waiting for its value */
    bool key_anchored;     /* the key node is an anchor target */
    bool key_is_merge;     /* the key is a plain "<<" */
    bool skip_value;       /* the key was rejected: drop its value */
    size_t merge;          /* member index + 1 of the "<<" member, or 0 */
    struct keyset keys;    /* member keys, once the map is larger than SMALL_MAP */
};

struct yparse {
    struct ibs_vec *out;
    struct ibs_diags *diags;
    const char *file;
    const char *data;
    size_t len;
    struct ibs_yaml_limits lim;

    size_t nodes;  /* nodes created so far in the stream */
    size_t copies; /* of which copies made for aliases and merge keys */
    struct frame *stack;
    size_t depth;
    size_t stack_cap;

    struct anchor *anchors;
    size_t nanchors;
    size_t anchors_cap;
    struct keyset anchor_set;

    struct ibs_vec graveyard;
    struct ibs_value *root;
    struct ibs_loc doc_loc;
    bool doc_failed; /* a semantic error was reported in this document */
    bool stop;       /* a fatal error was reported: parse no further */
    int rc;          /* IBS_ENOMEM or another hard failure */
};

static void free_value(void *v)
{
    ibs_value_free(v);
}

static int fail_rc(struct yparse *p, int rc)
{
    if (!p->rc)
        p->rc = rc;
    p->stop = true;
    return rc;
}

static int vreport(struct yparse *p, bool fatal, const struct ibs_loc *loc, const char *fmt,
                   va_list ap) __attribute__((format(printf, 4, 0)));

static int vreport(struct yparse *p, bool fatal, const struct ibs_loc *loc, const char *fmt,
                   va_list ap)
{
    int rc = ibs_diag_vadd(p->diags, IBS_SEV_ERROR, loc, NULL, fmt, ap);
    p->doc_failed = true;
    if (fatal)
        p->stop = true;
    if (rc)
        return fail_rc(p, rc);
    return 0;
}

/* A semantic error: reported, parsing continues to the end of the document. */
static int report(struct yparse *p, const struct ibs_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int report(struct yparse *p, const struct ibs_loc *loc, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vreport(p, false, loc, fmt, ap);
    va_end(ap);
    return rc;
}

/* A fatal error: reported, parsing stops. Returns nonzero so that callers
 * unwind at once. */
static int fatal(struct yparse *p, const struct ibs_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fatal(struct yparse *p, const struct ibs_loc *loc, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = vreport(p, true, loc, fmt, ap);
    va_end(ap);
    return rc ? rc : IBS_EINVALID;
}

/* Parks a node until the end of the document (it may be an anchor target). */
static int bury(struct yparse *p, struct ibs_value *v)
{
    if (!v)
        return 0;
    if (ibs_vec_push(&p->graveyard, v)) {
        ibs_value_free(v);
        return fail_rc(p, IBS_ENOMEM);
    }
    return 0;
}

static int count_node(struct yparse *p, const struct ibs_loc *loc, size_t n)
{
    if (n > p->lim.max_nodes || p->nodes > p->lim.max_nodes - n)
        return fatal(p, loc, "too many nodes (more than %zu, counting alias expansions)",
                     p->lim.max_nodes);
    p->nodes += n;
    return 0;
}

/*
 * Counts `n` nodes copied for an alias or a merge key. Besides max_nodes,
 * copies may not outnumber the nodes written in the input by more than
 * ALIAS_RATIO to one once they pass ALIAS_FLOOR: real configurations reuse
 * anchors a few times, while an alias bomb multiplies a handful of nodes
 * millions of times and would otherwise fill max_nodes (hundreds of MB).
 */
static int count_copies(struct yparse *p, const struct ibs_loc *loc, size_t n)
{
    size_t written = p->nodes - p->copies;
    size_t allowed = written > ALIAS_FLOOR / ALIAS_RATIO ? written * ALIAS_RATIO : ALIAS_FLOOR;
    int rc;

    if (n > allowed || p->copies > allowed - n)
        return fatal(p, loc,
                     "aliases expand to more than %zu nodes (the document itself has %zu; "
                     "an alias bomb?)",
                     allowed, written);
    if ((rc = count_node(p, loc, n)))
        return rc;
    p->copies += n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Locations                                                                */

static struct ibs_loc mark_loc(const struct yparse *p, const struct fy_mark *m)
{
    struct ibs_loc loc = {p->file, 0, 0};
    if (m && m->line >= 0 && m->column >= 0) {
        loc.line = (unsigned)m->line + 1;
        loc.col = (unsigned)m->column + 1;
    }
    return loc;
}

static bool is_break(char c)
{
    return c == '\n' || c == '\r';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Whether the block scalar header "|" or ">" at line[i] is followed only by
 * indentation/chomping indicators and an optional comment.
 */
static bool header_rest_ok(const char *line, size_t i, size_t end)
{
    i++;
    while (i < end && (line[i] == '-' || line[i] == '+' || (line[i] >= '1' && line[i] <= '9')))
        i++;
    while (i < end && is_blank(line[i]))
        i++;
    return i == end || (line[i] == '#' && is_blank(line[i - 1]));
}

/*
 * libfyaml marks a block scalar at its first content line; the node starts at
 * its "|" or ">" header, which is on the line before that mark (or on the
 * mark's own line when the scalar is empty at the end of the input). Finds
 * the header with a small scan of that line that skips quoted text and stops
 * at a comment. On success *out is the header's offset and *loc its place.
 */
static bool find_block_header(const struct yparse *p, const struct fy_mark *m, size_t *out,
                              struct ibs_loc *loc)
{
    size_t pos = m->input_pos, ls, end, col = 0;
    char quote = 0;
    unsigned line = (unsigned)m->line + 1;

    if (pos > p->len || m->line < 0)
        return false;
    if (pos > 0 && m->column == 0 && is_break(p->data[pos - 1])) {
        pos--;
        if (pos > 0 && p->data[pos] == '\n' && p->data[pos - 1] == '\r')
            pos--;
        line--;
    }
    end = pos;
    ls = end;
    while (ls > 0 && !is_break(p->data[ls - 1]))
        ls--;
    if (ls == 0 && p->len >= 3 && memcmp(p->data, "\xef\xbb\xbf", 3) == 0)
        ls = 3;
    for (size_t i = ls; i < end; i++) {
        char c = p->data[i];
        bool at_token = i == ls || is_blank(p->data[i - 1]);

        if (((unsigned char)c & 0xc0) != 0x80)
            col++;
        if (quote) {
            if (c == '\\' && quote == '"')
                i++; /* an escaped character */
            else if (c == quote)
                quote = 0;
            continue;
        }
        if ((c == '"' || c == '\'') && at_token) {
            quote = c;
        } else if (c == '#' && at_token) {
            break;
        } else if ((c == '|' || c == '>') && at_token && header_rest_ok(p->data, i, end)) {
            *out = i;
            *loc = (struct ibs_loc){p->file, line, (unsigned)col};
            return true;
        }
    }
    return false;
}

static struct ibs_loc block_scalar_loc(const struct yparse *p, const struct fy_mark *m)
{
    struct ibs_loc loc = mark_loc(p, m);
    size_t hdr;

    if (loc.line)
        find_block_header(p, m, &hdr, &loc);
    return loc;
}

/* Location of a node's main token, adjusted to its first character. */
static struct ibs_loc token_loc(const struct yparse *p, struct fy_token *tok)
{
    const struct fy_mark *m = tok ? fy_token_start_mark(tok) : NULL;
    struct ibs_loc loc;
    enum fy_scalar_style style;

    if (!m)
        return mark_loc(p, NULL);
    loc = mark_loc(p, m);
    if (fy_token_get_type(tok) != FYTT_SCALAR)
        return loc;
    style = fy_token_scalar_style(tok);
    /* Quoted scalars are marked after their opening quote. */
    if ((style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED) && m->input_pos > 0 &&
        m->input_pos <= p->len && loc.col > 1 &&
        p->data[m->input_pos - 1] == (style == FYSS_SINGLE_QUOTED ? '\'' : '"'))
        loc.col--;
    if (style == FYSS_LITERAL || style == FYSS_FOLDED)
        loc = block_scalar_loc(p, m);
    return loc;
}

/* A node starts at its first property (anchor or tag), else at its content. */
static struct ibs_loc node_loc(const struct yparse *p, struct fy_token *anchor,
                               struct fy_token *tag, struct fy_token *main, bool *known)
{
    struct fy_token *props[2] = {anchor, tag};
    struct fy_mark best = {0, -1, -1};

    for (size_t i = 0; i < 2; i++) {
        const struct fy_mark *m = props[i] ? fy_token_start_mark(props[i]) : NULL;
        struct fy_mark start;
        if (!m)
            continue;
        start = *m;
        /* An anchor is marked at its name, after the '&'. */
        if (props[i] == anchor && start.input_pos > 0 && start.input_pos <= p->len &&
            start.column > 0 && p->data[start.input_pos - 1] == '&') {
            start.input_pos--;
            start.column--;
        }
        if (best.line < 0 || start.input_pos < best.input_pos)
            best = start;
    }
    if (best.line >= 0) {
        *known = true;
        return mark_loc(p, &best);
    }
    *known = main && fy_token_start_mark(main);
    return token_loc(p, main);
}

/* ------------------------------------------------------------------------ */
/* Tags                                                                     */

enum tag_kind {
    TAG_NONE,
    TAG_NONSPECIFIC, /* "!": string, list or map by node kind */
    TAG_STR,
    TAG_INT,
    TAG_FLOAT,
    TAG_BOOL,
    TAG_NULL,
    TAG_MAP,
    TAG_SEQ,
    TAG_OTHER,
};

static enum tag_kind tag_kind(struct fy_token *tag)
{
    static const struct {
        const char *name;
        enum tag_kind kind;
    } core[] = {
        {"str", TAG_STR},   {"int", TAG_INT}, {"float", TAG_FLOAT}, {"bool", TAG_BOOL},
        {"null", TAG_NULL}, {"map", TAG_MAP}, {"seq", TAG_SEQ},
    };
    size_t len, plen = strlen(CORE_TAG);
    const char *text;

    if (!tag)
        return TAG_NONE;
    text = fy_token_get_text(tag, &len);
    if (!text)
        return TAG_OTHER;
    if (text_is(text, len, "!"))
        return TAG_NONSPECIFIC;
    if (len > plen && memcmp(text, CORE_TAG, plen) == 0)
        for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
            if (text_is(text + plen, len - plen, core[i].name))
                return core[i].kind;
    return TAG_OTHER;
}

/* The tag as written in the source (for messages). */
static void tag_excerpt(const struct yparse *p, struct fy_token *tag, char *dst, size_t dstsz)
{
    const struct fy_mark *s = fy_token_start_mark(tag), *e = fy_token_end_mark(tag);
    const char *text;
    size_t len;

    if (s && e && s->input_pos < e->input_pos && e->input_pos <= p->len) {
        excerpt(dst, dstsz, p->data + s->input_pos, e->input_pos - s->input_pos);
        return;
    }
    text = fy_token_get_text(tag, &len);
    excerpt(dst, dstsz, text ? text : "", text ? len : 0);
}

static const char *tag_short_name(enum tag_kind k)
{
    switch (k) {
    case TAG_STR:
        return "!!str";
    case TAG_INT:
        return "!!int";
    case TAG_FLOAT:
        return "!!float";
    case TAG_BOOL:
        return "!!bool";
    case TAG_NULL:
        return "!!null";
    case TAG_MAP:
        return "!!map";
    case TAG_SEQ:
        return "!!seq";
    default:
        return "!";
    }
}

/* Applies an explicit tag to a scalar; reports values the tag rejects. */
static int apply_scalar_tag(struct yparse *p, struct ibs_value *v, enum tag_kind k,
                            struct fy_token *tag)
{
    char text[128];
    bool ok = true;

    switch (k) {
    case TAG_NONE:
        return 0;
    case TAG_NONSPECIFIC:
    case TAG_STR:
        v->type = IBS_VALUE_STRING;
        return 0;
    case TAG_INT:
        ok = resolve_int(v->str, v->len, v);
        break;
    case TAG_FLOAT:
        if (resolve_int(v->str, v->len, v)) {
            if (v->type == IBS_VALUE_INT)
                v->num.d = (double)v->num.i;
            v->type = IBS_VALUE_FLOAT;
        } else {
            ok = resolve_float(v->str, v->len, v);
        }
        break;
    case TAG_BOOL:
        ok = bool_text(v->str, v->len) >= 0;
        if (ok) {
            v->type = IBS_VALUE_BOOL;
            v->num.b = bool_text(v->str, v->len) == 1;
        }
        break;
    case TAG_NULL:
        ok = is_null_text(v->str, v->len);
        if (ok)
            v->type = IBS_VALUE_NULL;
        break;
    case TAG_MAP:
    case TAG_SEQ:
        return report(p, &v->loc, "tag \"%s\" cannot be used on a scalar", tag_short_name(k));
    case TAG_OTHER:
        tag_excerpt(p, tag, text, sizeof(text));
        return report(p, &v->loc, "unsupported tag \"%s\"", text);
    }
    if (!ok) {
        v->type = IBS_VALUE_STRING;
        excerpt(text, sizeof(text), v->str, v->len);
        return report(p, &v->loc, "\"%s\" is not a valid %s", text, tag_short_name(k));
    }
    return 0;
}

static int check_collection_tag(struct yparse *p, const struct ibs_loc *loc, struct fy_token *tag,
                                bool is_map)
{
    enum tag_kind k = tag_kind(tag);
    char text[128];

    if (k == TAG_NONE || k == TAG_NONSPECIFIC || (is_map && k == TAG_MAP) ||
        (!is_map && k == TAG_SEQ))
        return 0;
    if (k == TAG_OTHER) {
        tag_excerpt(p, tag, text, sizeof(text));
        return report(p, loc, "unsupported tag \"%s\"", text);
    }
    return report(p, loc, "tag \"%s\" cannot be used on a %s", tag_short_name(k),
                  is_map ? "mapping" : "sequence");
}

/* ------------------------------------------------------------------------ */
/* Anchors                                                                  */

static const char *anchor_name_at(const void *ctx, size_t idx)
{
    const struct yparse *p = ctx;
    return p->anchors[idx].name;
}

/* Registers an anchor (its node is set later for collections); *out is the
 * anchor's index. */
static int anchor_add(struct yparse *p, struct fy_token *tok, size_t *out)
{
    struct anchor *a;
    const char *text;
    size_t len;
    char *name;

    text = fy_token_get_text(tok, &len);
    if (!text)
        return fail_rc(p, ibs_error_set(IBS_ERROR, "cannot read an anchor name"));
    if (p->nanchors == p->anchors_cap) {
        size_t ncap = p->anchors_cap ? p->anchors_cap * 2 : 16;
        a = realloc(p->anchors, ncap * sizeof(*a));
        if (!a)
            return fail_rc(p, ibs_error_oom());
        p->anchors = a;
        p->anchors_cap = ncap;
    }
    name = malloc(len + 1);
    if (!name)
        return fail_rc(p, ibs_error_oom());
    memcpy(name, text, len);
    name[len] = '\0';
    a = &p->anchors[p->nanchors++];
    a->name = name;
    a->node = NULL;
    a->size = 0;
    a->height = 0;
    /* A later anchor of the same name replaces the earlier one. */
    if (keyset_put(&p->anchor_set, anchor_name_at, p, p->nanchors - 1))
        return fail_rc(p, IBS_ENOMEM);
    *out = p->nanchors - 1;
    return 0;
}

static void anchors_reset(struct yparse *p)
{
    for (size_t i = 0; i < p->nanchors; i++)
        free(p->anchors[i].name);
    p->nanchors = 0;
    keyset_release(&p->anchor_set);
}

/* ------------------------------------------------------------------------ */
/* Building the tree                                                        */

static size_t find_key(struct frame *f, const char *key)
{
    const struct ibs_value *map = f->node;

    if (map->count <= SMALL_MAP) {
        for (size_t i = 0; i < map->count; i++)
            if (strcmp(map->u.members[i].key, key) == 0)
                return i;
        return SIZE_MAX;
    }
    return keyset_find(&f->keys, member_key_at, map, key);
}

static int index_last_member(struct yparse *p, struct frame *f)
{
    struct ibs_value *map = f->node;

    if (map->count <= SMALL_MAP)
        return 0;
    if (map->count == SMALL_MAP + 1) {
        for (size_t i = 0; i < map->count; i++)
            if (keyset_put(&f->keys, member_key_at, map, i))
                return fail_rc(p, IBS_ENOMEM);
        return 0;
    }
    if (keyset_put(&f->keys, member_key_at, map, map->count - 1))
        return fail_rc(p, IBS_ENOMEM);
    return 0;
}

static int accept_key(struct yparse *p, struct frame *f, struct ibs_value *key, bool anchored,
                      bool is_merge)
{
    char text[128];
    size_t first;
    int rc;

    if (key->type == IBS_VALUE_LIST || key->type == IBS_VALUE_MAP) {
        rc = report(p, &key->loc, "mapping key must be a scalar, not %s",
                    type_with_article(key->type));
        f->skip_value = true;
        return rc ? rc : bury(p, key);
    }
    if (memchr(key->str, '\0', key->len)) {
        excerpt(text, sizeof(text), key->str, key->len);
        rc = report(p, &key->loc, "mapping key \"%s\" contains a NUL character", text);
        f->skip_value = true;
        return rc ? rc : bury(p, key);
    }
    first = find_key(f, key->str);
    if (first != SIZE_MAX) {
        excerpt(text, sizeof(text), key->str, key->len);
        if ((rc = report(p, &key->loc, "duplicate key \"%s\" (first at line %u)", text,
                         f->node->u.members[first].key_loc.line))) {
            ibs_value_free(key);
            return rc;
        }
    }
    f->key = key;
    f->key_anchored = anchored;
    f->key_is_merge = is_merge;
    return 0;
}

/*
 * Hands a finished node to the open collection (or makes it the document
 * root). `height` is the node's collection nesting, `anchored` says whether
 * an anchor refers to it, `is_merge` whether it is a plain "<<".
 */
static int attach(struct yparse *p, struct ibs_value *v, size_t height, bool anchored,
                  bool is_merge)
{
    struct frame *f;
    struct ibs_value *key;
    int rc;

    if (p->depth == 0) {
        p->root = v;
        return 0;
    }
    f = &p->stack[p->depth - 1];
    if (f->loc_from_child) {
        f->node->loc = v->loc;
        f->loc_from_child = false;
    }
    if (height > f->height)
        f->height = height;
    if (f->node->type == IBS_VALUE_LIST) {
        if (ibs_value_list_append(f->node, v))
            return fail_rc(p, IBS_ENOMEM);
        return 0;
    }
    if (!f->key && !f->skip_value)
        return accept_key(p, f, v, anchored, is_merge);
    if (f->skip_value) {
        f->skip_value = false;
        return bury(p, v);
    }
    key = f->key;
    f->key = NULL;
    if (ibs_value_map_append(f->node, key->str, strlen(key->str), key->loc, v)) {
        ibs_value_free(key);
        return fail_rc(p, IBS_ENOMEM);
    }
    if (f->key_is_merge && !f->merge)
        f->merge = f->node->count;
    rc = index_last_member(p, f);
    if (f->key_anchored)
        return rc ? rc : bury(p, key);
    ibs_value_free(key);
    return rc;
}

static int push_frame(struct yparse *p, struct ibs_value *node, bool loc_known, size_t anchor)
{
    struct frame *f;

    if (p->depth == p->stack_cap) {
        size_t ncap = p->stack_cap ? p->stack_cap * 2 : 16;
        struct frame *s = realloc(p->stack, ncap * sizeof(*s));
        if (!s) {
            ibs_value_free(node);
            return fail_rc(p, ibs_error_oom());
        }
        p->stack = s;
        p->stack_cap = ncap;
    }
    f = &p->stack[p->depth++];
    memset(f, 0, sizeof(*f));
    f->node = node;
    f->start_nodes = p->nodes;
    f->anchor = anchor;
    f->loc_from_child = !loc_known;
    f->indent = -1;
    return 0;
}

static int start_collection(struct yparse *p, struct fy_event *ev, bool is_map)
{
    struct fy_token *anchor = is_map ? ev->mapping_start.anchor : ev->sequence_start.anchor;
    struct fy_token *tag = is_map ? ev->mapping_start.tag : ev->sequence_start.tag;
    struct fy_token *start =
        is_map ? ev->mapping_start.mapping_start : ev->sequence_start.sequence_start;
    struct ibs_loc loc;
    struct ibs_value *node;
    size_t aidx = 0;
    bool known;
    int rc;

    loc = node_loc(p, anchor, tag, start, &known);
    if (!known && p->depth)
        loc = p->stack[p->depth - 1].node->loc;
    if (p->depth >= p->lim.max_depth)
        return fatal(p, &loc, "nesting deeper than %zu levels", p->lim.max_depth);
    if ((rc = count_node(p, &loc, 1)))
        return rc;
    if ((rc = check_collection_tag(p, &loc, tag, is_map)))
        return rc;
    if (anchor && (rc = anchor_add(p, anchor, &aidx)))
        return rc;
    node = is_map ? ibs_value_new_map() : ibs_value_new_list();
    if (!node)
        return fail_rc(p, IBS_ENOMEM);
    node->loc = loc;
    /* The node is counted, so the frame records the count before it. */
    rc = push_frame(p, node, known, anchor ? aidx + 1 : 0);
    if (!rc) {
        const struct fy_mark *m = start ? fy_token_start_mark(start) : NULL;
        p->stack[p->depth - 1].start_nodes = p->nodes - 1;
        if (m)
            p->stack[p->depth - 1].indent = m->column;
    }
    return rc;
}

/* Nodes in `v`, or a number above `budget` as soon as it is exceeded. */
static size_t count_tree(const struct ibs_value *v, size_t budget)
{
    size_t n = 1;

    for (size_t i = 0; i < v->count && n <= budget; i++) {
        const struct ibs_value *c =
            v->type == IBS_VALUE_LIST ? v->u.items[i] : v->u.members[i].value;
        n += count_tree(c, budget - n);
    }
    return n;
}

/*
 * Resolves the "<<" member of a finished map: members of the merged map(s)
 * are copied in at the position of "<<" unless the map has the key itself or
 * an earlier merged map supplied it.
 */
static int apply_merge(struct yparse *p, struct frame *f)
{
    struct ibs_value *map = f->node;
    size_t mi = f->merge - 1;
    struct ibs_value *src = map->u.members[mi].value;
    struct ibs_value *const *sources = &src;
    struct ibs_value *merged = NULL;
    struct ibs_member *members = NULL;
    struct keyset seen = {0};
    size_t nsources = 1, n;
    int rc = 0;

    if (src->type == IBS_VALUE_LIST) {
        sources = src->u.items;
        nsources = src->count;
    }
    for (size_t s = 0; s < nsources; s++) {
        if (sources[s]->type != IBS_VALUE_MAP)
            return report(p, &sources[s]->loc,
                          "merge key \"<<\" needs a map or a list of maps, not %s",
                          type_with_article(sources[s]->type));
    }
    merged = ibs_value_new_map();
    if (!merged)
        return fail_rc(p, IBS_ENOMEM);
    for (size_t s = 0; s < nsources; s++) {
        for (size_t i = 0; i < sources[s]->count; i++) {
            const struct ibs_member *m = &sources[s]->u.members[i];
            struct ibs_value *copy = NULL;
            size_t explicit_idx = find_key(f, m->key);

            if ((explicit_idx != SIZE_MAX && explicit_idx != mi) ||
                keyset_find(&seen, member_key_at, merged, m->key) != SIZE_MAX)
                continue;
            n = count_tree(m->value, p->lim.max_nodes);
            if ((rc = count_copies(p, &map->u.members[mi].key_loc, n)))
                goto done;
            if ((rc = ibs_value_clone(&copy, m->value)) ||
                (rc = ibs_value_map_append(merged, m->key, strlen(m->key), m->key_loc, copy))) {
                fail_rc(p, rc);
                goto done;
            }
            if ((rc = keyset_put(&seen, member_key_at, merged, merged->count - 1))) {
                fail_rc(p, rc);
                goto done;
            }
        }
    }
    /* Splice: members before "<<", the merged members, members after it. */
    n = map->count - 1 + merged->count;
    members = malloc((n ? n : 1) * sizeof(*members));
    if (!members) {
        rc = fail_rc(p, ibs_error_oom());
        goto done;
    }
    memcpy(members, map->u.members, mi * sizeof(*members));
    if (merged->count)
        memcpy(members + mi, merged->u.members, merged->count * sizeof(*members));
    memcpy(members + mi + merged->count, map->u.members + mi + 1,
           (map->count - mi - 1) * sizeof(*members));
    free(map->u.members[mi].key);
    rc = bury(p, src);
    free(map->u.members);
    map->u.members = members;
    map->count = map->cap = n;
    merged->count = 0;
done:
    keyset_release(&seen);
    ibs_value_free(merged);
    return rc;
}

static int end_collection(struct yparse *p)
{
    struct frame *f = &p->stack[p->depth - 1];
    struct ibs_value *node = f->node;
    size_t height = f->height + 1;
    int rc = 0;

    if (f->key) {
        /* A key without a value cannot come from the parser; drop it. */
        if (f->key_anchored)
            rc = bury(p, f->key);
        else
            ibs_value_free(f->key);
        f->key = NULL;
    }
    if (!rc && f->merge)
        rc = apply_merge(p, f);
    keyset_release(&f->keys);
    if (f->anchor) {
        struct anchor *a = &p->anchors[f->anchor - 1];
        a->node = node;
        a->size = p->nodes - f->start_nodes;
        a->height = height;
    }
    p->depth--;
    if (rc) {
        ibs_value_free(node);
        return rc;
    }
    ibs_value_shrink(node);
    return attach(p, node, height, f->anchor != 0, false);
}

/*
 * Indentation of the first non-blank content line of a block scalar whose
 * content starts at `m`, or SIZE_MAX when there is none.
 */
static size_t block_content_indent(const struct yparse *p, const struct fy_mark *m)
{
    size_t i = m->input_pos;

    while (i < p->len) {
        size_t start = i;
        while (i < p->len && p->data[i] == ' ')
            i++;
        if (i < p->len && !is_break(p->data[i]) && !is_blank(p->data[i]))
            return i - start;
        while (i < p->len && !is_break(p->data[i]))
            i++;
        i++;
    }
    return SIZE_MAX;
}

/*
 * libfyaml 0.7.12 misreads a top-level block scalar whose content is not
 * indented ("--- |" then "a" and "  x" at column 0 and 2): it returns
 * truncated text or uninitialised bytes. YAML allows that form, but such a
 * document is refused rather than read wrongly.
 */
static bool unindented_top_block(const struct yparse *p, struct fy_token *tok,
                                 enum fy_scalar_style style)
{
    const struct fy_mark *m;

    if (p->depth != 0 || (style != FYSS_LITERAL && style != FYSS_FOLDED))
        return false;
    m = fy_token_start_mark(tok);
    return m && m->column == 0 && m->input_pos <= p->len && block_content_indent(p, m) == 0;
}

/* ------------------------------------------------------------------------ */
/* Scalar text                                                              */

/*
 * libfyaml 0.7.12 reads the structure of quoted and block scalars correctly
 * but not always their text: runs of "''" escapes come out garbled (and leak
 * a buffer), "\\" escapes gain spaces, block scalars lose empty lines before
 * more-indented lines, and some results end in uninitialised bytes. So the
 * text of those scalars is decoded here from the source, by the rules of
 * YAML 1.2 (7.3 and 8.1); libfyaml has already checked the syntax. Plain
 * scalars, which have no escapes, still come from libfyaml.
 */

static size_t break_len(const char *s, size_t i, size_t end)
{
    if (i >= end || !is_break(s[i]))
        return 0;
    return s[i] == '\r' && i + 1 < end && s[i + 1] == '\n' ? 2 : 1;
}

static void put_utf8(struct ibs_buf *out, uint32_t c)
{
    char b[4];
    size_t n;

    if (c < 0x80) {
        b[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3f));
        n = 2;
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (c >> 18));
        b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        n = 4;
    }
    ibs_buf_put(out, b, n);
}

/* `n` hex digits at s[i] (all available), or -1. */
static long hex_value(const char *s, size_t i, size_t end, size_t n)
{
    long v = 0;

    if (i + n > end)
        return -1;
    for (size_t k = 0; k < n; k++) {
        int d = digit_value(s[i + k]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * Decodes the escape sequence after the backslash at s[i] into `out`.
 * Returns the bytes consumed after the backslash, or 0 if it is invalid.
 */
static size_t put_escape(struct ibs_buf *out, const char *s, size_t i, size_t end)
{
    size_t n = 0;
    long c;

    if (i + 1 >= end)
        return 0;
    switch (s[i + 1]) {
    case '0':
        c = 0;
        break;
    case 'a':
        c = '\a';
        break;
    case 'b':
        c = '\b';
        break;
    case 't':
    case '\t':
        c = '\t';
        break;
    case 'n':
        c = '\n';
        break;
    case 'v':
        c = '\v';
        break;
    case 'f':
        c = '\f';
        break;
    case 'r':
        c = '\r';
        break;
    case 'e':
        c = 0x1b;
        break;
    case ' ':
    case '"':
    case '/':
    case '\\':
        c = s[i + 1];
        break;
    case 'N':
        c = 0x85;
        break;
    case '_':
        c = 0xa0;
        break;
    case 'L':
        c = 0x2028;
        break;
    case 'P':
        c = 0x2029;
        break;
    case 'x':
        n = 2;
        break;
    case 'u':
        n = 4;
        break;
    case 'U':
        n = 8;
        break;
    default:
        return 0;
    }
    if (n == 0) {
        put_utf8(out, (uint32_t)c);
        return 1;
    }
    c = hex_value(s, i + 2, end, n);
    if (c < 0)
        return 0;
    if (n == 4 && c >= 0xd800 && c <= 0xdbff) {
        /* A UTF-16 surrogate pair written as two \u escapes. */
        long lo =
            i + 7 < end && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex_value(s, i + 8, end, 4) : -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return 0;
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
        n += 6;
    }
    if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
        return 0;
    put_utf8(out, (uint32_t)c);
    return 1 + n;
}

/*
 * After a line break inside a flow scalar: counts the empty lines that
 * follow and skips the leading blanks of the next line. *i ends on its first
 * character.
 */
static size_t skip_empty_lines(const char *s, size_t *i, size_t end)
{
    size_t empty = 0;

    for (;;) {
        size_t j = *i, b;
        while (j < end && is_blank(s[j]))
            j++;
        b = break_len(s, j, end);
        *i = j;
        if (!b)
            return empty;
        empty++;
        *i = j + b;
    }
}

/*
 * Decodes a single- or double-quoted scalar whose content starts at `start`
 * (just after the opening quote). Returns 1, or 0 when the content does not
 * look as expected (the caller then falls back to libfyaml).
 */
static int decode_quoted(struct ibs_buf *out, const struct yparse *p, size_t start, char quote,
                         size_t *close)
{
    const char *s = p->data;
    size_t i = start, end = p->len;
    size_t trim = SIZE_MAX; /* where trailing unescaped blanks began in `out` */

    while (i < end) {
        char c = s[i];
        size_t b;

        if (c == quote) {
            if (quote == '"' || i + 1 >= end || s[i + 1] != '\'') {
                *close = i;
                return 1;
            }
            ibs_buf_putc(out, '\'');
            trim = SIZE_MAX;
            i += 2;
        } else if (c == '\\' && quote == '"') {
            size_t n;
            if ((b = break_len(s, i + 1, end))) {
                /* An escaped line break joins the lines, keeping the blanks
                 * before it; empty lines after it still count. */
                size_t empty;
                i += 1 + b;
                empty = skip_empty_lines(s, &i, end);
                for (size_t k = 0; k < empty; k++)
                    ibs_buf_putc(out, '\n');
                trim = SIZE_MAX;
                continue;
            }
            n = put_escape(out, s, i, end);
            if (!n)
                return 0;
            trim = SIZE_MAX;
            i += 1 + n;
        } else if ((b = break_len(s, i, end))) {
            /* Line folding: trailing blanks go; one break becomes a space,
             * n empty lines become n newlines. */
            size_t empty;
            if (trim != SIZE_MAX)
                ibs_buf_truncate(out, trim);
            trim = SIZE_MAX;
            i += b;
            empty = skip_empty_lines(s, &i, end);
            if (empty)
                for (size_t k = 0; k < empty; k++)
                    ibs_buf_putc(out, '\n');
            else
                ibs_buf_putc(out, ' ');
        } else if (is_blank(c)) {
            if (trim == SIZE_MAX)
                trim = out->size;
            ibs_buf_putc(out, c);
            i++;
        } else {
            /* A run of ordinary characters is copied at once. */
            size_t run = i + 1;
            while (run < end && s[run] != quote && s[run] != '\\' && !is_break(s[run]) &&
                   !is_blank(s[run]))
                run++;
            ibs_buf_put(out, s + i, run - i);
            trim = SIZE_MAX;
            i = run;
        }
    }
    return 0;
}

/*
 * Skips up to `indent` spaces, then any empty lines (each also followed by up
 * to `indent` spaces); *col is the column reached on the current line.
 * Returns the number of line breaks skipped.
 */
static size_t block_breaks(const char *s, size_t *i, size_t end, size_t indent, size_t *col)
{
    size_t n = 0, b;

    for (;;) {
        while (*col < indent && *i < end && s[*i] == ' ') {
            (*i)++;
            (*col)++;
        }
        b = break_len(s, *i, end);
        if (!b)
            return n;
        n++;
        *i += b;
        *col = 0;
    }
}

/*
 * Skips the leading empty lines of a block scalar without an indentation
 * indicator; *max_indent is the deepest column of spaces seen, which (with
 * the first content line) sets the indentation. Returns the line breaks.
 */
static size_t block_leading(const char *s, size_t *i, size_t end, size_t *col, size_t *max_indent)
{
    size_t n = 0, b;

    *max_indent = 0;
    while (*i < end) {
        if (s[*i] == ' ') {
            (*i)++;
            (*col)++;
            if (*col > *max_indent)
                *max_indent = *col;
        } else if ((b = break_len(s, *i, end))) {
            n++;
            *i += b;
            *col = 0;
        } else {
            break;
        }
    }
    return n;
}

static void put_newlines(struct ibs_buf *out, size_t n)
{
    for (size_t k = 0; k < n; k++)
        ibs_buf_putc(out, '\n');
}

/*
 * Decodes a literal or folded block scalar, following PyYAML's
 * scan_block_scalar(). `parent` is the indentation of the enclosing block
 * collection (-1 at the top level). Returns 1, or 0 to fall back to libfyaml.
 * By the rules, the scalar's token must end in [*lo, *hi]: after its last
 * content line and no later than the start of the next line with content.
 */
static int decode_block(struct ibs_buf *out, const struct yparse *p, struct fy_token *tok,
                        bool folded, long parent, size_t *lo, size_t *hi)
{
    const struct fy_mark *m = fy_token_start_mark(tok);
    const char *s = p->data;
    size_t end = p->len, i, hdr, indent, increment = 0, breaks, line_break = 0, col = 0;
    size_t min_indent = parent < 0 ? 1 : (size_t)parent + 1, max_indent;
    int chomp = 0; /* -1 strip, 0 clip, +1 keep */
    struct ibs_loc hloc;

    if (!m || !find_block_header(p, m, &hdr, &hloc))
        return 0;
    for (i = hdr + 1; i < end && (s[i] == '-' || s[i] == '+' || (s[i] >= '1' && s[i] <= '9'));
         i++) {
        if (s[i] == '-' || s[i] == '+')
            chomp = s[i] == '-' ? -1 : 1;
        else
            increment = (size_t)(s[i] - '0');
    }
    /* The content starts on the line after the header. */
    while (i < end && !is_break(s[i]))
        i++;
    i += break_len(s, i, end);
    *lo = i;
    if (increment) {
        indent = min_indent + increment - 1;
        breaks = block_breaks(s, &i, end, indent, &col);
    } else {
        breaks = block_leading(s, &i, end, &col, &max_indent);
        indent = max_indent > min_indent ? max_indent : min_indent;
    }
    while (col == indent && i < end) {
        size_t le = i;
        bool leading_non_space = !is_blank(s[i]);

        put_newlines(out, breaks);
        while (le < end && !is_break(s[le]))
            le++;
        ibs_buf_put(out, s + i, le - i);
        i = le;
        *lo = le;
        line_break = break_len(s, i, end);
        i += line_break;
        col = 0;
        breaks = block_breaks(s, &i, end, indent, &col);
        if (col != indent || i >= end)
            break;
        /* Folding joins two plain lines with a space (or with the empty
         * lines between them); more-indented lines keep their breaks. */
        if (folded && line_break && leading_non_space && !is_blank(s[i])) {
            if (!breaks)
                ibs_buf_putc(out, ' ');
        } else if (line_break) {
            ibs_buf_putc(out, '\n');
        }
    }
    if (chomp >= 0 && line_break)
        ibs_buf_putc(out, '\n');
    if (chomp > 0)
        put_newlines(out, breaks);
    /* libfyaml ends the token at the line start or at the next token. */
    *hi = i;
    while (*hi > 0 && *hi < end && !is_break(s[*hi - 1]))
        (*hi)--;
    while (*hi < end && s[*hi] == ' ')
        (*hi)++;
    if (*hi < *lo)
        *hi = *lo;
    return 1;
}

/* 1-based line and column (in characters) of byte offset `pos`. */
static struct ibs_loc offset_loc(const struct yparse *p, size_t pos)
{
    struct ibs_loc loc = {p->file, 1, 1};
    size_t i = p->len >= 3 && memcmp(p->data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;

    for (; i < pos && i < p->len; i++) {
        if (p->data[i] == '\n' ||
            (p->data[i] == '\r' && (i + 1 >= p->len || p->data[i + 1] != '\n'))) {
            loc.line++;
            loc.col = 1;
        } else if (p->data[i] != '\r' && ((unsigned char)p->data[i] & 0xc0) != 0x80) {
            loc.col++;
        }
    }
    return loc;
}

/*
 * The text of a quoted or block scalar, decoded into `out`. Returns 1, or 0
 * when libfyaml's text has to be used, or IBS_ENOMEM. Returns 2 when libfyaml
 * disagrees with the YAML rules about where the scalar ends (it then read the
 * structure around it wrongly too); *expected is where it should end.
 */
static int decode_scalar(struct ibs_buf *out, size_t *expected, const struct yparse *p,
                         struct fy_token *tok, enum fy_scalar_style style)
{
    const struct fy_mark *m = fy_token_start_mark(tok), *e = fy_token_end_mark(tok);
    long parent = p->depth ? p->stack[p->depth - 1].indent : -1;
    size_t lo = 0, hi = 0;
    int rc = 0;

    if (!m || !e || m->input_pos > p->len)
        return 0;
    if (style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED) {
        char quote = style == FYSS_SINGLE_QUOTED ? '\'' : '"';
        if (m->input_pos == 0 || p->data[m->input_pos - 1] != quote)
            return 0;
        rc = decode_quoted(out, p, m->input_pos, quote, &lo);
        hi = lo;
    } else if (style == FYSS_LITERAL || style == FYSS_FOLDED) {
        rc = decode_block(out, p, tok, style == FYSS_FOLDED, parent, &lo, &hi);
    }
    if (rc == 1 && (e->input_pos < lo || e->input_pos > hi)) {
        *expected = hi;
        rc = 2;
    }
    if (rc != 1)
        ibs_buf_clear(out);
    if (ibs_buf_oom(out))
        return IBS_ENOMEM;
    return rc;
}

/*
 * The text of a plain scalar that stays on one line is its input bytes
 * between the token's marks (no folding, no escapes): read it there rather
 * than have libfyaml format a copy, which was a tenth of the parse.
 * Borrowed from the input. False for any other scalar. Fuzzing builds
 * (IBS_FUZZ) compare every such text with libfyaml's and abort on a
 * difference: none in 1.2 million inputs when this was written.
 */
static bool plain_span(const struct yparse *p, struct fy_token *tok, enum fy_scalar_style style,
                       const char **out, size_t *out_len)
{
    const struct fy_mark *m, *e;

    if (style != FYSS_PLAIN)
        return false;
    m = fy_token_start_mark(tok);
    e = fy_token_end_mark(tok);
    if (!m || !e || m->line != e->line || m->input_pos > e->input_pos || e->input_pos > p->len)
        return false;
    if (memchr(p->data + m->input_pos, '\n', e->input_pos - m->input_pos) ||
        memchr(p->data + m->input_pos, '\r', e->input_pos - m->input_pos))
        return false;
    *out = p->data + m->input_pos;
    *out_len = e->input_pos - m->input_pos;
    return true;
}

static int on_scalar(struct yparse *p, struct fy_event *ev)
{
    struct fy_token *tok = ev->scalar.value;
    struct ibs_value *v = NULL;
    enum fy_scalar_style style = tok ? fy_token_scalar_style(tok) : FYSS_PLAIN;
    enum tag_kind tk = tag_kind(ev->scalar.tag);
    struct ibs_buf decoded = IBS_BUF_INIT;
    const char *text = "";
    size_t len = 0, aidx = 0, expected = 0;
    struct ibs_loc loc;
    bool known;
    int rc = 0;

    loc = node_loc(p, ev->scalar.anchor, ev->scalar.tag, tok, &known);
    if (!known && p->depth) {
        /* An empty node has no token: use its key, else its collection. */
        struct frame *f = &p->stack[p->depth - 1];
        loc = f->key ? f->key->loc : f->node->loc;
    } else if (!known) {
        loc = p->doc_loc;
    }
    if (tok && unindented_top_block(p, tok, style))
        return fatal(p, &loc, "a top-level block scalar must be indented");
    if (tok) {
        rc = decode_scalar(&decoded, &expected, p, tok, style);
        if (rc < 0)
            return fail_rc(p, ibs_error_oom());
        if (rc == 2) {
            struct ibs_loc want = offset_loc(p, expected);
            struct ibs_loc got = mark_loc(p, fy_token_end_mark(tok));
            ibs_buf_release(&decoded);
            return fatal(p, &loc,
                         "cannot read this scalar reliably: by the YAML rules it ends at line "
                         "%u, column %u, but the parser reads on to line %u, column %u",
                         want.line, want.col, got.line, got.col);
        }
        if (rc == 1) {
            text = decoded.ptr;
            len = decoded.size;
        } else if (plain_span(p, tok, style, &text, &len)) {
#ifdef IBS_YAML_CHECK_SPANS
            size_t flen;
            const char *ftext = fy_token_get_text(tok, &flen);
            if (!ftext || flen != len || memcmp(ftext, text, len) != 0) {
                fprintf(stderr, "plain scalar at %s:%u:%u read as [%.*s], libfyaml: [%.*s]\n",
                        p->file ? p->file : "-", loc.line, loc.col, (int)len, text, (int)flen,
                        ftext ? ftext : "");
                abort();
            }
#endif
        } else {
            text = fy_token_get_text(tok, &len);
        }
        if (!text)
            return fail_rc(p, ibs_error_set(IBS_ENOMEM, "cannot read a YAML scalar"));
        if (len > p->lim.max_scalar) {
            ibs_buf_release(&decoded);
            return fatal(p, &loc, "scalar is %zu bytes; the limit is %zu", len, p->lim.max_scalar);
        }
    }
    if ((rc = count_node(p, &loc, 1)))
        goto done;
    v = ibs_value_new_stringn(text, len);
    if (!v) {
        rc = fail_rc(p, IBS_ENOMEM);
        goto done;
    }
    v->loc = loc;
    v->quoted = style != FYSS_PLAIN;
    if (tk != TAG_NONE) {
        if ((rc = apply_scalar_tag(p, v, tk, ev->scalar.tag)))
            goto done;
    } else if (style == FYSS_PLAIN) {
        resolve_plain(v->str, v->len, v);
    }
    if (ev->scalar.anchor) {
        if ((rc = anchor_add(p, ev->scalar.anchor, &aidx)))
            goto done;
        p->anchors[aidx].node = v;
        p->anchors[aidx].size = 1;
    }
    rc = attach(p, v, 0, ev->scalar.anchor != NULL,
                style == FYSS_PLAIN && tk == TAG_NONE && text_is(v->str, v->len, "<<"));
    v = NULL; /* attach() owns it, even on failure */
done:
    ibs_value_free(v);
    ibs_buf_release(&decoded);
    return rc;
}

static int on_alias(struct yparse *p, struct fy_event *ev)
{
    struct fy_token *tok = ev->alias.anchor;
    struct ibs_loc loc = token_loc(p, tok);
    struct ibs_value *copy = NULL;
    const struct anchor *a = NULL;
    char name[128];
    const char *text;
    size_t idx;
    int rc;

    text = fy_token_get_text0(tok);
    if (!text)
        return fail_rc(p, ibs_error_set(IBS_ENOMEM, "cannot read an alias name"));
    /* The mark is on the name; the node starts at the '*' before it. */
    if (loc.col > 1)
        loc.col--;
    idx = keyset_find(&p->anchor_set, anchor_name_at, p, text);
    if (idx != SIZE_MAX)
        a = &p->anchors[idx];
    if (!a || !a->node) {
        excerpt(name, sizeof(name), text, strlen(text));
        if ((rc = report(p, &loc,
                         a ? "alias \"*%s\" refers to a node that contains it"
                           : "undefined alias \"*%s\"",
                         name)))
            return rc;
        if ((rc = count_node(p, &loc, 1)))
            return rc;
        copy = ibs_value_new_null();
        if (!copy)
            return fail_rc(p, IBS_ENOMEM);
        copy->loc = loc;
        return attach(p, copy, 0, false, false);
    }
    if (p->depth + a->height > p->lim.max_depth)
        return fatal(p, &loc, "nesting deeper than %zu levels", p->lim.max_depth);
    if ((rc = count_copies(p, &loc, a->size)))
        return rc;
    if ((rc = ibs_value_clone(&copy, a->node)))
        return fail_rc(p, rc);
    copy->loc = loc;
    return attach(p, copy, a->height, false, false);
}

static void discard_document(struct yparse *p)
{
    while (p->depth) {
        struct frame *f = &p->stack[--p->depth];
        ibs_value_free(f->key);
        ibs_value_free(f->node);
        keyset_release(&f->keys);
    }
    ibs_value_free(p->root);
    p->root = NULL;
    ibs_vec_release_with(&p->graveyard, free_value);
    anchors_reset(p);
}

static int end_document(struct yparse *p)
{
    struct ibs_value *root = p->root;
    int rc = 0;

    if (!root) {
        if ((rc = count_node(p, &p->doc_loc, 1)))
            return rc;
        root = ibs_value_new_null();
        if (!root)
            return fail_rc(p, IBS_ENOMEM);
        root->loc = p->doc_loc;
        p->root = root;
    }
    if (p->doc_failed) {
        p->stop = true;
    } else {
        if (ibs_vec_push(p->out, root))
            rc = fail_rc(p, ibs_error_oom());
        else
            p->root = NULL;
    }
    discard_document(p);
    return rc;
}

static int on_event(struct yparse *p, struct fy_event *ev)
{
    switch (ev->type) {
    case FYET_DOCUMENT_START:
        p->doc_loc = (struct ibs_loc){p->file, 1, 1};
        if (ev->document_start.document_start)
            p->doc_loc = mark_loc(p, fy_token_start_mark(ev->document_start.document_start));
        return 0;
    case FYET_DOCUMENT_END:
        return end_document(p);
    case FYET_MAPPING_START:
        return start_collection(p, ev, true);
    case FYET_SEQUENCE_START:
        return start_collection(p, ev, false);
    case FYET_MAPPING_END:
    case FYET_SEQUENCE_END:
        return p->depth ? end_collection(p) : 0;
    case FYET_SCALAR:
        return on_scalar(p, ev);
    case FYET_ALIAS:
        return on_alias(p, ev);
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* Input checks and libfyaml errors                                         */

/* Line and column (1-based, counted in characters) of byte offset `at`. */
static void input_position(const struct yparse *p, size_t at, unsigned *line, unsigned *col)
{
    const unsigned char *s = (const unsigned char *)p->data;

    *line = 1;
    *col = 1;
    for (size_t i = p->len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0 ? 3 : 0; i < at; i++) {
        if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == p->len || s[i + 1] != '\n'))) {
            (*line)++;
            *col = 1;
        } else if (s[i] != '\r' && (s[i] & 0xc0) != 0x80) {
            (*col)++; /* continuation bytes belong to the character before */
        }
    }
}

static int check_input(struct yparse *p)
{
    const unsigned char *s = (const unsigned char *)p->data;
    struct ibs_loc none = {p->file, 0, 0};
    const char *nul;
    size_t i = 0;

    if (p->len > p->lim.max_input)
        return fatal(p, &none, "file is %zu bytes; the limit is %zu", p->len, p->lim.max_input);
    nul = p->len ? memchr(p->data, '\0', p->len) : NULL;
    if (nul)
        return fatal(p, &none, "binary data (NUL byte at offset %zu) is not YAML",
                     (size_t)(nul - p->data));
    if (p->len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < p->len) {
        uint64_t word;
        uint32_t cp;
        size_t n;

        /* ASCII eight bytes at a time; the position is counted only for an error. */
        if (p->len - i >= 8) {
            memcpy(&word, s + i, 8);
            if (!(word & UINT64_C(0x8080808080808080))) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        n = ibs_text_utf8_decode(s + i, p->len - i, &cp);
        if (!n) {
            unsigned line, col;
            input_position(p, i, &line, &col);
            return fatal(p, &none, "invalid UTF-8 at line %u, column %u", line, col);
        }
        i += n;
    }
    return 0;
}

/*
 * libfyaml 0.7.12 frees a simple key twice (and crashes in
 * fy_parser_destroy()) after reporting a tab used as indentation of a block
 * entry inside an explicit key, e.g. "? b:<TAB>:". Such input is invalid
 * anyway: a tab in the blanks after a block indicator ("-", "?", ":")
 * followed by another indicator ("?", ":", "|", ">", "- "). This pass finds
 * that pattern before libfyaml sees it, outside quoted scalars, comments,
 * flow collections and block scalar content, and reports it the way libfyaml
 * does.
 */
static int check_tab_indentation(struct yparse *p)
{
    const char *s = p->data;
    size_t len = p->len, i = 0, flow = 0, block_indent = 0;
    bool in_block = false;
    char quote = 0;

    /* The pattern needs a tab: most files have none. */
    if (!len || !memchr(s, '\t', len))
        return 0;
    if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len) {
        size_t ls = i, le = i, ind = 0;
        bool blank = true;

        while (le < len && !is_break(s[le])) {
            if (!is_blank(s[le]))
                blank = false;
            le++;
        }
        while (ls + ind < le && s[ls + ind] == ' ')
            ind++;
        /* Block scalar content: blank lines and lines indented deeper than
         * the line holding the header. */
        if (in_block && !quote && (blank || ind > block_indent)) {
            i = le + break_len(s, le, len);
            continue;
        }
        in_block = false;
        for (size_t j = ls; j < le; j++) {
            char c = s[j];
            bool at_token =
                j == ls || is_blank(s[j - 1]) || (flow && strchr("[{,", s[j - 1]) != NULL);

            if (quote) {
                if (quote == '"' && c == '\\')
                    j++;
                else if (c == quote && quote == '\'' && j + 1 < le && s[j + 1] == '\'')
                    j++;
                else if (c == quote)
                    quote = 0;
                continue;
            }
            if ((c == '"' || c == '\'') && at_token) {
                quote = c;
            } else if (c == '#' && (j == ls || is_blank(s[j - 1]))) {
                break;
            } else if ((c == '[' || c == '{') && at_token) {
                flow++;
            } else if ((c == ']' || c == '}') && flow) {
                flow--;
            } else if (!flow && (c == '|' || c == '>') && at_token && header_rest_ok(s, j, le)) {
                in_block = true;
                block_indent = ind;
                break;
            } else if (!flow && (c == ':' || ((c == '-' || c == '?') && at_token)) &&
                       (j + 1 == le || is_blank(s[j + 1]))) {
                size_t k = j + 1, tab = SIZE_MAX;
                while (k < le && is_blank(s[k])) {
                    if (s[k] == '\t' && tab == SIZE_MAX)
                        tab = k;
                    k++;
                }
                if (tab != SIZE_MAX && k < le &&
                    (strchr("?:|>", s[k]) ||
                     (s[k] == '-' && (k + 1 == le || is_blank(s[k + 1]))))) {
                    struct ibs_loc loc = offset_loc(p, tab);
                    return fatal(p, &loc, "cannot use tab for indentation of block entry");
                }
            }
        }
        i = le + break_len(s, le, len);
    }
    return 0;
}

static void discard_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/*
 * libfyaml's default diagnostic configuration, read once:
 * fy_diag_cfg_default() asks isatty(2) on every call, a system call per
 * parsed file.
 */
static struct fy_diag_cfg diag_cfg_template;
static pthread_once_t diag_cfg_once = PTHREAD_ONCE_INIT;

static void diag_cfg_init(void)
{
    fy_diag_cfg_default(&diag_cfg_template);
}

/* Turns the errors libfyaml collected into diagnostics. */
static int report_fy_errors(struct yparse *p, struct fy_diag *diag)
{
    struct fy_diag_error *err;
    void *iter = NULL;
    bool any = false;

    while ((err = fy_diag_errors_iterate(diag, &iter)) && !p->rc) {
        struct ibs_loc loc = {p->file, 0, 0};
        if (err->type < FYET_ERROR)
            continue;
        if (err->line > 0 && err->column > 0) {
            loc.line = (unsigned)err->line;
            loc.col = (unsigned)err->column;
        }
        fatal(p, &loc, "%s", err->msg ? err->msg : "invalid YAML");
        any = true;
    }
    if (!any && !p->rc) {
        struct ibs_loc loc = {p->file, 0, 0};
        fatal(p, &loc, "invalid YAML");
    }
    return p->rc;
}

int ibs_yaml_parse(struct ibs_vec *out, struct ibs_diags *diags, const char *file, const char *data,
                   size_t len, const struct ibs_yaml_limits *limits)
{
    struct yparse p;
    struct fy_diag_cfg dcfg;
    struct fy_parse_cfg pcfg;
    struct fy_diag *fdiag = NULL;
    struct fy_parser *fyp = NULL;
    struct fy_event *ev;
    size_t first_diag = diags->count, errors_before = diags->errors;
    int rc = 0;

    memset(&p, 0, sizeof(p));
    p.out = out;
    p.diags = diags;
    p.file = file;
    p.data = data;
    p.len = len;
    if (limits)
        p.lim = *limits;
    else
        ibs_yaml_limits_init(&p.lim);
    ibs_vec_init(&p.graveyard);

    if (check_input(&p) || check_tab_indentation(&p) || len == 0)
        goto done;

    pthread_once(&diag_cfg_once, diag_cfg_init);
    dcfg = diag_cfg_template;
    dcfg.fp = NULL;
    dcfg.output_fn = discard_output;
    dcfg.user = NULL;
    dcfg.level = FYET_ERROR;
    dcfg.colorize = false;
    fdiag = fy_diag_create(&dcfg);
    if (!fdiag) {
        fail_rc(&p, ibs_error_oom());
        goto done;
    }
    fy_diag_set_collect_errors(fdiag, true);

    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2 | FYPCF_JSON_NONE;
    pcfg.diag = fdiag;
    fyp = fy_parser_create(&pcfg);
    if (!fyp || fy_parser_set_string(fyp, data, len)) {
        fail_rc(&p, ibs_error_set(IBS_ENOMEM, "cannot create a YAML parser"));
        goto done;
    }
    while (!p.stop && (ev = fy_parser_parse(fyp))) {
        on_event(&p, ev);
        fy_parser_event_free(fyp, ev);
    }
    if (!p.stop && (fy_parser_get_stream_error(fyp) || fy_diag_got_error(fdiag)))
        report_fy_errors(&p, fdiag);

done:
    discard_document(&p);
    free(p.stack);
    free(p.anchors);
    fy_parser_destroy(fyp);
    fy_diag_destroy(fdiag);
    if (p.rc) {
        rc = p.rc;
    } else if (diags->errors > errors_before) {
        struct ibs_buf msg = IBS_BUF_INIT;
        if (diags->count > first_diag)
            ibs_diag_format(&msg, &diags->items[first_diag]);
        else
            ibs_buf_printf(&msg, "%s: invalid YAML", file ? file : "<input>");
        rc = ibs_buf_oom(&msg) ? IBS_ENOMEM : ibs_error_set(IBS_EINVALID, "%s", msg.ptr);
        ibs_buf_release(&msg);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Emitter                                                                  */

/* Characters that may appear in a plain or single-quoted scalar. */
static bool printable_inline(uint32_t c)
{
    return (c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xd7ff && c != 0x2028 && c != 0x2029) ||
           (c >= 0xe000 && c <= 0xfffd && c != 0xfeff) || (c >= 0x10000 && c <= 0x10ffff);
}

/* Whether s is valid UTF-8 made only of characters allowed by `allow_tab_nl`
 * (tabs and newlines too) or printable_inline. */
static bool all_printable(const char *s, size_t len, bool allow_tab_nl)
{
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = ibs_text_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!n)
            return false;
        if (!printable_inline(cp) && !(allow_tab_nl && (cp == '\t' || cp == '\n')))
            return false;
        i += n;
    }
    return true;
}

static bool yaml11_special(const char *s, size_t len)
{
    static const char *const words[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                        "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (text_is(s, len, words[i]))
            return true;
    return false;
}

/* Whether the string can be written as a plain scalar and read back as the
 * same string. */
static bool plain_ok(const char *s, size_t len)
{
    if (len == 0 || s[0] == ' ' || s[len - 1] == ' ' || s[len - 1] == ':')
        return false;
    if (strchr("?:-,[]{}#&*!|>'\"%@`", s[0])) {
        /* "-x", "?x" and ":x" are plain; "-", "- x", "---" are not. */
        if (!strchr("?:-", s[0]) || len < 2 || s[1] == ' ' || s[1] == '-')
            return false;
    }
    if (len >= 3 && memcmp(s, "...", 3) == 0)
        return false;
    for (size_t i = 0; i + 1 < len; i++)
        if ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#'))
            return false;
    if (!all_printable(s, len, false))
        return false;
    return resolve_plain(s, len, NULL) == IBS_VALUE_STRING && !yaml11_special(s, len) &&
           !text_is(s, len, "<<");
}

static void put_single_quoted(struct ibs_buf *out, const char *s, size_t len)
{
    ibs_buf_putc(out, '\'');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\'')
            ibs_buf_putc(out, '\'');
        ibs_buf_putc(out, s[i]);
    }
    ibs_buf_putc(out, '\'');
}

static void put_double_quoted(struct ibs_buf *out, const char *s, size_t len)
{
    ibs_buf_putc(out, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t n;
        const char *esc = NULL;

        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\0':
            esc = "\\0";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        default:
            break;
        }
        if (esc) {
            ibs_buf_puts(out, esc);
            i++;
            continue;
        }
        n = ibs_text_utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (!n) {
            /* Not UTF-8: the byte is written as the code point of the same
             * value, which is the best a YAML text can do. */
            ibs_buf_printf(out, "\\x%02x", c);
            i++;
            continue;
        }
        if (printable_inline(cp))
            ibs_buf_put(out, s + i, n);
        else if (cp <= 0xff)
            ibs_buf_printf(out, "\\x%02x", (unsigned)cp);
        else
            ibs_buf_printf(out, "\\u%04x", (unsigned)cp);
        i += n;
    }
    ibs_buf_putc(out, '"');
}

/* A key or a one-line value: plain, single-quoted or double-quoted. */
static void put_inline_string(struct ibs_buf *out, const char *s, size_t len)
{
    if (plain_ok(s, len))
        ibs_buf_put(out, s, len);
    else if (all_printable(s, len, false))
        put_single_quoted(out, s, len);
    else
        put_double_quoted(out, s, len);
}

/*
 * Whether a multi-line string reads back unchanged from a literal block:
 * printable text, a first line that sets the indentation (not empty, no
 * leading blank), and no line made only of blanks (those would be taken
 * as indentation).
 */
static bool literal_ok(const char *s, size_t len)
{
    size_t i = 0;

    if (!memchr(s, '\n', len) || len == 0 || s[0] == ' ' || s[0] == '\t' || s[0] == '\n')
        return false;
    if (!all_printable(s, len, true))
        return false;
    while (i < len) {
        size_t start = i;
        bool blank = true;
        while (i < len && s[i] != '\n') {
            if (!is_blank(s[i]))
                blank = false;
            i++;
        }
        if (i > start && blank)
            return false;
        i++;
    }
    return true;
}

static void put_indent(struct ibs_buf *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ibs_buf_putc(out, ' ');
}

static void put_literal(struct ibs_buf *out, const char *s, size_t len, size_t indent)
{
    size_t trailing = 0, end = len, i = 0;

    while (trailing < len && s[len - 1 - trailing] == '\n')
        trailing++;
    ibs_buf_puts(out, trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+");
    ibs_buf_putc(out, '\n');
    end = len - trailing;
    while (i < end) {
        size_t start = i;
        while (i < end && s[i] != '\n')
            i++;
        if (i > start) {
            put_indent(out, indent);
            ibs_buf_put(out, s + start, i - start);
        }
        ibs_buf_putc(out, '\n');
        i++;
    }
    /* The line break ending the last line is already written. */
    for (size_t t = 1; t < trailing; t++)
        ibs_buf_putc(out, '\n');
}

static void put_float(struct ibs_buf *out, double d)
{
    char text[40];

    if (isnan(d)) {
        ibs_buf_puts(out, ".nan");
        return;
    }
    if (isinf(d)) {
        ibs_buf_puts(out, d < 0 ? "-.inf" : ".inf");
        return;
    }
    ibs_text_format_double(text, sizeof(text), d);
    ibs_buf_puts(out, text);
    if (!strpbrk(text, ".eEn"))
        ibs_buf_puts(out, ".0");
}

enum emit_pos {
    POS_TOP,  /* at the start of a line */
    POS_KEY,  /* after "key:" */
    POS_ITEM, /* after "- " */
};

static void emit_node(struct ibs_buf *out, const struct ibs_value *v, size_t indent,
                      enum emit_pos pos);

static void emit_scalar(struct ibs_buf *out, const struct ibs_value *v, size_t indent,
                        enum emit_pos pos)
{
    if (pos == POS_KEY)
        ibs_buf_putc(out, ' ');
    switch (v->type) {
    case IBS_VALUE_NULL:
        ibs_buf_puts(out, "null");
        break;
    case IBS_VALUE_BOOL:
        ibs_buf_puts(out, v->num.b ? "true" : "false");
        break;
    case IBS_VALUE_INT:
        ibs_buf_printf(out, "%" PRId64, v->num.i);
        break;
    case IBS_VALUE_FLOAT:
        put_float(out, v->num.d);
        break;
    case IBS_VALUE_STRING:
        if (v->str && literal_ok(v->str, v->len)) {
            put_literal(out, v->str, v->len, indent + 2);
            return;
        }
        put_inline_string(out, v->str ? v->str : "", v->str ? v->len : 0);
        break;
    default:
        ibs_buf_puts(out, v->type == IBS_VALUE_MAP ? "{}" : "[]");
        break;
    }
    ibs_buf_putc(out, '\n');
}

static void emit_key(struct ibs_buf *out, const char *key, size_t indent)
{
    struct ibs_buf k = IBS_BUF_INIT;

    put_inline_string(&k, key, strlen(key));
    if (k.size > IMPLICIT_KEY_MAX) {
        ibs_buf_puts(out, "? ");
        ibs_buf_put(out, k.ptr, k.size);
        ibs_buf_putc(out, '\n');
        put_indent(out, indent);
    } else {
        ibs_buf_put(out, k.ptr, k.size);
    }
    if (ibs_buf_oom(&k))
        out->oom = true;
    ibs_buf_putc(out, ':');
    ibs_buf_release(&k);
}

static void emit_node(struct ibs_buf *out, const struct ibs_value *v, size_t indent,
                      enum emit_pos pos)
{
    size_t child = pos == POS_TOP ? indent : indent + 2;

    if ((v->type != IBS_VALUE_MAP && v->type != IBS_VALUE_LIST) || v->count == 0) {
        emit_scalar(out, v, indent, pos);
        return;
    }
    if (pos == POS_KEY)
        ibs_buf_putc(out, '\n');
    for (size_t i = 0; i < v->count; i++) {
        /* After "- " the first entry continues the line. */
        if (i > 0 || pos != POS_ITEM)
            put_indent(out, child);
        if (v->type == IBS_VALUE_LIST) {
            ibs_buf_puts(out, "- ");
            emit_node(out, v->u.items[i], child, POS_ITEM);
        } else {
            emit_key(out, v->u.members[i].key, child);
            emit_node(out, v->u.members[i].value, child, POS_KEY);
        }
    }
}

int ibs_yaml_emit(struct ibs_buf *out, const struct ibs_value *v)
{
    emit_node(out, v, 0, POS_TOP);
    return ibs_buf_oom(out);
}
