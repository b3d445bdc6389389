/*
 * na_kafka_at_end() (common/kafka.c): a consumer knows a partition's end
 * from the fetch that brought its last records, without the empty fetch
 * the broker holds for fetch.wait.max.ms. Here on librdkafka's mock
 * cluster; tests/integration/test_prefetch.py shows the daemon's
 * --exit-eof ending that way against the real broker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <string.h>

#include "newsalert/kafka.h"
#include "newsalert/timeutil.h"

#define TOPIC "end"

static const int counts[2] = {5, 3}; /* records per partition */

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *brokers) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (brokers) {
        assert_int_equal(
            rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)),
            RD_KAFKA_CONF_OK);
    }
    if (type == RD_KAFKA_CONSUMER) {
        assert_int_equal(
            rd_kafka_conf_set(conf, "group.id", "end-test", errstr, sizeof(errstr)),
            RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr,
                                           sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    return rk;
}

/* Every record of two partitions read after all were written: only the
 * last of each partition is at the end; the EOF events and a missing
 * message are not. */
static void test_only_the_last_record_of_each_partition_is_at_the_end(void **state) {
    (void)state;
    rd_kafka_t *owner = new_client(RD_KAFKA_PRODUCER, NULL);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(owner, 1);
    assert_non_null(mc);
    const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, 2, 1), 0);

    rd_kafka_t *prod = new_client(RD_KAFKA_PRODUCER, brokers);
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < counts[p]; i++) {
            assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(TOPIC),
                                               RD_KAFKA_V_PARTITION(p),
                                               RD_KAFKA_V_VALUE((void *)"x", 1),
                                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                               RD_KAFKA_V_END),
                             RD_KAFKA_RESP_ERR_NO_ERROR);
        }
    }
    assert_int_equal(rd_kafka_flush(prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(prod);

    rd_kafka_t *cons = new_client(RD_KAFKA_CONSUMER, brokers);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(2);
    for (int p = 0; p < 2; p++) {
        rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    assert_int_equal(rd_kafka_assign(cons, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    int read[2] = {0, 0}, at_end[2] = {0, 0}, eofs = 0;
    int64_t end_offset[2] = {-1, -1};
    int64_t deadline = na_mono_ms() + 20000;
    while (eofs < 2 && na_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (!m) {
            continue;
        }
        assert_in_range(m->partition, 0, 1);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            assert_false(na_kafka_at_end(cons, m));
            eofs++;
        } else {
            assert_int_equal(m->err, RD_KAFKA_RESP_ERR_NO_ERROR);
            read[m->partition]++;
            if (na_kafka_at_end(cons, m)) {
                at_end[m->partition]++;
                end_offset[m->partition] = m->offset;
            }
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(eofs, 2);
    for (int p = 0; p < 2; p++) {
        assert_int_equal(read[p], counts[p]);
        assert_int_equal(at_end[p], 1);
        assert_int_equal(end_offset[p], counts[p] - 1);
    }
    assert_false(na_kafka_at_end(cons, NULL));
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(owner);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_the_last_record_of_each_partition_is_at_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
