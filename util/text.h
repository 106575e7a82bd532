/*
 * Small text helpers shared by validators: edit distance and "did you mean"
 * suggestions.
 */
#ifndef IBS_UTIL_TEXT_H
#define IBS_UTIL_TEXT_H

#include <stddef.h>

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

#endif
