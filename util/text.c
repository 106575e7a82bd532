/* Edit distance and suggestions; see text.h. */
#include "util/text.h"

#include <ctype.h>
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
