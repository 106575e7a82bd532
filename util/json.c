/*
 * JSON codec.
 *
 * Parsing has three steps. A strict lexical pass checks every token (RFC 8259
 * number grammar, string escapes, UTF-8, no raw control characters) and the
 * nesting depth, so errors name the exact byte offset and line. cJSON then
 * checks the structure and builds its tree. Finally the cJSON tree is
 * converted while a second lexer walks the same tokens in step: cJSON keeps
 * numbers only as doubles, so the token's source text decides whether a
 * number is an integer (and gives its exact int64 value), and the tokens give
 * every value its line and column.
 *
 * Writing does not use cJSON: a small emitter gives deterministic output
 * (shortest round-trip floats, optional key sorting) straight into an ibs_buf.
 */
#include "util/json.h"

#include "util/error.h"
#include "util/text.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper documents are rejected before cJSON (whose own limit is 1000)
 * recurses into them. */
#define MAX_DEPTH 512
#define MAX_NUMBER_LEN 63

enum tok_kind {
    TOK_EOF,
    TOK_BEGIN_OBJECT,
    TOK_END_OBJECT,
    TOK_BEGIN_ARRAY,
    TOK_END_ARRAY,
    TOK_COLON,
    TOK_COMMA,
    TOK_STRING,
    TOK_NUMBER,
    TOK_TRUE,
    TOK_FALSE,
    TOK_NULL,
};

struct token {
    enum tok_kind kind;
    size_t start; /* byte offsets of the token text */
    size_t end;
    unsigned line; /* 1-based */
    unsigned col;  /* 1-based, in characters */
};

struct lexer {
    const char *s;
    size_t len;
    size_t pos;
    unsigned line;
    unsigned col;
};

static void lexer_init(struct lexer *lx, const char *s, size_t len)
{
    lx->s = s;
    lx->len = len;
    lx->pos = 0;
    lx->line = 1;
    lx->col = 1;
}

static unsigned line_at(const char *s, size_t len, size_t offset)
{
    unsigned line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        if (s[i] == '\n')
            line++;
    return line;
}

static int syntax_error(const char *s, size_t len, size_t offset, const char *what)
{
    return ibs_error_set(IBS_EINVALID, "invalid JSON at byte offset %zu (line %u): %s", offset,
                         line_at(s, len, offset), what);
}

/* Describes the byte at `offset` for an "unexpected ..." message. */
static int unexpected(const char *s, size_t len, size_t offset)
{
    char what[48];
    unsigned char c;

    if (offset >= len)
        return syntax_error(s, len, offset, "unexpected end of input");
    c = (unsigned char)s[offset];
    if (c > 0x20 && c < 0x7f)
        snprintf(what, sizeof(what), "unexpected character '%c'", c);
    else
        snprintf(what, sizeof(what), "unexpected byte 0x%02x", c);
    return syntax_error(s, len, offset, what);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (size_t i = 0; i < 4; i++) {
        char c = s[i];
        v = v * 16 + (unsigned)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/*
 * The \u escape at s[i] (its 4 hex digits checked) must not be half of a
 * surrogate pair unless the other half follows. Returns the bytes to skip
 * (6, or 12 for a pair) or an error.
 */
static int check_surrogate(const char *s, size_t len, size_t i)
{
    unsigned u = hex4(s + i + 2);

    if (u >= 0xdc00 && u <= 0xdfff)
        return syntax_error(s, len, i, "unpaired UTF-16 surrogate in \\u escape");
    if (u < 0xd800 || u > 0xdbff)
        return 6;
    if (i + 12 > len || s[i + 6] != '\\' || s[i + 7] != 'u')
        return syntax_error(s, len, i, "unpaired UTF-16 surrogate in \\u escape");
    for (size_t k = 8; k < 12; k++)
        if (!is_hex(s[i + k]))
            return syntax_error(s, len, i + 6, "invalid \\u escape");
    u = hex4(s + i + 8);
    if (u < 0xdc00 || u > 0xdfff)
        return syntax_error(s, len, i, "unpaired UTF-16 surrogate in \\u escape");
    return 12;
}

static int lex_string(struct lexer *lx)
{
    const char *s = lx->s;
    size_t i = lx->pos + 1;
    int rc;

    lx->col++;
    for (;;) {
        unsigned char c;
        uint32_t cp;
        size_t n;

        if (i >= lx->len)
            return syntax_error(s, lx->len, i, "unterminated string");
        c = (unsigned char)s[i];
        if (c == '"') {
            i++;
            lx->col++;
            break;
        }
        if (c < 0x20)
            return syntax_error(s, lx->len, i, "control character in a string");
        if (c == '\\') {
            if (i + 1 >= lx->len)
                return syntax_error(s, lx->len, i, "unterminated string");
            if (s[i + 1] == 'u') {
                for (size_t k = 2; k < 6; k++)
                    if (i + k >= lx->len || !is_hex(s[i + k]))
                        return syntax_error(s, lx->len, i, "invalid \\u escape");
                if (memcmp(s + i + 2, "0000", 4) == 0)
                    return syntax_error(s, lx->len, i, "\\u0000 in strings is not supported");
                if ((rc = check_surrogate(s, lx->len, i)) < 0)
                    return rc;
                i += (size_t)rc;
                lx->col += (unsigned)rc;
                continue;
            }
            if (!strchr("\"\\/bfnrt", s[i + 1]) || s[i + 1] == '\0')
                return syntax_error(s, lx->len, i, "invalid escape in a string");
            i += 2;
            lx->col += 2;
            continue;
        }
        n = ibs_text_utf8_decode((const unsigned char *)s + i, lx->len - i, &cp);
        if (!n)
            return syntax_error(s, lx->len, i, "invalid UTF-8");
        i += n;
        lx->col++;
    }
    lx->pos = i;
    return 0;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
static int lex_number(struct lexer *lx)
{
    const char *s = lx->s;
    size_t i = lx->pos, start = lx->pos;

    if (s[i] == '-')
        i++;
    if (i < lx->len && s[i] == '0') {
        i++;
    } else if (i < lx->len && is_digit(s[i])) {
        while (i < lx->len && is_digit(s[i]))
            i++;
    } else {
        return syntax_error(s, lx->len, start, "invalid number");
    }
    if (i < lx->len && s[i] == '.') {
        i++;
        if (i >= lx->len || !is_digit(s[i]))
            return syntax_error(s, lx->len, start, "invalid number");
        while (i < lx->len && is_digit(s[i]))
            i++;
    }
    if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < lx->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= lx->len || !is_digit(s[i]))
            return syntax_error(s, lx->len, start, "invalid number");
        while (i < lx->len && is_digit(s[i]))
            i++;
    }
    if (i < lx->len && (is_digit(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '+'))
        return syntax_error(s, lx->len, start, "invalid number");
    /* cJSON reads at most 63 characters of a number. */
    if (i - start > MAX_NUMBER_LEN)
        return syntax_error(s, lx->len, start, "number longer than 63 characters");
    lx->col += (unsigned)(i - lx->pos);
    lx->pos = i;
    return 0;
}

/* Reads the next token into *out (TOK_EOF at the end of the input). */
static int lex_next(struct token *out, struct lexer *lx)
{
    static const struct {
        const char *word;
        enum tok_kind kind;
    } words[] = {{"true", TOK_TRUE}, {"false", TOK_FALSE}, {"null", TOK_NULL}};
    const char *s = lx->s;
    int rc = 0;

    while (lx->pos < lx->len &&
           (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\r' || s[lx->pos] == '\n')) {
        if (s[lx->pos] == '\n') {
            lx->line++;
            lx->col = 1;
        } else {
            lx->col++;
        }
        lx->pos++;
    }
    out->start = lx->pos;
    out->line = lx->line;
    out->col = lx->col;
    if (lx->pos >= lx->len) {
        out->kind = TOK_EOF;
        out->end = lx->pos;
        return 0;
    }
    switch (s[lx->pos]) {
    case '{':
        out->kind = TOK_BEGIN_OBJECT;
        break;
    case '}':
        out->kind = TOK_END_OBJECT;
        break;
    case '[':
        out->kind = TOK_BEGIN_ARRAY;
        break;
    case ']':
        out->kind = TOK_END_ARRAY;
        break;
    case ':':
        out->kind = TOK_COLON;
        break;
    case ',':
        out->kind = TOK_COMMA;
        break;
    case '"':
        out->kind = TOK_STRING;
        rc = lex_string(lx);
        out->end = lx->pos;
        return rc;
    default:
        if (s[lx->pos] == '-' || is_digit(s[lx->pos])) {
            out->kind = TOK_NUMBER;
            rc = lex_number(lx);
            out->end = lx->pos;
            return rc;
        }
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
            size_t n = strlen(words[i].word);
            if (lx->len - lx->pos >= n && memcmp(s + lx->pos, words[i].word, n) == 0) {
                out->kind = words[i].kind;
                lx->pos += n;
                lx->col += (unsigned)n;
                out->end = lx->pos;
                return 0;
            }
        }
        return unexpected(s, lx->len, lx->pos);
    }
    lx->pos++;
    lx->col++;
    out->end = lx->pos;
    return 0;
}

static const char *describe(enum tok_kind kind)
{
    switch (kind) {
    case TOK_EOF:
        return "end of input";
    case TOK_BEGIN_OBJECT:
        return "'{'";
    case TOK_END_OBJECT:
        return "'}'";
    case TOK_BEGIN_ARRAY:
        return "'['";
    case TOK_END_ARRAY:
        return "']'";
    case TOK_COLON:
        return "':'";
    case TOK_COMMA:
        return "','";
    case TOK_STRING:
        return "string";
    case TOK_NUMBER:
        return "number";
    case TOK_TRUE:
        return "'true'";
    case TOK_FALSE:
        return "'false'";
    case TOK_NULL:
        return "'null'";
    }
    return "token";
}

static int expected(const char *s, size_t len, const struct token *t, const char *what)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "unexpected %s; expected %s", describe(t->kind), what);
    return syntax_error(s, len, t->start, msg);
}

enum syn_state {
    SYN_VALUE,        /* a value */
    SYN_VALUE_OR_END, /* after '[' */
    SYN_KEY,          /* after ',' in an object */
    SYN_KEY_OR_END,   /* after '{' */
    SYN_COLON,        /* after a key */
    SYN_COMMA_OR_END, /* after a value in a container */
    SYN_DONE,         /* after the top-level value */
};

/*
 * The validating pass: every token is lexically valid and they form one
 * JSON value nested at most MAX_DEPTH deep, so errors name the exact token.
 * cJSON, which parses the same text afterwards, then only has to build.
 */
static int check_syntax(const char *text, size_t len)
{
    char open[MAX_DEPTH];
    enum syn_state state = SYN_VALUE;
    struct lexer lx;
    struct token t;
    size_t depth = 0;
    int rc;

    lexer_init(&lx, text, len);
    for (;;) {
        if ((rc = lex_next(&t, &lx)))
            return rc;
        switch (state) {
        case SYN_VALUE:
        case SYN_VALUE_OR_END:
            if (t.kind == TOK_END_ARRAY && state == SYN_VALUE_OR_END) {
                depth--;
                break;
            }
            if (t.kind == TOK_BEGIN_ARRAY || t.kind == TOK_BEGIN_OBJECT) {
                if (depth == MAX_DEPTH)
                    return syntax_error(text, len, t.start, "nesting deeper than 512 levels");
                open[depth++] = t.kind == TOK_BEGIN_ARRAY ? '[' : '{';
                state = t.kind == TOK_BEGIN_ARRAY ? SYN_VALUE_OR_END : SYN_KEY_OR_END;
                continue;
            }
            if (t.kind < TOK_STRING)
                return t.kind == TOK_EOF
                           ? syntax_error(text, len, t.start, "unexpected end of input")
                           : expected(text, len, &t, "a value");
            break;
        case SYN_KEY:
        case SYN_KEY_OR_END:
            if (t.kind == TOK_END_OBJECT && state == SYN_KEY_OR_END) {
                depth--;
                break;
            }
            if (t.kind != TOK_STRING)
                return expected(text, len, &t,
                                state == SYN_KEY ? "a string key" : "a string key or '}'");
            state = SYN_COLON;
            continue;
        case SYN_COLON:
            if (t.kind != TOK_COLON)
                return expected(text, len, &t, "':'");
            state = SYN_VALUE;
            continue;
        case SYN_COMMA_OR_END:
            if (t.kind == TOK_COMMA) {
                state = open[depth - 1] == '[' ? SYN_VALUE : SYN_KEY;
                continue;
            }
            if (t.kind != (open[depth - 1] == '[' ? TOK_END_ARRAY : TOK_END_OBJECT))
                return expected(text, len, &t,
                                open[depth - 1] == '[' ? "',' or ']'" : "',' or '}'");
            depth--;
            break;
        case SYN_DONE:
            if (t.kind != TOK_EOF)
                return syntax_error(text, len, t.start, "unexpected data after the JSON value");
            return 0;
        }
        /* A value (scalar or closed container) is complete. */
        state = depth ? SYN_COMMA_OR_END : SYN_DONE;
    }
}

/* Next token that carries a value or closes a container. */
static int next_significant(struct token *out, struct lexer *lx)
{
    int rc;
    do {
        if ((rc = lex_next(out, lx)))
            return rc;
    } while (out->kind == TOK_COLON || out->kind == TOK_COMMA);
    return 0;
}

static int out_of_step(void)
{
    return ibs_error_set(IBS_ERROR, "JSON parser and lexer disagree");
}

static int number_value(struct ibs_value **out, const char *text, size_t len)
{
    struct ibs_value *v = ibs_value_new_stringn(text, len);
    long long i;

    if (!v)
        return IBS_ENOMEM;
    if (!memchr(text, '.', len) && !memchr(text, 'e', len) && !memchr(text, 'E', len)) {
        errno = 0;
        i = strtoll(v->str, NULL, 10);
        if (errno != ERANGE) {
            v->type = IBS_VALUE_INT;
            v->num.i = (int64_t)i;
            *out = v;
            return 0;
        }
    }
    v->type = IBS_VALUE_FLOAT;
    v->num.d = strtod(v->str, NULL);
    *out = v;
    return 0;
}

/* Converts `node`, reading its tokens from `lx`. Recursion is bounded by
 * MAX_DEPTH, checked by check_syntax(). */
static int convert(struct ibs_value **out, struct lexer *lx, const cJSON *node)
{
    struct ibs_value *v = NULL, *child = NULL;
    struct token t, key;
    int rc;

    *out = NULL;
    if ((rc = next_significant(&t, lx)))
        return rc;
    switch (node->type & 0xff) {
    case cJSON_False:
    case cJSON_True:
        if (t.kind != TOK_TRUE && t.kind != TOK_FALSE)
            return out_of_step();
        v = ibs_value_new_bool(t.kind == TOK_TRUE);
        break;
    case cJSON_NULL:
        if (t.kind != TOK_NULL)
            return out_of_step();
        v = ibs_value_new_null();
        break;
    case cJSON_Number:
        if (t.kind != TOK_NUMBER)
            return out_of_step();
        if ((rc = number_value(&v, lx->s + t.start, t.end - t.start)))
            return rc;
        break;
    case cJSON_String:
        if (t.kind != TOK_STRING || !node->valuestring)
            return out_of_step();
        v = ibs_value_new_string(node->valuestring);
        if (v)
            v->quoted = true;
        break;
    case cJSON_Array:
    case cJSON_Object:
        if (t.kind != ((node->type & 0xff) == cJSON_Array ? TOK_BEGIN_ARRAY : TOK_BEGIN_OBJECT))
            return out_of_step();
        v = (node->type & 0xff) == cJSON_Array ? ibs_value_new_list() : ibs_value_new_map();
        if (!v)
            return IBS_ENOMEM;
        v->loc.line = t.line;
        v->loc.col = t.col;
        for (const cJSON *c = node->child; c; c = c->next) {
            if (v->type == IBS_VALUE_MAP) {
                if ((rc = next_significant(&key, lx)))
                    goto done;
                if (key.kind != TOK_STRING || !c->string) {
                    rc = out_of_step();
                    goto done;
                }
            }
            if ((rc = convert(&child, lx, c)))
                goto done;
            if (v->type == IBS_VALUE_LIST) {
                rc = ibs_value_list_append(v, child);
            } else {
                struct ibs_loc kloc = {NULL, key.line, key.col};
                rc = ibs_value_map_append(v, c->string, strlen(c->string), kloc, child);
            }
            if (rc)
                goto done;
        }
        if ((rc = next_significant(&t, lx)))
            goto done;
        if (t.kind != (v->type == IBS_VALUE_LIST ? TOK_END_ARRAY : TOK_END_OBJECT))
            rc = out_of_step();
        goto done;
    default:
        return out_of_step();
    }
    if (!v)
        return IBS_ENOMEM;
    v->loc.line = t.line;
    v->loc.col = t.col;
done:
    if (rc) {
        ibs_value_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

int ibs_json_parse(struct ibs_value **out, const char *text, size_t len)
{
    cJSON *root = NULL;
    const char *end = NULL;
    struct lexer lx;
    size_t pos;
    int rc;

    *out = NULL;
    if ((rc = check_syntax(text, len)))
        return rc;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        /* After check_syntax() only running out of memory is expected here;
         * cJSON's return_parse_end says where it gave up otherwise. */
        pos = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return syntax_error(text, len, pos, "cannot parse this value");
    }
    pos = (size_t)(end - text);
    while (pos < len &&
           (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r' || text[pos] == '\n'))
        pos++;
    if (pos < len) {
        rc = syntax_error(text, len, pos, "unexpected data after the JSON value");
        goto done;
    }
    lexer_init(&lx, text, len);
    rc = convert(out, &lx, root);
done:
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                   */

static void write_string(struct ibs_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    ibs_buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ibs_buf_put(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 0xf];
            u[6] = '\0';
            esc = u;
            break;
        }
        ibs_buf_puts(out, esc);
    }
    ibs_buf_put(out, s + run, len - run);
    ibs_buf_putc(out, '"');
}

static void write_float(struct ibs_buf *out, double d)
{
    char text[40];

    if (!isfinite(d)) {
        ibs_buf_puts(out, "null");
        return;
    }
    ibs_text_format_double(text, sizeof(text), d);
    ibs_buf_puts(out, text);
    /* Keep the value a float when read back. */
    if (!strpbrk(text, ".eE"))
        ibs_buf_puts(out, ".0");
}

static void newline_indent(struct ibs_buf *out, unsigned flags, size_t depth)
{
    static const char spaces[] = "\n                                ";
    size_t n = 1 + 2 * depth;

    if (!(flags & IBS_JSON_PRETTY))
        return;
    if (n <= sizeof(spaces) - 1) {
        ibs_buf_put(out, spaces, n);
        return;
    }
    ibs_buf_putc(out, '\n');
    for (size_t i = 0; i < depth; i++)
        ibs_buf_puts(out, "  ");
}

/* Whether member `x` goes before member `y`: by key, ties in stored order. */
static bool member_before(const struct ibs_member *m, size_t x, size_t y)
{
    int c = strcmp(m[x].key, m[y].key);
    return c < 0 || (c == 0 && x < y);
}

static _Thread_local const struct ibs_member *sort_base;

static int cmp_member_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return member_before(sort_base, x, y) ? -1 : member_before(sort_base, y, x);
}

/*
 * Member order for writing into `order` (v->count entries): as stored, or
 * sorted by key, ties keeping their order so that the output is
 * deterministic. Request maps have a handful of members: an insertion sort
 * for those, qsort (through a thread-local pointer, as it has no context
 * argument) for large ones.
 */
static void member_order(size_t *order, const struct ibs_value *v, bool sorted)
{
    bool small = v->count <= 16;

    for (size_t i = 0; i < v->count; i++) {
        size_t j = i;
        while (sorted && small && j > 0 && member_before(v->u.members, i, order[j - 1])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    if (sorted && !small) {
        sort_base = v->u.members;
        qsort(order, v->count, sizeof(*order), cmp_member_index);
        sort_base = NULL;
    }
}

static void write_value(struct ibs_buf *out, const struct ibs_value *v, unsigned flags,
                        size_t depth)
{
    const char *sep = flags & IBS_JSON_PRETTY ? ": " : ":";
    size_t small[16], *order;
    char num[24];

    switch (v->type) {
    case IBS_VALUE_NULL:
        ibs_buf_puts(out, "null");
        return;
    case IBS_VALUE_BOOL:
        ibs_buf_puts(out, v->num.b ? "true" : "false");
        return;
    case IBS_VALUE_INT:
        snprintf(num, sizeof(num), "%" PRId64, v->num.i);
        ibs_buf_puts(out, num);
        return;
    case IBS_VALUE_FLOAT:
        write_float(out, v->num.d);
        return;
    case IBS_VALUE_STRING:
        write_string(out, v->str ? v->str : "", v->str ? v->len : 0);
        return;
    case IBS_VALUE_LIST:
        ibs_buf_putc(out, '[');
        for (size_t i = 0; i < v->count; i++) {
            if (i)
                ibs_buf_putc(out, ',');
            newline_indent(out, flags, depth + 1);
            write_value(out, v->u.items[i], flags, depth + 1);
        }
        if (v->count)
            newline_indent(out, flags, depth);
        ibs_buf_putc(out, ']');
        return;
    case IBS_VALUE_MAP:
        ibs_buf_putc(out, '{');
        if (v->count == 0) {
            ibs_buf_putc(out, '}');
            return;
        }
        order = v->count <= sizeof(small) / sizeof(small[0]) ? small
                                                             : malloc(v->count * sizeof(*order));
        if (!order) {
            out->oom = true;
            return;
        }
        member_order(order, v, flags & IBS_JSON_SORTED);
        for (size_t i = 0; i < v->count; i++) {
            const struct ibs_member *m = &v->u.members[order[i]];
            if (i)
                ibs_buf_putc(out, ',');
            newline_indent(out, flags, depth + 1);
            write_string(out, m->key, strlen(m->key));
            ibs_buf_puts(out, sep);
            write_value(out, m->value, flags, depth + 1);
        }
        if (order != small)
            free(order);
        newline_indent(out, flags, depth);
        ibs_buf_putc(out, '}');
        return;
    }
}

int ibs_json_write(struct ibs_buf *out, const struct ibs_value *v, unsigned flags)
{
    write_value(out, v, flags, 0);
    return ibs_buf_oom(out);
}
