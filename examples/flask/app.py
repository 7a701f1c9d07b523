# The course's Flask microservice (Creating a simple Python service), unchanged but for reading
# HOST/PORT from the environment as Squadron's contract asks (defaults: the course's 0.0.0.0:5000).
import os

from flask import Flask

app = Flask(__name__)


@app.route("/hello")
def hello():
    return "Hello World!"


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "5000")))
