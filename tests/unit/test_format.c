#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "deliver.h"
#include "format.h"
#include "newsalert/util.h"
#include "route.h"

static struct na_article article;
static struct na_evidence evidence[2];
static struct na_match match;

static void setup_alert(struct na_alert *alert, const char *title) {
    na_article_init(&article);
    article.url = strdup("https://harbour-wire.example/2026/01/06/ban");
    article.title = strdup(title);
    article.source_name = strdup("Harbour <Wire> & Co");
    article.published_at = 1767686400;
    assert_int_equal(na_article_set_id(&article), NA_OK);
    evidence[0] = (struct na_evidence){"\"dual-use\"", "dual-use", "title", 10};
    evidence[1] = (struct na_evidence){"export*", "exports", "content", 42};
    memset(&match, 0, sizeof(match));
    match.topic = "export_controls";
    match.score = 7.5;
    match.threshold = 3;
    match.evidence = evidence;
    match.evidence_cnt = 2;
    match.snippet = "Beijing <!channel> banned exports of dual-use items & more";
    assert_int_equal(na_alert_init(alert, &article, &match, "abc123def456"), NA_OK);
}

static json_t *render(const char *format, const struct na_alert *alert) {
    struct na_buf buf;
    json_error_t jerr;
    na_buf_init(&buf);
    assert_int_equal(na_format_find(format)->render(alert, &buf), NA_OK);
    json_t *root = json_loads(buf.data, 0, &jerr);
    assert_non_null(root);
    na_buf_cleanup(&buf);
    return root;
}

static void test_json_is_alert_v1(void **state) {
    (void)state;
    struct na_alert alert;
    setup_alert(&alert, "China bans dual-use exports to Japan");
    json_t *root = render("json", &alert);
    assert_string_equal(json_string_value(json_object_get(root, "schema")), "alert/v1");
    assert_string_equal(json_string_value(json_object_get(root, "id")), alert.id);
    assert_string_equal(json_string_value(json_object_get(root, "article_id")),
                        article.id);
    assert_string_equal(json_string_value(json_object_get(root, "topic")),
                        "export_controls");
    assert_true(json_real_value(json_object_get(root, "score")) == 7.5);
    json_t *ev = json_object_get(root, "evidence");
    assert_int_equal(json_array_size(ev), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(ev, 1), "matched")), "exports");
    json_t *art = json_object_get(root, "article");
    assert_string_equal(json_string_value(json_object_get(art, "published_at")),
                        "2026-01-06T08:00:00Z");
    assert_string_equal(json_string_value(json_object_get(root, "rules_version")),
                        "abc123def456");
    json_decref(root);
    na_article_cleanup(&article);
}

static void test_alert_id_is_stable_per_article_and_topic(void **state) {
    (void)state;
    struct na_alert a1, a2;
    setup_alert(&a1, "x");
    assert_int_equal(na_alert_init(&a2, &article, &match, "other-rules"), NA_OK);
    assert_string_equal(a1.id, a2.id);
    match.topic = "taiwan";
    assert_int_equal(na_alert_init(&a2, &article, &match, "other-rules"), NA_OK);
    assert_string_not_equal(a1.id, a2.id);
    na_article_cleanup(&article);
}

static void test_slack_blocks_and_escaping(void **state) {
    (void)state;
    struct na_alert alert;
    setup_alert(&alert, "Ban <@U123> & <!here> lands");
    json_t *root = render("slack", &alert);
    const char *text = json_string_value(json_object_get(root, "text"));
    assert_non_null(text);
    assert_null(strstr(text, "<@U123>"));
    assert_null(strstr(text, "<!here>"));
    assert_non_null(strstr(text, "&lt;@U123&gt; &amp; &lt;!here&gt;"));
    json_t *blocks = json_object_get(root, "blocks");
    assert_int_equal(json_array_size(blocks), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(blocks, 0), "type")), "header");
    json_t *section = json_object_get(json_array_get(blocks, 1), "text");
    const char *st = json_string_value(json_object_get(section, "text"));
    assert_non_null(strstr(st, "export_controls"));
    assert_non_null(strstr(st, "dual-use"));
    assert_null(strstr(st, "<!channel>"));
    assert_non_null(strstr(st, "&lt;!channel&gt;"));
    json_t *ctx =
        json_array_get(json_object_get(json_array_get(blocks, 2), "elements"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(ctx, "text")),
                           "Harbour &lt;Wire&gt; &amp; Co"));
    json_t *button =
        json_array_get(json_object_get(json_array_get(blocks, 3), "elements"), 0);
    assert_string_equal(json_string_value(json_object_get(button, "url")), article.url);
    assert_null(json_object_get(root, "link_names"));
    json_decref(root);
    na_article_cleanup(&article);
}

static void test_slack_limits_and_utf8(void **state) {
    (void)state;
    struct na_alert alert;
    /* 400 x "é" (2 bytes each): the 150-byte header cut must not split one. */
    char title[801];
    for (int i = 0; i < 400; i++) {
        memcpy(title + 2 * i, "\xc3\xa9", 2);
    }
    title[800] = '\0';
    setup_alert(&alert, title);
    free(article.url);
    article.url = strdup("javascript:alert(1)");
    json_t *root = render("slack", &alert);
    json_t *blocks = json_object_get(root, "blocks");
    const char *header = json_string_value(
        json_object_get(json_object_get(json_array_get(blocks, 0), "text"), "text"));
    assert_true(strlen(header) <= 150);
    assert_true(na_utf8_valid(header, strlen(header)));
    assert_non_null(strstr(header, "\xe2\x80\xa6"));
    /* Non-http links are not emitted: no button. */
    assert_int_equal(json_array_size(blocks), 3);
    assert_null(strstr(json_string_value(json_object_get(root, "text")), "javascript:"));
    json_decref(root);
    na_article_cleanup(&article);
}

static void test_standard_webhooks_signature(void **state) {
    (void)state;
    /* The published example of the Standard Webhooks specification. */
    size_t key_len = 0;
    unsigned char *key = na_base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key_len);
    const char *body = "{\"test\": 2432232314}";
    char *sig = na_deliver_sign(key, key_len, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                body, strlen(body));
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    free(sig);
    free(key);
}

static void test_routes_parse_and_filter(void **state) {
    (void)state;
    struct na_routes routes = {NULL, 0};
    char errstr[256];
    json_error_t jerr;
    json_t *ok =
        json_loads("[{\"name\":\"desk\",\"url\":\"https://hooks.example/T/1\","
                   "\"format\":\"slack\",\"topics\":[\"taiwan\"],\"min_score\":2,"
                   "\"secret\":\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"}]",
                   0, &jerr);
    assert_int_equal(na_routes_parse(ok, &routes, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(routes.cnt, 1);
    assert_true(na_route_wants(&routes.v[0], "taiwan", 2.5));
    assert_false(na_route_wants(&routes.v[0], "taiwan", 1.5));
    assert_false(na_route_wants(&routes.v[0], "rare_earths", 9));
    assert_int_equal(routes.v[0].key_len, 24);
    json_t *dump = na_routes_dump(&routes);
    char *text = json_dumps(dump, 0);
    assert_null(strstr(text, "hooks.example/T/1"));
    assert_null(strstr(text, "MfKQ9r8"));
    free(text);
    json_decref(dump);
    json_decref(ok);

    static const char *const bad[][2] = {
        {"[{\"url\":\"ftp://x/\"}]", "http(s)"},
        {"[{\"url\":\"https://x/\",\"format\":\"fax\"}]", "format"},
        {"[{\"url\":\"https://x/\",\"colour\":1}]", "unknown key \"colour\""},
        {"[{\"url\":\"https://x/\",\"secret\":\"whsec_short\"}]", "secret"},
        {"[{\"url\":\"https://x/\",\"topics\":\"taiwan\"}]", "topics"},
        {"{}", "array"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i][0], 0, &jerr);
        errstr[0] = '\0';
        assert_int_not_equal(na_routes_parse(j, &routes, errstr, sizeof(errstr)), NA_OK);
        assert_non_null(strstr(errstr, bad[i][1]));
        json_decref(j);
    }
    assert_int_equal(routes.cnt, 1);
    na_routes_cleanup(&routes);
}

/* ---- every service: shape, escaping, mentions, limits ---- */

static const char *const hostile = "@everyone @here <@123456> <@&987> <!channel> "
                                   "<users/all> **bold** [x](http://e.vil) # h";

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; s && *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

/* No '@' directly followed by a letter: every one is broken by U+200B. */
static void assert_no_live_mentions(const char *s) {
    for (const char *p = s; p && (p = strchr(p, '@')); p++) {
        assert_memory_equal(p + 1, "\xe2\x80\x8b", 3);
    }
}

static void test_discord_embed_and_no_pings(void **state) {
    (void)state;
    struct na_alert alert;
    setup_alert(&alert, hostile);
    json_t *root = render("discord", &alert);
    json_t *am = json_object_get(root, "allowed_mentions");
    assert_true(json_is_array(json_object_get(am, "parse")));
    assert_int_equal(json_array_size(json_object_get(am, "parse")), 0);
    json_t *embed = json_array_get(json_object_get(root, "embeds"), 0);
    const char *title = json_string_value(json_object_get(embed, "title"));
    assert_no_live_mentions(title);
    assert_null(strstr(title, "<@123456>"));
    assert_non_null(strstr(title, "\\*\\*bold\\*\\*"));
    assert_non_null(strstr(title, "\\[x\\]\\(http://e.vil\\)"));
    assert_string_equal(json_string_value(json_object_get(embed, "url")), article.url);
    json_int_t colour = json_integer_value(json_object_get(embed, "color"));
    assert_no_live_mentions(json_string_value(json_object_get(embed, "description")));
    assert_string_equal(json_string_value(json_object_get(embed, "timestamp")),
                        "2026-01-06T08:00:00Z");
    json_decref(root);
    /* One colour per topic. */
    match.topic = "taiwan";
    assert_int_equal(na_alert_init(&alert, &article, &match, "v"), NA_OK);
    root = render("discord", &alert);
    embed = json_array_get(json_object_get(root, "embeds"), 0);
    assert_true(json_integer_value(json_object_get(embed, "color")) != colour);
    json_decref(root);
    na_article_cleanup(&article);
}

static void test_teams_adaptive_card(void **state) {
    (void)state;
    struct na_alert alert;
    setup_alert(&alert, hostile);
    json_t *root = render("teams", &alert);
    assert_string_equal(json_string_value(json_object_get(root, "type")), "message");
    json_t *att = json_array_get(json_object_get(root, "attachments"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "contentType")),
                        "application/vnd.microsoft.card.adaptive");
    json_t *card = json_object_get(att, "content");
    assert_string_equal(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
    const char *title = json_string_value(
        json_object_get(json_array_get(json_object_get(card, "body"), 0), "text"));
    assert_no_live_mentions(title);
    assert_null(strstr(title, "**bold**"));
    json_t *action = json_array_get(json_object_get(card, "actions"), 0);
    assert_string_equal(json_string_value(json_object_get(action, "type")),
                        "Action.OpenUrl");
    assert_string_equal(json_string_value(json_object_get(action, "url")), article.url);
    json_decref(root);
    na_article_cleanup(&article);
}

static void test_googlechat_card_and_text(void **state) {
    (void)state;
    struct na_alert alert;
    setup_alert(&alert, hostile);
    json_t *root = render("googlechat", &alert);
    const char *text = json_string_value(json_object_get(root, "text"));
    assert_null(strstr(text, "<users/all>"));
    assert_non_null(strstr(text, "&lt;users/all&gt;"));
    assert_no_live_mentions(text);
    json_t *card =
        json_object_get(json_array_get(json_object_get(root, "cardsV2"), 0), "card");
    assert_non_null(json_object_get(json_object_get(card, "header"), "title"));
    json_t *widgets =
        json_object_get(json_array_get(json_object_get(card, "sections"), 0), "widgets");
    const char *para = json_string_value(json_object_get(
        json_object_get(json_array_get(widgets, 0), "textParagraph"), "text"));
    assert_null(strstr(para, "<!channel>"));
    assert_non_null(strstr(para, "&lt;!channel&gt;"));
    json_decref(root);
    na_article_cleanup(&article);
}

static void test_mattermost_attachment(void **state) {
    (void)state;
    struct na_alert alert;
    setup_alert(&alert, hostile);
    json_t *root = render("mattermost", &alert);
    json_t *att = json_array_get(json_object_get(root, "attachments"), 0);
    const char *title = json_string_value(json_object_get(att, "title"));
    assert_null(strstr(title, "<@123456>"));
    assert_non_null(strstr(title, "&lt;@\xe2\x80\x8b"
                                  "123456&gt;"));
    assert_no_live_mentions(title);
    assert_string_equal(json_string_value(json_object_get(att, "title_link")),
                        article.url);
    assert_no_live_mentions(json_string_value(json_object_get(att, "text")));
    json_decref(root);
    na_article_cleanup(&article);
}

/* A 20,000-byte title and snippet of 3-byte characters, and a javascript:
 * link: every service stays inside its limits, valid UTF-8, no link. */
static void test_every_format_respects_limits(void **state) {
    (void)state;
    static const char *const names[] = {"slack", "mattermost", "discord", "teams",
                                        "googlechat"};
    static const size_t max_payload[] = {40000, 16383, 8000, 20000, 30000};
    char *big = malloc(20001);
    for (int i = 0; i < 20000 / 3; i++) {
        memcpy(big + 3 * i, "\xe6\x97\xa5", 3); /* 日 */
    }
    big[20000 / 3 * 3] = '\0';
    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        struct na_alert alert;
        struct na_buf buf;
        json_error_t jerr;
        setup_alert(&alert, big);
        match.snippet = big;
        free(article.url);
        article.url = strdup("javascript:alert(1)");
        na_buf_init(&buf);
        assert_int_equal(na_format_find(names[f])->render(&alert, &buf), NA_OK);
        assert_true(buf.len <= max_payload[f]);
        assert_true(na_utf8_valid(buf.data, buf.len));
        assert_null(strstr(buf.data, "javascript:"));
        json_t *root = json_loads(buf.data, 0, &jerr); /* jansson checks UTF-8 too */
        assert_non_null(root);
        if (!strcmp(names[f], "discord")) {
            json_t *e = json_array_get(json_object_get(root, "embeds"), 0);
            assert_true(utf8_chars(json_string_value(json_object_get(e, "title"))) <=
                        256);
            assert_true(
                utf8_chars(json_string_value(json_object_get(e, "description"))) <= 4096);
        } else if (!strcmp(names[f], "mattermost")) {
            json_t *a = json_array_get(json_object_get(root, "attachments"), 0);
            assert_true(
                utf8_chars(json_string_value(json_object_get(a, "title"))) +
                    utf8_chars(json_string_value(json_object_get(a, "text"))) +
                    utf8_chars(json_string_value(json_object_get(a, "fallback"))) <=
                7900);
        } else if (!strcmp(names[f], "slack")) {
            json_t *b = json_object_get(root, "blocks");
            const char *sec = json_string_value(
                json_object_get(json_object_get(json_array_get(b, 1), "text"), "text"));
            assert_true(utf8_chars(sec) <= 3000);
        }
        json_decref(root);
        na_buf_cleanup(&buf);
        na_article_cleanup(&article);
    }
    free(big);
}

/* 1000 alerts in one digest: within each service's limits, the rest counted. */
static void test_digests_list_alerts_within_limits(void **state) {
    (void)state;
    static const char *const names[] = {"json",    "slack", "mattermost",
                                        "discord", "teams", "googlechat"};
    struct na_digest_item *items[1000];
    struct na_alert alert;
    setup_alert(&alert, "Digest @everyone <!here> story");
    for (int i = 0; i < 1000; i++) {
        items[i] = na_digest_item_new(&alert);
        assert_non_null(items[i]);
    }
    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        struct na_buf buf;
        json_error_t jerr;
        na_buf_init(&buf);
        assert_int_equal(na_format_find(names[f])->render_digest(
                             (const struct na_digest_item *const *)items, 1000, &buf),
                         NA_OK);
        json_t *root = json_loads(buf.data, 0, &jerr);
        assert_non_null(root);
        if (strcmp(names[f], "json")) {
            assert_non_null(strstr(buf.data, "1000 news alerts"));
            assert_non_null(strstr(buf.data, "more"));
            assert_null(strstr(buf.data, "<!here>"));
        }
        if (!strcmp(names[f], "json")) {
            assert_int_equal(json_array_size(json_object_get(root, "alerts")), 1000);
        } else if (!strcmp(names[f], "slack")) {
            json_t *b = json_object_get(root, "blocks");
            assert_true(json_array_size(b) <= 50);
            for (size_t i = 0; i < json_array_size(b); i++) {
                const char *t = json_string_value(json_object_get(
                    json_object_get(json_array_get(b, i), "text"), "text"));
                assert_true(!t || utf8_chars(t) <= 3000);
            }
        } else if (!strcmp(names[f], "discord")) {
            json_t *e = json_array_get(json_object_get(root, "embeds"), 0);
            assert_true(
                utf8_chars(json_string_value(json_object_get(e, "description"))) <= 4096);
            assert_int_equal(json_array_size(json_object_get(
                                 json_object_get(root, "allowed_mentions"), "parse")),
                             0);
            assert_no_live_mentions(json_string_value(json_object_get(e, "description")));
        } else if (!strcmp(names[f], "mattermost")) {
            json_t *a = json_array_get(json_object_get(root, "attachments"), 0);
            assert_true(utf8_chars(json_string_value(json_object_get(a, "text"))) <=
                        7900);
        } else if (!strcmp(names[f], "teams")) {
            assert_true(buf.len <= 20000);
        } else {
            assert_true(buf.len <= 30000);
        }
        json_decref(root);
        na_buf_cleanup(&buf);
    }
    for (int i = 0; i < 1000; i++) {
        na_digest_item_free(items[i]);
    }
    na_article_cleanup(&article);
}

/* A digest line shows the article's link as text, where Mattermost fires
 * @channel, @all, @here and @user (it reads mentions from attachment text,
 * links included): an '@' in a link must not ping anyone. */
static void test_mattermost_digest_link_cannot_mention(void **state) {
    (void)state;
    struct na_digest_item *items[3];
    struct na_alert alert;
    struct na_buf buf;
    json_error_t jerr;
    setup_alert(&alert, "Ban lands");
    free(article.url);
    article.url = strdup("https://blog.example/@channel/ban?by=@all#@here");
    for (int i = 0; i < 3; i++) {
        items[i] = na_digest_item_new(&alert);
        assert_non_null(items[i]);
    }
    na_buf_init(&buf);
    assert_int_equal(na_format_mattermost.render_digest(
                         (const struct na_digest_item *const *)items, 3, &buf),
                     NA_OK);
    json_t *root = json_loads(buf.data, 0, &jerr);
    assert_non_null(root);
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "attachments"), 0), "text"));
    assert_no_live_mentions(text);
    /* The link still leads to the article: '@' written as %40. */
    assert_non_null(
        strstr(text, "https://blog.example/%40channel/ban?by=%40all#%40here"));
    json_decref(root);
    na_buf_cleanup(&buf);
    for (int i = 0; i < 3; i++) {
        na_digest_item_free(items[i]);
    }
    na_article_cleanup(&article);
}

/* Article text may carry control characters (article/v1 takes "\u0001"),
 * which JSON writes as six bytes each: digests sized by the escaped text
 * went over the service's cap (Teams refused the digest, Google Chat's
 * was never made). Chat text carries no control characters. */
static void test_digests_of_control_character_titles_stay_within_limits(void **state) {
    (void)state;
    static const char *const names[] = {"slack", "mattermost", "discord", "teams",
                                        "googlechat"};
    struct na_digest_item *items[200];
    struct na_alert alert;
    char title[301];
    memset(title, '\x01', 300);
    title[300] = '\0';
    setup_alert(&alert, title);
    for (int i = 0; i < 200; i++) {
        items[i] = na_digest_item_new(&alert);
        assert_non_null(items[i]);
    }
    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        struct na_buf buf;
        na_buf_init(&buf);
        assert_int_equal(na_format_find(names[f])->render_digest(
                             (const struct na_digest_item *const *)items, 200, &buf),
                         NA_OK);
        assert_null(strstr(buf.data, "\\u0001"));
        if (!strcmp(names[f], "teams")) {
            assert_true(buf.len <= 20000);
        } else if (!strcmp(names[f], "googlechat")) {
            assert_true(buf.len <= 30000);
        }
        na_buf_cleanup(&buf);
        /* The single alert too. */
        na_buf_init(&buf);
        assert_int_equal(na_format_find(names[f])->render(&alert, &buf), NA_OK);
        assert_null(strstr(buf.data, "\\u0001"));
        na_buf_cleanup(&buf);
    }
    for (int i = 0; i < 200; i++) {
        na_digest_item_free(items[i]);
    }
    na_article_cleanup(&article);
}

/* Escaping grows a digest line ('&' is five bytes as &amp;): one alert
 * whose link is long and full of '&' must not make a section longer than
 * Slack's 3,000 characters, or Slack refuses the whole digest. */
static void test_slack_digest_long_link_keeps_sections_under_limit(void **state) {
    (void)state;
    struct na_digest_item *items[2];
    struct na_alert alert;
    struct na_buf buf, url;
    json_error_t jerr;
    setup_alert(&alert, "Ban & more");
    na_buf_init(&url);
    na_buf_puts(&url, "https://news.example/r?");
    while (url.len < 1990) {
        na_buf_puts(&url, "a&");
    }
    free(article.url);
    article.url = na_buf_steal(&url);
    for (int i = 0; i < 2; i++) {
        items[i] = na_digest_item_new(&alert);
        assert_non_null(items[i]);
    }
    na_buf_init(&buf);
    assert_int_equal(na_format_slack.render_digest(
                         (const struct na_digest_item *const *)items, 2, &buf),
                     NA_OK);
    json_t *root = json_loads(buf.data, 0, &jerr);
    assert_non_null(root);
    json_t *b = json_object_get(root, "blocks");
    size_t listed = 0;
    for (size_t i = 0; i < json_array_size(b); i++) {
        const char *t = json_string_value(
            json_object_get(json_object_get(json_array_get(b, i), "text"), "text"));
        for (const char *p = t; p && (p = strstr(p, "Ban &amp; more")); p++) {
            listed++;
        }
        assert_true(!t || utf8_chars(t) <= 3000);
    }
    assert_int_equal(listed, 2); /* both alerts still listed */
    json_decref(root);
    na_buf_cleanup(&buf);
    for (int i = 0; i < 2; i++) {
        na_digest_item_free(items[i]);
    }
    na_article_cleanup(&article);
}

/* Attachment text is Markdown in Mattermost: article text there must not
 * make a link of its own, an image that readers' clients fetch, or
 * formatting. */
static void test_mattermost_text_cannot_forge_links(void **state) {
    (void)state;
    struct na_digest_item *item;
    struct na_alert alert;
    struct na_buf buf;
    json_error_t jerr;
    setup_alert(&alert, "Ban [Official statement](https://e.vil/x) ![](https://e.vil/p)");
    match.snippet = "read **this** [here](https://e.vil/y) now";
    json_t *root = render("mattermost", &alert);
    const char *text = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "attachments"), 0), "text"));
    assert_null(strstr(text, "[here](https://e.vil/y)"));
    assert_null(strstr(text, "**this**"));
    assert_non_null(strstr(text, "\\[here\\]\\(https://e.vil/y\\)"));
    json_decref(root);

    item = na_digest_item_new(&alert);
    assert_non_null(item);
    na_buf_init(&buf);
    assert_int_equal(na_format_mattermost.render_digest(
                         (const struct na_digest_item *const *)&item, 1, &buf),
                     NA_OK);
    root = json_loads(buf.data, 0, &jerr);
    assert_non_null(root);
    text = json_string_value(
        json_object_get(json_array_get(json_object_get(root, "attachments"), 0), "text"));
    assert_null(strstr(text, "[Official statement](https://e.vil/x)"));
    assert_null(strstr(text, "![](https://e.vil/p)"));
    json_decref(root);
    na_buf_cleanup(&buf);
    na_digest_item_free(item);
    na_article_cleanup(&article);
}

static void test_route_pacing_options(void **state) {
    (void)state;
    struct na_routes routes = {NULL, 0};
    char errstr[256];
    json_error_t jerr;
    json_t *j =
        json_loads("[{\"name\":\"a\",\"url\":\"https://x/1\",\"format\":\"discord\"},"
                   "{\"name\":\"b\",\"url\":\"https://x/2\",\"format\":\"teams\","
                   "\"rate_per_s\":0.5,\"burst\":2,\"digest_threshold\":0,"
                   "\"max_queue\":50,\"keepalive\":false}]",
                   0, &jerr);
    assert_int_equal(na_routes_parse(j, &routes, errstr, sizeof(errstr)), NA_OK);
    assert_true(routes.v[0].rate_per_s == na_format_discord.rate_per_s);
    assert_true(routes.v[0].burst == na_format_discord.burst);
    assert_int_equal(routes.v[0].digest_threshold, NA_ROUTE_DIGEST_THRESHOLD);
    assert_true(routes.v[0].keepalive);
    assert_true(routes.v[1].rate_per_s == 0.5);
    assert_true(routes.v[1].burst == 2);
    assert_int_equal(routes.v[1].digest_threshold, 0);
    assert_int_equal(routes.v[1].max_queue, 50);
    assert_false(routes.v[1].keepalive);
    json_decref(j);
    j = json_loads("[{\"url\":\"https://x/\",\"rate_per_s\":-1}]", 0, &jerr);
    assert_int_not_equal(na_routes_parse(j, &routes, errstr, sizeof(errstr)), NA_OK);
    assert_non_null(strstr(errstr, "rate_per_s"));
    json_decref(j);
    na_routes_cleanup(&routes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_is_alert_v1),
        cmocka_unit_test(test_alert_id_is_stable_per_article_and_topic),
        cmocka_unit_test(test_slack_blocks_and_escaping),
        cmocka_unit_test(test_slack_limits_and_utf8),
        cmocka_unit_test(test_standard_webhooks_signature),
        cmocka_unit_test(test_routes_parse_and_filter),
        cmocka_unit_test(test_discord_embed_and_no_pings),
        cmocka_unit_test(test_teams_adaptive_card),
        cmocka_unit_test(test_googlechat_card_and_text),
        cmocka_unit_test(test_mattermost_attachment),
        cmocka_unit_test(test_every_format_respects_limits),
        cmocka_unit_test(test_digests_list_alerts_within_limits),
        cmocka_unit_test(test_mattermost_digest_link_cannot_mention),
        cmocka_unit_test(test_slack_digest_long_link_keeps_sections_under_limit),
        cmocka_unit_test(test_digests_of_control_character_titles_stay_within_limits),
        cmocka_unit_test(test_mattermost_text_cannot_forge_links),
        cmocka_unit_test(test_route_pacing_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
