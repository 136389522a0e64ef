/* tests/targets/logger.c - a program that writes a log at a set rate and
 * rotates it, for the log tailing tests.
 *
 *   logger --file PATH [--rate N/s] [--count N]
 *          [--rotate rename|copytruncate|delete --every N] [--late K]
 *          [--split] [--sync]
 *
 * Appends --count lines (default 1000) to PATH at --rate lines per second
 * (default 1000/s; 0: as fast as it can), each "TIME seq=N level=L msg=...".
 * Line N has level ERROR when N % 7 == 3 and INFO otherwise; INFO lines carry
 * near misses (ERRORS, panicked, error) that \b(ERROR|FATAL|panic)\b must not
 * match. --split writes each line in two write() calls, so that a reader
 * sees partial lines.
 *
 * Every --every lines it rotates PATH, the way rotation tools do:
 *   rename        rename PATH to PATH.K, open a new PATH, write the next line
 *                 there, then --late lines (default 3) to the old file
 *                 through the descriptor still open on it, then close it;
 *   delete        unlink PATH, write --late lines to the deleted file, then
 *                 create a new PATH;
 *   copytruncate  copy PATH to PATH.K and truncate PATH to 0 (the
 *                 descriptor is O_APPEND, so writing goes on at 0).
 * With --sync it stops at each rotation, prints an event with what it has
 * written so far and waits for one byte on stdin before going on: first
 * "rotate lines=L errors=E" before touching anything (a reader that has
 * counted L lines by then has the current file open), then
 *   rename:       "switched lines=L errors=E" after the first line in the
 *                 new file, before the late lines;
 *   delete:       "deleted lines=L errors=E" after the unlink, before the
 *                 late lines;
 *   copytruncate: "truncated lines=L errors=E" after the truncation.
 * At the end it prints "done lines=L errors=E rotations=R" (L counts every
 * line written, late ones included) and exits 0. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum rotate { ROT_NONE, ROT_RENAME, ROT_DELETE, ROT_COPYTRUNCATE };

struct logger {
    const char *path;
    long long rate, count, every, late;
    enum rotate rotate;
    bool split, sync;
    int fd;
    unsigned long long seq, lines, errors, rotations;
};

static void die(const char *what)
{
    fprintf(stderr, "logger: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1)
        die(path);
    return fd;
}

/* Write line number seq to fd. */
static void write_line(struct logger *lg, int fd)
{
    static const char *const near[] = {"retried 2 ERRORS", "worker panicked and recovered",
                                       "no error here", "ERROR_CODE=0", "all good"};
    char line[256];
    struct timespec ts;
    unsigned long long seq = ++lg->seq;
    bool error = seq % 7 == 3;

    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(line, sizeof line, "%lld.%09ld seq=%llu level=%s msg=\"%s\"\n",
                     (long long)ts.tv_sec, ts.tv_nsec, seq, error ? "ERROR" : "INFO",
                     error ? "request failed" : near[seq % 5]);
    if (lg->split) {
        write_all(fd, line, (size_t)n / 2);
        write_all(fd, line + n / 2, (size_t)n - (size_t)n / 2);
    } else {
        write_all(fd, line, (size_t)n);
    }
    lg->lines++;
    lg->errors += error;
}

/* --sync: say where we are and wait for the go-ahead. */
static void sync_point(struct logger *lg, const char *event)
{
    char c;
    ssize_t n;

    if (!lg->sync)
        return;
    printf("%s lines=%llu errors=%llu\n", event, lg->lines, lg->errors);
    fflush(stdout);
    do
        n = read(0, &c, 1);
    while (n == -1 && errno == EINTR);
    if (n != 1) {
        fprintf(stderr, "logger: no go-ahead on stdin\n");
        exit(1);
    }
}

static void copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t n;

    if (in == -1 || out == -1)
        die("copy");
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            die("read");
        write_all(out, buf, (size_t)n);
    }
    close(in);
    if (close(out) == -1)
        die("close");
}

static void rotate(struct logger *lg)
{
    char old_path[4200];
    int old = lg->fd;

    snprintf(old_path, sizeof old_path, "%s.%llu", lg->path, lg->rotations + 1);
    sync_point(lg, "rotate");
    switch (lg->rotate) {
    case ROT_RENAME:
        if (rename(lg->path, old_path) == -1)
            die("rename");
        lg->fd = open_log(lg->path);
        if (lg->seq < (unsigned long long)lg->count)
            write_line(lg, lg->fd);
        sync_point(lg, "switched");
        for (long long i = 0; i < lg->late && lg->seq < (unsigned long long)lg->count; i++)
            write_line(lg, old);
        close(old);
        break;
    case ROT_DELETE:
        if (unlink(lg->path) == -1)
            die("unlink");
        sync_point(lg, "deleted");
        for (long long i = 0; i < lg->late && lg->seq < (unsigned long long)lg->count; i++)
            write_line(lg, old);
        close(old);
        lg->fd = open_log(lg->path);
        break;
    case ROT_COPYTRUNCATE:
        copy_file(lg->path, old_path);
        if (ftruncate(lg->fd, 0) == -1)
            die("ftruncate");
        sync_point(lg, "truncated");
        break;
    case ROT_NONE:
        break;
    }
    lg->rotations++;
}

static void usage(void)
{
    fprintf(stderr, "usage: logger --file PATH [--rate N/s] [--count N] "
                    "[--rotate rename|copytruncate|delete --every N] [--late K] [--split] "
                    "[--sync]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct logger lg = {.rate = 1000, .count = 1000, .late = 3};
    struct timespec next;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--split") == 0) {
            lg.split = true;
        } else if (strcmp(a, "--sync") == 0) {
            lg.sync = true;
        } else if (!v) {
            usage();
        } else if (strcmp(a, "--file") == 0) {
            lg.path = v, i++;
        } else if (strcmp(a, "--rate") == 0) {
            lg.rate = atoll(v), i++;
        } else if (strcmp(a, "--count") == 0) {
            lg.count = atoll(v), i++;
        } else if (strcmp(a, "--every") == 0) {
            lg.every = atoll(v), i++;
        } else if (strcmp(a, "--late") == 0) {
            lg.late = atoll(v), i++;
        } else if (strcmp(a, "--rotate") == 0) {
            if (strcmp(v, "rename") == 0)
                lg.rotate = ROT_RENAME;
            else if (strcmp(v, "delete") == 0)
                lg.rotate = ROT_DELETE;
            else if (strcmp(v, "copytruncate") == 0)
                lg.rotate = ROT_COPYTRUNCATE;
            else
                usage();
            i++;
        } else {
            usage();
        }
    }
    if (!lg.path || lg.count < 0 || lg.rate < 0 || (lg.rotate != ROT_NONE && lg.every <= 0))
        usage();
    lg.fd = open_log(lg.path);
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (lg.seq < (unsigned long long)lg.count) {
        if (lg.rotate != ROT_NONE && lg.seq >= (lg.rotations + 1) * (unsigned long long)lg.every) {
            rotate(&lg);
            continue;
        }
        if (lg.rate > 0) {
            next.tv_nsec += 1000000000L / lg.rate;
            while (next.tv_nsec >= 1000000000L) {
                next.tv_nsec -= 1000000000L;
                next.tv_sec++;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
                ;
        }
        write_line(&lg, lg.fd);
    }
    if (close(lg.fd) == -1)
        die("close");
    printf("done lines=%llu errors=%llu rotations=%llu\n", lg.lines, lg.errors, lg.rotations);
    return 0;
}
