/* triggers/editdist.c - "did you mean" suggestions; see editdist.h. */
#include "editdist.h"

#include <string.h>

#define EDITDIST_MAX_LEN 64

unsigned editdist(const char *a, size_t an, const char *b, size_t bn)
{
    unsigned row[EDITDIST_MAX_LEN + 1];

    /* Names longer than this are never typos of our keys. */
    if (an > EDITDIST_MAX_LEN || bn > EDITDIST_MAX_LEN)
        return 255;
    for (size_t j = 0; j <= bn; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= an; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= bn; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            if (up + 1 < best)
                best = up + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn] > 255 ? 255 : row[bn];
}

const char *editdist_suggest(const char *word, size_t n, const char *const *candidates,
                             size_t ncandidates)
{
    const char *best = NULL;
    unsigned best_d = 3;

    for (size_t i = 0; i < ncandidates; i++) {
        unsigned d = editdist(word, n, candidates[i], strlen(candidates[i]));
        if (d < best_d && 2 * d < (unsigned)(n > 1 ? n : 2)) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
