/* Slack incoming webhooks: `text` (the notification fallback) plus Block
 * Kit `blocks`: header, evidence section, source and time context, and a
 * button to the article. Limits: header text 150, section text 3,000,
 * `text` 40,000 characters. Article text is escaped (& < >), which also
 * neutralises <!channel>, <!here> and <@U..> mentions; no link_names. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "format.h"
#include <stdio.h>

#include "newsalert/timeutil.h"

#define SLACK_HEADER_MAX 150
#define SLACK_SECTION_MAX 3000
#define SLACK_SNIPPET_MAX 600
#define SLACK_TERMS_MAX 10

#define SLACK_MAX_BLOCKS 50
#define SLACK_DIGEST_SECTIONS 20

static bool http_url(const char *url) {
    return na_format_http_url(url);
}

static char *section_text(const struct na_alert *alert) {
    const struct na_match *m = alert->match;
    struct na_buf b;
    na_buf_init(&b);
    na_buf_printf(&b, "*Topic:* `%s`   *Score:* %.2f\n*Evidence:* ", m->topic, m->score);
    for (size_t i = 0; i < m->evidence_cnt && i < SLACK_TERMS_MAX; i++) {
        na_buf_puts(&b, i ? ", " : "");
        na_buf_puts(&b, "_");
        na_format_slack_escape(
            &b, m->evidence[i].matched ? m->evidence[i].matched : m->evidence[i].term,
            80);
        na_buf_printf(&b, "_ (%s)", m->evidence[i].field);
    }
    for (size_t i = 0; i < m->parties_cnt && i < NA_FORMAT_PARTIES_MAX; i++) {
        char *t = na_format_party_text(&m->parties[i]);
        na_buf_puts(&b, i ? "\n\xe2\x80\xa2 " : "\n*Parties:*\n\xe2\x80\xa2 ");
        na_format_slack_escape(&b, t ? t : "", 300);
        free(t);
    }
    if (m->parties_cnt > NA_FORMAT_PARTIES_MAX) {
        na_buf_printf(&b, "\n+%zu more", m->parties_cnt - NA_FORMAT_PARTIES_MAX);
    }
    if (m->snippet && *m->snippet) {
        na_buf_puts(&b, "\n> ");
        na_format_slack_escape(&b, m->snippet, SLACK_SNIPPET_MAX);
    }
    char *text = na_buf_steal(&b);
    /* Escaping can only grow the text: cut once more to the block limit. */
    char *cut = text ? na_format_truncate(text, SLACK_SECTION_MAX) : NULL;
    free(text);
    return cut;
}

static na_err_t render(const struct na_alert *alert, struct na_buf *out) {
    const struct na_article *a = alert->article;
    json_t *blocks = json_array();
    json_t *root = NULL;
    struct na_buf fb, ctx, title;
    char ts[NA_RFC3339_LEN] = "";
    char *header = NULL, *section = NULL, *text = NULL;
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&fb);
    na_buf_init(&ctx);
    na_buf_init(&title);
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
    }
    /* Header blocks are plain_text, where Slack does not fire mentions;
     * escaped all the same (Slack decodes &amp; &lt; &gt; in every text
     * object) so no <!here> ever reaches Slack raw. Cut once more after
     * escaping, which can only grow the text. */
    na_format_slack_escape(&title, a->title && *a->title ? a->title : "(untitled)",
                           SLACK_HEADER_MAX);
    header = title.oom
                 ? NULL
                 : na_format_truncate(title.data ? title.data : "", SLACK_HEADER_MAX);
    section = section_text(alert);
    na_buf_printf(&fb, "[%s] ", alert->match->topic);
    na_format_slack_escape(&fb, a->title ? a->title : "", 1000);
    if (http_url(a->url)) {
        na_buf_puts(&fb, " ");
        na_format_slack_escape(&fb, a->url, 2000);
    }
    na_format_slack_escape(&ctx, a->source_name ? a->source_name : "unknown source", 200);
    if (*ts) {
        na_buf_printf(&ctx, " \xc2\xb7 %s", ts);
    }
    if (!header || !section || fb.oom || ctx.oom || !blocks) {
        goto out;
    }
    json_array_append_new(blocks,
                          json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "header", "text",
                                    "type", "plain_text", "text", header, "emoji", 0));
    json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type", "section",
                                            "text", "type", "mrkdwn", "text", section));
    json_array_append_new(blocks,
                          json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context",
                                    "elements", "type", "mrkdwn", "text", ctx.data));
    if (http_url(a->url) && strlen(a->url) <= 3000) {
        json_array_append_new(
            blocks,
            json_pack("{s:s, s:[{s:s, s:{s:s, s:s}, s:s, s:s}]}", "type", "actions",
                      "elements", "type", "button", "text", "type", "plain_text", "text",
                      "Read the article", "url", a->url, "action_id", "open_article"));
    }
    root = json_pack("{s:s, s:O, s:b}", "text", fb.data, "blocks", blocks, "unfurl_links",
                     0);
    text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!text) {
        goto out;
    }
    na_buf_puts(out, text);
    err = out->oom ? NA_ERR_NOMEM : NA_OK;
out:
    free(header);
    free(section);
    free(text);
    json_decref(root);
    json_decref(blocks);
    na_buf_cleanup(&fb);
    na_buf_cleanup(&ctx);
    na_buf_cleanup(&title);
    return err;
}

/* A digest: a header, up to SLACK_DIGEST_SECTIONS sections of at most
 * SLACK_SECTION_MAX bytes with one line per alert, and a context block
 * counting the alerts that did not fit. */
static na_err_t render_digest(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out) {
    json_t *blocks = json_array();
    struct na_buf sec, line, fb;
    size_t shown = 0, sections = 0;
    char head[96];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&sec);
    na_buf_init(&line);
    na_buf_init(&fb);
    snprintf(head, sizeof(head), "%zu news alerts", cnt);
    if (!blocks) {
        goto out;
    }
    json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type", "header",
                                            "text", "type", "plain_text", "text", head));
    for (size_t i = 0; i <= cnt && sections < SLACK_DIGEST_SECTIONS; i++) {
        if (i < cnt) {
            const struct na_digest_item *it = items[i];
            line.len = 0;
            na_buf_printf(&line, "\xe2\x80\xa2 `%s` %.2f ", it->topic, it->score);
            na_format_slack_escape(
                &line, it->title && *it->title ? it->title : "(untitled)", 300);
            size_t bare = line.len;
            if (it->url && strlen(it->url) < 2000) {
                na_buf_puts(&line, "\n      ");
                na_format_slack_escape(&line, it->url, 2000);
            }
            /* Escaping grows a link ('&' is &amp;): one that would not fit
             * a section of its own is left out, not cut into a wrong link. */
            if (!line.oom && line.len + 1 > SLACK_SECTION_MAX) {
                line.len = bare;
                line.data[bare] = '\0';
            }
            na_buf_puts(&line, "\n");
            if (line.oom) {
                goto out;
            }
        }
        if (i == cnt || sec.len + line.len > SLACK_SECTION_MAX) {
            if (sec.len) {
                json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:s}}", "type",
                                                        "section", "text", "type",
                                                        "mrkdwn", "text", sec.data));
                sections++;
                sec.len = 0;
            }
            if (i == cnt || sections >= SLACK_DIGEST_SECTIONS) {
                break;
            }
        }
        na_buf_append(&sec, line.data, line.len);
        shown++;
    }
    if (shown < cnt) {
        char more[64];
        snprintf(more, sizeof(more), "and %zu more", cnt - shown);
        json_array_append_new(blocks,
                              json_pack("{s:s, s:[{s:s, s:s}]}", "type", "context",
                                        "elements", "type", "mrkdwn", "text", more));
    }
    na_buf_printf(&fb, "%s", head);
    if (sec.oom || fb.oom) {
        goto out;
    }
    err = na_format_dump_steal(json_pack("{s:s, s:O, s:b}", "text", fb.data, "blocks",
                                         blocks, "unfurl_links", 0),
                               out);
out:
    json_decref(blocks);
    na_buf_cleanup(&sec);
    na_buf_cleanup(&line);
    na_buf_cleanup(&fb);
    return err;
}

/* About one message per second per webhook, short bursts allowed. */
const struct na_format na_format_slack = {"slack", render, render_digest, 1.0, 3.0};
