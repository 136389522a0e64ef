/* triggers/editdist.h - "did you mean" suggestions for misspelt names.
 *
 * Owns nothing. Pure. Used for unknown keys in rules files and unknown metric
 * names in expressions. */
#ifndef STAKEOUT_EDITDIST_H
#define STAKEOUT_EDITDIST_H

#include <stddef.h>

/* Levenshtein distance between two spans, capped at 255. */
unsigned editdist(const char *a, size_t an, const char *b, size_t bn);

/* The candidate closest to word, or NULL if none is within a distance that
 * looks like a typo (at most 2, and less than half the word). */
const char *editdist_suggest(const char *word, size_t n, const char *const *candidates,
                             size_t ncandidates);

#endif
