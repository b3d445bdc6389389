/* Microsoft Teams through a Workflows webhook: a message with one Adaptive
 * Card attachment (title, facts, evidence, snippet, a button to the article).
 * Limit: about 28 KB of payload (about 21 KB in practice), so the card is
 * kept under TEAMS_PAYLOAD_MAX. TextBlocks render a Markdown subset without
 * backslash escapes: article text gets a zero-width space after Markdown
 * punctuation and after every '@'. At most 4 requests per second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "newsalert/timeutil.h"

#define TEAMS_PAYLOAD_MAX 20000
#define TEAMS_TITLE_MAX 300
#define TEAMS_TEXT_MAX 2000

static json_t *message(json_t *body, const char *url) {
    json_t *card = json_pack("{s:s, s:s, s:s, s:o}", "$schema",
                             "http://adaptivecards.io/schemas/adaptive-card.json", "type",
                             "AdaptiveCard", "version", "1.4", "body", body);
    if (card && url) {
        json_object_set_new(card, "actions",
                            json_pack("[{s:s, s:s, s:s}]", "type", "Action.OpenUrl",
                                      "title", "Read the article", "url", url));
    }
    return json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments",
                     "contentType", "application/vnd.microsoft.card.adaptive",
                     "contentUrl", "content", card);
}

static na_err_t render(const struct na_alert *alert, struct na_buf *out) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    struct na_buf title, ev, snip, source;
    char ts[NA_RFC3339_LEN] = "unknown";
    char score[32];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&title);
    na_buf_init(&ev);
    na_buf_init(&snip);
    na_buf_init(&source);
    na_format_md_escape(&title, a->title && *a->title ? a->title : "(untitled)",
                        TEAMS_TITLE_MAX, NA_MD_ZWSP);
    for (size_t i = 0; i < m->evidence_cnt && i < 10; i++) {
        na_buf_puts(&ev, i ? ", " : "");
        na_format_md_escape(
            &ev, m->evidence[i].matched ? m->evidence[i].matched : m->evidence[i].term,
            80, NA_MD_ZWSP);
        na_buf_printf(&ev, " (%s)", m->evidence[i].field);
    }
    for (size_t i = 0; i < m->parties_cnt && i < NA_FORMAT_PARTIES_MAX; i++) {
        char *t = na_format_party_text(&m->parties[i]);
        na_buf_puts(&ev, i ? "\n\n- " : "\n\nParties:\n\n- ");
        na_format_md_escape(&ev, t ? t : "", 300, NA_MD_ZWSP);
        free(t);
    }
    if (m->parties_cnt > NA_FORMAT_PARTIES_MAX) {
        na_buf_printf(&ev, "\n\n+%zu more", m->parties_cnt - NA_FORMAT_PARTIES_MAX);
    }
    na_format_md_escape(&snip, m->snippet ? m->snippet : "", TEAMS_TEXT_MAX, NA_MD_ZWSP);
    na_format_md_escape(&source, a->source_name ? a->source_name : "unknown source", 200,
                        NA_MD_ZWSP);
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
    }
    snprintf(score, sizeof(score), "%.2f", m->score);
    if (title.oom || ev.oom || snip.oom || source.oom) {
        goto out;
    }
    json_t *body = json_pack(
        "[{s:s, s:s, s:s, s:s, s:b}, {s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, "
        "s:s}]},"
        " {s:s, s:s, s:b}, {s:s, s:s, s:b, s:b}]",
        "type", "TextBlock", "text", title.data, "weight", "Bolder", "size", "Medium",
        "wrap", 1, "type", "FactSet", "facts", "title", "Topic", "value", m->topic,
        "title", "Score", "value", score, "title", "Source", "value", source.data,
        "title", "Published", "value", ts, "type", "TextBlock", "text",
        ev.data ? ev.data : "", "wrap", 1, "type", "TextBlock", "text",
        snip.data ? snip.data : "", "wrap", 1, "isSubtle", 1);
    const char *url = na_format_http_url(a->url) && strlen(a->url) < 2000 ? a->url : NULL;
    err = na_format_dump_steal(message(body, url), out);
    if (!err && out->len > TEAMS_PAYLOAD_MAX) {
        err = NA_ERR_TOO_LARGE; /* cannot happen with the caps above */
    }
out:
    na_buf_cleanup(&title);
    na_buf_cleanup(&ev);
    na_buf_cleanup(&snip);
    na_buf_cleanup(&source);
    return err;
}

/* A card with a heading and one TextBlock line per alert, while the payload
 * stays under TEAMS_PAYLOAD_MAX. */
static na_err_t render_digest(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out) {
    json_t *body = json_array();
    struct na_buf line;
    size_t shown = 0, bytes = 600;
    char head[64];

    na_buf_init(&line);
    snprintf(head, sizeof(head), "%zu news alerts", cnt);
    json_array_append_new(body, json_pack("{s:s, s:s, s:s, s:b}", "type", "TextBlock",
                                          "text", head, "weight", "Bolder", "wrap", 1));
    for (size_t i = 0; body && i < cnt; i++) {
        const struct na_digest_item *it = items[i];
        line.len = 0;
        na_buf_printf(&line, "%s %.2f: ", it->topic, it->score);
        na_format_md_escape(&line, it->title && *it->title ? it->title : "(untitled)",
                            200, NA_MD_ZWSP);
        if (it->url && strlen(it->url) < 500) {
            na_buf_printf(&line, " %s", it->url);
        }
        if (line.oom || bytes + line.len * 2 + 64 > TEAMS_PAYLOAD_MAX) {
            break;
        }
        bytes += line.len * 2 + 64; /* JSON escapes and the block's keys */
        json_array_append_new(body, json_pack("{s:s, s:s, s:b}", "type", "TextBlock",
                                              "text", line.data, "wrap", 1));
        shown++;
    }
    if (body && shown < cnt) {
        char more[64];
        snprintf(more, sizeof(more), "and %zu more", cnt - shown);
        json_array_append_new(body, json_pack("{s:s, s:s, s:b}", "type", "TextBlock",
                                              "text", more, "isSubtle", 1));
    }
    na_buf_cleanup(&line);
    return body ? na_format_dump_steal(message(body, NULL), out) : NA_ERR_NOMEM;
}

/* Throttled above 4 requests per second. */
const struct na_format na_format_teams = {"teams", render, render_digest, 2.0, 4.0};
