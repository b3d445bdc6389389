/* Mattermost incoming webhooks: Slack-compatible message attachments.
 * Limits: post text <= 16,383 characters; attachments above 7,900
 * characters in total are refused (400), so all attachment text is kept
 * under MM_ATTACH_MAX bytes. Article text is escaped & < > (Slack syntax)
 * and every '@' gets a zero-width space: Mattermost fires @channel, @all,
 * @here and @user from plain text. Attachment text is Markdown: there
 * Markdown punctuation gets a backslash too, and a link shown in it (a
 * digest line) has its '@' written %40. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "newsalert/timeutil.h"

#define MM_ATTACH_MAX 7000
#define MM_TITLE_MAX 250
#define MM_TEXT_MAX 3000

/* Slack escaping, then '@' neutralised. */
static void mm_escape(struct na_buf *out, const char *s, size_t max) {
    struct na_buf tmp;
    na_buf_init(&tmp);
    na_format_slack_escape(&tmp, s, max);
    for (size_t i = 0; tmp.data && i < tmp.len; i++) {
        if (tmp.data[i] == '@') {
            na_buf_puts(out, "@\xe2\x80\x8b");
        } else {
            na_buf_append(out, &tmp.data[i], 1);
        }
    }
    na_buf_cleanup(&tmp);
}

/* Attachment text is Markdown: mm_escape() and a backslash before Markdown
 * punctuation, so article text makes no link, image or formatting. */
static void mm_text(struct na_buf *out, const char *s, size_t max) {
    na_format_md_escape(out, s, max, NA_MD_MATTERMOST);
}

/* A link shown as text: Mattermost reads mentions from attachment text,
 * links included (https://x.example/@channel pings the channel), so every
 * '@' is written %40, which leads to the same page. */
static void mm_link(struct na_buf *out, const char *url) {
    for (const char *p = url; *p; p++) {
        if (*p == '@') {
            na_buf_puts(out, "%40");
        } else {
            na_buf_append(out, p, 1);
        }
    }
}

static const char *topic_color(const char *topic) {
    static const char *const colors[] = {"#d9534f", "#f0ad4e", "#5bc0de",
                                         "#5cb85c", "#8e44ad", "#34495e"};
    unsigned h = 0;
    for (const char *p = topic; *p; p++) {
        h = h * 31u + (unsigned char)*p;
    }
    return colors[h % (sizeof(colors) / sizeof(colors[0]))];
}

static na_err_t render(const struct na_alert *alert, struct na_buf *out) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    struct na_buf title, text, fb, footer;
    char ts[NA_RFC3339_LEN] = "";
    char score[32];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&title);
    na_buf_init(&text);
    na_buf_init(&fb);
    na_buf_init(&footer);
    mm_escape(&title, a->title && *a->title ? a->title : "(untitled)", MM_TITLE_MAX);
    na_buf_puts(&text, "Evidence: ");
    for (size_t i = 0; i < m->evidence_cnt && i < 10; i++) {
        na_buf_puts(&text, i ? ", " : "");
        mm_text(&text,
                m->evidence[i].matched ? m->evidence[i].matched : m->evidence[i].term,
                80);
        na_buf_printf(&text, " (%s)", m->evidence[i].field);
    }
    for (size_t i = 0; i < m->parties_cnt && i < NA_FORMAT_PARTIES_MAX; i++) {
        char *t = na_format_party_text(&m->parties[i]);
        na_buf_puts(&text, i ? "\n- " : "\nParties:\n- ");
        mm_text(&text, t ? t : "", 300);
        free(t);
    }
    if (m->parties_cnt > NA_FORMAT_PARTIES_MAX) {
        na_buf_printf(&text, "\n+%zu more", m->parties_cnt - NA_FORMAT_PARTIES_MAX);
    }
    if (m->snippet && *m->snippet) {
        na_buf_puts(&text, "\n> ");
        mm_text(&text, m->snippet, 600);
    }
    na_format_buf_cut(&text, MM_TEXT_MAX);
    na_buf_printf(&fb, "[%s] ", m->topic);
    mm_escape(&fb, a->title ? a->title : "", 500);
    mm_escape(&footer, a->source_name ? a->source_name : "unknown source", 200);
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
        na_buf_printf(&footer, " \xc2\xb7 %s", ts);
    }
    snprintf(score, sizeof(score), "%.2f", m->score);
    if (title.oom || text.oom || fb.oom || footer.oom) {
        goto out;
    }
    json_t *att = json_pack(
        "{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:b}, {s:s, s:s, s:b}], s:s}", "fallback",
        fb.data, "color", topic_color(m->topic), "title", title.data, "text", text.data,
        "fields", "title", "Topic", "value", m->topic, "short", 1, "title", "Score",
        "value", score, "short", 1, "footer", footer.data);
    if (att && na_format_http_url(a->url) && strlen(a->url) < 2000) {
        json_object_set_new(att, "title_link", json_string(a->url));
    }
    err = na_format_dump_steal(json_pack("{s:[o]}", "attachments", att), out);
out:
    na_buf_cleanup(&title);
    na_buf_cleanup(&text);
    na_buf_cleanup(&fb);
    na_buf_cleanup(&footer);
    return err;
}

/* One attachment whose text lists the alerts, under MM_ATTACH_MAX. */
static na_err_t render_digest(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out) {
    struct na_buf text, line;
    size_t shown = 0;
    char head[64];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&text);
    na_buf_init(&line);
    snprintf(head, sizeof(head), "%zu news alerts", cnt);
    for (size_t i = 0; i < cnt; i++) {
        const struct na_digest_item *it = items[i];
        line.len = 0;
        na_buf_printf(&line, "- `%s` %.2f ", it->topic, it->score);
        mm_text(&line, it->title && *it->title ? it->title : "(untitled)", 300);
        if (it->url && strlen(it->url) < 1000) {
            na_buf_puts(&line, " ");
            mm_link(&line, it->url);
        }
        na_buf_puts(&line, "\n");
        if (line.oom || text.len + line.len + 40 > MM_ATTACH_MAX) {
            break;
        }
        na_buf_append(&text, line.data, line.len);
        shown++;
    }
    if (shown < cnt) {
        na_buf_printf(&text, "and %zu more\n", cnt - shown);
    }
    if (!text.oom && !line.oom) {
        err =
            na_format_dump_steal(json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "attachments",
                                           "fallback", head, "color", "#f0ad4e", "title",
                                           head, "text", text.data ? text.data : ""),
                                 out);
    }
    na_buf_cleanup(&text);
    na_buf_cleanup(&line);
    return err;
}

/* Server-configurable (default 10/s per IP with burst 100): stay well under. */
const struct na_format na_format_mattermost = {"mattermost", render, render_digest, 5.0,
                                               10.0};
