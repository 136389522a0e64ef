/* tests/targets/allocator.c - grows its memory on command, for RSS, leak and
 * OOM tests.
 *
 *   allocator [--tag TEXT]
 *
 * Reads commands from stdin, one per line, and answers each on stdout:
 *   grow N      allocate and touch N MiB more      -> "ok rss_mib=M"
 *   open N      open N more file descriptors        -> "ok fds_opened=K"
 *   exec PATH   replace itself with PATH (no args)  -> nothing
 *   exit        exit 0
 * Prints "ready PID" at start. Memory is never freed: a leak on command. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char line[4096];
    size_t total_mib = 0;
    int opened = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready %d\n", (int)getpid());
    while (fgets(line, sizeof line, stdin)) {
        long n = 0;
        if (sscanf(line, "grow %ld", &n) == 1 && n > 0) {
            for (long i = 0; i < n; i++) {
                char *p = malloc(1 << 20);
                if (!p)
                    return 3;
                memset(p, 0x5a, 1 << 20); /* touch every page: resident */
            }
            total_mib += (size_t)n;
            printf("ok rss_mib=%zu\n", total_mib);
        } else if (sscanf(line, "open %ld", &n) == 1 && n > 0) {
            for (long i = 0; i < n; i++) {
                if (open("/dev/null", O_RDONLY) == -1)
                    return 4;
                opened++;
            }
            printf("ok fds_opened=%d\n", opened);
        } else if (strncmp(line, "exec ", 5) == 0) {
            line[strcspn(line, "\n")] = '\0';
            char *args[] = {line + 5, NULL};
            execv(line + 5, args);
            printf("error exec failed\n");
        } else if (strncmp(line, "exit", 4) == 0) {
            return 0;
        } else {
            printf("error unknown command\n");
        }
    }
    return 0;
}
