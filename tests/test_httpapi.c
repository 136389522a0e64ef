/* tests/test_httpapi.c - the HTTP listener itself, over real sockets on
 * loopback: a client over its connection limit is refused while another
 * (a second loopback source address) is served; a body over the cap is
 * answered 413 before it is read, and pushing one does not grow memory;
 * connections whose descriptors are past FD_SETSIZE are served.
 *
 * The listener runs in the test's own process (its thread), so its memory
 * is the test's. Waiting is a poll(2) with a deadline on the socket. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpapi.h"

#define BIG_BODY (64LL * 1024 * 1024)

static struct httpapi *listener;

static void stop_listener(void)
{
    httpapi_stop(listener);
    listener = NULL;
}

TestSuite(httpapi, .fini = stop_listener, .timeout = 30);

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void answer_ok(void *ctx, const struct http_req *req, struct http_resp *resp)
{
    (void)ctx;
    (void)req;
    http_resp_text(resp, 200, "text/plain", "ok\n");
}

/* Start the listener on 127.0.0.1, any port; returns the port. */
static unsigned start_listener(void)
{
    char err[256] = "";
    cr_assert_eq(httpapi_start("127.0.0.1:0", answer_ok, NULL, &listener, err, sizeof err), 0, "%s",
                 err);
    return httpapi_port(listener);
}

/* A TCP connection from source address src (127.0.0.x) to the listener. */
static int connect_from(const char *src, unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in from = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, src, &from.sin_addr), 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof from), 0, "bind %s: %s", src,
                 strerror(errno));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof to), 0, "connect: %s", strerror(errno));
    return fd;
}

/* Send req on fd and read until the server closes or timeout_ms pass.
 * Returns the bytes read (out NUL-terminated), or a negative errno when
 * the server refused the connection (reset) before answering. Closes fd. */
static ssize_t exchange(int fd, const char *req, char *out, size_t len, int timeout_ms)
{
    size_t got = 0;
    ssize_t rc = 0;
    out[0] = '\0';
    size_t n = strlen(req);
    if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) {
        rc = -errno;
        goto out;
    }
    long long deadline = now_ms() + timeout_ms;
    while (got < len - 1) {
        long long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)left);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t k = read(fd, out + got, len - 1 - got);
        if (k == -1 && errno == EINTR)
            continue;
        if (k == -1) {
            rc = got > 0 ? 0 : -errno;
            break;
        }
        if (k == 0)
            break;
        got += (size_t)k;
        out[got] = '\0';
    }
out:
    close(fd);
    return rc < 0 ? rc : (ssize_t)got;
}

/* The status code of an HTTP answer, 0 when there is none. */
static int status_of(const char *answer)
{
    int status = 0;
    if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    return status;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    cr_assert_not_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    cr_assert_gt(kib, 0);
    return kib;
}

Test(httpapi, client_over_its_connection_limit_is_refused_while_another_is_served)
{
    unsigned port = start_listener();
    char buf[1024];

    /* one client holds its whole share with idle connections */
    int held[HTTPAPI_MAX_PER_CLIENT];
    for (size_t i = 0; i < HTTPAPI_MAX_PER_CLIENT; i++)
        held[i] = connect_from("127.0.0.1", port);
    /* accepted in the order they came: the one past the limit is closed
     * without an answer */
    ssize_t n = exchange(connect_from("127.0.0.1", port), "GET /healthz HTTP/1.0\r\n\r\n", buf,
                         sizeof buf, 3000);
    cr_assert_eq(status_of(buf), 0, "a connection past the client's limit was served: %s", buf);
    cr_assert_leq(n, 0);

    /* another client (another source address) is served meanwhile */
    n = exchange(connect_from("127.0.0.2", port), "GET /healthz HTTP/1.0\r\n\r\n", buf, sizeof buf,
                 3000);
    cr_assert_gt(n, 0, "the other client got no answer: %s", strerror((int)-n));
    cr_assert_eq(status_of(buf), 200, "%s", buf);

    /* the limit counts connections held: released, the first client is
     * served again once the listener has seen them close */
    for (size_t i = 0; i < HTTPAPI_MAX_PER_CLIENT; i++)
        close(held[i]);
    long long deadline = now_ms() + 5000;
    for (;;) {
        exchange(connect_from("127.0.0.1", port), "GET /healthz HTTP/1.0\r\n\r\n", buf, sizeof buf,
                 3000);
        if (status_of(buf) == 200)
            break;
        cr_assert_lt(now_ms(), deadline, "the first client stays refused after closing");
    }
}

Test(httpapi, body_over_the_cap_gets_413_before_it_is_read)
{
    unsigned port = start_listener();
    char buf[1024], req[256];

    /* announced, not sent: the answer comes at once, without the body */
    snprintf(req, sizeof req, "POST /capture HTTP/1.1\r\nHost: t\r\nContent-Length: %lld\r\n\r\n",
             BIG_BODY);
    exchange(connect_from("127.0.0.1", port), req, buf, sizeof buf, 3000);
    cr_assert_eq(status_of(buf), 413, "%s", buf);
    cr_assert(strstr(buf, "Connection: close"), "%s", buf);

    /* at the cap, a body is let through (and ignored) */
    char *at_cap = malloc(HTTPAPI_MAX_BODY + 128);
    cr_assert_not_null(at_cap);
    int head = snprintf(at_cap, 128, "POST /capture HTTP/1.0\r\nContent-Length: %d\r\n\r\n",
                        HTTPAPI_MAX_BODY);
    memset(at_cap + head, 'x', HTTPAPI_MAX_BODY);
    at_cap[head + HTTPAPI_MAX_BODY] = '\0';
    exchange(connect_from("127.0.0.1", port), at_cap, buf, sizeof buf, 3000);
    free(at_cap);
    cr_assert_eq(status_of(buf), 200, "%s", buf);

    /* of unknown length: refused as well */
    exchange(connect_from("127.0.0.1", port),
             "POST /capture HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", buf,
             sizeof buf, 3000);
    cr_assert_eq(status_of(buf), 411, "%s", buf);

    /* pushed anyway: the listener stops reading and closes; memory stays */
    static char chunk[64 * 1024];
    memset(chunk, 'x', sizeof chunk);
    long before = rss_kib();
    int fd = connect_from("127.0.0.1", port);
    cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    long long sent = 0, deadline = now_ms() + 10000;
    int err = 0;
    while (sent < BIG_BODY && err == 0) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        long long left = deadline - now_ms();
        cr_assert_gt(left, 0, "the listener neither read nor refused the body");
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ssize_t k = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            sent += k;
        else if (k == -1 && errno != EAGAIN && errno != EINTR)
            err = errno;
    }
    close(fd);
    cr_assert(err == EPIPE || err == ECONNRESET, "sent %lld bytes: %s", sent,
              err ? strerror(err) : "all of them");
    cr_assert_lt(sent, BIG_BODY / 4, "the listener read %lld bytes of the body", sent);
    long grown = rss_kib() - before;
    cr_assert_lt(grown, 2048, "memory grew by %ld KiB", grown);
}

/* As when a capture holds many descriptors: the listener's connections get
 * numbers past FD_SETSIZE, which select(2) cannot watch. */
Test(httpapi, connections_past_fd_setsize_are_served)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t want = FD_SETSIZE + 256;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want;
        rl.rlim_max = rl.rlim_max > want ? rl.rlim_max : want;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "cannot raise the limit to %llu: %s",
                     (unsigned long long)want, strerror(errno));
    }
    unsigned port = start_listener();
    static int taken[FD_SETSIZE + 64];
    size_t n = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0, "open: %s", strerror(errno));
        taken[n++] = fd;
        if (fd >= FD_SETSIZE + 8)
            break;
        cr_assert_lt(n, sizeof taken / sizeof taken[0]);
    }
    char buf[1024];
    int c = connect_from("127.0.0.1", port);
    cr_assert_gt(c, FD_SETSIZE);
    ssize_t got = exchange(c, "GET /healthz HTTP/1.0\r\n\r\n", buf, sizeof buf, 3000);
    while (n > 0)
        close(taken[--n]);
    cr_assert_gt(got, 0, "no answer: %s", got < 0 ? strerror((int)-got) : "timeout");
    cr_assert_eq(status_of(buf), 200, "%s", buf);
}
