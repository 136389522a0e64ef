/* tests/profile_fixture.h - hand-built profiles of a known shape, shared by
 * test_profile and test_outputs.
 *
 * Owns nothing: each builder returns a new profile (profile_free). The CPU
 * profile, 100 Hz (10 ms a sample), 100 samples, leaf first:
 *
 *   40  hot_a@0x404000  compute@0x403000  run  main    tid 101 "worker"
 *   20  hot_a@0x404020  compute@0x403010  run  main    tid 102 "worker"
 *   30  hot_b (libc)    io                run  main    tid 101
 *   10  hot_c           idle                   main    tid 103 "idler"
 *
 * so self is hot_a 60%, hot_b 30%, hot_c 10%; total main 100%, run 90%,
 * compute 60%, io 30%, idle 10%. */
#ifndef STAKEOUT_TEST_PROFILE_FIXTURE_H
#define STAKEOUT_TEST_PROFILE_FIXTURE_H

#include "profile.h"

#define FIXTURE_APP_BUILD_ID "0123456789abcdef0123456789abcdef01234567"
#define FIXTURE_LIBC_BUILD_ID "fedcba9876543210fedcba9876543210fedcba98"
#define FIXTURE_LIBC_START 0x7f0000000000ULL
#define FIXTURE_NOTE "rate lowered to 49 Hz: target stopped 1.3%"

/* The profile above, every frame named, with FIXTURE_NOTE. type is CPU or
 * WALL (same samples). */
struct profile *fixture_cpu(enum profile_type type);

/* A memory profile: values are bytes. 3 allocations of 1000 bytes under
 * main;parse;xmalloc and 1 of 3000 under main;load;xmalloc, so by bytes
 * parse and load are 50% each, by count 75% and 25%. */
struct profile *fixture_memory(void);

#endif
