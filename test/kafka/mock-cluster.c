/*
 * A Kafka-protocol broker for Vigil's integration tests: librdkafka's mock cluster
 * (librdkafka/rdkafka_mock.h) in a process of its own.
 *
 *   mock-cluster <brokers> <topic:partitions[:replication]>...
 *
 * Prints "BOOTSTRAP 127.0.0.1:port,..." then "READY". Mock brokers listen on 127.0.0.1 only
 * (rd_kafka_mock_broker_new binds INADDR_LOOPBACK). The mock has no CreateTopics API, so the
 * topics are created here with rd_kafka_mock_topic_create before READY.
 * Reads commands on stdin: "down <id>" / "up <id>" (rd_kafka_mock_broker_set_down/_up: the
 * broker drops its connections and refuses new ones, keeping its port). Exits when stdin closes,
 * on SIGTERM/SIGINT, or when the parent dies, so it never outlives the tests.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Installed without SA_RESTART: the signal interrupts the blocking read and fgets() returns NULL. */
static void on_signal(int sig) { (void)sig; }

int main(int argc, char **argv) {
        char errstr[512], line[256], name[256];
        int brokers = argc > 1 ? atoi(argv[1]) : 0;
        if (brokers < 1) {
                fprintf(stderr, "usage: %s <brokers> <topic:partitions[:replication]>...\n", argv[0]);
                return 2;
        }
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);

        /* The cluster needs a client handle for its bookkeeping; this one never connects anywhere. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        rd_kafka_mock_cluster_t *mcluster = rk ? rd_kafka_mock_cluster_new(rk, brokers) : NULL;
        if (!mcluster) {
                fprintf(stderr, "mock-cluster: cannot create the cluster: %s\n", rk ? "" : errstr);
                return 1;
        }

        for (int i = 2; i < argc; i++) {
                int partitions = 0, replication = 1;
                if (sscanf(argv[i], "%255[^:]:%d:%d", name, &partitions, &replication) < 2 ||
                    partitions < 1 || replication < 1 || replication > brokers) {
                        fprintf(stderr, "mock-cluster: bad topic '%s' (name:partitions[:replication<=%d])\n",
                                argv[i], brokers);
                        return 2;
                }
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mcluster, name, partitions, replication);
                if (err) {
                        fprintf(stderr, "mock-cluster: topic %s: %s\n", name, rd_kafka_err2str(err));
                        return 1;
                }
        }

        printf("BOOTSTRAP %s\nREADY\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);

        while (fgets(line, sizeof(line), stdin)) {
                int id = 0;
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__INVALID_ARG;
                if (sscanf(line, "down %d", &id) == 1)
                        err = rd_kafka_mock_broker_set_down(mcluster, id);
                else if (sscanf(line, "up %d", &id) == 1)
                        err = rd_kafka_mock_broker_set_up(mcluster, id);
                printf("%s %s", err ? "ERR" : "OK", line);
                fflush(stdout);
        }

        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return 0;
}
