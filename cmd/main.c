/*
 * The ibsync executable: everything happens in cmd/ (libibs_cmd).
 *
 * The binary is linked with jemalloc (unless built with sanitizers, which
 * bring their own allocator). A plan builds and frees millions of small
 * objects, the value trees of every resource: with glibc's allocator a third
 * of a 10,000-resource plan's CPU time went to malloc/free and to page
 * faults of the growing heap. jemalloc's thread caches make the small
 * allocations cheaper, and transparent huge pages for its extents (where the
 * kernel offers them, "madvise" mode included) take a 2 MiB page per fault
 * instead of 4 KiB. docs/performance.md has the figures.
 */
#include "cmd/cmd.h"

#ifdef IBS_HAVE_JEMALLOC
/*
 * jemalloc reads its options from this symbol when it initialises (the
 * MALLOC_CONF environment variable still overrides it). The name is
 * jemalloc's, hence no ibs_ prefix; hence, too, the declaration right above.
 * One arena: nearly all of ibsync's allocation happens on one thread, and
 * an arena per thread (jemalloc's default, 4 per CPU) holds huge pages of
 * its own. Against the default arenas, in interleaved runs: a plan of the
 * 8-resource example 44 -> 20 MB peak RSS, of 10,000 creates 116 -> 97 MB
 * and 0.76 -> 0.56 s CPU; the emulator's requests/s unchanged (bench/emulator.sh).
 */
extern const char *malloc_conf;
const char *malloc_conf = "thp:always,metadata_thp:auto,narenas:1";
#endif

int main(int argc, char **argv)
{
    return ibs_cmd_main(argc, argv);
}
