/* libFuzzer target: feed documents, seeded and steered towards JSON Feed
 * (tests/fuzz/run: seeds from tests/data/feeds, dictionary json.dict). */
#include "fuzz_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_feed_one(data, size);
}
