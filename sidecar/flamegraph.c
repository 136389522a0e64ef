/* sidecar/flamegraph.c - a profile as an interactive SVG flame graph; see
 * flamegraph.h.
 *
 * Stacks are merged root first into a tree of nodes (one per distinct path
 * of names; a hash on (parent, name) finds a node's child), siblings are
 * sorted by name, widths are laid out in one pass over the tree, and the
 * frames are written in preorder, so the root "all" comes first. The script
 * reads everything it needs back from the document (each frame's rect and
 * its title), so the SVG carries no second copy of the data. */
#include "flamegraph.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FG_XPAD 10
#define FG_FONT_SIZE 12
#define FG_FONT_WIDTH 0.59 /* average glyph width, in font sizes */

struct fg_node {
    const char *name;  /* borrowed from the profile, or a literal */
    uint64_t weight;   /* samples, or bytes, through this node */
    uint32_t parent;   /* index; the root is 0 and is its own parent */
    uint32_t child;    /* first child + 1, 0 when none */
    uint32_t sibling;  /* next sibling + 1, 0 when none */
    uint32_t depth;
};

struct fg_tree {
    struct fg_node *node;
    size_t n, cap;
    uint32_t *slot; /* hash of (parent, name): node index + 1, 0 = empty */
    size_t nslots;
};

static uint64_t hash_child(uint32_t parent, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ parent;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 0x100000001b3ULL;
    return h;
}

static void tree_rehash(struct fg_tree *t)
{
    free(t->slot);
    t->nslots = t->nslots ? t->nslots * 2 : 256;
    t->slot = xcalloc(t->nslots, sizeof *t->slot);
    for (size_t i = 1; i < t->n; i++) {
        size_t j = hash_child(t->node[i].parent, t->node[i].name) & (t->nslots - 1);
        while (t->slot[j])
            j = (j + 1) & (t->nslots - 1);
        t->slot[j] = (uint32_t)i + 1;
    }
}

/* The child of parent named name, made when new. */
static uint32_t tree_child(struct fg_tree *t, uint32_t parent, const char *name)
{
    if ((t->n + 1) * 2 > t->nslots)
        tree_rehash(t);
    size_t mask = t->nslots - 1, j = hash_child(parent, name) & mask;
    for (; t->slot[j]; j = (j + 1) & mask) {
        const struct fg_node *c = &t->node[t->slot[j] - 1];
        if (c->parent == parent && !strcmp(c->name, name))
            return t->slot[j] - 1;
    }
    if (t->n == t->cap) {
        t->cap *= 2;
        t->node = xreallocarray(t->node, t->cap, sizeof *t->node);
    }
    uint32_t id = (uint32_t)t->n++;
    t->node[id] = (struct fg_node){.name = name, .parent = parent,
                                   .depth = t->node[parent].depth + 1,
                                   .sibling = t->node[parent].child};
    t->node[parent].child = id + 1;
    t->slot[j] = id + 1;
    return id;
}

static void tree_build(struct fg_tree *t, const struct profile *p)
{
    t->cap = 64;
    t->node = xcalloc(t->cap, sizeof *t->node);
    t->node[0] = (struct fg_node){.name = "all"};
    t->n = 1;
    for (uint32_t i = 0; i < p->nstacks; i++) {
        const struct prof_stack *s = &p->stacks[i];
        uint64_t w = profile_stack_weight(p, i);
        if (w == 0)
            continue;
        t->node[0].weight += w;
        if (s->nframes == 0) {
            t->node[tree_child(t, 0, PROFILE_NO_STACK)].weight += w;
            continue;
        }
        uint32_t at = 0;
        for (uint32_t k = s->nframes; k > 0; k--) {
            at = tree_child(t, at, profile_frame_name(p, s->frames[k - 1]));
            t->node[at].weight += w;
        }
    }
}

static int node_name_cmp(const void *a, const void *b, void *ctx)
{
    const struct fg_tree *t = ctx;
    return strcmp(t->node[*(const uint32_t *)a].name, t->node[*(const uint32_t *)b].name);
}

/* Relink every node's children in name order (the x axis is alphabetical). */
static void tree_sort(struct fg_tree *t)
{
    uint32_t *kids = xcalloc(t->n, sizeof *kids);
    for (size_t i = 0; i < t->n; i++) {
        size_t k = 0;
        for (uint32_t c = t->node[i].child; c; c = t->node[c - 1].sibling)
            kids[k++] = c - 1;
        if (k < 2)
            continue;
        qsort_r(kids, k, sizeof *kids, node_name_cmp, t);
        t->node[i].child = kids[0] + 1;
        for (size_t j = 0; j < k; j++)
            t->node[kids[j]].sibling = j + 1 < k ? kids[j + 1] + 1 : 0;
    }
    free(kids);
}

static void tree_fini(struct fg_tree *t)
{
    free(t->node);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* ---- writing -------------------------------------------------------------- */

struct fg_out {
    FILE *f;
    const struct fg_tree *t;
    double scale;      /* pixels per unit of weight */
    double bottom;     /* y of the bottom edge of the root frame */
    bool bytes;
    uint64_t total;
};

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* n with thousands separators, like flamegraph.pl. */
static const char *thousands(uint64_t n, char buf[32])
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%" PRIu64, n);
    int o = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

/* Characters (not bytes) of a UTF-8 string, up to max + 1. */
static size_t utf8_chars(const char *s, size_t max, size_t *bytes_of_max)
{
    size_t chars = 0, i = 0;
    *bytes_of_max = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (chars == max)
                *bytes_of_max = i;
            chars++;
            if (chars > max + 1)
                break;
        }
    }
    if (chars <= max)
        *bytes_of_max = i;
    return chars;
}

/* The label drawn in a frame w pixels wide: the name, or as much of it as
 * fits followed by "..", or nothing. */
static void write_label(FILE *f, const char *name, double w)
{
    double fit = (w - 6) / (FG_FONT_SIZE * FG_FONT_WIDTH);
    if (fit < 3)
        return;
    size_t max = (size_t)fit, cut;
    if (utf8_chars(name, max, &cut) <= max) {
        xml_text(f, name);
        return;
    }
    utf8_chars(name, max - 2, &cut);
    char *part = xstrndup(name, cut);
    xml_text(f, part);
    fputs("..", f);
    free(part);
}

/* flamegraph.pl's palettes, with the name's hash in place of random. */
static void colour(const char *name, bool bytes, int rgb[3])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
    h ^= h >> 29;
    double v1 = (double)(h & 0xffff) / 65536.0, v2 = (double)((h >> 16) & 0xffff) / 65536.0,
           v3 = (double)((h >> 32) & 0xffff) / 65536.0;
    if (!strcmp(name, PROFILE_NO_STACK)) {
        rgb[0] = rgb[1] = rgb[2] = 160;
    } else if (bytes) {
        rgb[0] = 0;
        rgb[1] = 190 + (int)(50 * v2);
        rgb[2] = (int)(210 * v1);
    } else {
        rgb[0] = 205 + (int)(50 * v3);
        rgb[1] = (int)(230 * v1);
        rgb[2] = (int)(55 * v2);
    }
}

static void write_frame(const struct fg_out *o, uint32_t id, double x)
{
    const struct fg_node *n = &o->t->node[id];
    double w = (double)n->weight * o->scale;
    double y = o->bottom - (double)(n->depth + 1) * FLAMEGRAPH_FRAME_HEIGHT;
    char num[32];
    int rgb[3];
    colour(n->name, o->bytes, rgb);
    fputs("<g><title>", o->f);
    xml_text(o->f, n->name);
    fprintf(o->f, " (%s %s, %.2f%%)</title>", thousands(n->weight, num),
            o->bytes ? "bytes" : "samples", 100.0 * (double)n->weight / (double)o->total);
    fprintf(o->f,
            "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" fill=\"rgb(%d,%d,%d)\" "
            "rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%.1f\">",
            x, y, w, FLAMEGRAPH_FRAME_HEIGHT - 1.0, rgb[0], rgb[1], rgb[2], x + 3,
            y + FLAMEGRAPH_FRAME_HEIGHT - 5.5);
    write_label(o->f, n->name, w);
    fputs("</text></g>\n", o->f);

    double cx = x;
    for (uint32_t c = n->child; c; c = o->t->node[c - 1].sibling) {
        const struct fg_node *k = &o->t->node[c - 1];
        double kw = (double)k->weight * o->scale;
        if (kw >= FLAMEGRAPH_MIN_WIDTH)
            write_frame(o, c - 1, cx);
        cx += kw;
    }
}

/* The deepest level drawn: frames under the minimum width are not. */
static uint32_t drawn_depth(const struct fg_tree *t, double scale)
{
    uint32_t max = 0;
    for (size_t i = 0; i < t->n; i++) {
        if ((double)t->node[i].weight * scale < FLAMEGRAPH_MIN_WIDTH)
            continue;
        /* A drawn node's ancestors are wider, so drawn too. */
        if (t->node[i].depth > max)
            max = t->node[i].depth;
    }
    return max;
}

static const char fg_style[] =
    "<style type=\"text/css\">\n"
    "text { font-family: Verdana, sans-serif; font-size: 12px; fill: rgb(0,0,0); }\n"
    "#title { text-anchor: middle; font-size: 17px; }\n"
    "#subtitle { text-anchor: middle; fill: rgb(100,100,100); }\n"
    ".button { cursor: pointer; opacity: 0.6; }\n"
    ".button:hover { opacity: 1; }\n"
    ".hide { display: none; }\n"
    ".parent { opacity: 0.5; }\n"
    "#frames > g { cursor: pointer; }\n"
    "#frames > g:hover > rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
    "</style>\n";

static const char fg_script[] =
    "var fg = {frames: [], total: 0, zoomed: null, term: null, ignorecase: false};\n"
    "var HIGHLIGHT = \"rgb(230,0,230)\", EPS = 0.02, FONTWIDTH = 0.59;\n"
    "function el(id) { return document.getElementById(id); }\n"
    "function init() {\n"
    "    if (fg.frames.length) return;\n"
    "    var gs = el(\"frames\").getElementsByTagName(\"g\");\n"
    "    for (var i = 0; i < gs.length; i++) {\n"
    "        var g = gs[i], r = g.getElementsByTagName(\"rect\")[0];\n"
    "        var info = g.getElementsByTagName(\"title\")[0].textContent;\n"
    "        var k = info.lastIndexOf(\" (\");\n"
    "        fg.frames.push({g: g, r: r, t: g.getElementsByTagName(\"text\")[0], info: info,\n"
    "            name: info.substring(0, k),\n"
    "            n: parseFloat(info.substring(k + 2).replace(/,/g, \"\")),\n"
    "            x: parseFloat(r.getAttribute(\"x\")), w: parseFloat(r.getAttribute(\"width\")),\n"
    "            y: parseFloat(r.getAttribute(\"y\")), fill: r.getAttribute(\"fill\")});\n"
    "        g.fgIndex = i;\n"
    "    }\n"
    "    fg.total = fg.frames.length ? fg.frames[0].n : 0;\n"
    "    var frames = el(\"frames\");\n"
    "    frames.addEventListener(\"click\", function (e) {\n"
    "        var f = frameOf(e.target);\n"
    "        if (f) zoom(f);\n"
    "    });\n"
    "    frames.addEventListener(\"mouseover\", function (e) {\n"
    "        var f = frameOf(e.target);\n"
    "        if (f) el(\"details\").textContent = NAMETYPE + \" \" + f.info;\n"
    "    });\n"
    "    frames.addEventListener(\"mouseout\", function () {\n"
    "        el(\"details\").textContent = \" \";\n"
    "    });\n"
    "    el(\"unzoom\").addEventListener(\"click\", unzoom);\n"
    "    el(\"search\").addEventListener(\"click\", function () {\n"
    "        if (fg.term !== null) resetSearch(); else askSearch();\n"
    "    });\n"
    "    el(\"search\").setAttribute(\"class\", \"button\");\n"
    "    window.addEventListener(\"keydown\", function (e) {\n"
    "        var key = (e.key || \"\").toLowerCase();\n"
    "        if ((e.ctrlKey || e.metaKey) && key === \"f\") {\n"
    "            e.preventDefault();\n"
    "            askSearch();\n"
    "        } else if ((e.ctrlKey || e.metaKey) && key === \"i\") {\n"
    "            e.preventDefault();\n"
    "            fg.ignorecase = !fg.ignorecase;\n"
    "            el(\"case\").textContent = fg.ignorecase ? \"ignoring case\" : \" \";\n"
    "            if (fg.term !== null) search(fg.term);\n"
    "        } else if (key === \"escape\") {\n"
    "            resetSearch();\n"
    "        }\n"
    "    });\n"
    "    var q = params();\n"
    "    if (q.x !== undefined && q.y !== undefined) {\n"
    "        var qx = parseFloat(q.x), qy = parseFloat(q.y);\n"
    "        for (var j = 0; j < fg.frames.length; j++) {\n"
    "            var f = fg.frames[j];\n"
    "            if (Math.abs(f.x - qx) < EPS && Math.abs(f.y - qy) < EPS) {\n"
    "                zoom(f);\n"
    "                break;\n"
    "            }\n"
    "        }\n"
    "    }\n"
    "    if (q.s) search(q.s);\n"
    "}\n"
    "function frameOf(node) {\n"
    "    var frames = el(\"frames\");\n"
    "    while (node && node.parentNode && node.parentNode !== frames) node = node.parentNode;\n"
    "    return node && node.parentNode === frames ? fg.frames[node.fgIndex] : null;\n"
    "}\n"
    "function fit(name, w) {\n"
    "    var max = Math.floor((w - 6) / (FONTSIZE * FONTWIDTH));\n"
    "    if (max < 3) return \"\";\n"
    "    return name.length <= max ? name : name.substring(0, max - 2) + \"..\";\n"
    "}\n"
    "function place(f, x, w, cls) {\n"
    "    f.g.setAttribute(\"class\", cls);\n"
    "    if (cls === \"hide\") return;\n"
    "    f.r.setAttribute(\"x\", x.toFixed(2));\n"
    "    f.r.setAttribute(\"width\", w.toFixed(2));\n"
    "    f.t.setAttribute(\"x\", (x + 3).toFixed(2));\n"
    "    f.t.textContent = fit(f.name, w);\n"
    "}\n"
    "function zoom(z) {\n"
    "    if (z === fg.frames[0]) return unzoom();\n"
    "    var scale = (WIDTH - 2 * XPAD) / z.w;\n"
    "    for (var i = 0; i < fg.frames.length; i++) {\n"
    "        var f = fg.frames[i];\n"
    "        if (f.y <= z.y && f.x >= z.x - EPS && f.x + f.w <= z.x + z.w + EPS)\n"
    "            place(f, XPAD + (f.x - z.x) * scale, f.w * scale, \"\");\n"
    "        else if (f.y > z.y && f.x <= z.x + EPS && f.x + f.w >= z.x + z.w - EPS)\n"
    "            place(f, XPAD, WIDTH - 2 * XPAD, \"parent\");\n"
    "        else\n"
    "            place(f, 0, 0, \"hide\");\n"
    "    }\n"
    "    fg.zoomed = z;\n"
    "    el(\"unzoom\").setAttribute(\"class\", \"button\");\n"
    "    setUrl();\n"
    "}\n"
    "function unzoom() {\n"
    "    for (var i = 0; i < fg.frames.length; i++) {\n"
    "        var f = fg.frames[i];\n"
    "        place(f, f.x, f.w, \"\");\n"
    "    }\n"
    "    fg.zoomed = null;\n"
    "    el(\"unzoom\").setAttribute(\"class\", \"hide\");\n"
    "    setUrl();\n"
    "}\n"
    "function askSearch() {\n"
    "    var ask = \"Search for functions (a regular expression\" +\n"
    "        (fg.ignorecase ? \", any case\" : \"\") + \"):\";\n"
    "    var term = prompt(ask, fg.term === null ? \"\" : fg.term);\n"
    "    if (term === null) return;\n"
    "    if (term === \"\") resetSearch(); else search(term);\n"
    "}\n"
    "function search(term) {\n"
    "    var flags = fg.ignorecase ? \"i\" : \"\", re;\n"
    "    try {\n"
    "        re = new RegExp(term, flags);\n"
    "    } catch (e) {\n"
    "        re = new RegExp(term.replace(/[.*+?^${}()|[\\]\\\\]/g, \"\\\\$&\"), flags);\n"
    "    }\n"
    "    var hits = [];\n"
    "    for (var i = 1; i < fg.frames.length; i++) {\n"
    "        var f = fg.frames[i];\n"
    "        if (re.test(f.name)) {\n"
    "            f.r.setAttribute(\"fill\", HIGHLIGHT);\n"
    "            hits.push(f);\n"
    "        } else {\n"
    "            f.r.setAttribute(\"fill\", f.fill);\n"
    "        }\n"
    "    }\n"
    "    /* Frames nest: count a match only when no counted match holds it. */\n"
    "    hits.sort(function (a, b) { return a.x - b.x || b.w - a.w; });\n"
    "    var sum = 0, end = -Infinity;\n"
    "    for (var j = 0; j < hits.length; j++) {\n"
    "        if (hits[j].x >= end - EPS) {\n"
    "            sum += hits[j].n;\n"
    "            end = hits[j].x + hits[j].w;\n"
    "        }\n"
    "    }\n"
    "    fg.term = term;\n"
    "    el(\"matched\").textContent = \"Matched: \" +\n"
    "        (fg.total ? (100 * sum / fg.total).toFixed(2) : \"0.00\") + \"%\";\n"
    "    el(\"search\").textContent = \"Reset Search\";\n"
    "    setUrl();\n"
    "}\n"
    "function resetSearch() {\n"
    "    for (var i = 0; i < fg.frames.length; i++)\n"
    "        fg.frames[i].r.setAttribute(\"fill\", fg.frames[i].fill);\n"
    "    fg.term = null;\n"
    "    el(\"matched\").textContent = \" \";\n"
    "    el(\"search\").textContent = \"Search\";\n"
    "    setUrl();\n"
    "}\n"
    "function params() {\n"
    "    var out = {};\n"
    "    try {\n"
    "        var parts = window.location.search.substring(1).split(\"&\");\n"
    "        for (var i = 0; i < parts.length; i++) {\n"
    "            var k = parts[i].indexOf(\"=\");\n"
    "            if (k > 0)\n"
    "                out[decodeURIComponent(parts[i].substring(0, k))] =\n"
    "                    decodeURIComponent(parts[i].substring(k + 1).replace(/\\+/g, \" \"));\n"
    "        }\n"
    "    } catch (e) {\n"
    "    }\n"
    "    return out;\n"
    "}\n"
    "function setUrl() {\n"
    "    try {\n"
    "        var q = [];\n"
    "        if (fg.term !== null) q.push(\"s=\" + encodeURIComponent(fg.term));\n"
    "        if (fg.zoomed) q.push(\"x=\" + fg.zoomed.x + \"&y=\" + fg.zoomed.y);\n"
    "        var url = window.location.pathname + (q.length ? \"?\" + q.join(\"&\") : \"\");\n"
    "        history.replaceState(null, \"\", url);\n"
    "    } catch (e) {\n"
    "    }\n"
    "}\n";

int flamegraph_write(const struct profile *p, FILE *out, const char *title)
{
    struct fg_tree t = {0};
    tree_build(&t, p);
    tree_sort(&t);

    struct fg_out o = {.f = out, .t = &t, .bytes = profile_in_bytes(p),
                       .total = t.node[0].weight};
    const int width = FLAMEGRAPH_WIDTH;
    o.scale = o.total ? (width - 2.0 * FG_XPAD) / (double)o.total : 0;
    uint32_t depth = o.total ? drawn_depth(&t, o.scale) : 0;
    int top = FG_FONT_SIZE * 3 + (p->nnotes ? FG_FONT_SIZE * 2 : 0);
    int bottom = FG_FONT_SIZE * 2 + 10;
    int height = top + (int)(depth + 1) * FLAMEGRAPH_FRAME_HEIGHT + bottom;
    o.bottom = height - bottom;

    fputs("<?xml version=\"1.0\" standalone=\"no\"?>\n", out);
    fprintf(out,
            "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "xmlns=\"http://www.w3.org/2000/svg\" onload=\"init()\">\n",
            width, height, width, height);
    fputs(fg_style, out);
    fprintf(out,
            "<script type=\"text/ecmascript\"><![CDATA[\n\"use strict\";\n"
            "var WIDTH = %d, XPAD = %d, FONTSIZE = %d, NAMETYPE = \"%s\";\n",
            width, FG_XPAD, FG_FONT_SIZE, o.bytes ? "Allocations:" : "Function:");
    fputs(fg_script, out);
    fputs("]]></script>\n", out);
    fprintf(out,
            "<defs><linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
            "<stop stop-color=\"#eeeeee\" offset=\"5%%\"/>"
            "<stop stop-color=\"%s\" offset=\"95%%\"/></linearGradient></defs>\n",
            o.bytes ? "#e0e0ff" : "#eeeeb0");
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"url(#background)\"/>\n",
            width, height);

    char *clean = xstrdup(title ? title : "Flame Graph");
    profile_text_clean(clean);
    fprintf(out, "<text id=\"title\" x=\"%d\" y=\"%d\">", width / 2, FG_FONT_SIZE * 2);
    xml_text(out, clean);
    fputs("</text>\n", out);
    free(clean);
    if (p->nnotes) {
        fprintf(out, "<text id=\"subtitle\" x=\"%d\" y=\"%d\">", width / 2, FG_FONT_SIZE * 4);
        for (size_t i = 0; i < p->nnotes; i++) {
            if (i)
                fputs("; ", out);
            xml_text(out, p->notes[i]);
        }
        fputs("</text>\n", out);
    }
    fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", FG_XPAD, height - 17);
    fprintf(out, "<text id=\"unzoom\" class=\"hide\" x=\"%d\" y=\"%d\">Reset Zoom</text>\n",
            FG_XPAD, FG_FONT_SIZE * 2);
    fprintf(out, "<text id=\"search\" class=\"hide\" x=\"%d\" y=\"%d\">Search</text>\n",
            width - FG_XPAD - 100, FG_FONT_SIZE * 2);
    fprintf(out, "<text id=\"case\" x=\"%d\" y=\"%d\"> </text>\n", width - FG_XPAD - 200,
            FG_FONT_SIZE * 2);
    fprintf(out, "<text id=\"matched\" x=\"%d\" y=\"%d\"> </text>\n", width - FG_XPAD - 100,
            height - 17);

    fputs("<g id=\"frames\">\n", out);
    if (o.total)
        write_frame(&o, 0, FG_XPAD);
    fputs("</g>\n", out);
    if (!o.total)
        fprintf(out, "<text x=\"%d\" y=\"%d\">no samples</text>\n", FG_XPAD, top + 12);
    fputs("</svg>\n", out);

    tree_fini(&t);
    if (fflush(out) == EOF || ferror(out))
        return -EIO;
    return 0;
}
