/* triggers/engine.c - rule state machines, baselines, noise control; see engine.h. */
#include "engine.h"

#include "xalloc.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_S 1000000000LL
#define HOUR_NS (3600LL * NS_PER_S)
#define NONE (-1)
#define GROWTH_CACHE 4

/* ---- rolling baseline -------------------------------------------------- */

struct bucket {
    int64_t start_ns;
    double sum, sumsq;
    unsigned n;
};

/* Rolling statistics of one metric over one window, for `Nx baseline` and
 * `N sigma`. Updated once per poll; recomputed when a bucket closes. */
struct tracker {
    enum metric metric;
    int64_t window_ns, width_ns, slack_ns;
    struct bucket ring[ENGINE_BASELINE_BUCKETS];
    size_t head, count;       /* closed buckets, oldest at head */
    struct bucket cur;
    bool cur_open;
    int64_t first_ns;         /* first sample seen, NONE before */
    int64_t last_ns;
    bool ready;
    double mean, std, median;
};

static void tracker_init(struct tracker *t, enum metric m, int64_t window_ns, int64_t poll_ns)
{
    memset(t, 0, sizeof *t);
    t->metric = m;
    t->window_ns = window_ns;
    t->width_ns = window_ns / ENGINE_BASELINE_BUCKETS;
    if (t->width_ns < poll_ns)
        t->width_ns = poll_ns;
    /* polls jitter: a bucket one poll wide must not catch two of them */
    t->slack_ns = poll_ns / 2;
    t->first_ns = NONE;
    t->mean = t->std = t->median = NAN;
}

static void tracker_reset(struct tracker *t, int64_t poll_ns)
{
    tracker_init(t, t->metric, t->window_ns, poll_ns);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Recompute mean, std and median over the closed buckets inside the window. */
static void tracker_recompute(struct tracker *t, int64_t now_ns)
{
    double means[ENGINE_BASELINE_BUCKETS];
    size_t k = 0;
    double sum = 0, sumsq = 0;
    unsigned n = 0;
    int64_t oldest = NONE;

    for (size_t i = 0; i < t->count; i++) {
        const struct bucket *b = &t->ring[(t->head + i) % ENGINE_BASELINE_BUCKETS];
        if (b->start_ns <= now_ns - t->window_ns || b->n == 0)
            continue;
        if (oldest == NONE)
            oldest = b->start_ns;
        means[k++] = b->sum / b->n;
        sum += b->sum;
        sumsq += b->sumsq;
        n += b->n;
    }
    t->ready = n >= ENGINE_WARMUP_MIN_SAMPLES && oldest != NONE &&
               (double)(now_ns - oldest) >= ENGINE_WARMUP_FRACTION * (double)t->window_ns;
    if (n == 0) {
        t->mean = t->std = t->median = NAN;
        return;
    }
    t->mean = sum / n;
    double var = sumsq / n - t->mean * t->mean;
    t->std = var > 0 ? sqrt(var) : 0.0;
    qsort(means, k, sizeof means[0], cmp_double);
    t->median = k % 2 ? means[k / 2] : 0.5 * (means[k / 2 - 1] + means[k / 2]);
}

static void tracker_add(struct tracker *t, int64_t now_ns, double v)
{
    if (isnan(v) || now_ns <= t->last_ns)
        return;
    t->last_ns = now_ns;
    if (t->first_ns == NONE)
        t->first_ns = now_ns;
    if (t->cur_open && now_ns - t->cur.start_ns >= t->width_ns - t->slack_ns) {
        if (t->count == ENGINE_BASELINE_BUCKETS) {
            t->ring[t->head] = t->cur;
            t->head = (t->head + 1) % ENGINE_BASELINE_BUCKETS;
        } else {
            t->ring[(t->head + t->count) % ENGINE_BASELINE_BUCKETS] = t->cur;
            t->count++;
        }
        t->cur_open = false;
        tracker_recompute(t, now_ns);
    }
    if (!t->cur_open) {
        t->cur = (struct bucket){.start_ns = now_ns};
        t->cur_open = true;
    }
    t->cur.sum += v;
    t->cur.sumsq += v * v;
    t->cur.n++;
}

/* ---- per rule and slot ------------------------------------------------- */

struct rstate {
    enum rule_state state;
    bool alerted;             /* this episode produced an alert */
    bool waiting;             /* fired while the slot was capturing: retry */
    int64_t true_since;       /* start of the current run of true polls */
    int64_t false_since;      /* firing: start of the run of resolve polls */
    int64_t episode_start, episode_wall;
    int64_t cooldown_until;
    int64_t next_due;         /* scheduled rules */
    unsigned supp_cooldown, supp_budget;
    uint64_t *bits;           /* `N of M`: last M outcomes, owned */
    unsigned bit_pos, n_true, filled;
};

struct growth {
    int64_t window_ns, t_ns;
    double value;
};

struct slot {
    bool used;
    char *target, *label;     /* owned */
    struct rstate *st;        /* owned, one per rule */
    struct tracker *trk;      /* owned */
    size_t ntrk;
    struct growth gc[GROWTH_CACHE];
    bool busy;
    int64_t last_step_ns;
};

struct engine {
    const struct rule_spec *rules;
    size_t nrules;
    uint64_t *fingerprints;   /* owned, one per rule */
    int64_t poll_ns;
    unsigned budget;
    uint64_t rng;
    int64_t *grants;          /* ring of capture times in the last hour, owned */
    size_t ngrants, grants_head;
    struct slot *slots;       /* owned */
    size_t nslots;
    struct event *ev;         /* owned, the last call's events */
    size_t nev, capev;
    size_t *scratch;          /* owned, 3 * nrules: rule lists of one step */
};

/* splitmix64: small, seedable, good enough for jitter. */
static uint64_t rng_next(struct engine *e)
{
    uint64_t z = (e->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t rng_upto(struct engine *e, int64_t max_ns)
{
    if (max_ns <= 0)
        return 0;
    return (int64_t)(rng_next(e) % (uint64_t)max_ns);
}

static bool applies(const struct rule_spec *r, const char *target)
{
    if (r->ntargets == 0)
        return true;
    for (size_t i = 0; i < r->ntargets; i++) {
        if (strcmp(r->targets[i], target) == 0)
            return true;
    }
    return false;
}

static void rstate_init(struct rstate *s, const struct rule_spec *r)
{
    memset(s, 0, sizeof *s);
    s->state = RULE_INACTIVE;
    s->true_since = s->false_since = NONE;
    s->episode_start = s->episode_wall = NONE;
    s->cooldown_until = INT64_MIN;
    s->next_due = NONE;
    if (r->for_count && r->for_m > 0)
        s->bits = xcalloc((r->for_m + 63) / 64, sizeof *s->bits);
}

static void rstate_fini(struct rstate *s)
{
    free(s->bits);
    s->bits = NULL;
}

/* Record one poll outcome in the `N of M` window. */
static void bits_push(struct rstate *s, unsigned m, bool v)
{
    unsigned w = s->bit_pos / 64, b = s->bit_pos % 64;
    bool old = (s->bits[w] >> b) & 1;
    if (s->filled == m && old)
        s->n_true--;
    if (v) {
        s->bits[w] |= 1ULL << b;
        s->n_true++;
    } else {
        s->bits[w] &= ~(1ULL << b);
    }
    if (s->filled < m)
        s->filled++;
    s->bit_pos = (s->bit_pos + 1) % m;
}

static struct tracker *find_tracker(const struct slot *sl, enum metric m, int64_t window_ns)
{
    for (size_t i = 0; i < sl->ntrk; i++) {
        if (sl->trk[i].metric == m && sl->trk[i].window_ns == window_ns)
            return &sl->trk[i];
    }
    return NULL;
}

static void add_trackers(struct engine *e, struct slot *sl, const struct expr *x,
                         int64_t window_ns)
{
    if (!x)
        return;
    if (x->kind != EXPR_CMP) {
        add_trackers(e, sl, x->lhs, window_ns);
        add_trackers(e, sl, x->rhs, window_ns);
        return;
    }
    if (x->ref == EXPR_REF_ABS || find_tracker(sl, x->metric, window_ns))
        return;
    sl->trk = xreallocarray(sl->trk, sl->ntrk + 1, sizeof *sl->trk);
    tracker_init(&sl->trk[sl->ntrk++], x->metric, window_ns, e->poll_ns);
}

/* (Re)build a slot's trackers for the rules that apply to it. Existing
 * trackers with the same metric and window keep their data. */
static void build_trackers(struct engine *e, struct slot *sl)
{
    struct tracker *old = sl->trk;
    size_t nold = sl->ntrk;

    sl->trk = NULL;
    sl->ntrk = 0;
    for (size_t i = 0; i < e->nrules; i++) {
        const struct rule_spec *r = &e->rules[i];
        if (!applies(r, sl->target))
            continue;
        add_trackers(e, sl, r->when, r->baseline_window_ns);
        add_trackers(e, sl, r->resolve_when, r->baseline_window_ns);
    }
    for (size_t i = 0; i < sl->ntrk; i++) {
        for (size_t j = 0; j < nold; j++) {
            if (old[j].metric == sl->trk[i].metric && old[j].window_ns == sl->trk[i].window_ns)
                sl->trk[i] = old[j];
        }
    }
    free(old);
}

/* ---- events ------------------------------------------------------------ */

static struct event *ev_new(struct engine *e, enum event_kind kind, int slot, size_t rule,
                            int64_t now_ns)
{
    if (e->nev == e->capev) {
        e->capev = e->capev ? 2 * e->capev : 8;
        e->ev = xreallocarray(e->ev, e->capev, sizeof *e->ev);
    }
    struct event *ev = &e->ev[e->nev++];
    memset(ev, 0, offsetof(struct event, obs));
    ev->kind = kind;
    ev->slot = slot;
    ev->rule = rule;
    ev->t_ns = now_ns;
    ev->capture_rule = SIZE_MAX;
    ev->episode_start_ns = ev->episode_start_wall_ns = NONE;
    return ev;
}

static void incident_key(const struct engine *e, const struct slot *sl, size_t rule,
                         int64_t wall_ns, char *buf, size_t len)
{
    struct tm tm;
    time_t secs = (time_t)(wall_ns / NS_PER_S);
    int ms = (int)((wall_ns % NS_PER_S) / 1000000);
    char stamp[64] = "unknown";

    if (wall_ns >= 0 && gmtime_r(&secs, &tm))
        snprintf(stamp, sizeof stamp, "%04d%02d%02dT%02d%02d%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    snprintf(buf, len, "%s/%s/%s", e->rules[rule].name, sl->label, stamp);
}

static void set_episode(struct engine *e, struct event *ev, const struct slot *sl,
                        const struct rstate *st, size_t rule)
{
    ev->episode_start_ns = st->episode_start;
    ev->episode_start_wall_ns = st->episode_wall;
    incident_key(e, sl, rule, st->episode_wall, ev->incident, sizeof ev->incident);
}

/* ---- evaluation -------------------------------------------------------- */

/* Value of metric m for rule r at this poll: the sample's, except
 * rss_growth, which is the least-squares slope over the rule's window. */
static double metric_value(struct slot *sl, const struct rule_spec *r, enum metric m,
                           const struct history *h, const struct sample *s, int64_t now_ns,
                           bool use_cache)
{
    if (!s)
        return NAN;
    if (m != METRIC_RSS_GROWTH)
        return s->v[m];
    if (use_cache) {
        for (size_t i = 0; i < GROWTH_CACHE; i++) {
            if (sl->gc[i].t_ns == now_ns && sl->gc[i].window_ns == r->window_ns)
                return sl->gc[i].value;
        }
    }
    int64_t span = 0;
    double slope = history_slope(h, METRIC_RSS, now_ns, r->window_ns, &span);
    /* a slope over a fraction of the window is a guess, not a trend */
    double v = span * 2 >= r->window_ns ? slope * 60.0 : NAN;
    if (use_cache) {
        for (size_t i = 0; i < GROWTH_CACHE; i++) {
            if (sl->gc[i].t_ns != now_ns) {
                sl->gc[i] = (struct growth){r->window_ns, now_ns, v};
                break;
            }
        }
    }
    return v;
}

struct evalctx {
    struct slot *sl;
    const struct rule_spec *r;
    const struct history *h;
    const struct sample *s;   /* this poll's sample, NULL: no data */
    int64_t now_ns;
    bool use_cache;
    struct observed *obs;     /* indexed by comparison index */
    bool warming;             /* a relative comparison had no baseline */
    bool measured;            /* a comparison had a value (not NaN) */
};

static bool eval(struct evalctx *c, const struct expr *x)
{
    if (x->kind == EXPR_AND) {
        bool l = eval(c, x->lhs);
        bool r = eval(c, x->rhs); /* no short cut: every comparison is observed */
        return l && r;
    }
    if (x->kind == EXPR_OR) {
        bool l = eval(c, x->lhs);
        bool r = eval(c, x->rhs);
        return l || r;
    }
    struct observed *o = &c->obs[x->index];
    o->metric = x->metric;
    o->op = x->op;
    o->ref = x->ref;
    o->value = metric_value(c->sl, c->r, x->metric, c->h, c->s, c->now_ns, c->use_cache);
    o->warming_up = false;
    if (!isnan(o->value))
        c->measured = true;
    double median = NAN, mean = NAN, std = NAN;
    if (x->ref != EXPR_REF_ABS) {
        const struct tracker *t = find_tracker(c->sl, x->metric, c->r->baseline_window_ns);
        if (!t || !t->ready) {
            o->warming_up = true;
            c->warming = true;
        } else {
            median = t->median;
            mean = t->mean;
            std = t->std;
        }
    }
    o->threshold = expr_cmp_threshold(x, median, mean, std);
    o->holds = expr_cmp_holds(x, o->value, median, mean, std);
    return o->holds;
}

static int64_t resolve_after(const struct rule_spec *r, int64_t poll_ns)
{
    if (r->resolve_after_ns >= 0)
        return r->resolve_after_ns;
    if (!r->for_count && r->for_ns > 0)
        return r->for_ns;
    if (r->for_count)
        return (int64_t)r->for_m * poll_ns;
    return ENGINE_DEFAULT_RESOLVE_NS;
}

static bool for_satisfied(const struct engine *e, const struct rule_spec *r,
                          const struct rstate *st, int64_t now_ns)
{
    if (r->for_count)
        return st->n_true >= r->for_n;
    return st->true_since != NONE &&
           now_ns - st->true_since + e->poll_ns / ENGINE_POLL_SLACK_DIVISOR >= r->for_ns;
}

/* ---- budget ------------------------------------------------------------ */

static unsigned grants_in_hour(const struct engine *e, int64_t now_ns)
{
    unsigned n = 0;
    for (size_t i = 0; i < e->ngrants; i++) {
        if (e->grants[i] > now_ns - HOUR_NS)
            n++;
    }
    return n;
}

static bool budget_left(const struct engine *e, int64_t now_ns)
{
    return grants_in_hour(e, now_ns) < e->budget;
}

static void budget_take(struct engine *e, int64_t now_ns)
{
    if (e->budget == 0)
        return;
    if (e->ngrants < e->budget) {
        e->grants[e->ngrants++] = now_ns;
    } else {
        /* full: the oldest grant is overwritten (it is older than an hour) */
        e->grants[e->grants_head] = now_ns;
        e->grants_head = (e->grants_head + 1) % e->budget;
    }
}

unsigned engine_captures_last_hour(const struct engine *e, int64_t now_ns)
{
    return grants_in_hour(e, now_ns);
}

/* ---- lifecycle --------------------------------------------------------- */

static void slot_alloc_states(struct engine *e, struct slot *sl)
{
    sl->st = xcalloc(e->nrules ? e->nrules : 1, sizeof *sl->st);
    for (size_t i = 0; i < e->nrules; i++)
        rstate_init(&sl->st[i], &e->rules[i]);
}

static void slot_fini(struct engine *e, struct slot *sl)
{
    if (sl->st) {
        for (size_t i = 0; i < e->nrules; i++)
            rstate_fini(&sl->st[i]);
    }
    free(sl->st);
    free(sl->trk);
    free(sl->target);
    free(sl->label);
    memset(sl, 0, sizeof *sl);
}

struct engine *engine_new(const struct engine_params *p)
{
    struct engine *e = xcalloc(1, sizeof *e);
    e->poll_ns = p->poll_interval_ns > 0 ? p->poll_interval_ns : NS_PER_S;
    e->budget = p->max_captures_per_hour;
    e->grants = xcalloc(e->budget ? e->budget : 1, sizeof *e->grants);
    e->rng = p->seed;
    e->rules = p->rules;
    e->nrules = p->nrules;
    e->fingerprints = xcalloc(e->nrules ? e->nrules : 1, sizeof *e->fingerprints);
    for (size_t i = 0; i < e->nrules; i++)
        e->fingerprints[i] = rule_fingerprint(&e->rules[i]);
    e->scratch = xcalloc(3 * e->nrules + 1, sizeof *e->scratch);
    return e;
}

void engine_free(struct engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nslots; i++) {
        if (e->slots[i].used)
            slot_fini(e, &e->slots[i]);
    }
    free(e->slots);
    free(e->fingerprints);
    free(e->grants);
    free(e->ev);
    free(e->scratch);
    free(e);
}

size_t engine_set_rules(struct engine *e, const struct rule_spec *rules, size_t nrules,
                        int64_t now_ns, const struct event **events)
{
    uint64_t *fp = xcalloc(nrules ? nrules : 1, sizeof *fp);
    for (size_t i = 0; i < nrules; i++)
        fp[i] = rule_fingerprint(&rules[i]);
    bool *moved = xcalloc(e->nrules ? e->nrules : 1, sizeof *moved);

    e->nev = 0;
    for (size_t s = 0; s < e->nslots; s++) {
        struct slot *sl = &e->slots[s];
        if (!sl->used)
            continue;
        memset(moved, 0, (e->nrules ? e->nrules : 1) * sizeof *moved);
        struct rstate *st = xcalloc(nrules ? nrules : 1, sizeof *st);
        for (size_t i = 0; i < nrules; i++) {
            size_t j;
            for (j = 0; j < e->nrules; j++) {
                if (!moved[j] && e->fingerprints[j] == fp[i] &&
                    strcmp(e->rules[j].name, rules[i].name) == 0)
                    break;
            }
            if (j < e->nrules) {
                st[i] = sl->st[j]; /* unchanged rule: its state moves over */
                sl->st[j].bits = NULL;
                moved[j] = true;
            } else {
                rstate_init(&st[i], &rules[i]);
            }
        }
        for (size_t j = 0; j < e->nrules; j++) {
            /* a changed or removed rule's alerted episode ends here, named
             * by the old rules (still valid): receivers close the incident */
            struct rstate *old = &sl->st[j];
            if (!moved[j] && old->state == RULE_FIRING && old->alerted) {
                struct event *ev = ev_new(e, EVENT_RESOLVED, (int)s, j, now_ns);
                set_episode(e, ev, sl, old, j);
                ev->nobs = 0;
            }
            rstate_fini(old);
        }
        free(sl->st);
        sl->st = st;
    }
    free(moved);
    free(e->fingerprints);
    e->fingerprints = fp;
    e->rules = rules;
    e->nrules = nrules;
    free(e->scratch);
    e->scratch = xcalloc(3 * nrules + 1, sizeof *e->scratch);
    for (size_t s = 0; s < e->nslots; s++) {
        if (e->slots[s].used)
            build_trackers(e, &e->slots[s]);
    }
    *events = e->ev;
    return e->nev;
}

int engine_slot_add(struct engine *e, const char *target, const char *label)
{
    size_t i;
    for (i = 0; i < e->nslots && e->slots[i].used; i++)
        ;
    if (i == e->nslots) {
        e->slots = xreallocarray(e->slots, e->nslots + 1, sizeof *e->slots);
        memset(&e->slots[e->nslots], 0, sizeof *e->slots);
        e->nslots++;
    }
    struct slot *sl = &e->slots[i];
    sl->used = true;
    sl->target = xstrdup(target);
    sl->label = xstrdup(label ? label : target);
    sl->last_step_ns = NONE;
    slot_alloc_states(e, sl);
    build_trackers(e, sl);
    for (size_t k = 0; k < GROWTH_CACHE; k++)
        sl->gc[k].t_ns = NONE;
    return (int)i;
}

static struct slot *get_slot(const struct engine *e, int slot)
{
    if (slot < 0 || (size_t)slot >= e->nslots || !e->slots[slot].used)
        return NULL;
    return &e->slots[slot];
}

void engine_slot_remove(struct engine *e, int slot)
{
    struct slot *sl = get_slot(e, slot);
    if (sl)
        slot_fini(e, sl);
}

enum suppress_reason engine_try_capture(struct engine *e, int slot, int64_t now_ns)
{
    struct slot *sl = get_slot(e, slot);
    if (!sl || sl->busy)
        return SUPPRESS_COOLDOWN;
    if (!budget_left(e, now_ns))
        return SUPPRESS_BUDGET;
    budget_take(e, now_ns);
    sl->busy = true;
    return SUPPRESS_NONE;
}

void engine_capture_done(struct engine *e, int slot)
{
    struct slot *sl = get_slot(e, slot);
    if (sl)
        sl->busy = false;
}

bool engine_slot_busy(const struct engine *e, int slot)
{
    const struct slot *sl = get_slot(e, slot);
    return sl && sl->busy;
}

enum rule_state engine_rule_state(const struct engine *e, int slot, size_t rule)
{
    const struct slot *sl = get_slot(e, slot);
    if (!sl || rule >= e->nrules)
        return RULE_INACTIVE;
    return sl->st[rule].state;
}

size_t engine_slot_restarted(struct engine *e, int slot, int64_t now_ns, int64_t wall_ns,
                             const struct event **events)
{
    struct slot *sl = get_slot(e, slot);

    e->nev = 0;
    *events = e->ev;
    if (!sl)
        return 0;
    for (size_t i = 0; i < e->nrules; i++) {
        struct rstate *st = &sl->st[i];
        if (st->state == RULE_FIRING && st->alerted) {
            struct event *ev = ev_new(e, EVENT_RESOLVED, slot, i, now_ns);
            set_episode(e, ev, sl, st, i);
            ev->nobs = 0;
        }
        int64_t cooldown = st->cooldown_until, due = st->next_due;
        unsigned sc = st->supp_cooldown, sb = st->supp_budget;
        rstate_fini(st);
        rstate_init(st, &e->rules[i]);
        /* a crash loop must not become a capture loop: schedules go on */
        st->cooldown_until = cooldown;
        st->next_due = due;
        st->supp_cooldown = sc;
        st->supp_budget = sb;
    }
    for (size_t k = 0; k < sl->ntrk; k++)
        tracker_reset(&sl->trk[k], e->poll_ns);
    sl->last_step_ns = NONE;
    struct event *ev = ev_new(e, EVENT_RESTARTED, slot, SIZE_MAX, now_ns);
    ev->episode_start_wall_ns = wall_ns;
    snprintf(ev->incident, sizeof ev->incident, "restart/%s", sl->label);
    ev->nobs = 0;
    *events = e->ev;
    return e->nev;
}

/* ---- one poll ---------------------------------------------------------- */

static int rank_cmp(const struct engine *e, size_t a, size_t b)
{
    /* higher severity first, then file order */
    if (e->rules[a].severity != e->rules[b].severity)
        return e->rules[a].severity > e->rules[b].severity ? -1 : 1;
    return a < b ? -1 : (a > b);
}

static bool has_capture(const struct engine *e, size_t r)
{
    return e->rules[r].capture.profile != PROFILE_NONE;
}

/* Emit one alert (or one suppression) for a group of rules that fired
 * together; obs of the leader are re-evaluated into the event. */
static struct event *emit_group(struct engine *e, int slot, struct slot *sl, const size_t *grp,
                                size_t n, enum event_kind kind, int64_t now_ns,
                                const struct history *h, const struct sample *s)
{
    size_t lead = grp[0];
    for (size_t i = 1; i < n; i++) {
        if (rank_cmp(e, grp[i], lead) < 0)
            lead = grp[i];
    }
    struct event *ev = ev_new(e, kind, slot, lead, now_ns);
    struct rstate *lst = &sl->st[lead];
    set_episode(e, ev, sl, lst, lead);
    ev->true_for_ns = lst->true_since != NONE ? now_ns - lst->true_since
                                              : now_ns - lst->episode_start;
    for (size_t i = 0; i < n; i++) {
        if (grp[i] == lead)
            continue;
        if (ev->ncofiring < ENGINE_MAX_COFIRING) {
            struct cofiring *cf = &ev->cofiring[ev->ncofiring++];
            cf->rule = grp[i];
            cf->episode_start_ns = sl->st[grp[i]].episode_start;
            incident_key(e, sl, grp[i], sl->st[grp[i]].episode_wall, cf->incident,
                         sizeof cf->incident);
        }
    }
    /* the capture: the best-ranked rule of the group that asks for one */
    for (size_t i = 0; i < n; i++) {
        if (has_capture(e, grp[i]) &&
            (ev->capture_rule == SIZE_MAX || rank_cmp(e, grp[i], ev->capture_rule) < 0))
            ev->capture_rule = grp[i];
    }
    struct evalctx c = {sl, &e->rules[lead], h, s, now_ns, true, ev->obs, false, false};
    if (e->rules[lead].when)
        eval(&c, e->rules[lead].when);
    ev->nobs = expr_count(e->rules[lead].when);
    return ev;
}

static void step_scheduled(struct engine *e, int slot, struct slot *sl, size_t i, int64_t now_ns,
                           int64_t wall_ns, bool slot_active)
{
    const struct rule_spec *r = &e->rules[i];
    struct rstate *st = &sl->st[i];

    if (st->next_due == NONE) {
        int64_t first = r->every_ns / 10;
        if (first > ENGINE_FIRST_SCHEDULE_MAX_NS)
            first = ENGINE_FIRST_SCHEDULE_MAX_NS;
        st->next_due = now_ns + rng_upto(e, first);
    }
    if (now_ns < st->next_due || slot_active || sl->busy)
        return; /* baselines only while nothing else is going on */
    st->next_due = now_ns + r->every_ns + rng_upto(e, r->every_ns / 10);
    st->episode_start = now_ns;
    st->episode_wall = wall_ns;
    if (!budget_left(e, now_ns)) {
        struct event *ev = ev_new(e, EVENT_SUPPRESSED, slot, i, now_ns);
        ev->reason = SUPPRESS_BUDGET;
        st->supp_budget++;
        set_episode(e, ev, sl, st, i);
        ev->nobs = 0;
        return;
    }
    struct event *ev = ev_new(e, EVENT_SCHEDULED, slot, i, now_ns);
    set_episode(e, ev, sl, st, i);
    ev->capture_rule = i;
    ev->suppressed_budget = st->supp_budget;
    st->supp_budget = 0;
    ev->nobs = 0;
    sl->busy = true;
    budget_take(e, now_ns);
}

size_t engine_step(struct engine *e, int slot, const struct history *h, int64_t now_ns,
                   int64_t wall_ns, const struct event **events)
{
    struct slot *sl = get_slot(e, slot);
    size_t *want = e->scratch, *grp = e->scratch + e->nrules, *cap = e->scratch + 2 * e->nrules;
    size_t nwant = 0, ngrp = 0, ncap = 0;
    struct observed obs[EXPR_MAX_CMP];

    e->nev = 0;
    *events = e->ev;
    if (!sl)
        return 0;

    const struct sample *s = history_last(h);
    if (s && s->t_ns != now_ns)
        s = NULL; /* no sample at this poll: no data, nothing can become true */
    bool gap = sl->last_step_ns != NONE && now_ns - sl->last_step_ns > 2 * e->poll_ns;
    int64_t missed = gap ? (now_ns - sl->last_step_ns) / e->poll_ns - 1 : 0;
    sl->last_step_ns = now_ns;
    if (s) {
        for (size_t k = 0; k < sl->ntrk; k++)
            tracker_add(&sl->trk[k], now_ns, s->v[sl->trk[k].metric]);
    }

    for (size_t i = 0; i < e->nrules; i++) {
        const struct rule_spec *r = &e->rules[i];
        struct rstate *st = &sl->st[i];
        if (r->every_ns > 0 || !r->when || !applies(r, sl->target))
            continue;

        struct evalctx c = {sl, r, h, s, now_ns, true, obs, false, false};
        bool cond = s && eval(&c, r->when);
        if (r->for_count) {
            for (int64_t k = 0; k < missed && k < r->for_m; k++)
                bits_push(st, r->for_m, false);
            bits_push(st, r->for_m, cond);
        }

        switch (st->state) {
        case RULE_INACTIVE:
        case RULE_RESOLVED:
            if (cond) {
                st->state = RULE_PENDING;
                st->true_since = now_ns;
                st->episode_start = now_ns;
                st->episode_wall = wall_ns;
            }
            break;
        case RULE_PENDING:
            if (r->for_count) {
                if (st->n_true == 0) {
                    st->state = RULE_INACTIVE;
                    st->true_since = NONE;
                }
            } else if (!cond) {
                st->state = RULE_INACTIVE;
                st->true_since = NONE;
            } else if (gap) {
                /* unobserved polls cannot count towards `for` */
                st->true_since = now_ns;
            }
            break;
        case RULE_FIRING: {
            bool resolving;
            if (!s) {
                resolving = false; /* no data resolves nothing either */
            } else if (r->resolve_when) {
                struct evalctx rc = {sl, r, h, s, now_ns, true, obs, false, false};
                resolving = eval(&rc, r->resolve_when);
            } else {
                /* `when` false only because nothing was measured is no data */
                resolving = !cond && c.measured;
            }
            if (cond && !r->for_count && st->true_since == NONE)
                st->true_since = now_ns;
            if (!resolving) {
                st->false_since = NONE;
                break;
            }
            if (st->false_since == NONE || gap)
                st->false_since = now_ns; /* unobserved polls cannot count towards it */
            if (now_ns - st->false_since + e->poll_ns / ENGINE_POLL_SLACK_DIVISOR <
                resolve_after(r, e->poll_ns))
                break;
            if (st->alerted) {
                struct event *ev = ev_new(e, EVENT_RESOLVED, slot, i, now_ns);
                set_episode(e, ev, sl, st, i);
                ev->true_for_ns = now_ns - st->episode_start;
                struct evalctx oc = {sl, r, h, s, now_ns, true, ev->obs, false, false};
                eval(&oc, r->when);
                ev->nobs = expr_count(r->when);
            }
            st->state = RULE_RESOLVED;
            st->alerted = st->waiting = false;
            st->true_since = st->false_since = NONE;
            break;
        }
        }
        if (st->state == RULE_PENDING && for_satisfied(e, r, st, now_ns))
            want[nwant++] = i;
        else if (st->state == RULE_FIRING && st->waiting)
            want[nwant++] = i;
    }

    /* Noise control over the rules that want to fire at this poll. */
    for (size_t k = 0; k < nwant; k++) {
        size_t i = want[k];
        struct rstate *st = &sl->st[i];
        if (!st->waiting && now_ns < st->cooldown_until) {
            st->state = RULE_FIRING;
            st->alerted = false;
            st->supp_cooldown++;
            struct event *ev = ev_new(e, EVENT_SUPPRESSED, slot, i, now_ns);
            ev->reason = SUPPRESS_COOLDOWN;
            set_episode(e, ev, sl, st, i);
            ev->true_for_ns = now_ns - st->episode_start;
            struct evalctx oc = {sl, &e->rules[i], h, s, now_ns, true, ev->obs, false, false};
            eval(&oc, e->rules[i].when);
            ev->nobs = expr_count(e->rules[i].when);
            continue;
        }
        st->state = RULE_FIRING;
        if (sl->busy) {
            st->waiting = true; /* one capture per process at a time */
            continue;
        }
        grp[ngrp++] = i;
    }
    if (ngrp > 0) {
        /* Rules that need a capture go through the budget together. */
        bool any_capture = false;
        for (size_t k = 0; k < ngrp; k++)
            any_capture |= has_capture(e, grp[k]);
        if (any_capture && !budget_left(e, now_ns)) {
            size_t rest = 0;
            for (size_t k = 0; k < ngrp; k++) {
                if (has_capture(e, grp[k]))
                    cap[ncap++] = grp[k];
                else
                    grp[rest++] = grp[k];
            }
            ngrp = rest;
            struct event *ev = emit_group(e, slot, sl, cap, ncap, EVENT_SUPPRESSED, now_ns, h, s);
            ev->reason = SUPPRESS_BUDGET;
            ev->capture_rule = SIZE_MAX;
            for (size_t k = 0; k < ncap; k++) {
                struct rstate *st = &sl->st[cap[k]];
                st->supp_budget++;
                st->alerted = st->waiting = false;
            }
        }
    }
    if (ngrp > 0) {
        struct event *ev = emit_group(e, slot, sl, grp, ngrp, EVENT_FIRING, now_ns, h, s);
        for (size_t k = 0; k < ngrp; k++) {
            struct rstate *st = &sl->st[grp[k]];
            ev->suppressed_cooldown += st->supp_cooldown;
            ev->suppressed_budget += st->supp_budget;
            st->supp_cooldown = st->supp_budget = 0;
            st->alerted = true;
            st->waiting = false;
            st->cooldown_until = now_ns + e->rules[grp[k]].cooldown_ns;
        }
        if (ev->capture_rule != SIZE_MAX) {
            sl->busy = true;
            budget_take(e, now_ns);
        }
    }

    /* Scheduled baseline captures, only while no other rule is active. */
    bool active = false;
    for (size_t i = 0; i < e->nrules; i++) {
        if (e->rules[i].every_ns == 0 && applies(&e->rules[i], sl->target) &&
            (sl->st[i].state == RULE_PENDING || sl->st[i].state == RULE_FIRING))
            active = true;
    }
    for (size_t i = 0; i < e->nrules; i++) {
        if (e->rules[i].every_ns > 0 && applies(&e->rules[i], sl->target))
            step_scheduled(e, slot, sl, i, now_ns, wall_ns, active);
    }
    *events = e->ev;
    return e->nev;
}

/* ---- explaining -------------------------------------------------------- */

void engine_explain(const struct engine *e, int slot, size_t rule, const struct history *h,
                    int64_t now_ns, struct explain *out)
{
    struct slot *sl = get_slot(e, slot);

    memset(out, 0, offsetof(struct explain, obs));
    out->reason = EXPLAIN_NOT_APPLICABLE;
    if (!sl || rule >= e->nrules || !applies(&e->rules[rule], sl->target))
        return;
    const struct rule_spec *r = &e->rules[rule];
    const struct rstate *st = &sl->st[rule];
    out->state = st->state;
    if (r->every_ns > 0) {
        out->reason = EXPLAIN_SCHEDULED;
        out->remaining_ns = st->next_due == NONE ? 0 : st->next_due - now_ns;
        if (out->remaining_ns < 0)
            out->remaining_ns = 0;
        return;
    }
    const struct sample *s = history_last(h);
    if (s && s->t_ns != now_ns)
        s = NULL;
    struct evalctx c = {sl, r, h, s, now_ns, false, out->obs, false, false};
    /* evaluated even without a sample, so that every obs is filled (NaN values) */
    bool cond = eval(&c, r->when) && s;
    out->nobs = expr_count(r->when);
    if (r->for_count) {
        out->n_true = st->n_true;
        out->m = r->for_m;
    }
    switch (st->state) {
    case RULE_FIRING:
        if (st->waiting)
            out->reason = EXPLAIN_WAITING_CAPTURE;
        else if (!st->alerted && st->supp_budget > 0)
            out->reason = EXPLAIN_OVER_BUDGET;
        else if (!st->alerted && now_ns < st->cooldown_until)
            out->reason = EXPLAIN_COOLING_DOWN;
        else
            out->reason = EXPLAIN_FIRING;
        if (out->reason == EXPLAIN_COOLING_DOWN)
            out->remaining_ns = st->cooldown_until - now_ns;
        return;
    case RULE_PENDING:
        out->reason = EXPLAIN_PENDING;
        if (!r->for_count && st->true_since != NONE)
            out->remaining_ns = st->true_since + r->for_ns - now_ns;
        if (out->remaining_ns < 0)
            out->remaining_ns = 0;
        return;
    default:
        break;
    }
    if (!s)
        out->reason = EXPLAIN_NO_DATA;
    else if (c.warming && !cond)
        out->reason = EXPLAIN_WARMING_UP;
    else
        out->reason = EXPLAIN_FALSE;
    if (out->reason == EXPLAIN_WARMING_UP) {
        /* time until the slowest baseline of this rule is ready */
        int64_t left = 0;
        for (size_t k = 0; k < sl->ntrk; k++) {
            const struct tracker *t = &sl->trk[k];
            if (t->ready || t->window_ns != r->baseline_window_ns || !expr_uses(r->when, t->metric))
                continue;
            int64_t need = (int64_t)(ENGINE_WARMUP_FRACTION * (double)t->window_ns);
            if (need < ENGINE_WARMUP_MIN_SAMPLES * e->poll_ns)
                need = ENGINE_WARMUP_MIN_SAMPLES * e->poll_ns; /* one sample a poll */
            int64_t have = t->first_ns == NONE ? 0 : now_ns - t->first_ns;
            if (need - have > left)
                left = need - have;
        }
        out->remaining_ns = left;
    }
}

/* ---- names ------------------------------------------------------------- */

const char *rule_state_name(enum rule_state s)
{
    static const char *n[] = {"inactive", "pending", "firing", "resolved"};
    return (unsigned)s < 4 ? n[s] : "?";
}

const char *event_kind_name(enum event_kind k)
{
    static const char *n[] = {"firing", "resolved", "scheduled", "suppressed", "restarted"};
    return (unsigned)k < 5 ? n[k] : "?";
}

const char *suppress_reason_name(enum suppress_reason r)
{
    static const char *n[] = {"none", "cooldown", "budget"};
    return (unsigned)r < 3 ? n[r] : "?";
}

const char *explain_reason_name(enum explain_reason r)
{
    static const char *n[] = {"no data",      "condition false", "warming up",
                              "pending",      "firing",          "cooling down",
                              "over budget",  "waiting for capture", "scheduled",
                              "not applicable"};
    return (unsigned)r < sizeof n / sizeof n[0] ? n[r] : "?";
}
