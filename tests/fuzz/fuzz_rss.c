/* libFuzzer target: feed documents, seeded and steered towards RSS
 * (tests/fuzz/run: seeds from tests/data/feeds, dictionary rss.dict). */
#include "fuzz_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_feed_one(data, size);
}
