/* tests/targets/symlib.c - libsymlib.so, the shared library of symtarget: one
 * function with a known name, loaded at some bias, for the symbolizer tests. */
__attribute__((noinline, visibility("default"))) int symlib_compute(int x)
{
    volatile int v = x;
    for (int i = 0; i < 3; i++)
        v = v * 7 + i;
    return v;
}
