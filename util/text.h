/*
 * Small text helpers shared by validators: edit distance and "did you mean"
 * suggestions.
 */
#ifndef IBS_UTIL_TEXT_H
#define IBS_UTIL_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Levenshtein distance between a and b, capped at `cap` (returns cap when the
 * distance is at least cap), so long unrelated strings cost little. */
size_t ibs_text_distance(const char *a, const char *b, size_t cap);

/*
 * The candidate closest to `word`: an exact case-insensitive match, else the
 * one with the smallest edit distance if that distance is at most 2 and less
 * than half the word's length. Returns a borrowed pointer from `candidates`,
 * or NULL. `candidates` has `n` entries; NULL entries are ignored.
 */
const char *ibs_text_suggest(const char *word, const char *const *candidates, size_t n);

/*
 * The shortest "%g" text that reads back as `d` into `text` (`size` bytes,
 * 32 is enough), written without an exponent when the exponent is 0..16 (so
 * 100.0 is "100", not "1e+02"). Used by the JSON and YAML writers.
 */
void ibs_text_format_double(char *text, size_t size, double d);

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes available), or 0
 * if it is invalid (overlong forms, surrogates and code points above
 * U+10FFFF are invalid). The code point goes to *cp.
 */
size_t ibs_text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
