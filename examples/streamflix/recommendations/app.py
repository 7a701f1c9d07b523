# streamflix's recommendations, in Python (Flask): "because you watched X", the best-rated titles
# sharing a genre with X. It calls two other services by name, through the URLs Squadron gives
# every instance (SQUADRON_CATALOG_URL, SQUADRON_RATINGS_URL): no SDK, plain HTTP.
#   GET /recommendations?watched=t02&limit=4
# Without ratings (the service down), it still answers, ranked by year, "ratings": null.
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from flask import Flask, jsonify, request

app = Flask(__name__)
CATALOG = os.environ.get("SQUADRON_CATALOG_URL", "http://127.0.0.1:0")
RATINGS = os.environ.get("SQUADRON_RATINGS_URL", "http://127.0.0.1:0")


def fetch(url, timeout=2.0):
    """The JSON at `url`, or None when the service cannot answer in time."""
    req = urllib.request.Request(url)
    # Pass the request id on, so the fleet's logs tie the calls together.
    rid = request.headers.get("X-Request-Id")
    if rid:
        req.add_header("X-Request-Id", rid)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return None


@app.route("/recommendations")
def recommendations():
    watched = request.args.get("watched", "")
    try:
        limit = max(1, min(20, int(request.args.get("limit", "4"))))
    except ValueError:
        limit = 4
    title = fetch(f"{CATALOG}/titles/{urllib.parse.quote(watched)}") if watched else None
    if title is None or "genres" not in title:
        return jsonify(type="about:blank", title="Not Found", status=404,
                       detail=f"no title {watched!r} to recommend from"), 404, \
            {"Content-Type": "application/problem+json"}
    candidates = {}
    for genre in title["genres"]:
        for t in fetch(f"{CATALOG}/titles?genre={urllib.parse.quote(genre)}") or []:
            if t["id"] != watched:
                candidates[t["id"]] = t
    averages = fetch(f"{RATINGS}/ratings/averages", timeout=1.0)

    def rank(t):
        if averages is None:
            return (0, t.get("year", 0))
        a = averages.get(t["id"], {})
        return (a.get("average", 0), a.get("count", 0))

    best = sorted(candidates.values(), key=rank, reverse=True)[:limit]
    return jsonify(watched=title, ratings=None if averages is None else "ok",
                   items=[{"id": t["id"], "title": t["title"], "year": t.get("year"),
                           "average": None if averages is None
                           else averages.get(t["id"], {}).get("average")} for t in best])


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
