# The voting sample's front page (Flask): a vote goes onto a Redis list for the worker.
# As the sample's own app, but the Redis host and port come from the environment (as its compose
# file names the host "redis"): squadron.yaml sets them from SQUADRON_REDIS_HOST/_PORT.
import json
import os
import random
import socket

from flask import Flask, g, make_response, render_template_string, request
from redis import Redis

option_a = os.getenv("OPTION_A", "Cats")
option_b = os.getenv("OPTION_B", "Dogs")
hostname = socket.gethostname()

app = Flask(__name__)

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{a}} vs {{b}}!</title></head>
<body>
<h1>{{a}} vs {{b}}!</h1>
<form id="choice" name="form" method="POST" action="/">
  <button id="a" type="submit" name="vote" value="a">{{a}}</button>
  <button id="b" type="submit" name="vote" value="b">{{b}}</button>
</form>
{% if vote %}<p id="voted">You voted for {{a if vote == 'a' else b}}</p>{% endif %}
<p>(Tip: you can change your vote)</p>
<p>Processed by container ID {{hostname}} ({{instance}})</p>
</body></html>
"""


def get_redis():
    if not hasattr(g, "redis"):
        g.redis = Redis(host=os.getenv("REDIS_HOST", "redis"),
                        port=int(os.getenv("REDIS_PORT", "6379")), db=0, socket_timeout=5)
    return g.redis


@app.route("/", methods=["POST", "GET"])
def hello():
    voter_id = request.cookies.get("voter_id")
    if not voter_id:
        voter_id = hex(random.getrandbits(64))[2:-1]
    vote = None
    if request.method == "POST":
        vote = request.form["vote"]
        data = json.dumps({"voter_id": voter_id, "vote": vote})
        get_redis().rpush("votes", data)
    resp = make_response(render_template_string(
        PAGE, a=option_a, b=option_b, hostname=hostname, vote=vote,
        instance=os.getenv("SQUADRON_INSTANCE", "")))
    resp.set_cookie("voter_id", voter_id)
    return resp


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.getenv("PORT", "80")), debug=False, threaded=True)
