#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article_jansson.h"
#include "newsalert/article.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"

static void fill(struct na_article *a) {
    na_article_init(a);
    a->url = strdup("https://example.org/news/1");
    a->title = strdup("Beijing bans dual-use exports \xe2\x80\x94 Japan");
    a->summary = strdup("Short summary.");
    a->content = strdup("Body text with \"quotes\" and a\nnewline.");
    assert_int_equal(na_article_list_add(&a->authors, &a->authors_cnt, 8, "A. Writer"),
                     NA_OK);
    assert_int_equal(na_article_list_add(&a->categories, &a->categories_cnt, 8, "trade"),
                     NA_OK);
    assert_int_equal(na_article_list_add(&a->categories, &a->categories_cnt, 8, "trade"),
                     NA_OK);
    a->lang = strdup("en");
    a->published_at = 1767686400; /* 2026-01-06T08:00:00Z */
    a->fetched_at = 1767690000;
    a->source_id = strdup("harbour");
    a->source_name = strdup("Harbour Wire");
    a->source_feed_url = strdup("http://127.0.0.1/feed.xml");
    assert_int_equal(na_article_set_id(a), NA_OK);
}

static void test_round_trip(void **state) {
    (void)state;
    struct na_article a, b;
    char errstr[256];
    fill(&a);
    assert_int_equal(a.categories_cnt, 1);
    char *json = na_article_to_json(&a);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"schema\":\"article/v1\""));
    assert_non_null(strstr(json, "\"published_at\":\"2026-01-06T08:00:00Z\""));
    na_article_init(&b);
    assert_int_equal(na_article_from_json(json, strlen(json), &b, errstr, sizeof(errstr)),
                     NA_OK);
    assert_string_equal(a.id, b.id);
    assert_string_equal(a.title, b.title);
    assert_string_equal(a.content, b.content);
    assert_string_equal(b.authors[0], "A. Writer");
    assert_int_equal(b.published_at, a.published_at);
    assert_int_equal(b.fetched_at, a.fetched_at);
    assert_string_equal(b.source_name, "Harbour Wire");
    char *json2 = na_article_to_json(&b);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    na_article_cleanup(&a);
    na_article_cleanup(&b);
}

static void test_id_is_sha256_of_url(void **state) {
    (void)state;
    struct na_article a;
    na_article_init(&a);
    a.url = strdup("https://example.org/");
    assert_int_equal(na_article_set_id(&a), NA_OK);
    /* sha256("https://example.org/") */
    char expect[65];
    assert_int_equal(na_sha256_hex("https://example.org/", 20, expect), NA_OK);
    assert_string_equal(a.id, expect);
    free(a.url);
    a.url = NULL;
    a.guid = strdup("tag:x,2026:1");
    a.source_feed_url = strdup("http://f/");
    assert_int_equal(na_article_set_id(&a), NA_OK);
    assert_string_not_equal(a.id, expect);
    na_article_cleanup(&a);
}

static void expect_reject(const char *json, na_err_t want, const char *needle) {
    struct na_article a;
    char errstr[256] = "";
    na_article_init(&a);
    assert_int_equal(na_article_from_json(json, strlen(json), &a, errstr, sizeof(errstr)),
                     want);
    assert_non_null(strstr(errstr, needle));
    assert_null(a.title);
}

static void test_rejects_bad_input(void **state) {
    (void)state;
    const char *id =
        "\"id\":\"0000000000000000000000000000000000000000000000000000000000000000\"";
    char buf[512];
    expect_reject("{", NA_ERR_PARSE, "line 1");
    expect_reject("[]", NA_ERR_INVALID, "not a JSON object");
    expect_reject("{\"id\":\"xyz\"}", NA_ERR_INVALID, "\"id\"");
    snprintf(buf, sizeof(buf), "{%s,\"title\":5}", id);
    expect_reject(buf, NA_ERR_INVALID, "\"title\"");
    snprintf(buf, sizeof(buf), "{%s,\"published_at\":\"yesterday\"}", id);
    expect_reject(buf, NA_ERR_INVALID, "published_at");
    snprintf(buf, sizeof(buf), "{%s,\"authors\":[1]}", id);
    expect_reject(buf, NA_ERR_INVALID, "authors");
    snprintf(buf, sizeof(buf), "{\"schema\":\"article/v9\",%s}", id);
    expect_reject(buf, NA_ERR_UNSUPPORTED, "schema");
    expect_reject("{\"title\":\"\xff\"}", NA_ERR_PARSE, "JSON");
}

static void test_time_rfc3339(void **state) {
    (void)state;
    int64_t t;
    char buf[NA_RFC3339_LEN];
    assert_int_equal(na_time_parse_rfc3339("2026-01-06T16:00:00+08:00", &t), NA_OK);
    assert_int_equal(t, 1767686400);
    na_time_format_rfc3339(t, buf);
    assert_string_equal(buf, "2026-01-06T08:00:00Z");
    assert_int_equal(na_time_parse_rfc3339("2026-01-06T08:00:00.250Z", &t), NA_OK);
    assert_int_equal(t, 1767686400);
    assert_int_equal(na_time_parse_rfc3339("2026-01-06", &t), NA_OK);
    assert_int_equal(t, 1767657600);
    assert_int_not_equal(na_time_parse_rfc3339("2026-13-06T00:00:00Z", &t), NA_OK);
    /* a day that does not exist is refused, not moved into the next month */
    assert_int_not_equal(na_time_parse_rfc3339("2026-02-30T00:00:00Z", &t), NA_OK);
    assert_int_not_equal(na_time_parse_rfc3339("2025-02-29", &t), NA_OK);
    assert_int_not_equal(na_time_parse_rfc3339("2026-04-31T12:00:00+02:00", &t), NA_OK);
    assert_int_equal(na_time_parse_rfc3339("2024-02-29T00:00:00Z", &t), NA_OK);
    assert_int_equal(t, 1709164800);
    assert_int_not_equal(na_time_parse_rfc3339("06 Jan 2026", &t), NA_OK);
    assert_int_not_equal(na_time_parse_rfc3339("2026-01-06T08:00:00Zjunk", &t), NA_OK);
}

/* Milliseconds: the fraction kept to the millisecond (further digits cut,
 * before 1970 too), and written back only when there is one. */
static void test_time_rfc3339_ms(void **state) {
    (void)state;
    int64_t ms;
    char buf[NA_RFC3339_MS_LEN];
    assert_int_equal(na_time_parse_rfc3339_ms("2026-01-06T16:00:00.25+08:00", &ms),
                     NA_OK);
    assert_int_equal(ms, 1767686400250LL);
    na_time_format_rfc3339_ms(ms, buf);
    assert_string_equal(buf, "2026-01-06T08:00:00.250Z");
    assert_int_equal(na_time_parse_rfc3339_ms("2026-01-06T08:00:00.9999Z", &ms), NA_OK);
    assert_int_equal(ms, 1767686400999LL);
    assert_int_equal(na_time_parse_rfc3339_ms("2026-01-06", &ms), NA_OK);
    assert_int_equal(ms, 1767657600000LL);
    na_time_format_rfc3339_ms(ms, buf);
    assert_string_equal(buf, "2026-01-06T00:00:00Z");
    assert_int_equal(na_time_parse_rfc3339_ms("1969-12-31T23:59:59.500Z", &ms), NA_OK);
    assert_int_equal(ms, -500);
    na_time_format_rfc3339_ms(ms, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.500Z");
    assert_int_not_equal(na_time_parse_rfc3339_ms("2026-01-06T08:00:00.Z", &ms), NA_OK);
}

/* ---- the reader against the jansson decoder (article_decode.c) ---- */

#define ID "\"id\":\"0000000000000000000000000000000000000000000000000000000000000000\""
#define ART(rest) "{" ID rest "}"

struct decode_case {
    const char *name;
    const char *json;
    size_t len; /* 0: strlen(json); set for inputs with NUL bytes */
    na_err_t want;
};

#define CASE(n, j, w)                                                                    \
    { n, j, 0, w }
#define CASE_N(n, j, w)                                                                  \
    { n, j, sizeof(j) - 1, w }

static const struct decode_case decode_cases[] = {
    /* the top level */
    CASE("minimal article", ART(""), NA_OK),
    CASE("white space around", " \t\r\n" ART("") " \n", NA_OK),
    CASE("empty input", "", NA_ERR_PARSE),
    CASE("only white space", "  \n ", NA_ERR_PARSE),
    CASE("top-level array", "[]", NA_ERR_INVALID),
    CASE("top-level array of objects", "[{\"a\":1},[true,null]]", NA_ERR_INVALID),
    CASE("top-level number", "1", NA_ERR_PARSE),
    CASE("top-level string", "\"x\"", NA_ERR_PARSE),
    CASE("top-level null", "null", NA_ERR_PARSE),
    CASE("byte order mark", "\xef\xbb\xbf" ART(""), NA_ERR_PARSE),
    CASE("form feed is no white space", "\f" ART(""), NA_ERR_PARSE),
    CASE("trailing token", ART("") " x", NA_ERR_PARSE),
    CASE("two objects", ART("") ART(""), NA_ERR_PARSE),
    CASE_N("trailing NUL", ART("") "\0", NA_ERR_PARSE),
    CASE("unterminated object", "{" ID, NA_ERR_PARSE),
    CASE("unterminated string", "{" ID ",\"title\":\"abc", NA_ERR_PARSE),
    CASE("missing colon", "{" ID ",\"title\" \"a\"}", NA_ERR_PARSE),
    CASE("missing comma", "{" ID " \"title\":\"a\"}", NA_ERR_PARSE),
    CASE("trailing comma in object", ART(",\"x\":1,"), NA_ERR_PARSE),
    CASE("trailing comma in array", ART(",\"x\":[1,]"), NA_ERR_PARSE),
    CASE("comma alone in array", ART(",\"x\":[,]"), NA_ERR_PARSE),
    CASE("name not a string", "{" ID ",x:1}", NA_ERR_PARSE),
    CASE("single quotes", "{" ID ",'x':1}", NA_ERR_PARSE),
    /* jansson loses one NUL byte right after a number or a literal */
    CASE_N("NUL after an integer", ART(",\"x\":1\0"), NA_OK),
    CASE_N("NUL after a real in an array", ART(",\"x\":[1.5\0,2]"), NA_OK),
    CASE_N("NUL after true", ART(",\"x\":true\0"), NA_OK),
    CASE_N("NUL after null of a field", ART(",\"title\":null\0"), NA_OK),
    CASE_N("two NULs after a number", ART(",\"x\":1\0\0"), NA_ERR_PARSE),
    CASE_N("NUL after a string", ART(",\"x\":\"a\"\0"), NA_ERR_PARSE),
    CASE_N("NUL after an object", ART(",\"x\":{}\0"), NA_ERR_PARSE),
    CASE_N("NUL before a value",
           ART(",\"x\":\0"
               "1"),
           NA_ERR_PARSE),
    CASE_N("NUL in a string", ART(",\"title\":\"a\0b\""), NA_ERR_PARSE),
    /* duplicate names, at every depth, after unescaping */
    CASE("duplicate field", ART(",\"title\":\"a\",\"title\":\"b\""), NA_ERR_PARSE),
    CASE("duplicate id", ART("," ID), NA_ERR_PARSE),
    CASE("duplicate spelt with an escape", ART(",\"title\":\"a\",\"t\\u0069tle\":\"b\""),
         NA_ERR_PARSE),
    CASE("duplicate unknown member", ART(",\"x\":1,\"x\":1"), NA_ERR_PARSE),
    CASE("duplicate in source", ART(",\"source\":{\"id\":\"a\",\"id\":\"a\"}"),
         NA_ERR_PARSE),
    CASE("duplicate deep down", ART(",\"x\":[{\"y\":{\"a\":1,\"b\":2,\"a\":3}}]"),
         NA_ERR_PARSE),
    CASE("duplicate in a top-level array", "[{\"a\":1,\"a\":2}]", NA_ERR_PARSE),
    CASE("same name in sibling objects", ART(",\"x\":{\"a\":1},\"y\":{\"a\":1}"), NA_OK),
    CASE("same name in nested objects", ART(",\"x\":{\"x\":{\"x\":1}}"), NA_OK),
    CASE("names that differ in case", ART(",\"Title\":1,\"title\":\"t\""), NA_OK),
    CASE("known name spelt with escapes",
         "{\"\\u0069d\":\"000000000000000000000000000"
         "0000000000000000000000000000000000000\"}",
         NA_OK),
    CASE("empty name", ART(",\"\":1"), NA_OK),
    CASE("empty name twice", ART(",\"\":1,\"\":2"), NA_ERR_PARSE),
    /* strings */
    CASE("every short escape", ART(",\"title\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""),
         NA_OK),
    CASE("unknown escape", ART(",\"title\":\"\\x41\""), NA_ERR_PARSE),
    CASE("upper-case U escape", ART(",\"title\":\"\\U0041\""), NA_ERR_PARSE),
    CASE("short unicode escape", ART(",\"title\":\"\\u12\""), NA_ERR_PARSE),
    CASE("non-hex unicode escape", ART(",\"title\":\"\\u12g4\""), NA_ERR_PARSE),
    CASE("mixed-case hex escape", ART(",\"title\":\"\\u00E9\\u00e9\""), NA_OK),
    CASE("escaped NUL in a value", ART(",\"title\":\"a\\u0000b\""), NA_ERR_PARSE),
    CASE("escaped NUL in a name", ART(",\"a\\u0000\":1"), NA_ERR_PARSE),
    CASE("escaped NUL in an unknown member", ART(",\"x\":[\"\\u0000\"]"), NA_ERR_PARSE),
    CASE("surrogate pair", ART(",\"title\":\"\\ud83d\\ude00\""), NA_OK),
    CASE("lone high surrogate", ART(",\"title\":\"\\ud83d\""), NA_ERR_PARSE),
    CASE("high surrogate then text", ART(",\"title\":\"\\ud83dx\""), NA_ERR_PARSE),
    CASE("two high surrogates", ART(",\"title\":\"\\ud83d\\ud83d\""), NA_ERR_PARSE),
    CASE("high surrogate then other escape", ART(",\"title\":\"\\ud83d\\n\""),
         NA_ERR_PARSE),
    CASE("lone low surrogate", ART(",\"title\":\"\\ude00\""), NA_ERR_PARSE),
    CASE("lone surrogate in an unknown name", ART(",\"\\udc00\":1"), NA_ERR_PARSE),
    CASE("raw tab in a string", ART(",\"title\":\"a\tb\""), NA_ERR_PARSE),
    CASE("raw line break in a string", ART(",\"title\":\"a\nb\""), NA_ERR_PARSE),
    CASE("raw DEL in a string",
         ART(",\"title\":\"a\x7f"
             "b\""),
         NA_OK),
    CASE("two-byte UTF-8", ART(",\"title\":\"caf\xc3\xa9\""), NA_OK),
    CASE("four-byte UTF-8", ART(",\"title\":\"\xf0\x9f\x98\x80\""), NA_OK),
    CASE("U+10FFFF", ART(",\"title\":\"\xf4\x8f\xbf\xbf\""), NA_OK),
    CASE("noncharacter U+FFFE", ART(",\"title\":\"\xef\xbf\xbe\""), NA_OK),
    CASE("overlong slash", ART(",\"title\":\"\xc0\xaf\""), NA_ERR_PARSE),
    CASE("overlong three-byte", ART(",\"title\":\"\xe0\x80\xaf\""), NA_ERR_PARSE),
    CASE("overlong four-byte", ART(",\"title\":\"\xf0\x80\x80\xaf\""), NA_ERR_PARSE),
    CASE("UTF-8 surrogate", ART(",\"title\":\"\xed\xa0\x80\""), NA_ERR_PARSE),
    CASE("above U+10FFFF", ART(",\"title\":\"\xf4\x90\x80\x80\""), NA_ERR_PARSE),
    CASE("byte F5", ART(",\"title\":\"\xf5\x80\x80\x80\""), NA_ERR_PARSE),
    CASE("lone continuation byte", ART(",\"title\":\"a\x80\""), NA_ERR_PARSE),
    CASE("truncated sequence", ART(",\"title\":\"\xe2\x82\""), NA_ERR_PARSE),
    CASE("truncated at the end", "{" ID ",\"title\":\"\xe2\x82", NA_ERR_PARSE),
    CASE("bad UTF-8 in an unknown member", ART(",\"x\":{\"y\":\"\xff\"}"), NA_ERR_PARSE),
    CASE("bad UTF-8 in a name", ART(",\"\xff\":1"), NA_ERR_PARSE),
    CASE("bad UTF-8 outside strings", ART("") "\xff", NA_ERR_PARSE),
    CASE("non-ASCII white space", ART("") "\xc2\xa0", NA_ERR_PARSE),
    /* numbers */
    CASE("largest integer", ART(",\"x\":9223372036854775807"), NA_OK),
    CASE("integer overflow", ART(",\"x\":9223372036854775808"), NA_ERR_PARSE),
    CASE("smallest integer", ART(",\"x\":-9223372036854775808"), NA_OK),
    CASE("negative integer overflow", ART(",\"x\":-9223372036854775809"), NA_ERR_PARSE),
    CASE("integer of 20 digits", ART(",\"x\":10000000000000000000"), NA_ERR_PARSE),
    CASE("negative integer of 20 digits", ART(",\"x\":-10000000000000000000"),
         NA_ERR_PARSE),
    CASE("integer of 25 digits", ART(",\"x\":1234567890123456789012345"), NA_ERR_PARSE),
    CASE("minus zero", ART(",\"x\":-0"), NA_OK),
    CASE("leading zero", ART(",\"x\":01"), NA_ERR_PARSE),
    CASE("plus sign", ART(",\"x\":+1"), NA_ERR_PARSE),
    CASE("bare minus", ART(",\"x\":-"), NA_ERR_PARSE),
    CASE("no digit after the point", ART(",\"x\":1."), NA_ERR_PARSE),
    CASE("no digit before the point", ART(",\"x\":.5"), NA_ERR_PARSE),
    CASE("no exponent digits", ART(",\"x\":1e+"), NA_ERR_PARSE),
    CASE("exponent", ART(",\"x\":[1E+2,1e-2,0.5e0,-0.0]"), NA_OK),
    CASE("largest double", ART(",\"x\":1.7976931348623157e308"), NA_OK),
    CASE("real overflow", ART(",\"x\":1.8e308"), NA_ERR_PARSE),
    CASE("negative real overflow", ART(",\"x\":-1e309"), NA_ERR_PARSE),
    CASE("huge exponent", ART(",\"x\":1e99999999999999999999"), NA_ERR_PARSE),
    CASE("underflow to zero", ART(",\"x\":[1e-400,0e99999999]"), NA_OK),
    CASE("hex", ART(",\"x\":0x10"), NA_ERR_PARSE),
    CASE("NaN", ART(",\"x\":NaN"), NA_ERR_PARSE),
    CASE("Infinity", ART(",\"x\":-Infinity"), NA_ERR_PARSE),
    /* literals */
    CASE("literals", ART(",\"x\":[true,false,null]"), NA_OK),
    CASE("capital True", ART(",\"x\":True"), NA_ERR_PARSE),
    CASE("truncated null", ART(",\"x\":nul"), NA_ERR_PARSE),
    CASE("null with letters after", ART(",\"title\":nullx"), NA_ERR_PARSE),
    CASE("two literals run together", ART(",\"x\":truefalse"), NA_ERR_PARSE),
    CASE("literal then digit", ART(",\"x\":true1"), NA_ERR_PARSE),
    /* fields of the wrong type, and the order of the checks */
    CASE("title a number", ART(",\"title\":5"), NA_ERR_INVALID),
    CASE("title true", ART(",\"title\":true"), NA_ERR_INVALID),
    CASE("title an array", ART(",\"title\":[\"a\"]"), NA_ERR_INVALID),
    CASE("title an object", ART(",\"title\":{}"), NA_ERR_INVALID),
    CASE("title null", ART(",\"title\":null"), NA_OK),
    CASE("bad title but broken later", ART(",\"title\":5,\"x\":tru"), NA_ERR_PARSE),
    CASE("bad title with a duplicate inside", ART(",\"title\":{\"a\":1,\"a\":1}"),
         NA_ERR_PARSE),
    CASE("schema of another version", "{\"schema\":\"article/v2\"," ID "}",
         NA_ERR_UNSUPPORTED),
    CASE("schema checked before id", "{\"schema\":\"article/v2\",\"id\":5}",
         NA_ERR_UNSUPPORTED),
    CASE("schema a number", "{\"schema\":1," ID "}", NA_ERR_INVALID),
    CASE("schema null", "{\"schema\":null," ID "}", NA_OK),
    CASE("schema with an escape", "{\"schema\":\"article\\/v1\"," ID "}", NA_OK),
    CASE("id missing", "{\"title\":\"t\"}", NA_ERR_INVALID),
    CASE("id checked before title", "{\"title\":5,\"id\":\"x\"}", NA_ERR_INVALID),
    CASE("id in capitals",
         "{\"id\":\"000000000000000000000000000000000000000000000000000"
         "000000000000A\"}",
         NA_ERR_INVALID),
    CASE("id of 65 digits",
         "{\"id\":\"0000000000000000000000000000000000000000000000000"
         "0000000000000000\"}",
         NA_ERR_INVALID),
    CASE("id a number", "{\"id\":0}", NA_ERR_INVALID),
    CASE("authors a string", ART(",\"authors\":\"A\""), NA_ERR_INVALID),
    CASE("authors with a number", ART(",\"authors\":[\"A\",1,\"B\"]"), NA_ERR_INVALID),
    CASE("authors with null", ART(",\"authors\":[null]"), NA_ERR_INVALID),
    CASE("authors with duplicates and empties",
         ART(",\"authors\":[\"A\",\"\",\"A\",\"B\",\"\\u0041\"]"), NA_OK),
    CASE("authors null", ART(",\"authors\":null"), NA_OK),
    CASE("authors before categories", ART(",\"categories\":[1],\"authors\":[2]"),
         NA_ERR_INVALID),
    CASE("list checked before times", ART(",\"fetched_at\":1,\"categories\":{}"),
         NA_ERR_INVALID),
    CASE("time a number", ART(",\"published_at\":1767686400"), NA_ERR_INVALID),
    CASE("time not RFC 3339", ART(",\"published_at\":\"yesterday\""), NA_ERR_INVALID),
    CASE("time with spaces and fraction",
         ART(",\"published_at\":\" 2026-01-06T08:00:00.123456789012Z \""), NA_OK),
    CASE("time with an escape", ART(",\"fetched_at\":\"2026-01-06T08:00:00\\u005a\""),
         NA_OK),
    CASE("time null", ART(",\"published_at\":null"), NA_OK),
    CASE("source a string", ART(",\"source\":\"harbour\""), NA_ERR_INVALID),
    CASE("source id a number", ART(",\"source\":{\"id\":5}"), NA_ERR_INVALID),
    CASE("source with unknown members", ART(",\"source\":{\"x\":[1,{}],\"name\":\"N\"}"),
         NA_OK),
    CASE("source null", ART(",\"source\":null"), NA_OK),
    CASE("source checked last", ART(",\"source\":5,\"lang\":5"), NA_ERR_INVALID),
    CASE("unknown members of every type",
         ART(",\"a\":{},\"b\":[],\"c\":\"s\",\"d\":-1.5e3,\"e\":true,\"f\":null,"
             "\"g\":[{\"h\":[[]]}]"),
         NA_OK),
};

static void test_decoders_agree_on_table(void **state) {
    (void)state;
    char why[1024];
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        size_t len = c->len ? c->len : strlen(c->json);
        char errstr[256] = "";
        struct na_article a;
        na_article_init(&a);
        na_err_t got = na_article_from_json(c->json, len, &a, errstr, sizeof(errstr));
        na_article_cleanup(&a);
        if (got != c->want) {
            fail_msg("%s: got %s (%s), want %s", c->name, na_err2str(got), errstr,
                     na_err2str(c->want));
        }
        if (!na_article_decoders_agree(c->json, len, why, sizeof(why))) {
            fail_msg("%s: %s", c->name, why);
        }
    }
}

/* A document of @p depth nested arrays (innermost @p inner) as the value of
 * an unknown member, or at the top level. */
static char *nested(size_t depth, const char *inner, bool top) {
    size_t n = 0;
    char *buf = malloc(2 * depth + 256);
    assert_non_null(buf);
    if (!top) {
        n += (size_t)snprintf(buf, 256, "{%s,\"x\":", ID);
    }
    memset(buf + n, '[', depth);
    n += depth;
    n += (size_t)snprintf(buf + n, 64, "%s", inner);
    memset(buf + n, ']', depth);
    n += depth;
    buf[n] = '\0';
    if (!top) {
        buf[n++] = '}';
        buf[n] = '\0';
    }
    return buf;
}

static void expect_decode(const char *json, na_err_t want) {
    char why[1024];
    char errstr[256] = "";
    struct na_article a;
    na_article_init(&a);
    na_err_t got = na_article_from_json(json, strlen(json), &a, errstr, sizeof(errstr));
    na_article_cleanup(&a);
    if (got != want) {
        fail_msg("%.60s...: got %s (%s), want %s", json, na_err2str(got), errstr,
                 na_err2str(want));
    }
    if (!na_article_decoders_agree(json, strlen(json), why, sizeof(why))) {
        fail_msg("%.60s...: %s", json, why);
    }
}

/* jansson refuses a value deeper than 2048; the top-level value is at
 * depth 1, a member of it at 2. */
static void test_decode_depth_limit(void **state) {
    (void)state;
    struct {
        size_t depth;
        const char *inner;
        bool top;
        na_err_t want;
    } cases[] = {
        {2047, "", false, NA_OK},          /* innermost array at 2048 */
        {2048, "", false, NA_ERR_PARSE},   /* at 2049 */
        {2046, "1", false, NA_OK},         /* the 1 at 2048 */
        {2047, "1", false, NA_ERR_PARSE},  /* the 1 at 2049 */
        {2046, "{}", false, NA_OK},        /* an object at 2048 */
        {2047, "{}", false, NA_ERR_PARSE}, /* at 2049 */
        {2048, "", true, NA_ERR_INVALID},  /* well-formed, not an object */
        {2049, "", true, NA_ERR_PARSE},
        {2047, "\"s\"", true, NA_ERR_INVALID},
        {2048, "\"s\"", true, NA_ERR_PARSE},
        {100000, "", false, NA_ERR_PARSE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *json = nested(cases[i].depth, cases[i].inner, cases[i].top);
        expect_decode(json, cases[i].want);
        free(json);
    }
}

/* Strings are cut at their caps on a UTF-8 boundary, as na_utf8_cut()
 * cuts the whole decoded text. */
static void test_decode_caps(void **state) {
    (void)state;
    struct {
        size_t plain;     /* ASCII bytes first */
        const char *tail; /* then this, as written in JSON */
        size_t want_len;  /* length of the title kept */
    } cases[] = {
        {NA_MAX_TITLE_BYTES + 500, "", NA_MAX_TITLE_BYTES},
        {NA_MAX_TITLE_BYTES, "", NA_MAX_TITLE_BYTES},
        {NA_MAX_TITLE_BYTES - 1, "\xc3\xa9", NA_MAX_TITLE_BYTES - 1},
        {NA_MAX_TITLE_BYTES - 2, "\xc3\xa9", NA_MAX_TITLE_BYTES},
        {NA_MAX_TITLE_BYTES - 1, "\\u00e9", NA_MAX_TITLE_BYTES - 1},
        {NA_MAX_TITLE_BYTES - 2, "\\u00e9\\u00e9", NA_MAX_TITLE_BYTES},
        {NA_MAX_TITLE_BYTES - 2, "\\u20ac", NA_MAX_TITLE_BYTES - 2},
        {NA_MAX_TITLE_BYTES - 3, "\\ud83d\\ude00", NA_MAX_TITLE_BYTES - 3},
        {NA_MAX_TITLE_BYTES - 4, "\\ud83d\\ude00", NA_MAX_TITLE_BYTES},
        {NA_MAX_TITLE_BYTES - 1, "\\n\\n", NA_MAX_TITLE_BYTES},
        {NA_MAX_TITLE_BYTES - 2, "\xf0\x9f\x98\x80x", NA_MAX_TITLE_BYTES - 2},
        {0, "\\\"", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t cap = cases[i].plain + 512;
        char *json = malloc(cap);
        char errstr[256];
        struct na_article a;
        assert_non_null(json);
        size_t n = (size_t)snprintf(json, cap, "{%s,\"title\":\"", ID);
        memset(json + n, 'a', cases[i].plain);
        n += cases[i].plain;
        snprintf(json + n, cap - n, "%s\",\"lang\":\"%0100d\"}", cases[i].tail, 0);
        expect_decode(json, NA_OK);
        na_article_init(&a);
        assert_int_equal(
            na_article_from_json(json, strlen(json), &a, errstr, sizeof(errstr)), NA_OK);
        assert_int_equal(strlen(a.title), cases[i].want_len);
        assert_int_equal(strlen(a.lang), 64);
        na_article_cleanup(&a);
        free(json);
    }
}

/* Lists stop at their caps; more members than the reader keeps without
 * allocating; names with escapes in a large object. */
static void test_decode_many_members(void **state) {
    (void)state;
    size_t cap = 200000;
    char *json = malloc(cap);
    size_t n;
    assert_non_null(json);

    n = (size_t)snprintf(json, cap, "{%s,\"authors\":[", ID);
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(json + n, cap - n, "%s\"author %d\"", i ? "," : "", i);
    }
    n += (size_t)snprintf(json + n, cap - n, "],\"x\":{");
    for (int i = 0; i < 5000; i++) {
        n += (size_t)snprintf(json + n, cap - n, "%s\"k\\u00e9%d\":%d", i ? "," : "", i,
                              i);
    }
    snprintf(json + n, cap - n, "}}");
    expect_decode(json, NA_OK);
    struct na_article a;
    char errstr[256];
    na_article_init(&a);
    assert_int_equal(na_article_from_json(json, strlen(json), &a, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(a.authors_cnt, NA_MAX_AUTHORS);
    assert_string_equal(a.authors[NA_MAX_AUTHORS - 1], "author 31");
    na_article_cleanup(&a);

    /* the same with the last name repeated: refused */
    n = strlen(json) - 2;
    snprintf(json + n, cap - n, ",\"k\\u00e9%d\":0}}", 4321);
    expect_decode(json, NA_ERR_PARSE);
    free(json);
}

/* A syntax error names its line and column as jansson counts them. */
static void test_decode_error_position(void **state) {
    (void)state;
    struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\n  \"title\": tru\n}", "JSON error at line 2 column 12: "},
        {"{\"a\":1,\n\n\"a\":2}", "JSON error at line 3 column 1: "},
        {"{\"t\":\"caf\xc3\xa9 \xff\"}", "JSON error at line 1 column 12: "},
        {"{", "JSON error at line 1 column 2: "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char errstr[256];
        struct na_article a;
        na_article_init(&a);
        assert_int_equal(na_article_from_json(cases[i].json, strlen(cases[i].json), &a,
                                              errstr, sizeof(errstr)),
                         NA_ERR_PARSE);
        if (strncmp(errstr, cases[i].want, strlen(cases[i].want))) {
            fail_msg("%s: got \"%s\", want \"%s...\"", cases[i].json, errstr,
                     cases[i].want);
        }
    }
}

/* Slots of the member-name table looked at in one decode of @p json
 * (which must decode). */
static size_t decode_probes(const char *json) {
    struct na_article a;
    char errstr[256];
    size_t probes = 0;
    na_article_init(&a);
    assert_int_equal(na_article_from_json_probes(json, strlen(json), &a, errstr,
                                                 sizeof(errstr), &probes),
                     NA_OK);
    na_article_cleanup(&a);
    return probes;
}

/* An article whose top-level object has @p n extra members of 7-byte
 * names. With @p collide, every name has the same low 17 bits under the
 * member-name hash the reader once had: 32-bit FNV-1a from a fixed basis
 * (2166136261 ^ object serial * 0x9e3779b1, the article being object 1).
 * Such names cost nothing to find (the last two bytes steer the low bits)
 * and put every name in one probe chain: n²/2 steps per record. */
static char *many_names(size_t n, bool collide) {
    const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const uint32_t mask = (1u << 17) - 1;
    const uint32_t want = 0x5a5a5 & mask;
    size_t cap = 64 + 16 * n;
    char *json = malloc(cap);
    size_t len, made = 0;
    assert_non_null(json);
    len = (size_t)snprintf(json, cap, "{%s", ID);
    for (uint32_t k = 0; made < n; k++) {
        char name[8];
        uint32_t x = k;
        for (int i = 0; i < 5; i++) {
            name[i] = set[x % 62];
            x /= 62;
        }
        if (!collide) {
            name[5] = name[6] = '_';
            name[7] = '\0';
            len += (size_t)snprintf(json + len, cap - len, ",\"%s\":0", name);
            made++;
            continue;
        }
        uint32_t h = 2166136261u ^ 0x9e3779b1u;
        for (int i = 0; i < 5; i++) {
            h = (h ^ (unsigned char)name[i]) * 16777619u;
        }
        for (unsigned c1 = 0x21; c1 < 0x7f && made < n; c1++) {
            uint32_t s1 = (h ^ c1) * 16777619u;
            unsigned c2 = (s1 ^ want) & 0xff;
            if (((s1 ^ want) & mask & ~0xffu) || c1 == '"' || c1 == '\\' || c2 < 0x21 ||
                c2 > 0x7e || c2 == '"' || c2 == '\\') {
                continue;
            }
            name[5] = (char)c1;
            name[6] = (char)c2;
            name[7] = '\0';
            len += (size_t)snprintf(json + len, cap - len, ",\"%s\":0", name);
            made++;
        }
    }
    snprintf(json + len, cap - len, "}");
    return json;
}

/* Member names chosen to collide in the reader's duplicate check cost no
 * more than as many other names: a record of them once took n²/2 probes,
 * seconds of CPU where an ordinary one of its size takes milliseconds.
 * With names spread over the table (at most half full), a name takes a
 * few probes on average: the bound, 8 per name, leaves room. */
static void test_decode_colliding_member_names(void **state) {
    (void)state;
    const size_t n = 30000;
    char *plain = many_names(n, false);
    char *crafted = many_names(n, true);
    assert_true(strlen(crafted) < NA_MAX_ARTICLE_BYTES);
    size_t p_plain = decode_probes(plain);
    size_t p_crafted = decode_probes(crafted);
    free(plain);
    free(crafted);
    print_message("%zu names: %zu probes crafted, %zu ordinary\n", n, p_crafted, p_plain);
    assert_true(p_plain >= n);
    if (p_crafted > 8 * n) {
        fail_msg("%zu crafted names took %zu probes, as many others %zu", n, p_crafted,
                 p_plain);
    }
}

static void test_decode_too_large(void **state) {
    (void)state;
    size_t len = NA_MAX_ARTICLE_BYTES + 1;
    char *json = malloc(len);
    char why[1024];
    assert_non_null(json);
    memset(json, ' ', len);
    memcpy(json, ART(""), strlen(ART("")));
    assert_true(na_article_decoders_agree(json, len, why, sizeof(why)));
    struct na_article a;
    char errstr[256];
    na_article_init(&a);
    assert_int_equal(na_article_from_json(json, len, &a, errstr, sizeof(errstr)),
                     NA_ERR_TOO_LARGE);
    assert_true(na_article_decoders_agree(json, len - 1, why, sizeof(why)));
    assert_int_equal(na_article_from_json(json, len - 1, &a, errstr, sizeof(errstr)),
                     NA_OK);
    na_article_cleanup(&a);
    free(json);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_id_is_sha256_of_url),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_time_rfc3339),
        cmocka_unit_test(test_time_rfc3339_ms),
        cmocka_unit_test(test_decoders_agree_on_table),
        cmocka_unit_test(test_decode_depth_limit),
        cmocka_unit_test(test_decode_caps),
        cmocka_unit_test(test_decode_many_members),
        cmocka_unit_test(test_decode_error_position),
        cmocka_unit_test(test_decode_too_large),
        cmocka_unit_test(test_decode_colliding_member_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
