/* The operations listener: real HTTP over loopback with libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "newsalert/httpd.h"
#include "newsalert/fault.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

struct answer {
    long status;
    char type[128];
    struct na_buf body;
    char csp[256];
};

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
    na_buf_append(&((struct answer *)ud)->body, p, size * n);
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
    struct answer *a = ud;
    static const char csp[] = "Content-Security-Policy: ";
    if (size * n > sizeof(csp) && !strncasecmp(p, csp, sizeof(csp) - 1)) {
        snprintf(a->csp, sizeof(a->csp), "%.*s", (int)(size * n - sizeof(csp) + 1),
                 p + sizeof(csp) - 1);
    }
    return size * n;
}

/* GET (or @p method) http://127.0.0.1:PORT@p path. */
static void fetch(int port, const char *method, const char *path, struct answer *a) {
    char url[256];
    const char *ct = NULL;
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    memset(a, 0, sizeof(*a));
    na_buf_init(&a->body);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    if (method) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        if (!strcmp(method, "HEAD")) {
            curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        }
    }
    assert_int_equal(curl_easy_perform(curl), CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(a->type, sizeof(a->type), "%s", ct ? ct : "");
    na_buf_puts(&a->body, "");
    curl_easy_cleanup(curl);
}

static na_httpd_t *start(int64_t stall_ms) {
    char errstr[256];
    na_httpd_t *h = NULL;
    struct na_httpd_opts opts = {"127.0.0.1:0", "newsalert-test", stall_ms};
    assert_int_equal(na_httpd_start(&opts, &h, errstr, sizeof(errstr)), NA_OK);
    assert_non_null(h);
    assert_true(na_httpd_port(h) > 0);
    return h;
}

static json_t *load_status(const char *text) {
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root) {
        fail_msg("bad test JSON: %s at %d", jerr.text, jerr.line);
    }
    return root;
}

static void test_endpoints_codes_and_types(void **state) {
    (void)state;
    struct answer a;
    na_metrics_reset();
    na_metric_add(
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_test_things_total", "T.", NULL), 3);
    na_httpd_t *h = start(0);
    int port = na_httpd_port(h);

    fetch(port, NULL, "/healthz", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.type, "application/json");
    assert_string_equal(a.body.data, "{\"status\":\"ok\"}\n");
    na_buf_cleanup(&a.body);

    /* Nothing published yet: not ready, and says why. */
    fetch(port, NULL, "/readyz", &a);
    assert_int_equal(a.status, 503);
    assert_non_null(strstr(a.body.data, "\"ready\":false"));
    assert_non_null(strstr(a.body.data, "starting"));
    na_buf_cleanup(&a.body);

    fetch(port, NULL, "/metrics", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.type, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(a.body.data, "newsalert_test_things_total 3\n"));
    assert_non_null(strstr(a.body.data, "newsalert_build_info{version=\""));
    na_buf_cleanup(&a.body);

    /* Not rendered (no memory): an error, not an empty page of no series. */
    na_fault_arm("metrics_render");
    fetch(port, NULL, "/metrics", &a);
    na_fault_arm(NULL);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.type, "application/json");
    assert_non_null(strstr(a.body.data, "metrics not rendered"));
    na_buf_cleanup(&a.body);

    fetch(port, NULL, "/nope", &a);
    assert_int_equal(a.status, 404);
    na_buf_cleanup(&a.body);

    fetch(port, "POST", "/metrics", &a);
    assert_int_equal(a.status, 405);
    na_buf_cleanup(&a.body);

    fetch(port, "HEAD", "/healthz", &a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body.len, 0);
    na_buf_cleanup(&a.body);

    /* Ready, then not ready with the daemon's reasons. */
    na_httpd_publish_steal(h, load_status("{\"ready\": true}"));
    fetch(port, NULL, "/readyz", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.body.data, "{\"ready\":true,\"reasons\":[]}\n");
    na_buf_cleanup(&a.body);
    na_httpd_publish_steal(h, load_status("{\"ready\": false, \"not_ready\": "
                                          "[\"kafka: not connected\", "
                                          "\"feed wire (critical) stale 7200 s\"]}"));
    fetch(port, NULL, "/readyz", &a);
    assert_int_equal(a.status, 503);
    assert_string_equal(a.body.data,
                        "{\"ready\":false,\"reasons\":[\"kafka: not connected\","
                        "\"feed wire (critical) stale 7200 s\"]}\n");
    na_buf_cleanup(&a.body);

    fetch(port, NULL, "/status.json", &a);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body.data, "kafka: not connected"));
    na_buf_cleanup(&a.body);

    /* Requests are counted by status code. */
    char *text = na_metrics_render();
    assert_non_null(strstr(text, "newsalert_http_requests_total{code=\"503\"} "));
    assert_non_null(strstr(text, "newsalert_http_requests_total{code=\"405\"} 1\n"));
    free(text);
    na_httpd_stop(h);
    na_metrics_reset();
}

static void test_stalled_loop_fails_health(void **state) {
    (void)state;
    struct answer a;
    na_httpd_t *h = start(150);
    na_httpd_publish_steal(h, load_status("{\"ready\": true}"));
    fetch(na_httpd_port(h), NULL, "/healthz", &a);
    assert_int_equal(a.status, 200);
    na_buf_cleanup(&a.body);
    na_sleep_ms(400);
    fetch(na_httpd_port(h), NULL, "/healthz", &a);
    assert_int_equal(a.status, 503);
    assert_non_null(strstr(a.body.data, "stalled"));
    na_buf_cleanup(&a.body);
    fetch(na_httpd_port(h), NULL, "/readyz", &a);
    assert_int_equal(a.status, 503);
    na_buf_cleanup(&a.body);
    /* A fresh snapshot heals it. */
    na_httpd_publish_steal(h, load_status("{\"ready\": true}"));
    fetch(na_httpd_port(h), NULL, "/healthz", &a);
    assert_int_equal(a.status, 200);
    na_buf_cleanup(&a.body);
    na_httpd_stop(h);
}

/* GET /healthz; @returns its status, or -1 when refused. */
static long healthz(int port) {
    char url[64];
    long status = -1;
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_easy_cleanup(curl);
    return status;
}

/* A connection to the listener that sent @p text and no more. */
static int open_slow(int port, const char *text) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(send(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    return fd;
}

/* Clients that send their request a byte at a time: libmicrohttpd's 10 s
 * timeout counts only silence, so 16 of them held every connection their
 * address may open for as long as they liked, and /healthz from there was
 * refused. A request that has taken NA_HTTPD_REQUEST_MS is cut (the clock
 * is handed to na_httpd_reap(), no waiting for it), and the address gets
 * its answers again. */
static void test_slow_requests_are_cut(void **state) {
    (void)state;
    int fds[16];
    size_t cut = 0;
    struct answer a;
    na_httpd_t *h = start(0);
    int port = na_httpd_port(h);

    na_httpd_publish_steal(h, load_status("{\"ready\": true}"));
    for (size_t i = 0; i < 16; i++) {
        fds[i] = open_slow(port, "GET /healthz HTTP/1.1\r\nX-Slow: a");
    }
    /* Not yet too slow: nothing cut. */
    assert_int_equal(na_httpd_reap(h, na_mono_ms()), 0);
    /* The listener takes the connections on its own thread: ask until it
     * has all 16 (one try every 10 ms, for at most 5 s). */
    for (int tries = 0; cut < 16 && tries < 500; tries++) {
        cut += na_httpd_reap(h, na_mono_ms() + NA_HTTPD_REQUEST_MS + 1000);
        if (cut < 16) {
            na_sleep_ms(10);
        }
    }
    assert_int_equal(cut, 16);
    for (size_t i = 0; i < 16; i++) {
        char buf[64];
        /* closed without an answer (0), not left waiting (-1 after 5 s) */
        assert_int_equal(recv(fds[i], buf, sizeof(buf), 0), 0);
        close(fds[i]);
    }
    assert_int_equal(
        na_metric_value(na_metrics_get(NA_METRIC_COUNTER,
                                       "newsalert_http_requests_cut_total", NULL, NULL)),
        16);
    /* The listener closes them on its thread: until it has, their
     * address may still be full (a try every 10 ms, for at most 5 s). */
    for (int tries = 0; healthz(port) != 200 && tries < 500; tries++) {
        na_sleep_ms(10);
    }
    fetch(port, NULL, "/healthz", &a);
    assert_int_equal(a.status, 200);
    na_buf_cleanup(&a.body);
    na_httpd_stop(h);
    na_metrics_reset();
}

static const char hostile[] =
    "{\"daemon\": \"newsalert-consumer\", \"version\": \"0.1.0\", \"ready\": true,"
    " \"kafka\": {\"connected\": true, \"brokers\": \"k:9092\"},"
    " \"feeds\": [{\"id\": \"evil\", \"name\": \"<b>Evil</b> & Co\","
    "   \"url\": \"javascript:alert(1)\", \"status\": \"error\", \"stale\": true,"
    "   \"error\": \"<img src=x onerror=alert(2)>\"}],"
    " \"routes\": [{\"name\": \"desk\\\"><script>\", \"healthy\": false}],"
    " \"alerts\": [{\"topic\": \"taiwan\", \"score\": 7.5,"
    "   \"title\": \"<script>alert('x')</script> Strait \\\"talks\\\"\","
    "   \"url\": \"https://example.org/a?b=1&c=\\\"2\\\"\","
    "   \"evidence\": [{\"term\": \"taiwan\", \"matched\": \"Taiwan</q><script>\","
    "                   \"field\": \"title\"}],"
    "   \"story\": {\"id\": \"s1\", \"articles\": 3},"
    "   \"latest\": {\"title\": \"Later <i>report</i>\", \"url\": "
    "\"https://x.example/2\","
    "              \"source\": \"Beta & Co\"}}]}";

static void test_page_escapes_hostile_text(void **state) {
    (void)state;
    struct answer a;
    na_httpd_t *h = start(0);
    na_httpd_publish_steal(h, load_status(hostile));
    fetch(na_httpd_port(h), NULL, "/", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.type, "text/html; charset=utf-8");
    /* No script can run: none is emitted, and the policy forbids any. */
    assert_non_null(strstr(a.csp, "default-src 'none'"));
    assert_null(strstr(a.body.data, "<script"));
    assert_null(strstr(a.body.data, "<img"));
    assert_null(strstr(a.body.data, "<b>"));
    assert_null(strstr(a.body.data, "javascript:"));
    assert_non_null(strstr(a.body.data, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; "
                                        "Strait &quot;talks&quot;"));
    assert_non_null(strstr(a.body.data, "&lt;b&gt;Evil&lt;/b&gt; &amp; Co"));
    assert_non_null(strstr(a.body.data, "href=\"https://example.org/a?b=1&amp;c=&quot;2"
                                        "&quot;\""));
    assert_non_null(strstr(a.body.data, "desk&quot;&gt;&lt;script&gt;"));
    assert_non_null(strstr(a.body.data, "Taiwan&lt;/q&gt;&lt;script&gt;"));
    assert_non_null(strstr(a.body.data, "failing"));
    assert_non_null(strstr(a.body.data, "stale"));
    /* A later report of the story shows on its alert. */
    assert_non_null(strstr(a.body.data, "same story: 3 reports &middot; latest: "));
    assert_non_null(
        strstr(a.body.data, "Later &lt;i&gt;report&lt;/i&gt;</a> (Beta &amp; Co)"));
    na_buf_cleanup(&a.body);
    na_httpd_stop(h);
}

static void test_escape_and_page_without_status(void **state) {
    (void)state;
    struct na_buf buf;
    na_buf_init(&buf);
    na_httpd_html_escape(&buf, "a<b>&\"c'\x01\x7f"
                               "d");
    assert_string_equal(buf.data, "a&lt;b&gt;&amp;&quot;c&#39;d");
    na_buf_cleanup(&buf);
    char *page = na_httpd_render_page("newsalert-<x>", NULL, 0);
    assert_non_null(strstr(page, "<title>newsalert-&lt;x&gt; status</title>"));
    assert_non_null(strstr(page, "starting"));
    free(page);
}

static void test_bad_listen_addresses(void **state) {
    (void)state;
    char errstr[256];
    na_httpd_t *h = NULL;
    struct na_httpd_opts opts = {"127.0.0.1", "x", 0};
    assert_int_equal(na_httpd_start(&opts, &h, errstr, sizeof(errstr)), NA_ERR_CONFIG);
    assert_non_null(strstr(errstr, "http_listen"));
    assert_null(h);
    /* The same port twice: the second cannot bind, and says so. */
    na_httpd_t *first = start(0);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", na_httpd_port(first));
    opts.listen = listen;
    assert_int_equal(na_httpd_start(&opts, &h, errstr, sizeof(errstr)), NA_ERR_IO);
    assert_non_null(strstr(errstr, listen));
    na_httpd_stop(first);
    na_httpd_stop(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints_codes_and_types),
        cmocka_unit_test(test_stalled_loop_fails_health),
        cmocka_unit_test(test_slow_requests_are_cut),
        cmocka_unit_test(test_page_escapes_hostile_text),
        cmocka_unit_test(test_escape_and_page_without_status),
        cmocka_unit_test(test_bad_listen_addresses),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
