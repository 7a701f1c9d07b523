#Creating a simple Python service
# The course's Flask app, changed only to read its port from PORT (Squadron gives each replica
# its own); without PORT it listens on the course's 5000.
import os

from flask import Flask
app = Flask(__name__)

@app.route("/hello")
def hello():
    return "Hello World!"

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")))
