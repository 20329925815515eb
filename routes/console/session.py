"""Signing in to the console with an API key (when access control is on)."""
from flask import current_app, flash, redirect, render_template, request, url_for

from routes.access import console_login, console_logout
from routes.console import bp


def _safe_next() -> str:
    """Only a console path: a login can never send the browser to another site."""
    target = request.values.get("next", "")
    return target if target.startswith("/console/") and not target.startswith("//") else url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Exchange an API key for a console session; its role decides what the pages allow."""
    error = None
    if request.method == "POST":
        caller = console_login(request.form.get("api_key", ""))
        if caller is not None:
            flash(f"已登录：{caller.name}（{caller.role}）", "success")
            return redirect(_safe_next())
        error = "API 密钥无效或已吊销"
    return render_template("console/login.html", error=error, next=request.values.get("next", ""),
                           auth_required=current_app.config["AUTH_REQUIRED"]), 401 if error else 200


@bp.post("/logout")
def logout():
    console_logout()
    flash("已退出登录", "info")
    return redirect(url_for("console.login"))
