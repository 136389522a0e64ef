// tests/targets/symtarget_cxx.cpp - C++ functions with mangled names, for the
// symbolizer tests.
//
//   symtarget_cxx
//
// Prints "NAME ADDRESS" lines (%p) for shop::price(int, double),
// long shop::twice<long>(long) and shop::cart::count(char const*), then
// "ready"; reads stdin until EOF and exits.
#include <cstdio>

namespace shop {

static volatile int sink;

__attribute__((noinline)) int price(int units, double each)
{
    sink += units;
    return (int)(units * each);
}

template <typename T> __attribute__((noinline)) T twice(T v)
{
    sink += 1;
    return v + v;
}
template long twice<long>(long);

struct cart {
    __attribute__((noinline)) static int count(const char *items);
};

int cart::count(const char *items)
{
    int n = 0;
    while (items[n])
        n++;
    sink += n;
    return n;
}

} // namespace shop

int main()
{
    char buf[256];
    shop::sink += shop::price(3, 1.5) + (int)shop::twice<long>(4) + shop::cart::count("abc");
    std::printf("shop_price %p\n", (void *)&shop::price);
    std::printf("shop_twice_long %p\n", (void *)&shop::twice<long>);
    std::printf("shop_cart_count %p\n", (void *)&shop::cart::count);
    std::printf("ready\n");
    std::fflush(stdout);
    while (std::fread(buf, 1, sizeof buf, stdin) > 0)
        ;
    return 0;
}
