/* tests/bench/libfloor.c - the memory floor of stakeout's libraries: a
 * process linked with every shared library stakeout links (CMake links it
 * with --no-as-needed, so none is dropped), that initialises libcurl as the
 * delivery thread does at start and then waits. bench_daemon reads its peak
 * RSS beside the daemon's: what the loader and the libraries' own
 * initialisation cost before stakeout does any work of its own. */
#include <curl/curl.h>
#include <unistd.h>

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    CURLM *m = curl_multi_init();
    if (!m)
        return 1;
    for (;;)
        pause();
}
