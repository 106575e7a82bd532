/* Edit distance and suggestions; see text.h. */
#include "util/text.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IBS_TEXT_MAX_LEN 256

size_t ibs_text_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[IBS_TEXT_MAX_LEN + 1];

    if (la > IBS_TEXT_MAX_LEN || lb > IBS_TEXT_MAX_LEN)
        return cap;
    if ((la > lb ? la - lb : lb - la) >= cap)
        return cap;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0], best = i;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1, ins = row[j - 1] + 1;
            size_t m = sub < del ? sub : del;
            row[j] = m < ins ? m : ins;
            prev = cur;
            if (row[j] < best)
                best = row[j];
        }
        if (best >= cap)
            return cap;
    }
    return row[lb] < cap ? row[lb] : cap;
}

static int strcaseeq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

const char *ibs_text_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    size_t wl = strlen(word);

    for (size_t i = 0; i < n; i++) {
        if (candidates[i] && strcaseeq(word, candidates[i]))
            return candidates[i];
    }
    for (size_t i = 0; i < n; i++) {
        size_t d;
        if (!candidates[i])
            continue;
        d = ibs_text_distance(word, candidates[i], best_d);
        if (d < best_d && d * 2 < wl) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

void ibs_text_format_double(char *text, size_t size, double d)
{
    const char *e;
    int prec;

    for (prec = 1; prec < 17; prec++) {
        snprintf(text, size, "%.*g", prec, d);
        if (strtod(text, NULL) == d)
            break;
    }
    if (prec == 17)
        snprintf(text, size, "%.17g", d);
    e = strchr(text, 'e');
    if (e) {
        int exp = atoi(e + 1);
        if (exp >= 0 && exp <= 16)
            snprintf(text, size, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, d);
    }
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes available), or 0
 * if it is invalid (overlong forms, surrogates and code points above
 * U+10FFFF are invalid). The code point goes to *cp.
 */
size_t ibs_text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}
