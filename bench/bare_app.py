"""The ceiling: the smallest Flask JSON endpoint, served by the same gunicorn config."""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/ping")
def ping():
    return jsonify({"success": True, "message": "成功", "data": {"pong": True}})
