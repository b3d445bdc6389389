#!/usr/bin/env python3
"""The baseline of bench/pipeline.sh: a plain Python consumer, as a desk
might write in twenty lines with the usual library (confluent-kafka), the
standard json module and one regular expression per topic. Reads TOPIC to
its end in a fresh group and prints how many articles and matches it saw.

    python3 bench/baseline_consumer.py BROKERS TOPIC
"""
import json
import re
import sys
import uuid

from confluent_kafka import Consumer, KafkaError

TOPICS = {
    "export_controls": re.compile(r"\bexport\w*\b.{0,60}\b(ban|bar|curb|control|licen[cs]e|"
                                  r"restrict)\w*", re.I | re.S),
    "rare_earths": re.compile(r"\brare earth|\b(dysprosium|neodymium|terbium|gallium|"
                              r"germanium)\b", re.I),
    "taiwan": re.compile(r"\b(taiwan|taipei)\b.{0,200}\b(military|drill|blockade|"
                         r"warship|missile)", re.I | re.S),
}

c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "baseline-" + uuid.uuid4().hex,
              "auto.offset.reset": "earliest", "enable.partition.eof": True})
c.subscribe([sys.argv[2]])
articles = matches = 0
eof = set()
while True:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        if m.error().code() == KafkaError._PARTITION_EOF:
            eof.add(m.partition())
            if len(eof) == len(c.assignment()):
                break
            continue
        raise SystemExit(str(m.error()))
    a = json.loads(m.value())
    text = "%s\n%s\n%s" % (a.get("title", ""), a.get("summary", ""), a.get("content", ""))
    articles += 1
    matches += sum(1 for r in TOPICS.values() if r.search(text))
c.close()
print(articles, matches)
