#!/usr/bin/env python3
"""Realistic article/v1 records for benchmarks: varied events of the same
days, each told by one to five outlets in their own words, a tenth of them
on the three shipped topics (export controls, rare earths, Taiwan).

    python3 bench/gen_articles.py N [SEED] > rows

Each stdout line is TIMESTAMP_MS <TAB> -1 <TAB> ID <TAB> ARTICLE (the input
of newsalert-produce-at); published times spread over the last two days.
Deterministic for a given N and SEED. Standard library only.
"""
import hashlib
import json
import random
import sys
import time

FIRST = ["Anna", "Bruno", "Chen", "Dara", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kemal", "Lina", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sami",
         "Tomas", "Uma", "Viktor", "Wen", "Yusuf", "Zofia"]
LAST = ["Okafor", "Lindqvist", "Marchetti", "Nakamura", "Petrov", "Haddad", "Moreau",
        "Kowalski", "Tanaka", "Silva", "Brennan", "Osei", "Varga", "Iqbal", "Novak",
        "Herrera", "Fischer", "Mensah", "Duarte", "Aaltonen"]
PLACES = ["Rotterdam", "Busan", "Valencia", "Gdansk", "Mombasa", "Tampere", "Porto",
          "Kaohsiung", "Antwerp", "Durban", "Izmir", "Lyon", "Osaka", "Cebu", "Leipzig",
          "Bergen", "Cordoba", "Tbilisi", "Perth", "Quebec", "Nagoya", "Malmo", "Sfax"]
ORGS = ["Harbor Authority", "Transit Board", "Water Utility", "Football Club", "Opera House",
        "Science Museum", "Chamber of Commerce", "Teachers' Union", "Fire Service",
        "Regional Hospital", "Wind Farm Consortium", "Textile Cooperative", "Rail Operator"]
KINDS = [
    ("opens", "The {org} of {place} opened a new {thing} on {day}, {person} said, "
              "after {n} months of work costing {m} million."),
    ("strike", "Workers at the {org} in {place} began a {n}-day strike on {day}; "
               "{person} said talks over pay had stalled at {m} percent."),
    ("storm", "A storm brought {n} millimetres of rain to {place} on {day}, closing "
              "{m} roads; the {org} said crews would work through the night."),
    ("result", "{place}'s {org} won {n} to {m} on {day}, with {person} scoring twice "
               "before a crowd that filled the ground."),
    ("deal", "The {org} of {place} agreed to buy a rival for {m} million on {day}; "
             "{person} said the deal would add {n} jobs."),
    ("court", "A court in {place} fined the {org} {m} thousand on {day} over a "
              "{thing}; {person} said it would appeal within {n} days."),
]
THINGS = ["terminal", "bridge", "clinic", "library", "tram line", "data centre", "school",
          "ferry route", "solar park", "pipeline"]
TOPICAL = [
    ("export", "The commerce ministry in {place} announced export controls on {thing}s on "
               "{day}, barring shipments to {n} companies without a licence; {person} "
               "said the curbs would cover dual-use items."),
    ("rare", "Prices of rare earth magnets rose {n} percent on {day} after suppliers in "
             "{place} cut shipments of dysprosium and neodymium; {person} said refiners "
             "held {m} tonnes."),
    ("taiwan", "Warships and aircraft drilled around Taiwan on {day}, the defence "
               "ministry in Taipei said, counting {n} vessels; {person} in {place} called "
               "the military exercises a blockade rehearsal."),
]
FILLER = ("Officials said further details would follow later in the week. Residents "
          "interviewed on the street gave mixed views. The figures could not be checked "
          "independently. Analysts expect the matter to come up at the next council "
          "meeting. A spokesperson declined to comment beyond the written statement. "
          "Local businesses said they had been given little notice. The plan had been "
          "discussed for years before the decision. Critics said the cost was too high. "
          "Supporters pointed to similar projects elsewhere. The next update is due "
          "on Monday.").split(". ")
OUTLETS = ["Harbour Wire", "Lantern Daily", "Meridian Post", "Northgate Review",
           "Coastal Herald", "Morning Ledger", "Civic Times", "Valley Courier"]


def sentence(rng, tpl, ev):
    return tpl.format(**ev)


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 20261203)
    now = int(time.time())
    out = 0
    ev_no = 0
    while out < n:
        ev_no += 1
        topical = rng.random() < 0.1
        kind, tpl = rng.choice(TOPICAL if topical else KINDS)
        ev = {"org": rng.choice(ORGS), "place": rng.choice(PLACES),
              "person": "%s %s" % (rng.choice(FIRST), rng.choice(LAST)),
              "thing": rng.choice(THINGS), "n": rng.randint(2, 90),
              "m": rng.randint(3, 900),
              "day": rng.choice(["Monday", "Tuesday", "Wednesday", "Thursday",
                                 "Friday", "Saturday", "Sunday"])}
        t0 = now - 2 * 86400 + rng.randint(0, 2 * 86400 - 7200)
        for r in range(rng.randint(1, 5)):
            if out >= n:
                break
            outlet = OUTLETS[(ev_no + r) % len(OUTLETS)]
            lead = sentence(rng, tpl, ev)
            body = [lead]
            while sum(len(s) for s in body) < 4300:
                body.append(rng.choice(FILLER).strip() + ".")
                if rng.random() < 0.15:
                    body.append("%s added that the %s would publish its own account." %
                                (ev["person"], ev["org"]))
            text = " ".join(body)
            title = "%s: %s %s in %s" % (outlet, ev["org"], kind, ev["place"])
            url = "https://%s.bench/%d/%d" % (outlet.lower().replace(" ", "-"), ev_no, r)
            pub = min(t0 + r * rng.randint(300, 3600), now - 60)
            ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(pub))
            art = {"schema": "article/v1", "id": hashlib.sha256(url.encode()).hexdigest(),
                   "url": url, "title": title, "summary": lead, "content": text,
                   "authors": [], "categories": [], "lang": "en", "published_at": ts,
                   "fetched_at": ts,
                   "source": {"id": outlet.lower().replace(" ", "-"), "name": outlet,
                              "feed_url": "https://%s.bench/feed" %
                                          outlet.lower().replace(" ", "-")}}
            sys.stdout.write("%d\t-1\t%s\t%s\n" % (pub * 1000, art["id"],
                                                   json.dumps(art, separators=(",", ":"))))
            out += 1


if __name__ == "__main__":
    main()
