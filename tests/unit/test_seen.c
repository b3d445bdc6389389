/* The producer's seen-state (producer/seen.h): verdicts, eviction, one file
 * per feed, the schedule, corruption, migration from seen.json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/metrics.h"
#include "seen.h"

static char root[] = "/tmp/na-test-seen-XXXXXX";

static int setup(void **state) {
    (void)state;
    return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh STATE_DIR named @p name under the test's folder. */
static const char *state_dir(const char *name) {
    static char path[256];
    char cmd[600];
    snprintf(path, sizeof(path), "%s/%s", root, name);
    snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", path, path);
    assert_int_equal(system(cmd), 0);
    return path;
}

/* Path of the file of @p feed_id under @p dir (seen.h: 32 hex digits of
 * SHA-256(feed id)). */
static void feed_file(const char *dir, const char *feed_id, char *buf, size_t size) {
    char hex[NA_SHA256_HEX_LEN + 1];
    assert_int_equal(na_sha256_hex(feed_id, strlen(feed_id), hex), NA_OK);
    snprintf(buf, size, "%s/seen/%.32s", dir, hex);
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static double corrupt_count(void) {
    return na_metric_value(na_metrics_get(
        NA_METRIC_COUNTER, "newsalert_producer_state_corrupt_total", "", NULL));
}

/* One fetch of @p n items numbered from @p first: every id touched, the
 * new ones put. @returns how many were new. */
static size_t poll_doc(na_seen_t *seen, const char *feed, unsigned first, unsigned n) {
    char id[80];
    size_t fresh = 0;
    int rev;
    na_seen_fetch_begin(seen, feed);
    for (unsigned i = first; i < first + n; i++) {
        snprintf(id, sizeof(id), "%064x", i);
        assert_int_equal(na_seen_touch(seen, feed, id, NULL), NA_OK);
    }
    for (unsigned i = first; i < first + n; i++) {
        snprintf(id, sizeof(id), "%064x", i);
        if (na_seen_check(seen, feed, id, NULL, &rev) == NA_SEEN_NEW) {
            fresh++;
            assert_int_equal(na_seen_put(seen, feed, id, NULL, rev), NA_OK);
        }
    }
    return fresh;
}

/* na_seen_has() that must not fail. */
static bool has(const na_seen_t *seen, const char *feed, const char *id) {
    bool h = false;
    assert_int_equal(na_seen_has(seen, feed, id, &h), NA_OK);
    return h;
}

static bool has_n(const na_seen_t *seen, const char *feed, unsigned i) {
    char id[80];
    snprintf(id, sizeof(id), "%064x", i);
    return has(seen, feed, id);
}

static void reload(na_seen_t **seen, const char *dir) {
    char errstr[256];
    assert_int_equal(na_seen_save(*seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_dirty(*seen), 0);
    na_seen_destroy(*seen);
    *seen = NULL;
    assert_int_equal(na_seen_load(dir, seen, errstr, sizeof(errstr)), NA_OK);
}

static void test_seen_survives_reload(void **state) {
    (void)state;
    char errstr[256];
    const char *dir = state_dir("reload");
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_false(has(seen, "feed", "a1"));
    assert_int_equal(na_seen_add(seen, "feed", "a1"), NA_OK);
    assert_int_equal(na_seen_set_validators(seen, "feed", "\"etag-1\"", NULL), NA_OK);
    reload(&seen, dir);
    assert_true(has(seen, "feed", "a1"));
    assert_false(has(seen, "other", "a1"));
    assert_string_equal(na_seen_validator(seen, "feed", "etag"), "\"etag-1\"");
    assert_null(na_seen_validator(seen, "feed", "last_modified"));
    na_seen_destroy(seen);
}

/* Everything a save can write loads back: every member, every kind of
 * fingerprint, revisions, the latest fetch, the schedule, and a feed at
 * every cap at once (the longest id and values, the most ids). */
static void test_seen_save_load_round_trip(void **state) {
    (void)state;
    char errstr[256], id[80], fp[NA_SEEN_FP_LEN + 1];
    const char *dir = state_dir("roundtrip");
    na_seen_t *seen = NULL;
    int rev;
    bool reset;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "f", "http://a/feed", &reset), NA_OK);
    assert_int_equal(na_seen_set_validators(seen, "f", "\"e\"", "Mon, 05 Jan 2026"),
                     NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "url", "http://a2/feed"), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "moved_from", "http://a/feed"), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "retired", "abc"), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "ttl", 60), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "skip_hours", 0xffff), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "skip_days", 3), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "next_at", 1767607200123LL), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "active_at", 1767607200LL), NA_OK);
    assert_int_equal(na_seen_put(seen, "f", "title-only", NULL, 1), NA_OK);
    assert_int_equal(na_seen_put(seen, "f", "edited", "0123456789abcdef", 7), NA_OK);
    assert_int_equal(na_seen_put(seen, "f", "short-fp", "aaaa", 1), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "bogus", "x"), NA_ERR_INVALID);
    reload(&seen, dir);
    assert_string_equal(na_seen_get_str(seen, "f", "source_url"), "http://a/feed");
    assert_string_equal(na_seen_validator(seen, "f", "etag"), "\"e\"");
    assert_string_equal(na_seen_validator(seen, "f", "last_modified"),
                        "Mon, 05 Jan 2026");
    assert_string_equal(na_seen_get_str(seen, "f", "url"), "http://a2/feed");
    assert_string_equal(na_seen_get_str(seen, "f", "moved_from"), "http://a/feed");
    assert_string_equal(na_seen_get_str(seen, "f", "retired"), "abc");
    assert_int_equal(na_seen_get_int(seen, "f", "ttl", 0), 60);
    assert_int_equal(na_seen_get_int(seen, "f", "skip_hours", 0), 0xffff);
    assert_int_equal(na_seen_get_int(seen, "f", "skip_days", 0), 3);
    assert_int_equal(na_seen_get_int(seen, "f", "next_at", 0), 1767607200123LL);
    assert_int_equal(na_seen_get_int(seen, "f", "active_at", 0), 1767607200LL);
    assert_int_equal(na_seen_check(seen, "f", "title-only", "fedcba9876543210", &rev),
                     NA_SEEN_EDITED);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_check(seen, "f", "edited", "0123456789abcdef", &rev),
                     NA_SEEN_SAME);
    assert_int_equal(rev, 7);
    assert_int_equal(na_seen_check(seen, "f", "other", "aaaa", &rev), NA_SEEN_DUPLICATE);
    assert_int_equal(na_seen_count(seen, "f"), 3);

    /* Schedules alone are soft: dirty 1, written to the schedule only. */
    assert_int_equal(na_seen_set_int(seen, "f", "next_at", 5), NA_OK);
    assert_int_equal(na_seen_dirty(seen), 1);
    reload(&seen, dir);
    assert_int_equal(na_seen_get_int(seen, "f", "next_at", 0), 5);

    /* Every cap at once. */
    char *big = malloc(NA_SEEN_MAX_ID_BYTES + 1);
    assert_non_null(big);
    memset(big, 'x', NA_SEEN_MAX_ID_BYTES);
    big[NA_SEEN_MAX_ID_BYTES] = '\0';
    char *ctl = malloc(NA_SEEN_MAX_VALUE_BYTES + 1);
    assert_non_null(ctl);
    memset(ctl, '\x01', NA_SEEN_MAX_VALUE_BYTES); /* six bytes each in JSON */
    ctl[NA_SEEN_MAX_VALUE_BYTES] = '\0';
    assert_int_equal(na_seen_set_validators(seen, big, ctl, ctl), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, big, ctl, &reset), NA_OK);
    assert_int_equal(na_seen_set_str(seen, big, "url", ctl), NA_OK);
    assert_int_equal(na_seen_set_str(seen, big, "moved_from", ctl), NA_OK);
    assert_int_equal(na_seen_set_str(seen, big, "retired", ctl), NA_OK);
    for (unsigned i = 0; i < NA_SEEN_MAX_IDS_PER_FEED; i++) {
        snprintf(id, sizeof(id), "%064x", i);
        snprintf(fp, sizeof(fp), "%016x", i);
        assert_int_equal(na_seen_put(seen, big, id, fp, 1), NA_OK);
    }
    assert_int_equal(na_seen_count(seen, big), NA_SEEN_MAX_IDS_PER_FEED);
    /* One more than the caps: refused, never written. */
    big[0] = 'y';
    char *bigger = malloc(NA_SEEN_MAX_ID_BYTES + 2);
    assert_non_null(bigger);
    snprintf(bigger, NA_SEEN_MAX_ID_BYTES + 2, "z%s", big);
    assert_int_equal(na_seen_add(seen, bigger, "a"), NA_ERR_TOO_LARGE);
    big[0] = 'x';
    ctl[0] = 'c';
    char *long_value = malloc(NA_SEEN_MAX_VALUE_BYTES + 2);
    assert_non_null(long_value);
    snprintf(long_value, NA_SEEN_MAX_VALUE_BYTES + 2, "u%s", ctl);
    assert_int_equal(na_seen_set_str(seen, "f", "url", long_value), NA_ERR_TOO_LARGE);
    assert_string_equal(na_seen_get_str(seen, "f", "url"), "http://a2/feed");
    /* A validator too long to keep is as good as none. */
    assert_int_equal(na_seen_set_validators(seen, "f", long_value, NULL), NA_OK);
    assert_null(na_seen_validator(seen, "f", "etag"));
    reload(&seen, dir);
    assert_int_equal(na_seen_count(seen, big), NA_SEEN_MAX_IDS_PER_FEED);
    assert_int_equal(strlen(na_seen_get_str(seen, big, "retired")),
                     NA_SEEN_MAX_VALUE_BYTES);
    snprintf(id, sizeof(id), "%064x", NA_SEEN_MAX_IDS_PER_FEED - 1);
    snprintf(fp, sizeof(fp), "%016x", NA_SEEN_MAX_IDS_PER_FEED - 1);
    assert_int_equal(na_seen_check(seen, big, id, fp, &rev), NA_SEEN_SAME);
    assert_int_equal(na_seen_feeds(seen), 2);
    free(big);
    free(bigger);
    free(ctl);
    free(long_value);
    na_seen_destroy(seen);
}

static void test_seen_is_bounded_oldest_first(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    /* Fetches of 10 new items each: the history holds the most recent. */
    for (unsigned i = 0; i < NA_SEEN_IDS_PER_FEED + 300; i += 10) {
        assert_int_equal(poll_doc(seen, "f", i, 10), 10);
    }
    assert_true(na_seen_count(seen, "f") <=
                NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10 + 10);
    assert_false(has_n(seen, "f", 0));
    assert_true(has_n(seen, "f", NA_SEEN_IDS_PER_FEED + 299));
    /* A caller that never begins a fetch still meets the hard cap. */
    for (unsigned i = 0; i < NA_SEEN_MAX_IDS_PER_FEED + 10; i++) {
        char id[32];
        snprintf(id, sizeof(id), "g%u", i);
        assert_int_equal(na_seen_add(seen, "g", id), NA_OK);
    }
    assert_true(na_seen_count(seen, "g") <= NA_SEEN_MAX_IDS_PER_FEED);
    assert_false(has(seen, "g", "g0"));
    assert_true(has(seen, "g", "g7000"));
    na_seen_destroy(seen);
}

/* A feed carrying more items than the history holds was new again on every
 * poll (5,000, then 3,075, then 2,995 items): the ids of the latest fetch
 * are never evicted, so the second and third polls find nothing new, also
 * across a restart. */
static void test_seen_feed_larger_than_history_is_not_new_again(void **state) {
    (void)state;
    char errstr[256];
    const char *dir = state_dir("larger");
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(poll_doc(seen, "f", 0, NA_MAX_FEED_ITEMS), NA_MAX_FEED_ITEMS);
    assert_int_equal(poll_doc(seen, "f", 0, NA_MAX_FEED_ITEMS), 0);
    reload(&seen, dir);
    assert_int_equal(poll_doc(seen, "f", 0, NA_MAX_FEED_ITEMS), 0);
    assert_int_equal(na_seen_count(seen, "f"), NA_MAX_FEED_ITEMS);
    /* A rolling window of 3,000 items, 100 new per fetch, the oldest 100
     * dropped: only the 100 new ones are new, every time, and the state
     * stays bounded. */
    for (unsigned k = 0; k < 60; k++) {
        assert_int_equal(poll_doc(seen, "f", 10000 + k * 100, 3000), k ? 100 : 3000);
        assert_true(na_seen_count(seen, "f") <= NA_SEEN_MAX_IDS_PER_FEED);
        if (k == 30) {
            reload(&seen, dir);
        }
    }
    /* Ids that left the document are forgotten past the history, oldest
     * first; the latest 3,000 and the 2,048 before them stay. */
    assert_false(has_n(seen, "f", 0));
    assert_true(has_n(seen, "f", 10000 + 59 * 100 - NA_SEEN_IDS_PER_FEED));
    assert_int_equal(poll_doc(seen, "f", 10000 + 59 * 100, 3000), 0);
    na_seen_destroy(seen);
}

static void make_article(struct na_article *a, const char *title, const char *content) {
    na_article_init(a);
    a->title = strdup(title);
    a->content = content ? strdup(content) : NULL;
}

static void test_fingerprint_normalises_and_needs_text(void **state) {
    (void)state;
    struct na_article a, b, c;
    char fa[NA_SEEN_FP_LEN + 1], fb[NA_SEEN_FP_LEN + 1], fc[NA_SEEN_FP_LEN + 1];
    make_article(&a, "China bans exports", "Dual-use items   to Japan's\n military.");
    make_article(&b, "  china BANS exports ", "dual-use items to japan's military.");
    make_article(&c, "China bans exports", "Dual-use items to Korea's military.");
    assert_int_equal(na_seen_fingerprint(&a, fa), NA_OK);
    assert_int_equal(na_seen_fingerprint(&b, fb), NA_OK);
    assert_int_equal(na_seen_fingerprint(&c, fc), NA_OK);
    assert_int_equal(strlen(fa), NA_SEEN_FP_LEN);
    assert_int_equal(strlen(fc), NA_SEEN_FP_LEN);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fc);
    na_article_cleanup(&a);
    make_article(&a, "Short", "x"); /* too little text to tell items apart */
    assert_int_equal(na_seen_fingerprint(&a, fa), NA_OK);
    assert_string_equal(fa, "");
    na_article_cleanup(&a);
    /* A title alone, however long, is no fingerprint: titles recur. */
    make_article(&a, "Morning briefing: what you need to know today", NULL);
    assert_int_equal(na_seen_fingerprint(&a, fa), NA_OK);
    assert_string_equal(fa, "");
    na_article_cleanup(&a);
    make_article(&a, "Briefing", NULL);
    a.summary = strdup("Summary text long enough to count here.");
    assert_int_equal(na_seen_fingerprint(&a, fa), NA_OK);
    assert_int_equal(strlen(fa), NA_SEEN_FP_LEN);
    na_article_cleanup(&a);
    na_article_cleanup(&b);
    na_article_cleanup(&c);
}

static void test_seen_verdicts_new_same_edited_duplicate(void **state) {
    (void)state;
    char errstr[256];
    const char *dir = state_dir("verdicts");
    na_seen_t *seen = NULL;
    int rev = 0;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "id1", "aaaa", &rev), NA_SEEN_NEW);
    assert_int_equal(rev, 1);
    assert_int_equal(na_seen_put(seen, "f", "id1", "aaaa", 1), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "id1", "aaaa", &rev), NA_SEEN_SAME);
    /* Same id, new text: an update, revision 2. */
    assert_int_equal(na_seen_check(seen, "f", "id1", "bbbb", &rev), NA_SEEN_EDITED);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_put(seen, "f", "id1", "bbbb", rev), NA_OK);
    /* New GUID (new id), text already known: not new. */
    assert_int_equal(na_seen_check(seen, "f", "id2", "bbbb", &rev), NA_SEEN_DUPLICATE);
    /* ...but only within the same feed. */
    assert_int_equal(na_seen_check(seen, "g", "id2", "bbbb", &rev), NA_SEEN_NEW);
    /* The text of the first revision is no longer the id's. */
    assert_int_equal(na_seen_check(seen, "f", "id3", "aaaa", &rev), NA_SEEN_NEW);
    /* No fingerprint: no edit detection, no duplicate detection. */
    assert_int_equal(na_seen_check(seen, "f", "id1", "", &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_check(seen, "f", "id3", NULL, &rev), NA_SEEN_NEW);
    reload(&seen, dir);
    assert_int_equal(na_seen_check(seen, "f", "id1", "bbbb", &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_check(seen, "f", "id1", "cccc", &rev), NA_SEEN_EDITED);
    assert_int_equal(rev, 3);
    na_seen_destroy(seen);
}

/* Breaking news comes as a bare headline; the text follows under the same
 * guid. The text that appeared is an edit, produced again as revision 2. */
static void test_seen_headline_only_item_gets_its_body(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *seen = NULL;
    int rev = 0;
    size_t len = 0;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "h1", "", &rev), NA_SEEN_NEW);
    assert_int_equal(na_seen_put(seen, "f", "h1", "", rev), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "h1", NULL, &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 1);
    assert_int_equal(na_seen_check(seen, "f", "h1", "0123456789abcdef", &rev),
                     NA_SEEN_EDITED);
    assert_int_equal(rev, 2);
    assert_int_equal(na_seen_put(seen, "f", "h1", "0123456789abcdef", rev), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "h1", "0123456789abcdef", &rev),
                     NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    /* The text going away again is no news. */
    assert_int_equal(na_seen_check(seen, "f", "h1", "", &rev), NA_SEEN_SAME);
    /* A title-only id survives a dump and load (topic mode) as such. */
    assert_int_equal(na_seen_put(seen, "f", "h2", NULL, 1), NA_OK);
    char *buf = na_seen_feed_dump(seen, "f", &len);
    assert_non_null(buf);
    na_seen_feed_drop(seen, "f");
    assert_int_equal(na_seen_feed_load(seen, "f", buf, len, errstr, sizeof(errstr)),
                     NA_OK);
    free(buf);
    assert_int_equal(na_seen_check(seen, "f", "h2", "fedcba9876543210", &rev),
                     NA_SEEN_EDITED);
    na_seen_destroy(seen);
}

/* seen.json of every older version moves into seen/ at the first start and
 * is renamed aside; ids without fingerprint of versions 1 and 2 are of
 * unknown fingerprint (version 2 wrote null for "no text" and for ids it took
 * over from version 1), so the migration publishes nothing again. */
static void test_seen_migrates_seen_json_versions_1_to_3(void **state) {
    (void)state;
    char path[512], errstr[256], moved[600];
    const char *dir = state_dir("migrate");
    na_seen_t *seen = NULL;
    int rev;
    snprintf(path, sizeof(path), "%s/seen.json", dir);
    write_text(path, "{\"version\":1,\"feeds\":{\"f\":{\"etag\":\"\\\"e\\\"\",\"seq\":2,"
                     "\"next_at\":777,\"ids\":{\"a\":1,\"b\":2}}}}");
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_false(exists(path));
    snprintf(moved, sizeof(moved), "%s.migrated", path);
    assert_true(exists(moved));
    feed_file(dir, "f", path, sizeof(path));
    assert_true(exists(path));
    assert_true(has(seen, "f", "a"));
    assert_string_equal(na_seen_validator(seen, "f", "etag"), "\"e\"");
    assert_int_equal(na_seen_get_int(seen, "f", "next_at", 0), 777);
    /* Known id of unknown fingerprint: adopting one is no edit... */
    assert_int_equal(na_seen_check(seen, "f", "b", "ffffffffffffffff", &rev),
                     NA_SEEN_SAME);
    assert_int_equal(na_seen_touch(seen, "f", "b", "ffffffffffffffff"), NA_OK);
    /* ...and once adopted, a change of it is. */
    assert_int_equal(na_seen_check(seen, "f", "b", "eeeeeeeeeeeeeeee", &rev),
                     NA_SEEN_EDITED);
    /* From the files alone, without seen.json. */
    reload(&seen, dir);
    assert_true(has(seen, "f", "b"));
    assert_int_equal(na_seen_get_int(seen, "f", "next_at", 0), 777);
    assert_int_equal(na_seen_check(seen, "f", "b", "eeeeeeeeeeeeeeee", &rev),
                     NA_SEEN_EDITED);
    assert_int_equal(na_seen_check(seen, "f", "a", "eeeeeeeeeeeeeeee", &rev),
                     NA_SEEN_SAME);
    na_seen_destroy(seen);

    snprintf(path, sizeof(path), "%s/seen.json", dir);
    write_text(path, "{\"version\":2,\"feeds\":{\"f\":{\"seq\":2,"
                     "\"ids\":{\"a\":[1,null,1],\"b\":[2,\"aaaa\",3]},"
                     "\"fps\":{\"aaaa\":\"b\"}},\"g\":{\"ids\":{\"x\":[1,null,1]}}}}");
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_feeds(seen), 2);
    assert_int_equal(na_seen_check(seen, "f", "a", "ffffffffffffffff", &rev),
                     NA_SEEN_SAME);
    assert_int_equal(na_seen_check(seen, "f", "b", "ffffffffffffffff", &rev),
                     NA_SEEN_EDITED);
    assert_int_equal(rev, 4);
    assert_int_equal(na_seen_check(seen, "f", "c", "aaaa", &rev), NA_SEEN_DUPLICATE);
    assert_true(has(seen, "g", "x"));
    na_seen_destroy(seen);

    /* Version 3: null is "no text", false unknown; the latest fetch (ids
     * above "mark") is kept as such. */
    write_text(path, "{\"version\":3,\"feeds\":{\"f\":{\"seq\":3,\"mark\":1,\"latest\":2,"
                     "\"source_url\":\"http://s/\",\"ids\":{\"a\":[1,null,1],"
                     "\"n\":[2,null,1],\"u\":[3,false,1]},\"fps\":{}}}}");
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_check(seen, "f", "n", "ffffffffffffffff", &rev),
                     NA_SEEN_EDITED);
    assert_int_equal(na_seen_check(seen, "f", "u", "ffffffffffffffff", &rev),
                     NA_SEEN_SAME);
    assert_string_equal(na_seen_get_str(seen, "f", "source_url"), "http://s/");
    na_seen_destroy(seen);

    /* A seen.json that does not parse is reported and set aside, and the
     * producer starts with what seen/ holds. */
    double before = corrupt_count();
    write_text(path, "{\"feeds\": {\"x\": ");
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_true(has(seen, "f", "a"));
    assert_false(exists(path));
    snprintf(moved, sizeof(moved), "%s.corrupt", path);
    assert_true(exists(moved));
    assert_true(corrupt_count() == before + 1);
    na_seen_destroy(seen);
}

/* One corrupt feed file (a flipped byte, a cut, garbage, another feed's
 * state under its name) is reported, counted and set aside; that feed
 * starts empty and every other feed loads. */
static void test_seen_corrupt_feed_file_is_set_aside_and_the_others_load(void **state) {
    (void)state;
    char errstr[256], path[512], aside[600];
    const char *dir = state_dir("corrupt");
    const char *ids[] = {"flipped", "cut", "garbage", "swapped", "good"};
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(poll_doc(seen, ids[i], 0, 50), 50);
        assert_int_equal(na_seen_set_validators(seen, ids[i], "\"e\"", NULL), NA_OK);
    }
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);

    FILE *fp;
    feed_file(dir, "flipped", path, sizeof(path));
    fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, 200, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 200, SEEK_SET);
    fputc(c ^ 0x20, fp);
    fclose(fp);
    feed_file(dir, "cut", path, sizeof(path));
    assert_int_equal(truncate(path, 300), 0);
    feed_file(dir, "garbage", path, sizeof(path));
    write_text(path, "{\"not\": \"a state\"}");
    /* The file of "good" copied under the name of "swapped". */
    char good[512], cmd[1200];
    feed_file(dir, "good", good, sizeof(good));
    feed_file(dir, "swapped", path, sizeof(path));
    snprintf(cmd, sizeof(cmd), "cp %s %s", good, path);
    assert_int_equal(system(cmd), 0);

    double before = corrupt_count();
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_true(corrupt_count() == before + 4);
    assert_int_equal(na_seen_feeds(seen), 1);
    assert_int_equal(na_seen_count(seen, "good"), 50);
    assert_string_equal(na_seen_validator(seen, "good", "etag"), "\"e\"");
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(na_seen_count(seen, ids[i]), 0);
        assert_null(na_seen_validator(seen, ids[i], "etag"));
        feed_file(dir, ids[i], path, sizeof(path));
        snprintf(aside, sizeof(aside), "%s.corrupt", path);
        assert_false(exists(path));
        assert_true(exists(aside));
    }
    /* The feed starts again and is saved afresh. */
    assert_int_equal(poll_doc(seen, "cut", 0, 50), 50);
    reload(&seen, dir);
    assert_int_equal(na_seen_count(seen, "cut"), 50);
    assert_true(corrupt_count() == before + 4); /* reported once */

    /* A corrupt schedule: reported, set aside, feeds load without it. */
    assert_int_equal(na_seen_set_int(seen, "good", "next_at", 42), NA_OK);
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);
    snprintf(path, sizeof(path), "%s/seen/schedule", dir);
    assert_int_equal(truncate(path, 20), 0);
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_true(corrupt_count() == before + 5);
    assert_int_equal(na_seen_get_int(seen, "good", "next_at", -1), -1);
    assert_int_equal(na_seen_count(seen, "good"), 50);
    na_seen_destroy(seen);
}

/* Temporary files of saves that were killed stay forever unless removed
 * at start: in seen/ and the seen.json.tmp.<pid> of older versions. */
static void test_seen_stale_tmp_files_are_removed(void **state) {
    (void)state;
    char errstr[256], a[512], b[512], c[512], keep[512];
    const char *dir = state_dir("tmpfiles");
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_add(seen, "f", "a"), NA_OK);
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);
    feed_file(dir, "f", a, sizeof(a));
    strncat(a, ".tmp.12345", sizeof(a) - strlen(a) - 1);
    snprintf(b, sizeof(b), "%s/seen/schedule.tmp.999", dir);
    snprintf(c, sizeof(c), "%s/seen.json.tmp.4242", dir);
    snprintf(keep, sizeof(keep), "%s/sources.json", dir);
    write_text(a, "half a state");
    write_text(b, "half a schedule");
    write_text(c, "{\"version\":2,\"fee");
    write_text(keep, "{}");
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_false(exists(a));
    assert_false(exists(b));
    assert_false(exists(c));
    assert_true(exists(keep));
    assert_true(has(seen, "f", "a"));
    na_seen_destroy(seen);
}

/* Two processes on one folder would remove each other's temporary files
 * and overwrite each other's state: the second is refused. */
static void test_seen_folder_is_locked(void **state) {
    (void)state;
    char errstr[256];
    const char *dir = state_dir("locked");
    na_seen_t *a = NULL, *b = NULL;
    assert_int_equal(na_seen_load(dir, &a, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_load(dir, &b, errstr, sizeof(errstr)), NA_ERR_IO);
    assert_null(b);
    assert_non_null(strstr(errstr, "in use"));
    na_seen_destroy(a);
    assert_int_equal(na_seen_load(dir, &b, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(b);
}

/* 800 busy feeds made a 261 MiB seen.json that the producer could no
 * longer read (its 256 MiB cap), so it refused to start. Per-feed files
 * have no total to outgrow: 800 feeds with a full history each load. */
static void test_seen_800_busy_feeds_load(void **state) {
    (void)state;
    char errstr[256], feed[32];
    const char *dir = state_dir("busy");
    na_seen_t *seen = NULL;
    const unsigned feeds = 800, history = NA_SEEN_IDS_PER_FEED + 150, latest = 100;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    for (unsigned i = 0; i < feeds; i++) {
        snprintf(feed, sizeof(feed), "busy-%u", i);
        assert_int_equal(na_seen_set_validators(seen, feed, "\"etag\"", NULL), NA_OK);
        /* A full history, then a poll with 100 new items. */
        assert_int_equal(poll_doc(seen, feed, 0, history), history);
        assert_int_equal(poll_doc(seen, feed, history, latest), latest);
    }
    size_t busy = na_seen_count(seen, "busy-0");
    assert_int_equal(busy, history + latest);
    reload(&seen, dir);
    assert_int_equal(na_seen_feeds(seen), feeds);
    for (unsigned i = 0; i < feeds; i++) {
        snprintf(feed, sizeof(feed), "busy-%u", i);
        assert_int_equal(na_seen_count(seen, feed), busy);
        assert_true(has_n(seen, feed, 0));
        assert_true(has_n(seen, feed, history + latest - 1));
        assert_string_equal(na_seen_validator(seen, feed, "etag"), "\"etag\"");
    }
    /* The latest fetch is still the latest after the restart; once the
     * next fetches pushed the history past its cap, the oldest go first. */
    assert_int_equal(poll_doc(seen, "busy-7", history, latest), 0);
    assert_int_equal(poll_doc(seen, "busy-7", history, latest + 200), 200);
    assert_int_equal(poll_doc(seen, "busy-7", history + latest + 200, 100), 100);
    assert_true(has_n(seen, "busy-7", history));
    assert_false(has_n(seen, "busy-7", 0));
    na_seen_destroy(seen);
}

static void test_seen_eviction_drops_fingerprints(void **state) {
    (void)state;
    char errstr[256], id[32], fp[32];
    na_seen_t *seen = NULL;
    int rev;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    /* One item per fetch: all but the last belong to earlier fetches. */
    for (unsigned i = 0; i < NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10 + 2; i++) {
        snprintf(id, sizeof(id), "id%u", i);
        snprintf(fp, sizeof(fp), "fp%u", i);
        na_seen_fetch_begin(seen, "f");
        assert_int_equal(na_seen_put(seen, "f", id, fp, 1), NA_OK);
    }
    assert_false(has(seen, "f", "id0"));
    assert_int_equal(na_seen_check(seen, "f", "new", "fp0", &rev), NA_SEEN_NEW);
    snprintf(fp, sizeof(fp), "fp%u", NA_SEEN_IDS_PER_FEED);
    assert_int_equal(na_seen_check(seen, "f", "new", fp, &rev), NA_SEEN_DUPLICATE);
    /* Memory only: saving is a no-op. */
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    na_seen_destroy(seen);
}

static void test_seen_feed_dump_load_and_schedule_fields(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *a = NULL, *b = NULL;
    int rev;
    size_t len = 0;
    assert_int_equal(na_seen_load(NULL, &a, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_load(NULL, &b, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_put(a, "f", "id1", "aaaa", 1), NA_OK);
    assert_int_equal(na_seen_set_str(a, "f", "url", "http://new/feed"), NA_OK);
    assert_int_equal(na_seen_dirty(a), 2);
    assert_int_equal(na_seen_save(a, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_dirty(a), 0);
    assert_int_equal(na_seen_set_int(a, "f", "next_at", 12345), NA_OK);
    assert_int_equal(na_seen_dirty(a), 1); /* schedules alone are soft */
    char *buf = na_seen_feed_dump(a, "f", &len);
    assert_non_null(buf);
    size_t none = 1;
    assert_null(na_seen_feed_dump(a, "nope", &none));
    assert_int_equal(none, 0);
    /* A record is the state of the feed of its key. */
    assert_int_equal(na_seen_feed_load(b, "g", buf, len, errstr, sizeof(errstr)),
                     NA_ERR_PARSE);
    assert_non_null(strstr(errstr, "not of g"));
    assert_int_equal(na_seen_feed_load(b, "f", buf, len, errstr, sizeof(errstr)), NA_OK);
    free(buf);
    assert_int_equal(na_seen_check(b, "f", "id1", "aaaa", &rev), NA_SEEN_SAME);
    assert_string_equal(na_seen_get_str(b, "f", "url"), "http://new/feed");
    assert_int_equal(na_seen_get_int(b, "f", "next_at", 0), 12345);
    assert_int_equal(na_seen_get_int(b, "f", "ttl", -7), -7);
    assert_int_equal(na_seen_feed_load(b, "f", "[1]", 3, errstr, sizeof(errstr)),
                     NA_ERR_PARSE);
    assert_true(has(b, "f", "id1")); /* the old state stays */
    /* A JSON record of an older version (the state topic keeps them). */
    const char *old = "{\"etag\":\"\\\"o\\\"\",\"seq\":1,\"ids\":{\"x\":[1,\"bbbb\",2]},"
                      "\"fps\":{\"bbbb\":\"x\"}}";
    assert_int_equal(na_seen_feed_load(b, "h", old, strlen(old), errstr, sizeof(errstr)),
                     NA_OK);
    assert_string_equal(na_seen_validator(b, "h", "etag"), "\"o\"");
    assert_int_equal(na_seen_check(b, "h", "x", "bbbb", &rev), NA_SEEN_SAME);
    assert_int_equal(rev, 2);
    na_seen_feed_drop(b, "f");
    na_seen_feed_drop(b, "h");
    assert_int_equal(na_seen_feeds(b), 0);
    na_seen_destroy(a);
    na_seen_destroy(b);
}

/* A source's new URL must not inherit the old URL's validators: the new
 * feed would answer 304 until it changed after the old date. */
static void test_seen_new_url_forgets_the_old_urls_validators(void **state) {
    (void)state;
    char errstr[256];
    na_seen_t *seen = NULL;
    bool reset = true;
    assert_int_equal(na_seen_load(NULL, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "f", "http://a/feed", &reset), NA_OK);
    assert_false(reset);
    assert_int_equal(na_seen_set_validators(seen, "f", "\"e-a\"", "Mon, 05 Jan 2026"),
                     NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "url", "http://a2/feed"), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "moved_from", "http://a/feed"), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "ttl", 60), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "skip_hours", 7), NA_OK);
    assert_int_equal(na_seen_set_int(seen, "f", "next_at", 99), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "f", "retired", "hash"), NA_OK);
    assert_int_equal(na_seen_put(seen, "f", "a1", "0123456789abcdef", 1), NA_OK);
    /* The same URL again (a restart, a reload of an unchanged entry). */
    assert_int_equal(na_seen_bind_url(seen, "f", "http://a/feed", &reset), NA_OK);
    assert_false(reset);
    assert_string_equal(na_seen_validator(seen, "f", "etag"), "\"e-a\"");
    /* Another URL: what was learnt from the old one goes, the ids stay. */
    assert_int_equal(na_seen_bind_url(seen, "f", "http://b/feed", &reset), NA_OK);
    assert_true(reset);
    assert_null(na_seen_validator(seen, "f", "etag"));
    assert_null(na_seen_validator(seen, "f", "last_modified"));
    assert_null(na_seen_get_str(seen, "f", "url"));
    assert_null(na_seen_get_str(seen, "f", "moved_from"));
    assert_int_equal(na_seen_get_int(seen, "f", "ttl", -1), -1);
    assert_int_equal(na_seen_get_int(seen, "f", "skip_hours", -1), -1);
    assert_int_equal(na_seen_get_int(seen, "f", "next_at", -1), -1);
    assert_string_equal(na_seen_get_str(seen, "f", "retired"), "hash");
    assert_true(has(seen, "f", "a1"));
    /* State of an older version knows no source URL: a move from another
     * URL says it changed; no move says nothing. */
    assert_int_equal(na_seen_set_validators(seen, "old", "\"e\"", NULL), NA_OK);
    assert_int_equal(na_seen_set_str(seen, "old", "moved_from", "http://x/feed"), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "old", "http://y/feed", &reset), NA_OK);
    assert_true(reset);
    assert_int_equal(na_seen_set_validators(seen, "older", "\"e\"", NULL), NA_OK);
    assert_int_equal(na_seen_bind_url(seen, "older", "http://y/feed", &reset), NA_OK);
    assert_false(reset);
    assert_string_equal(na_seen_validator(seen, "older", "etag"), "\"e\"");
    na_seen_destroy(seen);
}

static int only_f_active(const char *id, void *ctx) {
    (void)ctx;
    return !strcmp(id, "f");
}

static void test_seen_prune_after_grace(void **state) {
    (void)state;
    char errstr[256], path[512];
    const char *dir = state_dir("prune");
    na_seen_t *seen = NULL;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_add(seen, "f", "a"), NA_OK);
    assert_int_equal(na_seen_add(seen, "gone", "a"), NA_OK);
    /* The first sight of an inactive feed starts its grace period. */
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 1000, 100), 0);
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 1100, 100), 0);
    assert_true(has(seen, "gone", "a"));
    reload(&seen, dir); /* the grace period survives a restart */
    feed_file(dir, "gone", path, sizeof(path));
    assert_true(exists(path));
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 1101, 100), 1);
    assert_false(has(seen, "gone", "a"));
    assert_true(has(seen, "f", "a"));
    assert_int_equal(na_seen_dirty(seen), 2);
    reload(&seen, dir); /* its file goes */
    assert_false(exists(path));
    assert_false(has(seen, "gone", "a"));
    assert_int_equal(na_seen_prune(seen, only_f_active, NULL, 99999, 100), 0);
    na_seen_destroy(seen);
}

/* Changes are written when due, oldest first, within a budget; a feed
 * that changed is written, the others are not touched. */
static void test_seen_save_writes_only_changed_feeds(void **state) {
    (void)state;
    char errstr[256], a[512], b[512];
    const char *dir = state_dir("changed");
    na_seen_t *seen = NULL;
    struct stat st_a, st_b, st2;
    assert_int_equal(na_seen_load(dir, &seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(na_seen_add(seen, "a", "1"), NA_OK);
    assert_int_equal(na_seen_add(seen, "b", "1"), NA_OK);
    /* Not due yet: nothing written. */
    assert_int_equal(na_seen_save_due(seen, 60000, 60000, 0, errstr, sizeof(errstr)),
                     NA_OK);
    feed_file(dir, "a", a, sizeof(a));
    feed_file(dir, "b", b, sizeof(b));
    assert_false(exists(a));
    assert_int_equal(na_seen_save_due(seen, 0, 60000, 0, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(stat(a, &st_a), 0);
    assert_int_equal(stat(b, &st_b), 0);
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(na_seen_add(seen, "b", "2"), NA_OK);
    assert_int_equal(na_seen_save(seen, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(stat(a, &st2), 0);
    assert_int_equal(st2.st_ino, st_a.st_ino); /* a was not rewritten */
    assert_int_equal(stat(b, &st2), 0);
    assert_int_not_equal(st2.st_ino, st_b.st_ino); /* b was, atomically */
    na_seen_destroy(seen);
}

/* kill -9 at random moments while a child rewrites the state in a loop: the
 * state always loads, and holds a whole feed state (never a torn one). */
static void test_seen_survives_kill_9(void **state) {
    (void)state;
    char errstr[256];
    const char *dir = state_dir("killed");
    char path[256];
    snprintf(path, sizeof(path), "%s", dir);
    srandom((unsigned)time(NULL));
    size_t seen_ids = 0;
    for (int round = 0; round < 25; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            na_seen_t *seen = NULL;
            char id[64], fp[32], e[256];
            if (na_seen_load(path, &seen, e, sizeof(e))) {
                _exit(3);
            }
            for (unsigned i = 0;; i++) {
                snprintf(id, sizeof(id), "r%d-%u", round, i);
                snprintf(fp, sizeof(fp), "%016u", i);
                if (na_seen_put(seen, "feed", id, fp, 1) ||
                    na_seen_set_validators(seen, "feed", id, NULL) ||
                    na_seen_set_int(seen, "feed", "next_at", i) ||
                    na_seen_save(seen, e, sizeof(e))) {
                    _exit(4);
                }
            }
        }
        struct timespec ts = {0, (long)(1 + random() % 40) * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        na_seen_t *seen = NULL;
        double before = corrupt_count();
        assert_int_equal(na_seen_load(path, &seen, errstr, sizeof(errstr)), NA_OK);
        assert_true(corrupt_count() == before);
        /* A whole state: the validator names an id that is in it. */
        const char *etag = na_seen_validator(seen, "feed", "etag");
        if (etag) {
            assert_true(has(seen, "feed", etag));
        }
        seen_ids = na_seen_count(seen, "feed");
        na_seen_destroy(seen);
    }
    /* The children did write (and were killed while writing). */
    assert_true(seen_ids > 25);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_survives_reload),
        cmocka_unit_test(test_seen_save_load_round_trip),
        cmocka_unit_test(test_seen_is_bounded_oldest_first),
        cmocka_unit_test(test_seen_feed_larger_than_history_is_not_new_again),
        cmocka_unit_test(test_fingerprint_normalises_and_needs_text),
        cmocka_unit_test(test_seen_verdicts_new_same_edited_duplicate),
        cmocka_unit_test(test_seen_headline_only_item_gets_its_body),
        cmocka_unit_test(test_seen_migrates_seen_json_versions_1_to_3),
        cmocka_unit_test(test_seen_corrupt_feed_file_is_set_aside_and_the_others_load),
        cmocka_unit_test(test_seen_stale_tmp_files_are_removed),
        cmocka_unit_test(test_seen_folder_is_locked),
        cmocka_unit_test(test_seen_800_busy_feeds_load),
        cmocka_unit_test(test_seen_eviction_drops_fingerprints),
        cmocka_unit_test(test_seen_feed_dump_load_and_schedule_fields),
        cmocka_unit_test(test_seen_new_url_forgets_the_old_urls_validators),
        cmocka_unit_test(test_seen_prune_after_grace),
        cmocka_unit_test(test_seen_save_writes_only_changed_feeds),
        cmocka_unit_test(test_seen_survives_kill_9),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
