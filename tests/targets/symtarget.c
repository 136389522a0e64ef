/* tests/targets/symtarget.c - a process with functions of known names, for
 * the symbolizer tests (PIE, linked with libsymlib.so).
 *
 *   symtarget [--jit] [--unlink-self] [--map FILE]
 *
 * Calls its functions once, then prints "NAME ADDRESS" lines (%p): pid (its
 * pid, in decimal), sym_exported (also in .dynsym), sym_static_work (only in
 * .symtab), sym_tail_caller, symlib_compute (the library's); then "ra ADDR",
 * the return address of sym_tail_caller's last instruction (a call to the
 * noreturn sym_park: the address is past the end of sym_tail_caller), and
 * "ready". It then reads stdin until EOF and exits.
 *
 * --jit maps an anonymous executable page, names it "jit_fake_function" in
 * /tmp/perf-PID.map as Node's --perf-basic-prof would, and prints "jit ADDR".
 * --unlink-self deletes its own executable once running, so the file is
 * reachable only through /proc/PID/map_files.
 * --map FILE maps FILE readable and executable, as a library would be (its
 * code is never run), and prints "mapped ADDR". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int symlib_compute(int x);

static volatile unsigned sink; /* unsigned: no overflow checks after the last call */

__attribute__((noinline)) void sym_exported(void)
{
    sink++;
}

__attribute__((noinline)) static int sym_static_work(int n)
{
    volatile int v = n;
    for (int i = 0; i < n; i++)
        v += i * 3;
    return v;
}

__attribute__((noinline, noreturn)) static void sym_park(void)
{
    char buf[256];
    printf("ra %p\nready\n", __builtin_return_address(0));
    fflush(stdout);
    while (fread(buf, 1, sizeof buf, stdin) > 0)
        ;
    exit(0);
}

__attribute__((noinline, noreturn)) void sym_tail_caller(void)
{
    sink += 2;
    sym_park();
}

static void *make_jit(void)
{
    unsigned char *code =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char path[64];
    FILE *f;

    if (code == MAP_FAILED)
        return NULL;
    memset(code, 0xc3, 4096); /* ret */
    if (mprotect(code, 4096, PROT_READ | PROT_EXEC) != 0)
        return NULL;
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "%lx 10 jit_other_function\n", (unsigned long)code + 0x100);
    fprintf(f, "%lx 40 jit_fake_function\n", (unsigned long)code);
    fclose(f);
    return code;
}

static void *map_file(const char *path)
{
    struct stat st;
    void *at = MAP_FAILED;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        at = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
    close(fd);
    return at == MAP_FAILED ? NULL : at;
}

int main(int argc, char **argv)
{
    void *jit = NULL, *mapped = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--jit") == 0) {
            jit = make_jit();
            if (!jit) {
                perror("symtarget: jit");
                return 1;
            }
        } else if (strcmp(argv[i], "--unlink-self") == 0) {
            char self[4096];
            ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
            if (n <= 0)
                return 1;
            self[n] = '\0';
            if (unlink(self) != 0) {
                perror("symtarget: unlink");
                return 1;
            }
        } else if (strcmp(argv[i], "--map") == 0 && i + 1 < argc) {
            mapped = map_file(argv[++i]);
            if (!mapped) {
                perror("symtarget: map");
                return 1;
            }
        } else {
            fprintf(stderr, "usage: symtarget [--jit] [--unlink-self] [--map FILE]\n");
            return 2;
        }
    }
    sym_exported();
    sink += (unsigned)(sym_static_work(5) + symlib_compute(3));
    printf("pid %d\n", (int)getpid());
    printf("sym_exported %p\n", (void *)sym_exported);
    printf("sym_static_work %p\n", (void *)sym_static_work);
    printf("sym_tail_caller %p\n", (void *)sym_tail_caller);
    printf("symlib_compute %p\n", (void *)symlib_compute);
    if (jit)
        printf("jit %p\n", jit);
    if (mapped)
        printf("mapped %p\n", mapped);
    sym_tail_caller();
}
