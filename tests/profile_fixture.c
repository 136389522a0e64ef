/* tests/profile_fixture.c - hand-built profiles; see profile_fixture.h. */
#include "profile_fixture.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct named {
    uint64_t addr;
    const char *function;
    const char *file;
    int line;
};

static const struct named cpu_names[] = {
    {0x401000, "main", "app.c", 10},    {0x402000, "run", "app.c", 20},
    {0x403000, "compute", "app.c", 30}, {0x403010, "compute", "app.c", 31},
    {0x404000, "hot_a", "app.c", 40},   {0x404020, "hot_a", "app.c", 41},
    {0x405000, "io", "app.c", 50},      {FIXTURE_LIBC_START + 0x1000, "hot_b", NULL, 0},
    {0x406000, "idle", "app.c", 60},    {0x407000, "hot_c", "app.c", 70},
};

/* Name every frame of p from a table of addresses. */
static void name_all(struct profile *p, const struct named *names, size_t n)
{
    for (uint32_t f = 1; f <= p->nframes; f++) {
        for (size_t i = 0; i < n; i++) {
            if (p->frames[f - 1].addr == names[i].addr)
                profile_name_frame(p, f, names[i].function, names[i].file, names[i].line);
        }
    }
}

static void add_n(struct profile *p, const uint64_t *ips, uint32_t n, int32_t tid, int times,
                  int64_t *t)
{
    for (int i = 0; i < times; i++) {
        *t += p->period_ns;
        profile_add_sample(p, ips, n, tid, *t, (uint64_t)p->period_ns);
    }
}

struct profile *fixture_cpu(enum profile_type type)
{
    struct profile *p = profile_new(type, 100);
    p->pid = 4242;
    snprintf(p->comm, sizeof p->comm, "app");
    p->start_wall_ns = 1700000000000000000LL;
    p->start_mono_ns = 5000000000LL;
    p->duration_ns = 1000000000LL;
    p->rate_achieved_hz = 98.5;
    p->idle_samples = 7;
    p->stopped_ns = 5000000;
    profile_add_mapping(p, 0x400000, 0x500000, 0, "/usr/bin/app", FIXTURE_APP_BUILD_ID);
    profile_add_mapping(p, FIXTURE_LIBC_START, FIXTURE_LIBC_START + 0x100000, 0x1000,
                        "/usr/lib/x86_64-linux-gnu/libc.so.6", FIXTURE_LIBC_BUILD_ID);

    const uint64_t a1[] = {0x404000, 0x403000, 0x402000, 0x401000};
    const uint64_t a2[] = {0x404020, 0x403010, 0x402000, 0x401000};
    const uint64_t b[] = {FIXTURE_LIBC_START + 0x1000, 0x405000, 0x402000, 0x401000};
    const uint64_t c[] = {0x407000, 0x406000, 0x401000};
    int64_t t = p->start_mono_ns;
    add_n(p, a1, 4, 101, 40, &t);
    add_n(p, a2, 4, 102, 20, &t);
    add_n(p, b, 4, 101, 30, &t);
    add_n(p, c, 3, 103, 10, &t);
    profile_thread_name(p, 101, "worker");
    profile_thread_name(p, 102, "worker");
    profile_thread_name(p, 103, "idler");
    name_all(p, cpu_names, sizeof cpu_names / sizeof cpu_names[0]);
    profile_note(p, "%s", FIXTURE_NOTE);
    return p;
}

static const struct named mem_names[] = {
    {0x401000, "main", NULL, 0},
    {0x402000, "parse", NULL, 0},
    {0x403000, "load", NULL, 0},
    {0x404000, "xmalloc", NULL, 0},
};

struct profile *fixture_memory(void)
{
    struct profile *p = profile_new(PROFILE_TYPE_MEMORY, 0);
    p->pid = 4243;
    snprintf(p->comm, sizeof p->comm, "mem");
    p->duration_ns = 2000000000LL;
    profile_add_mapping(p, 0x400000, 0x500000, 0, "/usr/bin/mem", FIXTURE_APP_BUILD_ID);
    const uint64_t parse[] = {0x404000, 0x402000, 0x401000};
    const uint64_t load[] = {0x404000, 0x403000, 0x401000};
    for (int i = 0; i < 3; i++)
        profile_add_sample(p, parse, 3, 7, i, 1000);
    profile_add_sample(p, load, 3, 7, 3, 3000);
    profile_thread_name(p, 7, "mem");
    name_all(p, mem_names, sizeof mem_names / sizeof mem_names[0]);
    return p;
}
