# The voting sample's worker: takes each vote off the Redis list and keeps one row per voter
# in Postgres. It serves no port (ready: none). As the sample's worker, but in Python, with the
# hosts from the environment and the password from the secret Squadron hands it.
import json
import os
import signal
import sys
import time

import psycopg2
import redis

running = True


def stop(signum, frame):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)


def password():
    with open(os.path.join(os.environ["SQUADRON_SECRETS_DIR"], "db_password")) as f:
        return f.read().strip()


def connect_db():
    while running:
        try:
            conn = psycopg2.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]),
                                    user="postgres", password=password(), dbname="postgres",
                                    connect_timeout=5)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS votes "
                            "(id VARCHAR(255) NOT NULL UNIQUE, vote VARCHAR(255) NOT NULL)")
            print("Connected to db", flush=True)
            return conn
        except psycopg2.OperationalError as e:
            print(f"Waiting for db: {e}".strip(), flush=True)
            time.sleep(1)
    sys.exit(0)


def main():
    queue = redis.Redis(host=os.environ["REDIS_HOST"], port=int(os.environ["REDIS_PORT"]),
                        socket_timeout=5)
    db = connect_db()
    print("Watching vote queue", flush=True)
    while running:
        try:
            item = queue.blpop("votes", timeout=1)
        except redis.exceptions.ConnectionError as e:
            print(f"Redis: {e}; again in 1 s", flush=True)
            time.sleep(1)
            continue
        if item is None:
            continue
        vote = json.loads(item[1])
        print(f"Processing vote for '{vote['vote']}' by '{vote['voter_id']}'", flush=True)
        try:
            with db.cursor() as cur:
                cur.execute("INSERT INTO votes (id, vote) VALUES (%s, %s) "
                            "ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote",
                            (vote["voter_id"], vote["vote"]))
        except psycopg2.Error as e:
            print(f"Postgres: {e}; reconnecting", flush=True)
            queue.lpush("votes", item[1])  # not lost: taken again after the reconnect
            db = connect_db()


if __name__ == "__main__":
    main()
