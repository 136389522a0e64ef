/* sidecar/flamegraph.h - write a profile as a self-contained interactive SVG
 * flame graph.
 *
 * Owns nothing. Borrows the profile, only for the call. Pure apart from the
 * FILE it is given. The SVG follows flamegraph.pl's conventions (our own
 * code): stacks merged root first from the bottom up, siblings in
 * alphabetical order (the x axis is not time), widths in proportion to
 * samples (bytes for memory profiles), the "hot" palette (a blue-green
 * "mem" palette for memory) with colours picked by a hash of the name, so a
 * function keeps its colour from one graph to the next. Frames narrower
 * than FLAMEGRAPH_MIN_WIDTH pixels are left out.
 *
 * Readable without JavaScript: every frame is a rect with its name as text
 * (cut to fit) and a <title> tooltip "name (N samples, P%)". The embedded
 * script (no external file) adds: click to zoom on a frame (its ancestors
 * stay, faded, below it; "Reset Zoom" or a click on the root undoes it),
 * search with Ctrl-F or the Search button (a regular expression; matches
 * drawn in magenta, "Matched: P%" of all samples; Ctrl-I toggles case,
 * Escape clears), details of the frame under the mouse at the bottom, and
 * the zoom and search kept in the URL (?s=, x=, y=). The profile's notes
 * are the subtitle. Every name is XML-escaped. */
#ifndef STAKEOUT_FLAMEGRAPH_H
#define STAKEOUT_FLAMEGRAPH_H

#include "profile.h"

#include <stdio.h>

#define FLAMEGRAPH_WIDTH 1200       /* pixels */
#define FLAMEGRAPH_FRAME_HEIGHT 16  /* pixels per stack level */
#define FLAMEGRAPH_MIN_WIDTH 0.1    /* pixels: narrower frames are not drawn */

/* Write p to out as an SVG document. title may be NULL ("Flame Graph").
 * Returns 0, or -EIO when writing failed. */
int flamegraph_write(const struct profile *p, FILE *out, const char *title)
    __attribute__((warn_unused_result));

#endif
