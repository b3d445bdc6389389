/*
 * status_page_demo: the operations listener with a fixed, realistic status
 * document (three feeds, one stale and critical; two routes, one failing;
 * alerts with evidence, one with a hostile title), for the browser test and
 * the screenshot in docs/. Runs until SIGTERM/SIGINT.
 *
 *   status_page_demo [LISTEN]     (default 127.0.0.1:0; prints "port=N")
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "newsalert/daemon.h"
#include "newsalert/httpd.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"

static const char status_text[] =
    "{\"daemon\": \"newsalert-consumer\", \"version\": \"" NA_VERSION "\","
    " \"started_at\": \"2026-01-06T07:58:12Z\", \"ready\": false,"
    " \"not_ready\": [\"feed lantern-daily (critical) stale for 7260 s\"],"
    " \"kafka\": {\"connected\": true, \"brokers\": \"kafka:9092\"},"
    " \"rules\": {\"version\": \"70ab62a7aa28\", \"topics\": 3,"
    "            \"loaded_at\": \"2026-01-06T08:41:03Z\"},"
    " \"feeds\": ["
    "  {\"id\": \"harbour-wire\", \"name\": \"Harbour Wire\","
    "   \"url\": \"https://harbour-wire.example/rss.xml\", \"status\": \"ok\","
    "   \"http_status\": 200, \"last_fetch\": \"2026-01-06T09:12:40Z\","
    "   \"last_success\": \"2026-01-06T09:12:40Z\", \"stale_s\": 20, \"stale\": false,"
    "   \"fetches\": 74, \"errors\": 0, \"error\": \"\"},"
    "  {\"id\": \"meridian-post\", \"name\": \"The Meridian Post\","
    "   \"url\": \"https://meridian-post.example/feed.atom\", \"status\": "
    "\"not_modified\","
    "   \"http_status\": 304, \"last_fetch\": \"2026-01-06T09:12:31Z\","
    "   \"last_success\": \"2026-01-06T09:12:31Z\", \"stale_s\": 29, \"stale\": false,"
    "   \"fetches\": 74, \"errors\": 1, \"error\": \"\"},"
    "  {\"id\": \"lantern-daily\", \"name\": \"Lantern Daily\", \"critical\": true,"
    "   \"url\": \"https://lantern-daily.example/feed.json\", \"status\": \"error\","
    "   \"http_status\": 503, \"last_fetch\": \"2026-01-06T09:11:58Z\","
    "   \"last_success\": \"2026-01-06T07:12:00Z\", \"stale_s\": 7260, \"stale\": true,"
    "   \"fetches\": 61, \"errors\": 13, \"error\": \"HTTP 503 <Service Unavailable>\"}],"
    " \"routes\": ["
    "  {\"name\": \"trade-desk\", \"format\": \"slack\", \"healthy\": true, \"sent\": 12,"
    "   \"failed\": 0, \"retries\": 1, \"pending\": 0, \"last_status\": 200,"
    "   \"last_success\": \"2026-01-06T09:03:17Z\", \"last_error\": \"\"},"
    "  {\"name\": \"archive\", \"format\": \"json\", \"healthy\": false, \"sent\": 9,"
    "   \"failed\": 3, \"retries\": 27, \"pending\": 2, \"last_status\": 500,"
    "   \"last_success\": \"2026-01-06T08:20:05Z\","
    "   \"last_error\": \"HTTP 500 after 10 attempts\"}],"
    " \"alerts\": ["
    "  {\"at\": \"2026-01-06T09:03:16Z\", \"topic\": \"export_controls\", \"score\": 9.5,"
    "   \"title\": \"China bans dual-use exports to Japanese military end users\","
    "   \"url\": \"https://harbour-wire.example/2026/01/06/dual-use-ban\","
    "   \"source\": \"Harbour Wire\", \"published_at\": \"2026-01-06T08:58:00Z\","
    "   \"routes\": [{\"name\": \"trade-desk\", \"outcome\": \"sent\"},"
    "              {\"name\": \"archive\", \"outcome\": \"retrying\"}],"
    "   \"evidence\": [{\"term\": \"dual-use\", \"matched\": \"dual-use items\","
    "                   \"field\": \"title\"},"
    "                  {\"term\": \"export ban*\", \"matched\": \"bans exports\","
    "                   \"field\": \"summary\"},"
    "                  {\"term\": \"Ministry of Commerce\","
    "                   \"matched\": \"Ministry of Commerce\", \"field\": \"content\"}]},"
    "  {\"at\": \"2026-01-06T09:03:16Z\", \"topic\": \"rare_earths\", \"score\": 4.0,"
    "   \"title\": \"Rare-earth magnets in focus as <Beijing> tightens controls & "
    "\\\"lists\\\"\","
    "   \"url\": \"javascript:alert(document.cookie)\","
    "   \"source\": \"The Meridian Post <script>alert(1)</script>\","
    "   \"published_at\": \"2026-01-06T09:01:00Z\","
    "   \"routes\": [{\"name\": \"trade-desk\", \"outcome\": \"sent\"}],"
    "   \"evidence\": [{\"term\": \"rare earth*\", \"matched\": \"Rare-earth\","
    "                   \"field\": \"title\"}]},"
    "  {\"at\": \"2026-01-06T08:44:51Z\", \"topic\": \"taiwan\", \"score\": 6.2,"
    "   \"title\": \"Tokyo protests after remarks on Taiwan Strait\","
    "   \"url\": \"https://lantern-daily.example/a/ts-remarks\","
    "   \"source\": \"Lantern Daily\", \"published_at\": \"2026-01-06T08:40:00Z\","
    "   \"routes\": [{\"name\": \"archive\", \"outcome\": \"dead_lettered\"}],"
    "   \"evidence\": [{\"term\": \"taiwan strait\", \"matched\": \"Taiwan Strait\","
    "                   \"field\": \"title\"}]}]}";

int main(int argc, char **argv) {
    char errstr[512];
    json_error_t jerr;
    na_httpd_t *httpd = NULL;
    struct na_httpd_opts opts = {argc > 1 ? argv[1] : "127.0.0.1:0", "newsalert-consumer",
                                 0};

    if (na_daemon_signals_install(errstr, sizeof(errstr))) {
        fprintf(stderr, "status_page_demo: %s\n", errstr);
        return 1;
    }
    json_t *status = json_loads(status_text, 0, &jerr);
    if (!status) {
        fprintf(stderr, "status_page_demo: status document: %s\n", jerr.text);
        return 1;
    }
    if (na_httpd_start(&opts, &httpd, errstr, sizeof(errstr))) {
        fprintf(stderr, "status_page_demo: %s\n", errstr);
        json_decref(status);
        return 1;
    }
    na_metrics_inc("newsalert_consumer_articles_consumed_total", "Records consumed.",
                   NULL);
    printf("port=%d\n", na_httpd_port(httpd));
    fflush(stdout);
    while (!na_daemon_should_stop()) {
        /* As a daemon would: a fresh snapshot about once a second. */
        na_httpd_publish_steal(httpd, json_incref(status));
        na_sleep_ms(200);
    }
    na_httpd_stop(httpd);
    json_decref(status);
    return 0;
}
